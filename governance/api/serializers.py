from rest_framework import serializers

from governance import models as m
from training.models import BaseModel, TrainingRun


class DataClassSerializer(serializers.ModelSerializer):
    categories = serializers.ListField(child=serializers.ChoiceField(m.DataCategory.choices), required=False)
    regulations = serializers.ListField(child=serializers.ChoiceField(m.Regulation.choices), required=False)
    allowed_compute_kinds = serializers.ListField(child=serializers.ChoiceField(m.ComputeKind.choices), required=False)
    allowed_regions = serializers.ListField(child=serializers.CharField(max_length=50), required=False)

    class Meta:
        model = m.DataClass
        exclude = ["created_at", "updated_at"]

    def validate_redaction_actions(self, value):
        from training.engine.redaction import ACTIONS

        if not isinstance(value, dict) or any(v not in ACTIONS for v in value.values()):
            raise serializers.ValidationError(f"An object of entity type to one of: {', '.join(ACTIONS)}.")
        return value


class RedactionRuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = m.RedactionRule
        exclude = ["created_at", "updated_at"]


class ProcessorSerializer(serializers.ModelSerializer):
    class Meta:
        model = m.Processor
        exclude = ["created_at", "updated_at"]


class AttestationSerializer(serializers.ModelSerializer):
    class Meta:
        model = m.Attestation
        exclude = ["created_at", "updated_at"]


class DataProcessingAgreementSerializer(serializers.ModelSerializer):
    processing_regions = serializers.ListField(child=serializers.CharField(max_length=50), required=False)
    required_attestations = serializers.ListField(child=serializers.ChoiceField(m.AttestationKind.choices), required=False)
    in_force_today = serializers.SerializerMethodField()
    not_in_force_because = serializers.SerializerMethodField()

    class Meta:
        model = m.DataProcessingAgreement
        exclude = ["created_at", "updated_at", "document_blob_id", "document_wrapped_key"]
        read_only_fields = ["document_sha256", "document_name", "document_size"]

    def get_in_force_today(self, obj) -> bool:
        return obj.in_force_on(_today())

    def get_not_in_force_because(self, obj) -> list[str]:
        return obj.lapses_on(_today())


class ComputeTargetSerializer(serializers.ModelSerializer):
    class Meta:
        model = m.ComputeTarget
        exclude = ["created_at", "updated_at"]


class DatasetSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    data_classes = serializers.PrimaryKeyRelatedField(many=True, queryset=m.DataClass.objects.all(), required=False)

    class Meta:
        model = m.Dataset
        fields = [
            "id", "name", "description", "owner", "file_format", "text_field", "csv_column", "data_classes", "source",
            "lawful_basis", "segment", "state", "original_filename", "sha256", "size_bytes", "record_count",
            "created_at", "shredded_at",
        ]
        read_only_fields = ["state", "original_filename", "sha256", "size_bytes", "record_count", "created_at", "shredded_at"]


class DatasetUploadSerializer(DatasetSerializer):
    file = serializers.FileField(write_only=True, help_text="JSONL, CSV or plain text, UTF-8; multipart upload.")

    class Meta(DatasetSerializer.Meta):
        fields = DatasetSerializer.Meta.fields + ["file"]

    def validate(self, attrs):
        if attrs.get("file_format") == m.DatasetFormat.CSV and not attrs.get("csv_column"):
            raise serializers.ValidationError({"csv_column": "Name the CSV column that holds the text."})
        return attrs


class DatasetEditSerializer(DatasetSerializer):
    class Meta(DatasetSerializer.Meta):
        read_only_fields = DatasetSerializer.Meta.read_only_fields + ["file_format", "text_field", "csv_column"]


class ShredSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=1000)


class ShareSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = m.AuditEvent
        fields = [
            "sequence", "occurred_at", "actor_id", "actor_username", "action", "object_type", "object_id", "summary",
            "payload", "prev_hash", "hash",
        ]


def _today():
    from django.utils import timezone

    return timezone.localdate()


# --------------------------------------------------------------------------- training requests and runs


class ApprovalSerializer(serializers.ModelSerializer):
    approver = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = m.Approval
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
    missing_approvals = serializers.SerializerMethodField(help_text="Approver role -> signatures still needed.")

    class Meta:
        model = m.TrainingRequest
        fields = [
            "id", "title", "requester", "intended_use", "out_of_scope", "base_model", "datasets", "compute_target",
            "leak_definition", "adversaries", "audience", "settings", "audit_thresholds", "state", "content_hash", "findings",
            "approvals", "missing_approvals", "run", "submitted_at", "decided_at", "created_at", "updated_at",
        ]
        read_only_fields = fields

    def get_missing_approvals(self, obj) -> dict[str, int]:
        return obj.missing_approvals()


class TrainingRequestWriteSerializer(serializers.ModelSerializer):
    """What an engineer drafts. Records are chosen among those the caller may see; `settings` is
    checked by RunSettings in the action, which names the setting that is wrong."""

    base_model = serializers.PrimaryKeyRelatedField(queryset=BaseModel.objects.none())
    datasets = serializers.PrimaryKeyRelatedField(many=True, queryset=m.Dataset.objects.none())
    compute_target = serializers.PrimaryKeyRelatedField(queryset=m.ComputeTarget.objects.none())
    adversaries = serializers.ListField(child=serializers.ChoiceField(m.Adversary.choices), required=False)
    settings = serializers.DictField(required=False, help_text="Method, DP, redaction and canary settings (RunSettings): "
                                     "`training`, `canaries`, `holdout_fraction`, `seed`, `redaction`, `subject_field`.")
    audit_thresholds = serializers.DictField(required=False, help_text="Stricter audit limits than the data classes' (never looser).")

    class Meta:
        model = m.TrainingRequest
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
    heartbeat = serializers.DateTimeField(source="heartbeat_at", read_only=True)
    percent = serializers.IntegerField(read_only=True)
    request = serializers.SerializerMethodField(help_text="The training request that dispatched the run, if any.")

    class Meta:
        model = TrainingRun
        fields = ["id", "request", "created_by", "base_model", "datasets", "config", "state", "phase", "step", "total_steps",
                  "percent", "epoch", "loss", "epsilon_spent", "eta_seconds", "progress_at", "heartbeat", "worker",
                  "created_at", "started_at", "finished_at", "cancel_requested_at", "failure_reason", "result"]
        read_only_fields = fields

    def get_request(self, obj) -> int | None:
        request = getattr(obj, "request", None)  # the reverse one-to-one; absent for a run started without a request
        return request.pk if request else None
