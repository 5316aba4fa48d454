"""REST serializers of training requests, their approvals, and runs as a request's follow-up."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from governance import models as m
from training import settings_schema
from training.models import BaseModel, TrainingRun
from workflow import models as wm


def _today():
    from django.utils import timezone

    return timezone.localdate()


# --------------------------------------------------------------------------- training requests and runs


@extend_schema_field(settings_schema.json_schema(), component_name="RunSettings")
class RunSettingsField(serializers.JSONField):
    """Run settings as JSON, described in the OpenAPI document by the schema that checks them
    (`training.settings_schema`). The check itself is the action's (`RunSettings.from_dict`), so
    the API, the form and the CLI refuse the same things with the same sentences."""


class ApprovalSerializer(serializers.ModelSerializer):
    approver = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = wm.Approval
        fields = ["id", "approver", "role", "decision", "comment", "conditions", "content_hash", "created_at", "voided_at", "void_reason"]


class FindingSerializer(serializers.Serializer):
    severity = serializers.ChoiceField(["blocker", "warning"])
    code = serializers.CharField()
    message = serializers.CharField()


class TrainingRequestSerializer(serializers.ModelSerializer):
    """A request as the approvers see it: what it asks, what policy found, who signed, who must still sign."""

    requester = serializers.SlugRelatedField(slug_field="username", read_only=True)
    findings = FindingSerializer(many=True, read_only=True, help_text="Policy findings, frozen at submission.")
    approvals = ApprovalSerializer(many=True, read_only=True)
    settings = RunSettingsField(read_only=True, help_text="Method, DP, redaction, canary and audit settings.")
    missing_approvals = serializers.SerializerMethodField(help_text="Approver role -> signatures still needed.")

    class Meta:
        model = wm.TrainingRequest
        fields = [
            "id", "title", "requester", "intended_use", "out_of_scope", "base_model", "datasets", "compute_target",
            "leak_definition", "adversaries", "audience", "settings", "audit_thresholds", "state", "content_hash", "findings",
            "approvals", "missing_approvals", "run", "submitted_at", "decided_at", "created_at", "updated_at",
        ]
        read_only_fields = fields

    def get_missing_approvals(self, obj) -> dict[str, int]:
        return obj.missing_approvals(obj.approvals.all())  # prefetched with the list, not asked again per row


class TrainingRequestWriteSerializer(serializers.ModelSerializer):
    """What an engineer drafts. Records are chosen among those the caller may see; `settings` is
    checked by RunSettings in the action, which names the setting that is wrong."""

    base_model = serializers.PrimaryKeyRelatedField(queryset=BaseModel.objects.none())
    datasets = serializers.PrimaryKeyRelatedField(many=True, queryset=m.Dataset.objects.none())
    compute_target = serializers.PrimaryKeyRelatedField(queryset=m.ComputeTarget.objects.none())
    adversaries = serializers.ListField(child=serializers.ChoiceField(wm.Adversary.choices), required=False)
    settings = RunSettingsField(required=False, help_text="Method, DP, redaction, canary and audit settings; a wrong type, "
                                "range or key is refused (400) with the key's path, e.g. `training.target_epsilon`.")
    audit_thresholds = serializers.DictField(required=False, help_text="Stricter audit limits than the data classes' (never looser).")

    class Meta:
        model = wm.TrainingRequest
        fields = ["title", "intended_use", "out_of_scope", "base_model", "datasets", "compute_target", "leak_definition",
                  "adversaries", "audience", "settings", "audit_thresholds"]

    def get_fields(self):
        fields = super().get_fields()
        user = self.context.get("user")
        if user is not None:
            for name in ("base_model", "compute_target"):
                fields[name].queryset = fields[name].queryset.model.objects.visible_to(user)
            fields["datasets"].child_relation.queryset = m.Dataset.objects.visible_to(user)
        return fields


class DecisionSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="", help_text="Required to reject: the requester reads it.")
    conditions = serializers.CharField(required=False, allow_blank=True, default="", help_text="Conditions attached to an approval.")


class WithdrawSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="Why, in a sentence for the person who asked.")


class TrainingRunSerializer(serializers.ModelSerializer):
    """A run and its live progress. `epsilon_spent` is the accountant's ε for the steps taken so far."""

    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    base_model = serializers.SlugRelatedField(slug_field="name", read_only=True)
    heartbeat = serializers.DateTimeField(source="heartbeat_at", read_only=True, allow_null=True)  # null before the first
    percent = serializers.IntegerField(read_only=True)
    request = serializers.SerializerMethodField(help_text="The training request that dispatched the run, if any.")
    config = RunSettingsField(read_only=True, help_text="The run's settings, as checked when it was created.")

    class Meta:
        model = TrainingRun
        fields = ["id", "request", "created_by", "base_model", "datasets", "config", "state", "phase", "step", "total_steps",
                  "percent", "epoch", "loss", "epsilon_spent", "eta_seconds", "progress_at", "heartbeat", "worker",
                  "created_at", "started_at", "finished_at", "cancel_requested_at", "failure_reason", "result"]
        read_only_fields = fields

    def get_request(self, obj) -> int | None:
        request = getattr(obj, "request", None)  # the reverse one-to-one; absent for a run started without a request
        return request.pk if request else None
