from django.apps import AppConfig


class WorkflowConfig(AppConfig):
    """The story above the apps: requests, approvals, dispatch, policy, model cards, and the
    reactions in `workflow.lifecycle`. Its models keep `app_label = "governance"` (see
    workflow/models.py), so this app has no migrations of its own.

    `ready` plugs the workflow into the registries of the apps below, which never import it: the
    lifecycle's receivers, policy as the runs' start check, a request's own audit limits, the
    privacy budget on the dataset page, the model card on the run page and in the adapter zip."""

    name = "workflow"
    verbose_name = "Requests and their story"

    def ready(self):
        from audits import runner
        from audits import views as audit_views
        from governance import views as governance_views
        from training import run_page, runs
        from workflow import ledger, lifecycle, run_contributions

        lifecycle.connect()
        runs.register_start_check(lifecycle.start_check)
        if lifecycle.request_audit_limits not in runner.TIGHTER_LIMITS:
            runner.TIGHTER_LIMITS.append(lifecycle.request_audit_limits)
        if ledger.dataset_page_context not in governance_views.DATASET_PAGE_CONTRIBUTORS:
            governance_views.DATASET_PAGE_CONTRIBUTORS.append(ledger.dataset_page_context)
        run_page.register_section(run_page.RunPageSection(20, "workflow/_run_model_card.html", run_contributions.run_model_card_section))
        audit_views.register_adapter_zip_files(run_contributions.adapter_model_card_readme)
