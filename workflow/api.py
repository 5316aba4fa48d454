"""REST API of the story: training requests (draft, submit, approve, withdraw, cancel) and the
runs they dispatched. Same restricted querysets and actions as the pages."""

from django.db import IntegrityError, transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from governance.mfa import require_second_factor
from training import runs
from training.models import TrainingRun
from workflow import actions as workflow_actions
from workflow import api_serializers as s
from workflow import models as wm


# --------------------------------------------------------------------------- training requests and runs


class Refused(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "refused"


class ActionErrors:
    """The actions' refusals as HTTP: a refused move is 400, someone not allowed to make it 403."""

    def handle_exception(self, exc):
        if isinstance(exc, (workflow_actions.RequestRefused, runs.InvalidRunSettings)):
            exc = Refused(str(exc))
        elif isinstance(exc, PermissionError):
            exc = PermissionDenied(str(exc))
        return super().handle_exception(exc)


class BrowseThenActPermission(permissions.BasePermission):
    """Lists need `can_browse` and creating a request the engineer's permission. A single record is
    looked up through `visible_to` (404 if hidden); what may be done to it, its action decides (403)."""

    def has_permission(self, request, view):
        if not request.user.is_authenticated:
            return False
        if view.action == "list":
            return view.queryset.model.can_browse(request.user)
        if view.action == "create":
            return request.user.has_perm("governance.add_trainingrequest")
        return True


def cancel_run(actor, run: TrainingRun) -> TrainingRun:
    try:
        return runs.request_cancel(actor, run)
    except ValueError as exc:  # it has ended
        raise workflow_actions.RequestRefused(str(exc)) from None


ERRORS = {400: OpenApiResponse(OpenApiTypes.OBJECT, description="Refused: {\"detail\": sentence} for a refused move, "
                                                      "{field: [sentences]} for invalid fields."),
          403: OpenApiResponse(s.ErrorSerializer, description="You may not do this."),
          404: OpenApiResponse(s.ErrorSerializer, description="No such record that you can see.")}
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
    description="Any unique string (a UUID). Retrying with the same key returns the request the first call created (200) "
                "instead of drafting a second one.",
)


SECOND_FACTOR_NOTE = ("Legal counsel, privacy officers and administrators need an API token made from a portal session "
                      "verified with their authenticator app (second factor); any other token gets a 403 saying so.")


def _request_action(summary, request_body=None, description=""):
    return extend_schema(summary=summary, description=description, request=request_body,
                         responses={200: s.TrainingRequestSerializer, **ERRORS})


@extend_schema_view(
    list=extend_schema(summary="List the training requests you may see",
                       description="Engineers see their own; legal counsel, the privacy officer and admins see all."),
    retrieve=extend_schema(summary="A training request with its findings, approvals and missing approvals",
                           responses={200: s.TrainingRequestSerializer, 404: ERRORS[404]}),
)
class TrainingRequestViewSet(ActionErrors, viewsets.ReadOnlyModelViewSet):
    """Training requests: draft, edit, submit, approve or reject, withdraw, cancel the run."""

    queryset = wm.TrainingRequest.objects.all()
    serializer_class = s.TrainingRequestSerializer
    permission_classes = [BrowseThenActPermission]
    filterset_fields = ["state"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return (wm.TrainingRequest.objects.visible_to(self.request.user).select_related("requester")
                .prefetch_related("datasets__data_classes", "approvals__approver"))  # what each row's missing approvals read

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "user": self.request.user}

    def _respond(self, training_request, status_code=status.HTTP_200_OK):
        training_request = self.get_queryset().get(pk=training_request.pk)
        return Response(s.TrainingRequestSerializer(training_request, context=self.get_serializer_context()).data, status=status_code)

    @extend_schema(summary="Draft a training request", parameters=[IDEMPOTENCY_KEY], request=s.TrainingRequestWriteSerializer,
                   responses={201: s.TrainingRequestSerializer,
                              200: OpenApiResponse(s.TrainingRequestSerializer, description="Replayed Idempotency-Key: the first request."),
                              400: ERRORS[400], 403: ERRORS[403]})
    def create(self, request, *args, **kwargs):
        key = request.headers.get("Idempotency-Key", "").strip() or None
        if key and len(key) > 100:
            raise Refused("The Idempotency-Key header is at most 100 characters long.")
        earlier = wm.TrainingRequest.created_with_key(request.user, key)
        if earlier is not None:
            return self._respond(earlier)
        body = s.TrainingRequestWriteSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = {k: v for k, v in body.validated_data.items() if k != "datasets"}
        try:
            with transaction.atomic():  # a savepoint: after a clash the outer transaction can still read
                created = workflow_actions.create_request(request.user, data, body.validated_data["datasets"], idempotency_key=key)
        except IntegrityError:
            # Only the race on one key is answered with the other call's request: same person, a key
            # given, and its row there now. Any other IntegrityError is a fault, not a replay.
            earlier = wm.TrainingRequest.created_with_key(request.user, key) if key else None
            if earlier is None:
                raise
            return self._respond(earlier)
        return self._respond(created, status.HTTP_201_CREATED)

    @extend_schema(summary="Edit your request (back to draft; voids its approvals)", request=s.TrainingRequestWriteSerializer,
                   responses={200: s.TrainingRequestSerializer, **ERRORS})
    def partial_update(self, request, *args, **kwargs):
        training_request = self.get_object()
        body = s.TrainingRequestWriteSerializer(training_request, data=request.data, partial=True, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = {k: v for k, v in body.validated_data.items() if k != "datasets"}
        return self._respond(workflow_actions.update_request(request.user, training_request, data, body.validated_data.get("datasets")))

    @_request_action("Submit your request for approval", description="Freezes its content hash and policy findings; refused while a blocker stands.")
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        return self._respond(workflow_actions.submit_request(request.user, self.get_object()))

    @_request_action("Withdraw your request", s.WithdrawSerializer)
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        training_request = self.get_object()
        if training_request.requester_id != request.user.pk:
            raise PermissionDenied("Only the requester withdraws a request.")
        body = s.WithdrawSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._respond(workflow_actions.withdraw_request(request.user, training_request, body.validated_data["reason"]))

    def _decide(self, request, decision):
        training_request = self.get_object()
        if not request.user.has_perm("governance.decide_trainingrequest"):
            raise PermissionDenied("Only legal counsel, the privacy officer and administrators decide requests.")
        # A token made from a session verified with a second factor, or such a session (governance.mfa): 403 otherwise.
        require_second_factor(request)
        body = s.DecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        workflow_actions.decide_request(request.user, training_request, decision, **body.validated_data)
        return self._respond(training_request)

    @_request_action("Approve the submitted version", s.DecisionSerializer,
                     "Binds to the request's content hash. The last approval needed queues the run. " + SECOND_FACTOR_NOTE)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._decide(request, wm.ApprovalDecision.APPROVE)

    @_request_action("Reject the submitted version (a comment is required)", s.DecisionSerializer, SECOND_FACTOR_NOTE)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        return self._decide(request, wm.ApprovalDecision.REJECT)

    @_request_action("Cancel the request's run", description="The requester or the privacy officer. A queued run is "
                     "cancelled at once, a running one at its next step. Refused while the request has no run: withdraw it instead.")
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        training_request = self.get_object()
        workflow_actions.cancel_request(request.user, training_request)
        return self._respond(training_request)


@extend_schema_view(
    list=extend_schema(summary="List the training runs you may see", description="Engineers see their own runs."),
    retrieve=extend_schema(summary="A training run and its live progress", responses={200: s.TrainingRunSerializer, 404: ERRORS[404]}),
)
class TrainingRunViewSet(ActionErrors, viewsets.ReadOnlyModelViewSet):
    queryset = TrainingRun.objects.all()
    serializer_class = s.TrainingRunSerializer
    permission_classes = [BrowseThenActPermission]
    filterset_fields = ["state"]

    def get_queryset(self):
        return (TrainingRun.objects.visible_to(self.request.user).select_related("created_by", "base_model", "request")
                .prefetch_related("datasets"))

    @extend_schema(summary="Cancel a run", request=None, responses={200: s.TrainingRunSerializer, **ERRORS},
                   description="Whoever started it, or the privacy officer. A queued run is cancelled at once, "
                               "a running one at its next step.")
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        run = cancel_run(request.user, self.get_object())
        return Response(s.TrainingRunSerializer(self.get_queryset().get(pk=run.pk)).data)
