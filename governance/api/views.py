"""REST API for governance records. Same restricted querysets and actions as the pages."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from governance import actions, filters, ingest

from governance import models as m
from governance.api import serializers as s
from governance.forms import ShareDatasetForm
from governance.uploads import install_encrypting_handler
from governance.views import dataset_upload_rules, discard_unkept_uploads


class RecordPermission(permissions.BasePermission):
    """Reading needs `can_browse`, creating `can_add`, changing `obj.can_change`."""

    def has_permission(self, request, view):
        model = view.queryset.model
        if not request.user.is_authenticated:
            return False
        if view.action == "create":
            return model.can_add(request.user)
        if (view.lookup_url_kwarg or view.lookup_field) in view.kwargs:
            # One object: the restricted queryset answers 404 for what the user cannot see (its
            # existence is not theirs to learn), has_object_permission 403 for what they only read.
            return True
        return model.can_browse(request.user)

    def has_object_permission(self, request, view, obj):
        if request.method in permissions.SAFE_METHODS:
            return True
        return obj.can_change(request.user)


class RecordViewSet(mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    permission_classes = [RecordPermission]
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def get_queryset(self):
        return self.queryset.model.objects.visible_to(self.request.user)

    def perform_create(self, serializer):
        _validate_model(serializer)
        actions.create_record(self.request.user, serializer)

    def perform_update(self, serializer):
        _validate_model(serializer)
        actions.update_record(self.request.user, serializer.instance, lambda _: serializer.save())


def _validate_model(serializer):
    """Run the model's own `clean()` so the API enforces what the forms enforce."""
    from django.core.exceptions import ValidationError

    model = serializer.Meta.model
    attrs = {k: v for k, v in serializer.validated_data.items() if not isinstance(v, list) or k in {f.name for f in model._meta.concrete_fields}}
    instance = serializer.instance or model()
    for key, value in attrs.items():
        if key in {f.name for f in model._meta.many_to_many}:
            continue
        setattr(instance, key, value)
    try:
        instance.clean()
    except ValidationError as exc:
        raise serializers.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages})
    finally:
        if serializer.instance is not None:
            serializer.instance.refresh_from_db()


def record_viewset(model, serializer_class, filterset_class):
    return type(f"{model.__name__}ViewSet", (RecordViewSet,), {
        "queryset": model.objects.all(), "serializer_class": serializer_class, "filterset_class": filterset_class,
    })


DataClassViewSet = record_viewset(m.DataClass, s.DataClassSerializer, filters.DataClassFilter)
ProcessorViewSet = record_viewset(m.Processor, s.ProcessorSerializer, filters.ProcessorFilter)
AttestationViewSet = record_viewset(m.Attestation, s.AttestationSerializer, filters.AttestationFilter)
DataProcessingAgreementViewSet = record_viewset(m.DataProcessingAgreement, s.DataProcessingAgreementSerializer, filters.DataProcessingAgreementFilter)
RedactionRuleViewSet = record_viewset(m.RedactionRule, s.RedactionRuleSerializer, filters.RedactionRuleFilter)
ComputeTargetViewSet = record_viewset(m.ComputeTarget, s.ComputeTargetSerializer, filters.ComputeTargetFilter)


class DatasetViewSet(RecordViewSet):
    """Datasets: upload (multipart, encrypted as it streams), classify, share, crypto-shred."""

    queryset = m.Dataset.objects.all()
    filterset_class = filters.DatasetFilter

    def get_queryset(self):
        # Each row shows its owner and classes: loaded with the page, not a query per row.
        return super().get_queryset().select_related("owner").prefetch_related("data_classes")

    def get_serializer_class(self):
        return {"create": s.DatasetUploadSerializer, "update": s.DatasetEditSerializer,
                "partial_update": s.DatasetEditSerializer}.get(self.action, s.DatasetSerializer)

    def dispatch(self, request, *args, **kwargs):
        # The encrypting handler must be in place before anything reads the body (DRF's
        # parser, or the CSRF check of session authentication). A file that no action kept
        # (refused, invalid, not permitted) is removed on the way out.
        if request.method == "POST":
            install_encrypting_handler(request, dataset_upload_rules())
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            discard_unkept_uploads(request)

    @extend_schema(request={"multipart/form-data": s.DatasetUploadSerializer}, responses={201: s.DatasetSerializer})
    def create(self, request, *args, **kwargs):
        data = request.data  # parses the body: the encrypting handler records its refusals as it streams
        upload_errors = getattr(request._request, "upload_errors", {})
        if upload_errors:
            # The handler's reason ("… is empty", "… is not valid UTF-8 …"), not DRF's "No file was submitted."
            raise serializers.ValidationError({name: [message] for name, message in upload_errors.items()})
        serializer = self.get_serializer(data=data)
        serializer.is_valid(raise_exception=True)
        fields = {k: v for k, v in serializer.validated_data.items() if k not in ("file", "data_classes")}
        try:
            dataset = actions.upload_dataset(
                request.user, serializer.validated_data["file"],
                data_classes=serializer.validated_data.get("data_classes", []), **fields,
            )
        except ingest.IngestError as exc:
            raise serializers.ValidationError({"file": [str(exc)]})
        except actions.ClassificationRefused as exc:
            raise PermissionDenied(str(exc))
        return Response(s.DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        classes = serializer.validated_data.pop("data_classes", None)
        try:
            actions.edit_dataset(self.request.user, serializer.instance, lambda _: serializer.save(), data_classes=classes)
        except actions.ClassificationRefused as exc:
            raise PermissionDenied(str(exc))

    @extend_schema(request=s.ShredSerializer, responses={200: s.DatasetSerializer})
    @action(detail=True, methods=["post"])
    def shred(self, request, pk=None):
        dataset = self.get_object()
        if not dataset.can_shred(request.user):
            raise PermissionDenied("Only the owner or a privacy officer can shred a dataset.")
        body = s.ShredSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        dataset = actions.shred_dataset(request.user, dataset, body.validated_data["reason"])
        return Response(s.DatasetSerializer(dataset).data)

    @extend_schema(request=s.ShareSerializer, responses={204: None})
    @action(detail=True, methods=["post"])
    def share(self, request, pk=None):
        dataset = self.get_object()
        if not dataset.can_share(request.user):
            raise PermissionDenied("Only the owner can share a dataset.")
        form = ShareDatasetForm(request.data)
        if not form.is_valid():
            raise serializers.ValidationError(form.errors)
        actions.share_dataset(request.user, dataset, form.cleaned_data["username"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = m.AuditEvent.objects.all()
    serializer_class = s.AuditEventSerializer
    filterset_class = filters.AuditEventFilter
    permission_classes = [RecordPermission]
    lookup_field = "sequence"

    def get_queryset(self):
        return m.AuditEvent.objects.visible_to(self.request.user)
