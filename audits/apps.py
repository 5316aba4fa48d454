from django.apps import AppConfig


def audit_settings_problems(overrides: dict) -> list[str]:
    """What is wrong with a run's `audit` overrides, one sentence per problem, each starting with
    the key's path ("audit.candidates: must be a whole number, got 'x'"): the audit's own
    settings, checked by the app that owns them (training.runs.RunSettings asks through its
    registry). Every AuditConfig setting is a whole number."""
    from dataclasses import fields

    from audits.engine.audit import AuditConfig
    from training.settings_schema import MAX_WHOLE, key_shown, shown

    known = [f.name for f in fields(AuditConfig) if f.name != "max_length"]
    if not isinstance(overrides, dict):
        return [f"audit: must be an object of settings, got {shown(overrides)}"]
    unknown = sorted(key_shown(k) for k in overrides if k not in known and k != "max_length")
    problems = [f"audit: unknown audit settings: {', '.join(unknown)} (known: {', '.join(known)})"] if unknown else []
    for key, value in overrides.items():
        path = f"audit.{key_shown(key)}"
        if key == "max_length":
            # Tokens past training's max_length were never trained on: scoring them measures the base model.
            problems.append(f"{path}: the audit scores the tokens the run trains on, so its max_length is "
                            "training.max_length, not an audit setting")
        elif key not in known:
            continue
        elif not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{path}: must be a whole number, got {shown(value)}")
        elif not (0 if key == "seed" else 1) <= value <= MAX_WHOLE:
            problems.append(f"{path}: must be {'0 or more' if key == 'seed' else 'at least 1'} and at most {MAX_WHOLE}, "
                            f"got {value}")
    return problems


class AuditsConfig(AppConfig):
    name = "audits"
    verbose_name = "Audits and evidence packs"

    def ready(self):
        from audits import views
        from audits.models import EvidencePack
        from governance import key_rotation
        from training import run_page, runs

        # What the master key protects here, for its rotation (governance.key_rotation).
        key_rotation.register_wrapped_key(EvidencePack, "wrapped_key", context=lambda row: EvidencePack.key_context(row.blob_id),
                                          context_fields=("blob_id",))

        if audit_settings_problems not in runs.AUDIT_SETTINGS_CHECKS:
            runs.AUDIT_SETTINGS_CHECKS.append(audit_settings_problems)
        # The run's page lives in training, below audits: it shows our sections without importing us.
        run_page.register_section(run_page.RunPageSection(10, "audits/_run_audits.html", views.run_audits_section))
        run_page.register_section(run_page.RunPageSection(30, "audits/_run_evidence_packs.html", views.run_evidence_packs_section))
