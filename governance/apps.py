from django.apps import AppConfig
from django.db.backends.signals import connection_created


def _harden_sqlite(sender, connection, **kwargs):
    # Overwrite deleted content, so a shredded data key does not linger in free pages.
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA secure_delete = ON")
            cursor.execute("PRAGMA foreign_keys = ON")


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"

    def ready(self):
        from governance import key_rotation
        from governance.models import DataProcessingAgreement, Dataset

        connection_created.connect(_harden_sqlite, dispatch_uid="provenant-harden-sqlite")
        # What the master key protects here, for its rotation (governance.key_rotation).
        key_rotation.register_wrapped_key(Dataset, "wrapped_key", context=lambda row: Dataset.key_context(row.blob_id),
                                          context_fields=("blob_id",))
        key_rotation.register_wrapped_key(DataProcessingAgreement, "document_wrapped_key",
                                          context=DataProcessingAgreement.document_context, context_fields=("document_blob_id",))
