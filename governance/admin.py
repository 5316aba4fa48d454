"""Django admin: read-mostly. Records change through the portal's actions, which audit them;
the admin is for administrators to look, not to bypass the audit trail."""

from django.contrib import admin

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
