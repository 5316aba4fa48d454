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
        connection_created.connect(_harden_sqlite, dispatch_uid="provenant-harden-sqlite")
