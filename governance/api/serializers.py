from rest_framework import serializers

from governance import models as m


class DataClassSerializer(serializers.ModelSerializer):
    categories = serializers.ListField(child=serializers.ChoiceField(m.DataCategory.choices), required=False)
    regulations = serializers.ListField(child=serializers.ChoiceField(m.Regulation.choices), required=False)
    allowed_compute_kinds = serializers.ListField(child=serializers.ChoiceField(m.ComputeKind.choices), required=False)
    allowed_regions = serializers.ListField(child=serializers.CharField(max_length=50), required=False)

    class Meta:
        model = m.DataClass
        exclude = ["created_at", "updated_at"]

    def validate_redaction_actions(self, value):
        from vocab.pii import ACTIONS

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
