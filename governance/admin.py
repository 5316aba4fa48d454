"""Django admin: read-mostly. Records change through the portal's actions, which audit them;
the admin is for administrators to look, not to bypass the audit trail."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from governance import models as m


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(m.DataClass)
class DataClassAdmin(ReadOnlyAdmin):
    list_display = ["name", "tier", "fine_tuning_use", "dp_required", "max_epsilon"]
    list_filter = ["tier", "fine_tuning_use"]


@admin.register(m.Processor)
class ProcessorAdmin(ReadOnlyAdmin):
    list_display = ["name", "legal_entity", "country"]


@admin.register(m.Attestation)
class AttestationAdmin(ReadOnlyAdmin):
    list_display = ["processor", "kind", "issued_on", "expires_on"]


@admin.register(m.DataProcessingAgreement)
class DataProcessingAgreementAdmin(ReadOnlyAdmin):
    list_display = ["title", "version", "processor", "effective_from", "expires_on"]
    exclude = ["document_wrapped_key"]


@admin.register(m.ComputeTarget)
class ComputeTargetAdmin(ReadOnlyAdmin):
    list_display = ["name", "kind", "region", "egress_blocked"]


@admin.register(m.Dataset)
class DatasetAdmin(ReadOnlyAdmin):
    list_display = ["name", "owner", "record_count", "state", "created_at"]
    exclude = ["wrapped_key"]


@admin.register(m.AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["sequence", "occurred_at", "actor_username", "action", "object_type", "object_id"]
    list_filter = ["action", "object_type"]


# Accounts and roles: Django's own UserAdmin would let anyone with auth.change_user set
# is_superuser, staff status, groups, permissions and other people's passwords, unaudited. Here
# they can be looked at; they change only in the portal's Users pages (governance.users), which
# write the trail and ask a second person for the powerful roles.
for model in (get_user_model(), Group):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(get_user_model())
class UserAdmin(ReadOnlyAdmin):
    list_display = ["username", "email", "roles", "is_active", "last_login"]
    list_filter = ["is_active", "groups"]
    search_fields = ["username", "email"]
    fields = ["username", "first_name", "last_name", "email", "is_active", "groups", "last_login", "date_joined"]

    @admin.display(description="roles")
    def roles(self, obj):
        return ", ".join(sorted(g.name for g in obj.groups.all())) or "—"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")


@admin.register(Group)
class GroupAdmin(ReadOnlyAdmin):
    list_display = ["name"]
    fields = ["name"]


@admin.register(m.RoleGrant)
class RoleGrantAdmin(ReadOnlyAdmin):
    list_display = ["user", "role", "state", "proposed_by", "proposed_at", "decided_by", "decided_at"]
    list_filter = ["role", "state"]
