from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    verbose_name = "Training runs and redaction"

    def ready(self):
        from governance import key_rotation
        from training.models import PseudonymKey, RedactionReview, RunArtifact

        # What the master key protects here, for its rotation (governance.key_rotation).
        # The context PseudonymKey.for_scope seals with (a wrong one fails the rotation, changing nothing).
        key_rotation.register_sealed_value(PseudonymKey, "sealed", context=lambda row: f"provenant:pseudonym-key:{row.scope}",
                                           context_fields=("scope",))
        key_rotation.register_sealed_value(RedactionReview, "snippet_sealed", context=lambda row: row.context,
                                           context_fields=("snippet_id",))
        key_rotation.register_wrapped_key(RunArtifact, "wrapped_key", context=lambda row: RunArtifact.key_context(row.blob_id),
                                          context_fields=("blob_id",))
