from django.apps import AppConfig


class WorkflowConfig(AppConfig):
    """The story above the apps: requests, approvals, dispatch, policy, model cards, and the
    reactions in `workflow.lifecycle`. Its models keep `app_label = "governance"` (see
    workflow/models.py), so this app has no migrations of its own."""

    name = "workflow"
    verbose_name = "Requests and their story"

    def ready(self):
        from audits import views as audit_views
        from training import run_page, runs
        from workflow import lifecycle, run_contributions

        lifecycle.connect()
        runs.register_start_check(lifecycle.start_check)
        run_page.register_section(run_page.RunPageSection(20, "workflow/_run_model_card.html", run_contributions.run_model_card_section))
        audit_views.register_adapter_zip_files(run_contributions.adapter_model_card_readme)
