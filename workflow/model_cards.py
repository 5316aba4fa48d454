"""Model cards: the measured facts of a run and its audit, the prose drafted from them and from the
training request, and the export as a Hugging Face model card (README.md with YAML front matter).

Pure functions of the records: nothing here changes state. `governance.actions` creates, edits and
approves cards; the pages live in `governance.model_card_views`.
"""

from __future__ import annotations

from workflow.models import MODEL_CARD_SECTIONS, Adversary, Audience

SECTION_KEYS = tuple(key for key, _ in MODEL_CARD_SECTIONS)
SECTION_LABELS = dict(MODEL_CARD_SECTIONS)
MAX_SECTION_CHARS = 20_000

# Hugging Face licence identifiers the Hub knows, by the spelling a base model record may use.
_HF_LICENCES = {"apache-2.0", "mit", "bsd-3-clause", "bsd-2-clause", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0", "cc0-1.0",
                "openrail", "creativeml-openrail-m", "bigscience-openrail-m", "llama2", "llama3", "llama3.1", "llama3.2",
                "llama3.3", "gemma", "gpl-3.0", "lgpl-3.0", "agpl-3.0", "mpl-2.0", "unlicense", "other"}


# --------------------------------------------------------------------------- facts


def facts_for(run) -> dict:
    """What the card states as measured: the base model, the adapter, the DP guarantee the
    accountant computed for the steps taken, the redaction statistics and the latest completed
    audit. Values only (JSON), never a record or a secret."""
    from audits.models import AdapterAudit
    from training.models import ArtifactKind

    base = run.base_model
    training = (run.config or {}).get("training") or {}
    result = run.result or {}
    manifest = run.manifest or {}
    adapter = {a.name: a.sha256 for a in run.artifacts.filter(kind=ArtifactKind.ADAPTER, deleted_at__isnull=True)}
    if not adapter:
        adapter = ((manifest.get("hashes") or {}).get("adapter")) or {}
    latest = AdapterAudit.latest_completed(run)
    return {
        "run": {
            "id": run.pk, "job_id": str(run.job_id), "engineer": run.created_by.get_username(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "datasets": [{"id": d.pk, "name": d.name, "sha256": d.sha256, "records": d.record_count}
                         for d in run.datasets.all().order_by("pk")],
            "records": manifest.get("records") or {},
        },
        "base_model": {
            "name": base.name, "architecture": base.architecture, "parameters": base.parameter_count,
            "licence": base.licence, "weights": base.weight_hashes or {},
        },
        "adapter": {
            "method": "LoRA", "rank": training.get("lora_r"), "alpha": training.get("lora_alpha"),
            "epochs": result.get("epochs", training.get("epochs")), "files": adapter,
        },
        "privacy": _privacy_facts(training, result),
        "redaction": _redaction_facts(run),
        "audit": _audit_facts(latest) if latest else None,
    }


def _privacy_facts(training: dict, result: dict) -> dict:
    dp = bool(training.get("dp", True)) and result.get("epsilon") is not None
    unit = result.get("privacy_unit") or training.get("privacy_unit") or "record"
    return {
        "dp": dp,
        "epsilon": result.get("epsilon") if dp else None,  # spent, by the accountant, for the steps taken
        "delta": result.get("delta") if dp else None,
        "target_epsilon": training.get("target_epsilon") if dp else None,
        "accountant": (result.get("accountant") or training.get("accountant")) if dp else None,
        "sampling": "poisson" if dp else None,
        "sample_rate": result.get("sample_rate"),
        "clipping_norm": training.get("max_grad_norm") if dp else None,
        "noise_multiplier": result.get("noise_multiplier") if dp else None,
        "steps": result.get("steps"),
        "unit": unit,
        "subjects": result.get("subjects") if unit == "subject" else None,
        "max_records_per_subject": training.get("max_records_per_subject") if unit == "subject" else None,
    }


def _redaction_facts(run) -> dict:
    report = run.redaction_report or {}
    per_dataset = list((report.get("datasets") or {}).values())
    enabled = bool((run.config or {}).get("redaction", True)) and not all(r.get("redaction") == "off" for r in per_dataset or [{}])
    totals = {k: sum(int(r.get(k) or 0) for r in per_dataset)
              for k in ("records_in", "records_out", "records_changed", "records_dropped", "exact_duplicates", "near_duplicates")}
    entities: dict[str, int] = {}
    by_action: dict[str, dict[str, int]] = {}
    for r in per_dataset:
        for kind, actions in (r.get("entities") or {}).items():
            for action, count in actions.items():
                entities[kind] = entities.get(kind, 0) + int(count)
                by_action.setdefault(kind, {})
                by_action[kind][action] = by_action[kind].get(action, 0) + int(count)
    return {"enabled": enabled, **totals, "deduplicated": totals["exact_duplicates"] + totals["near_duplicates"],
            "entities": dict(sorted(entities.items())), "entities_by_action": dict(sorted(by_action.items()))}


def _audit_facts(audit) -> dict:
    report = audit.report or {}
    checks = {c.get("code"): c for c in (audit.verdict or {}).get("checks", [])}
    exposures = [c["exposure_bits"] for c in report.get("canaries") or [] if c.get("exposure_bits") is not None]
    attacks = (report.get("membership") or {}).get("attacks") or {}
    utility = report.get("utility") or {}
    pii = report.get("pii") or {}
    # The ε claim is tested by the one-run audit only: the membership attacks' Clopper–Pearson
    # figures treat records scored against one model as independent trials and prove nothing.
    one_run = report.get("one_run") or {}

    def from_check(code):
        return checks.get(code, {}).get("value")

    return {
        "id": audit.pk,
        "finished_at": audit.finished_at.isoformat() if audit.finished_at else None,
        "outcome": audit.outcome or ("pass" if audit.passed else "fail"),
        "passed": audit.passed,
        "failed_checks": [c.get("label") or c.get("code") for c in audit.failed_checks],
        "untested_checks": [c.get("label") or c.get("code") for c in audit.untested_checks],
        "canaries": len(report.get("canaries") or []),
        "max_canary_exposure_bits": max(exposures) if exposures else from_check("canary_exposure"),
        "best_mia_auc": max((a["auc"] for a in attacks.values()), default=None) if attacks else from_check("mia_auc"),
        "best_mia_tpr_at_1pct_fpr": (max((a["tpr_at_1pct_fpr"] for a in attacks.values()), default=None) if attacks
                                     else from_check("mia_tpr_at_1pct_fpr")),
        "mia_attacks": sorted(attacks),
        "audit_canaries": one_run.get("canaries") or 0,
        "epsilon_lower_bound": one_run.get("epsilon_lower_bound") if one_run.get("canaries") else None,
        "max_provable_epsilon": one_run.get("max_provable_epsilon") if one_run.get("canaries") else None,
        "epsilon_claim_test": (checks.get("epsilon_one_run") or {}).get("outcome"),
        "holdout_perplexity_base": utility.get("base_perplexity"),
        "holdout_perplexity_adapter": utility.get("adapter_perplexity"),
        "holdout_texts": utility.get("texts"),
        "pii_original_hits": pii.get("original_hits_attributable", pii.get("original_hits")) if pii else from_check("pii_original_hits"),
    }


# --------------------------------------------------------------------------- numbers in words


def outcome_words(audit: dict) -> str:
    """The verdict of an audit's facts in words (facts drafted before verdicts had three
    outcomes carry only `passed`)."""
    outcome = audit.get("outcome") or ("pass" if audit.get("passed") else "fail")
    if outcome == "pass":
        return "passed"
    if outcome == "inconclusive":
        return "was inconclusive (not tested: " + "; ".join(audit.get("untested_checks") or []) + ")"
    return "failed (" + ", ".join(audit.get("failed_checks") or []) + ")"


def _one_run_bound(audit: dict):
    # Facts drafted before the one-run audit held the membership attacks' figure under this name.
    return audit.get("epsilon_lower_bound") if audit.get("audit_canaries") else None


def epsilon_test_words(audit: dict, privacy: dict) -> str:
    """What the one-run audit says about the ε claim, in a sentence."""
    if not privacy.get("dp"):
        return "No ε is claimed, so there was no guarantee to test."
    if not audit.get("audit_canaries"):
        return "The ε claim was not tested: no audit canaries were planted."
    bound, provable, claimed = audit.get("epsilon_lower_bound"), audit.get("max_provable_epsilon"), privacy.get("epsilon")
    shows = (f"The one-run audit ({fmt_number(audit['audit_canaries'])} audit canaries) shows ε ≥ {fmt_number(bound)} "
             f"at 95% confidence")
    if bound is not None and claimed is not None and bound > claimed:
        return shows + f", ABOVE the claimed ε = {fmt_number(claimed)}: the guarantee does not hold."
    if provable is None or (claimed is not None and claimed > provable):
        return (shows + f"; with this many canaries it could show at most ε ≥ {fmt_number(provable)}, below the claimed "
                f"ε = {fmt_number(claimed)}, so it could not test the claim.")
    return shows + f", consistent with the claimed ε = {fmt_number(claimed)}."


def fmt_number(value, digits: int = 4) -> str:
    """3.2 -> '3.2', 0.00001 -> '1e-5', 1234567 -> '1,234,567'; None -> '–'."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if value != 0 and abs(value) < 1e-3:
        mantissa, exponent = f"{value:.{max(digits - 1, 1)}e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exponent)}"
    return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:,.0f}"


def guarantee_sentence(privacy: dict) -> str:
    """The DP guarantee in plain words, or that there is none."""
    if not privacy.get("dp"):
        return ("This adapter was trained without differential privacy: there is no formal bound on what it may reveal "
                "about any training record.")
    unit = privacy.get("unit") or "record"
    who = "data subject's (all of one person's records together)" if unit == "subject" else "record's"
    level = "data-subject level" if unit == "subject" else "record level"
    accountant = (privacy.get("accountant") or "").upper()
    return (f"Each {who} influence is bounded: (ε = {fmt_number(privacy['epsilon'])}, δ = {fmt_number(privacy['delta'])})-DP "
            f"at the {level}, {accountant} accountant, computed for the {fmt_number(privacy.get('steps'))} steps actually taken "
            f"with Poisson sampling (sample rate q = {fmt_number(privacy.get('sample_rate'))}), per-example gradient clipping "
            f"at norm {fmt_number(privacy.get('clipping_norm'))} and Gaussian noise σ = {fmt_number(privacy.get('noise_multiplier'))}.")


# --------------------------------------------------------------------------- drafted prose


def _records(n) -> str:
    return f"{fmt_number(n)} record" + ("" if n == 1 else "s")


def request_for(run):
    from workflow.models import TrainingRequest

    return TrainingRequest.objects.filter(run=run).first()


def draft_sections(run, facts: dict) -> dict:
    """Prose for every section, from the request (intended use, out of scope, threat model) and the
    facts. Deterministic: the same run and facts give the same text, so a refresh of the facts can
    tell a section nobody edited from one an engineer rewrote."""
    request = request_for(run)
    base, adapter, privacy = facts["base_model"], facts["adapter"], facts["privacy"]
    redaction, audit, run_facts = facts["redaction"], facts["audit"], facts["run"]
    records = run_facts.get("records") or {}
    datasets = run_facts.get("datasets") or []
    dataset_list = "; ".join(f"“{d['name']}” ({_records(d['records'])}, SHA-256 {d['sha256'][:16]}…)" for d in datasets)
    sections = {}

    sections["model_details"] = (
        f"A LoRA adapter (rank {adapter.get('rank')}, alpha {adapter.get('alpha')}) for the base model {base['name']} "
        f"({base['architecture']}, {fmt_number(base['parameters'])} parameters, licence {base['licence'] or 'unknown'}), "
        f"fine-tuned with differentially private SGD (PEFT + Opacus) by Provenant training run {run_facts['id']}"
        + (f", which finished on {run_facts['finished_at'][:10]}" if run_facts.get("finished_at") else "") + ".\n\n"
        f"Engineer: {run_facts['engineer']}. The SHA-256 of the base weights and of each adapter file are listed with the "
        "figures of this card; load the adapter only on the base weights with those hashes."
        if privacy["dp"] else
        f"A LoRA adapter (rank {adapter.get('rank')}, alpha {adapter.get('alpha')}) for the base model {base['name']} "
        f"({base['architecture']}, {fmt_number(base['parameters'])} parameters, licence {base['licence'] or 'unknown'}), "
        f"fine-tuned without differential privacy by Provenant training run {run_facts['id']}. Engineer: {run_facts['engineer']}."
    )

    if request is not None:
        audience = Audience(request.audience).label.lower() if request.audience else "not stated"
        sections["intended_use"] = (
            f"Primary intended use: {request.intended_use.strip()}\n\n"
            f"Who will query the model: {audience}.\n\n"
            f"Out of scope: {request.out_of_scope.strip() or 'not stated in the request; any use other than the one above.'}"
        )
    else:
        sections["intended_use"] = ("Primary intended use: (no training request is linked to this run; describe the use).\n\n"
                                    "Out of scope: any use other than the one above.")

    sections["factors"] = (
        "The adapter was trained and evaluated on one random split of the same redacted data. It has not been evaluated "
        "across demographic groups, languages, or other subpopulations of the data subjects; performance on text unlike "
        "the training data is unknown."
    )

    sections["metrics"] = (
        "Utility: perplexity on the held-out records, for the base model and with the adapter (lower is better).\n\n"
        "Memorisation and privacy: canary exposure in bits (how strongly the adapter prefers planted random secrets over "
        "others it never saw), membership inference ROC AUC and true positive rate at 1% false positives of the best "
        "attack (0.5 AUC is guessing), original personal data reproduced in generated text, and the ε claim tested by a "
        "one-run audit (Steinke et al. 2023): audit canaries trained on or not by a coin flip, guessed from the adapter; "
        "the lower bound on ε the correct guesses show at 95% confidence must not exceed the ε claimed."
    )

    sections["evaluation_data"] = (
        f"{fmt_number(records.get('holdout'))} held-out records, drawn at random from the redacted data before training and "
        f"never trained on (non-members for membership inference); a sample of the training records (members); "
        f"{fmt_number(records.get('canaries'))} canaries (random secrets planted in the training data"
        + (f", each repeated {records.get('canary_repetitions')} time(s)" if records.get("canary_repetitions") else "") + ")."
    )

    redaction_words = (
        f"Personal data was redacted before training: {fmt_number(redaction['records_changed'])} of "
        f"{fmt_number(redaction['records_in'])} records changed, {fmt_number(redaction['records_dropped'])} dropped by rule, "
        f"{fmt_number(redaction['deduplicated'])} duplicates removed ({fmt_number(redaction['exact_duplicates'])} exact, "
        f"{fmt_number(redaction['near_duplicates'])} near). Entities found: "
        + (", ".join(f"{k} {fmt_number(v)}" for k, v in sorted(redaction["entities"].items())) or "none") + "."
        if redaction["enabled"] else "Personal data was not redacted before training."
    )
    sections["training_data"] = (
        f"Datasets: {dataset_list or 'none recorded'}.\n\n"
        f"{redaction_words}\n\n"
        f"{_records(records.get('train'))} trained on."
    )

    if audit:
        lines = [
            f"Audit {audit['id']} {outcome_words(audit)}.",
            f"Highest canary exposure: {fmt_number(audit['max_canary_exposure_bits'])} bits.",
            f"Membership inference (best attack): ROC AUC {fmt_number(audit['best_mia_auc'])}, TPR at 1% FPR "
            f"{fmt_number(audit['best_mia_tpr_at_1pct_fpr'])}.",
            epsilon_test_words(audit, privacy),
        ]
        if audit.get("holdout_perplexity_base") is not None:
            lines.append(f"Held-out perplexity: base {fmt_number(audit['holdout_perplexity_base'])}, with the adapter "
                         f"{fmt_number(audit['holdout_perplexity_adapter'])}.")
        if audit.get("pii_original_hits") is not None:
            lines.append(f"Original personal data values reproduced: {fmt_number(audit['pii_original_hits'])}.")
        sections["quantitative_analyses"] = "\n".join(f"- {line}" for line in lines)
    else:
        sections["quantitative_analyses"] = "The adapter has not been audited yet: no figures."

    threat = []
    if request is not None:
        if request.leak_definition.strip():
            threat.append(f"What counts as a leak: {request.leak_definition.strip()}")
        if request.adversaries:
            labels = [Adversary(a).label for a in request.adversaries if a in Adversary.values]
            threat.append("Adversaries considered: " + "; ".join(labels) + ".")
    sections["ethical_considerations"] = (
        "The training data holds personal data. "
        + ("Threat model from the training request:\n\n" + "\n".join(f"- {t}" for t in threat) if threat else "No threat model is recorded for this run.")
    )

    caveats = [
        "Differential privacy bounds the influence of each " + ("data subject" if privacy["unit"] == "subject" else "record")
        + "; " + ("a person with k records in the data is protected only at about k·ε (group privacy)." if privacy["unit"] != "subject"
                  else "the bound holds for all records of one subject together.") if privacy["dp"] else
        "Without differential privacy, the adapter may reproduce training data verbatim.",
        "Automatic redaction misses some personal data; what it missed is protected only by differential privacy.",
        "The audit figures are empirical lower bounds on leakage by the attacks tried, not a proof that nothing leaks.",
        "Review generated text before it reaches anyone outside the intended audience.",
    ]
    sections["caveats_and_recommendations"] = "\n".join(f"- {c}" for c in caveats)

    privacy_lines = [guarantee_sentence(privacy)]
    if privacy["dp"]:
        privacy_lines.append(
            "In plain words: whether or not any one " + ("person's records were" if privacy["unit"] == "subject" else "record was")
            + f" in the training data changes the probability of any output of training by at most a factor of "
            f"e^{fmt_number(privacy['epsilon'])}, except with probability δ.")
        if audit:
            privacy_lines.append(f"Audit {audit['id']}: {epsilon_test_words(audit, privacy)}")
    sections["privacy"] = "\n\n".join(privacy_lines)
    return {key: sections.get(key, "") for key in SECTION_KEYS}


# --------------------------------------------------------------------------- display


def fact_rows(facts: dict) -> list[tuple[str, str]]:
    """(label, value) rows for the card page and the README's figures table."""
    base, adapter, privacy = facts["base_model"], facts["adapter"], facts["privacy"]
    redaction, audit = facts["redaction"], facts["audit"]
    rows = [
        ("Base model", f"{base['name']} ({base['architecture']}, {fmt_number(base['parameters'])} parameters)"),
        ("Base model licence", base["licence"] or "unknown"),
    ]
    rows += [(f"Base weights SHA-256: {name}", sha) for name, sha in sorted(base["weights"].items())]
    rows.append(("Adapter", f"LoRA rank {adapter.get('rank')}, alpha {adapter.get('alpha')}, {fmt_number(adapter.get('epochs'))} epoch(s)"))
    rows += [(f"Adapter SHA-256: {name}", sha) for name, sha in sorted(adapter["files"].items())]
    if privacy["dp"]:
        rows += [
            ("ε spent (accountant, steps taken)", fmt_number(privacy["epsilon"])),
            ("δ", fmt_number(privacy["delta"])),
            ("Accountant", (privacy["accountant"] or "").upper()),
            ("Sampling", f"Poisson, sample rate q = {fmt_number(privacy['sample_rate'])}"),
            ("Clipping norm", fmt_number(privacy["clipping_norm"])),
            ("Noise multiplier σ", fmt_number(privacy["noise_multiplier"])),
            ("Steps", fmt_number(privacy["steps"])),
            ("Unit of privacy", "data subject" + (f" ({fmt_number(privacy['subjects'])} subjects)" if privacy.get("subjects") else "")
             if privacy["unit"] == "subject" else "record"),
        ]
    else:
        rows.append(("Differential privacy", "off"))
    if redaction["enabled"]:
        rows += [
            ("Records in / out", f"{fmt_number(redaction['records_in'])} / {fmt_number(redaction['records_out'])}"),
            ("Records changed by redaction", fmt_number(redaction["records_changed"])),
            ("Records dropped by rule", fmt_number(redaction["records_dropped"])),
            ("Duplicates removed", f"{fmt_number(redaction['deduplicated'])} ({fmt_number(redaction['exact_duplicates'])} exact, "
                                   f"{fmt_number(redaction['near_duplicates'])} near)"),
            ("Entities redacted", ", ".join(f"{k}: {fmt_number(v)}" for k, v in sorted(redaction["entities"].items())) or "none"),
        ]
    else:
        rows.append(("Redaction", "off"))
    if audit:
        rows += [
            ("Audit", f"{audit['id']}: " + {"pass": "passed", "inconclusive": "inconclusive", "fail": "failed"}[
                audit.get("outcome") or ("pass" if audit.get("passed") else "fail")]),
            ("Highest canary exposure (bits)", fmt_number(audit["max_canary_exposure_bits"])),
            ("Best membership inference AUC", fmt_number(audit["best_mia_auc"])),
            ("Best TPR at 1% FPR", fmt_number(audit["best_mia_tpr_at_1pct_fpr"])),
            ("ε lower bound (one-run audit, 95%)", fmt_number(_one_run_bound(audit))
             + (f" (at most {fmt_number(audit['max_provable_epsilon'])} provable with {fmt_number(audit['audit_canaries'])} "
                "audit canaries)" if audit.get("audit_canaries") else " (no audit canaries: not tested)")),
            ("Held-out perplexity, base → adapter", f"{fmt_number(audit['holdout_perplexity_base'])} → "
                                                    f"{fmt_number(audit['holdout_perplexity_adapter'])}"),
        ]
    else:
        rows.append(("Audit", "not audited yet"))
    return rows


# --------------------------------------------------------------------------- Hugging Face export


def hf_licence(licence: str) -> dict:
    """The front matter's licence fields: a Hub identifier, or `other` with the name given."""
    spelled = (licence or "").strip().lower()
    if not spelled:
        return {"license": "unknown"}
    if spelled in _HF_LICENCES:
        return {"license": spelled}
    return {"license": "other", "license_name": spelled.replace(" ", "-")}


def _eval_results(card) -> list:
    from huggingface_hub import EvalResult

    audit = card.facts.get("audit")
    if not audit:
        return []
    holdout = dict(task_type="text-generation", task_name="Text generation", dataset_type="private-holdout",
                   dataset_name="Held-out split of the private training data")
    results = []
    for metric_type, name, value in (
        ("perplexity", "Held-out perplexity (adapter)", audit.get("holdout_perplexity_adapter")),
        ("perplexity", "Held-out perplexity (base model)", audit.get("holdout_perplexity_base")),
        ("roc_auc", "Membership inference AUC (best attack)", audit.get("best_mia_auc")),
        ("tpr_at_1pct_fpr", "Membership inference TPR at 1% FPR (best attack)", audit.get("best_mia_tpr_at_1pct_fpr")),
        ("canary_exposure_bits", "Highest canary exposure (bits)", audit.get("max_canary_exposure_bits")),
        ("epsilon_lower_bound", "ε lower bound shown by the one-run audit (95%)", _one_run_bound(audit)),
    ):
        if value is not None:
            results.append(EvalResult(metric_type=metric_type, metric_name=name, metric_value=value, **holdout))
    return results


def _md_cell(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def model_card_readme(card) -> str:
    """A Hugging Face model card: YAML front matter (base_model, library_name peft, licence, tags,
    model-index with the audit's figures) and every section in Markdown, then the measured figures."""
    from huggingface_hub import ModelCardData

    facts = card.facts
    privacy = facts["privacy"]
    tags = ["peft", "lora", "provenant"] + (["differential-privacy", "dp-sgd", "opacus"] if privacy.get("dp") else [])
    data = ModelCardData(
        base_model=facts["base_model"]["name"], library_name="peft", tags=tags,
        model_name=f"provenant-run-{facts['run']['id']}-adapter", eval_results=_eval_results(card) or None,
        **hf_licence(facts["base_model"]["licence"]),
        **({"differential_privacy": {k: privacy.get(k) for k in ("epsilon", "delta", "accountant", "unit", "sample_rate",
                                                                  "noise_multiplier", "clipping_norm", "steps")}}
           if privacy.get("dp") else {}),
    )
    if card.state == "approved" and card.approved_by_id:
        status = (f"Approved by the privacy officer ({card.approved_by.get_username()}) on "
                  f"{card.approved_at:%Y-%m-%d %H:%M} UTC; content hash `{card.content_hash}`.")
    else:
        status = "Draft: not yet approved by the privacy officer."
    parts = [f"---\n{data.to_yaml()}\n---\n", f"# Provenant run {facts['run']['id']}: LoRA adapter for {facts['base_model']['name']}\n",
             f"> {status}\n"]
    for key, label in MODEL_CARD_SECTIONS:
        parts.append(f"## {label}\n\n{(card.sections.get(key) or '').strip() or '_Not stated._'}\n")
    parts.append("## Measured figures\n\nFrom the training run and its audit; not editable.\n\n| | |\n|---|---|\n"
                 + "".join(f"| {_md_cell(label)} | {_md_cell(value)} |\n" for label, value in fact_rows(facts)))
    return "\n".join(parts)
