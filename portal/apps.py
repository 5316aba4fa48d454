from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Provenant portal"

    def ready(self):
        from governance.roles import sync_role_groups

        post_migrate.connect(sync_role_groups, dispatch_uid="provenant-sync-role-groups")
