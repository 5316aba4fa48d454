from django.apps import AppConfig


def audit_settings_problems(overrides: dict) -> list[str]:
    """What is wrong with a run's `audit` overrides: the audit's own settings, checked by the app
    that owns them (training.runs.RunSettings asks through its registry)."""
    from dataclasses import fields

    from audits.engine.audit import AuditConfig

    unknown = set(overrides) - {f.name for f in fields(AuditConfig)}
    if unknown:
        return [f"unknown audit settings: {', '.join(sorted(unknown))}"]
    if "max_length" in overrides:
        # Tokens past training's max_length were never trained on: scoring them measures the base model.
        return ["the audit scores the tokens the run trains on, so its max_length is training.max_length, not an audit setting"]
    if any(not isinstance(v, int) or isinstance(v, bool) or v < (0 if k == "seed" else 1) for k, v in overrides.items()):
        return ["audit settings must be positive whole numbers"]
    return []


class AuditsConfig(AppConfig):
    name = "audits"
    verbose_name = "Audits and evidence packs"

    def ready(self):
        from audits import views
        from training import run_page, runs

        if audit_settings_problems not in runs.AUDIT_SETTINGS_CHECKS:
            runs.AUDIT_SETTINGS_CHECKS.append(audit_settings_problems)
        # The run's page lives in training, below audits: it shows our sections without importing us.
        run_page.register_section(run_page.RunPageSection(10, "audits/_run_audits.html", views.run_audits_section))
        run_page.register_section(run_page.RunPageSection(30, "audits/_run_evidence_packs.html", views.run_evidence_packs_section))
