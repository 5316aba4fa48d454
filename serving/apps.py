from django.apps import AppConfig


class ServingConfig(AppConfig):
    """After release: deployments of released adapters, the guarded gateway under /v1/, its
    consumer keys and limits, the output filter's review queue, the query log and its alerts.
    Sits above workflow: it reacts to what the apps below announce and never the other way."""

    name = "serving"
    verbose_name = "Deployments and the inference gateway"

    def ready(self):
        from audits import signals
        from governance import key_rotation
        from serving.models import Deployment, FlaggedOutput
        from serving import views
        from serving.signals_receivers import on_release_decided
        from training import run_page

        signals.release_decided.connect(on_release_decided, dispatch_uid="serving.suspend_after_block")
        # A deployed adapter whose audit (scheduled or on demand) no longer passes is suspended (serving.monitoring).
        from serving import monitoring

        signals.audit_finished.connect(monitoring.on_audit_finished, dispatch_uid="serving.monitoring.on_audit_finished")
        # The run's page lives in training, below serving: it shows the run's deployments without importing us.
        run_page.register_section(run_page.RunPageSection(40, "serving/_run_deployments.html", views.run_deployments_section))
        # Sealed with the master key: a master-key rotation re-seals them (governance.key_rotation).
        key_rotation.register_sealed_value(Deployment, "watermark_key_sealed", context=lambda row: row.watermark_context(),
                                           context_fields=())
        key_rotation.register_sealed_value(FlaggedOutput, "sealed_output", context=lambda row: row.seal_context(),
                                           context_fields=("query_id",))
