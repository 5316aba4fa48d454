from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    """Incident response: a record opened from an alert or by hand, the containment actions it
    takes (suspend, revoke, rotate keys), its impact, notification draft, post-mortem and pack."""

    name = "incidents"
    verbose_name = "Incident response"

    def ready(self):
        from audits import pack_records
        from governance import key_rotation
        from incidents.models import IncidentPack

        # The packs' data keys are wrapped by the master key: a rotation re-wraps them too.
        key_rotation.register_wrapped_key(IncidentPack, "wrapped_key", context=lambda row: IncidentPack.key_context(row.blob_id),
                                          context_fields=("blob_id",))
        # Online verification asks when a pack was recorded (the signing key must have been current then).
        pack_records.register("incidents.IncidentPack", lambda digest: IncidentPack.objects.filter(sha256=digest).order_by(
            "created_at").values_list("created_at", flat=True).first())
