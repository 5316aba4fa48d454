"""REST API of deployments (under /api/, portal/api_urls.py): list and read them, deploy a released
run, suspend, resume, retire, issue and revoke consumer keys. Same restricted querysets and
actions as the pages; the privacy officer's writes need the second factor (governance.mfa)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from governance import mfa
from governance.roles import ADMIN, ENGINEER, LEGAL, PRIVACY, has_role
from serving import actions
from serving.actions import MAX_KEY_DAYS, MAX_OUTPUT_TOKENS
from serving.models import ConsumerKey, Deployment, FilterMode
from training.models import TrainingRun


class Refused(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "refused"


class ConsumerKeySerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ConsumerKey
        fields = ["id", "deployment", "consumer", "prefix", "requests_per_minute", "tokens_per_day", "created_by", "created_at",
                  "expires_at", "revoked_at", "revoked_reason", "last_used_at"]
        read_only_fields = fields


class IssuedKeySerializer(ConsumerKeySerializer):
    secret = serializers.CharField(read_only=True, help_text="The key itself, shown in this answer only: the portal keeps its hash.")

    class Meta(ConsumerKeySerializer.Meta):
        fields = [*ConsumerKeySerializer.Meta.fields, "secret"]
        read_only_fields = fields


class DeploymentSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Deployment
        fields = ["id", "name", "run", "release", "purpose", "state", "state_reason", "state_changed_at", "max_output_tokens",
                  "filter_mode", "log_prompts", "created_by", "created_at"]
        read_only_fields = fields


class DeploySerializer(serializers.Serializer):
    run = serializers.IntegerField(help_text="The training run whose released adapter to serve.")
    name = serializers.SlugField(max_length=64, help_text="What clients send as `model`.")
    purpose = serializers.CharField(max_length=2000, allow_blank=True, default="")
    max_output_tokens = serializers.IntegerField(min_value=1, max_value=MAX_OUTPUT_TOKENS, default=256)
    filter_mode = serializers.ChoiceField(FilterMode.choices, default=FilterMode.MASK)
    log_prompts = serializers.BooleanField(default=False)


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class IssueKeySerializer(serializers.Serializer):
    consumer = serializers.CharField(max_length=120)
    days = serializers.IntegerField(min_value=1, max_value=MAX_KEY_DAYS, default=90)
    requests_per_minute = serializers.IntegerField(min_value=1, max_value=100_000, default=60)
    tokens_per_day = serializers.IntegerField(min_value=1, max_value=100_000_000, default=100_000)


class DeploymentPermission(permissions.BasePermission):
    """Roles that see deployments (privacy, legal, admin; engineers their own runs'); writes are the
    privacy officer's, with a second factor. One deployment is looked up through `visible_to` first
    (404 if hidden, README *Who sees what*); what may be done to it is decided then (403)."""

    def has_permission(self, request, view):
        if not request.user.is_authenticated:
            return False
        if view.detail:
            return True  # has_object_permission, once the deployment is found
        if not has_role(request.user, PRIVACY, LEGAL, ADMIN, ENGINEER):
            return False
        if view.action != "list":
            self.require_privacy_officer(request)
        return True

    def has_object_permission(self, request, view, obj):
        if not (view.action == "retrieve" or (view.action == "keys" and request.method == "GET")):
            self.require_privacy_officer(request)
        return True

    @staticmethod
    def require_privacy_officer(request):
        if not request.user.has_perm(actions.DEPLOY_PERMISSION):
            raise PermissionDenied("Only the privacy officer deploys adapters and manages their keys.")
        mfa.require_second_factor(request)


ERRORS = {400: OpenApiResponse(description="Refused: {\"detail\": sentence}."), 403: OpenApiResponse(description="You may not do this."),
          404: OpenApiResponse(description="No such deployment that you can see.")}


@extend_schema_view(
    list=extend_schema(summary="List the deployments you may see",
                       description="The privacy officer, legal counsel and administrators see all; engineers those of their runs."),
    retrieve=extend_schema(summary="A deployment and its policy"),
)
class DeploymentViewSet(viewsets.ReadOnlyModelViewSet):
    """Deployments of released adapters at the gateway (/v1/)."""

    serializer_class = DeploymentSerializer
    permission_classes = [DeploymentPermission]
    filterset_fields = ["state"]

    def get_queryset(self):
        return Deployment.objects.visible_to(self.request.user).select_related("created_by")

    def handle_exception(self, exc):
        if isinstance(exc, actions.DeploymentRefused):
            exc = Refused(str(exc))
        elif isinstance(exc, PermissionError):
            exc = PermissionDenied(str(exc))
        return super().handle_exception(exc)

    def _respond(self, deployment, status_code=status.HTTP_200_OK):
        return Response(DeploymentSerializer(deployment).data, status=status_code)

    @extend_schema(summary="Deploy a released adapter", request=DeploySerializer, responses={201: DeploymentSerializer, **ERRORS})
    def create(self, request, *args, **kwargs):
        body = DeploySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        run = TrainingRun.objects.visible_to(request.user).filter(pk=data.pop("run")).first()
        if run is None:
            raise exceptions.NotFound("No such training run that you can see.")
        return self._respond(actions.deploy_adapter(request.user, run, **data), status.HTTP_201_CREATED)

    def _change(self, request, change):
        deployment = self.get_object()  # 404, or 403 for a role that may not change it, before the body's 400
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._respond(change(request.user, deployment, body.validated_data["reason"]))

    @extend_schema(summary="Suspend: every call is refused until resumed", request=ReasonSerializer,
                   responses={200: DeploymentSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def suspend(self, request, pk=None):
        return self._change(request, actions.suspend_deployment)

    @extend_schema(summary="Resume a suspended deployment", request=ReasonSerializer, responses={200: DeploymentSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._change(request, actions.resume_deployment)

    @extend_schema(summary="Retire for good (revokes every key)", request=ReasonSerializer, responses={200: DeploymentSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def retire(self, request, pk=None):
        return self._change(request, actions.retire_deployment)

    @extend_schema(methods=["get"], summary="The deployment's consumer keys (privacy officer)", request=None,
                   responses={200: ConsumerKeySerializer(many=True), **ERRORS})
    @extend_schema(methods=["post"], summary="Issue a consumer key: the secret is in this answer only", request=IssueKeySerializer,
                   responses={201: IssuedKeySerializer, **ERRORS})
    @action(detail=True, methods=["get", "post"])
    def keys(self, request, pk=None):
        deployment = self.get_object()
        if request.method == "GET":
            keys = ConsumerKey.objects.visible_to(request.user).filter(deployment=deployment)
            if not request.user.has_perm("serving.view_consumerkey"):
                raise PermissionDenied("Only the privacy officer sees a deployment's keys.")
            return Response(ConsumerKeySerializer(keys, many=True).data)
        if not request.user.has_perm(actions.DEPLOY_PERMISSION):
            raise PermissionDenied("Only the privacy officer issues consumer keys.")
        body = IssueKeySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        key, secret = actions.issue_consumer_key(request.user, deployment, **body.validated_data)
        response = Response({**ConsumerKeySerializer(key).data, "secret": secret}, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(summary="Revoke one of the deployment's consumer keys", request=ReasonSerializer,
                   responses={200: ConsumerKeySerializer, **ERRORS})
    @action(detail=True, methods=["post"], url_path=r"keys/(?P<key_id>\d+)/revoke")
    def revoke_key(self, request, pk=None, key_id=None):
        deployment = self.get_object()
        key = ConsumerKey.objects.filter(deployment=deployment, pk=key_id).first()
        if key is None:
            raise exceptions.NotFound("No such key on this deployment.")
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(ConsumerKeySerializer(actions.revoke_consumer_key(request.user, key, body.validated_data["reason"])).data)
