"""Policy: pure functions from a training request and its context to findings.

`context_for` reads the models once into plain data (`PolicyContext`); each rule is a small
function of that context alone, with no database access, so a rule is tested by the request that
makes it fire and the one that does not. A finding is a `blocker` (nothing trains while it stands)
or a `warning`, with a stable code and one sentence a lawyer understands.
"""

from __future__ import annotations

import datetime as dt


from governance.models import AttestationKind, ComputeKind, DatasetState, FineTuningUse, Segment
from workflow.models import Adversary
from workflow.policy_context import (AUDIT_MINIMUM_WORDS, ClassRules, ComputeFacts, DatasetFacts, DpaFacts,  # noqa: F401
                                     Finding, PolicyContext, ThreatModel, dataset_facts, settings_of, context_for)

BLOCKER, WARNING = "blocker", "warning"
HIGH_DUPLICATE_SHARE = 0.10  # above this, de-duplication drops much of the data and repeats weaken DP


# --------------------------------------------------------------------------- the rules


def _where(dataset: DatasetFacts, data_class: ClassRules) -> str:
    return f"The dataset “{dataset.name}” is in data class “{data_class.name}”, which"


def _since(ctx: PolicyContext) -> str:
    """At the job's start, a change is news since the approvals: say so."""
    return " since the request was approved" if ctx.at_start else ""


def _class_pairs(ctx: PolicyContext):
    for dataset in ctx.datasets:
        for data_class in dataset.classes:
            yield dataset, data_class


def settings_invalid(ctx):
    if ctx.settings is None:
        yield Finding(BLOCKER, "settings_invalid", f"The training settings are not valid: {ctx.settings_error}")


def dataset_unclassified(ctx):
    """Rules hang on data classes: a dataset without one would pass every class rule unchecked."""
    for dataset in ctx.datasets:
        if not dataset.classes:
            yield Finding(BLOCKER, "dataset_unclassified",
                          f"The dataset “{dataset.name}” has not been classified by the privacy officer: without a data "
                          "class, no rule on differential privacy, redaction, regions or processors applies to it, so it "
                          "cannot be used for training until the privacy officer classifies it.")


def class_forbids_fine_tuning(ctx):
    for dataset, data_class in _class_pairs(ctx):
        if data_class.fine_tuning_use == FineTuningUse.FORBIDDEN:
            yield Finding(BLOCKER, "class_forbids_fine_tuning", f"{_where(dataset, data_class)} forbids fine-tuning.")


def eval_only_dataset(ctx):
    for dataset in ctx.datasets:
        if dataset.segment == Segment.EVAL_ONLY:
            yield Finding(BLOCKER, "eval_only_dataset",
                          f"The dataset “{dataset.name}” is marked for evaluation only: it may not be used for training.")
        for data_class in dataset.classes:
            if data_class.fine_tuning_use == FineTuningUse.EVAL_ONLY:
                yield Finding(BLOCKER, "eval_only_dataset",
                              f"{_where(dataset, data_class)} may be used for evaluation only, not for training.")


def dp_required(ctx):
    if ctx.settings is None or ctx.settings.training.dp:
        return
    for dataset, data_class in _class_pairs(ctx):
        if data_class.dp_required:
            yield Finding(BLOCKER, "dp_required",
                          f"{_where(dataset, data_class)} requires differential privacy, and this {ctx.subject} trains without it.")


def epsilon_above_class_max(ctx):
    if ctx.settings is None or not ctx.settings.training.dp:
        return
    eps = ctx.settings.training.target_epsilon
    for dataset, data_class in _class_pairs(ctx):
        if data_class.max_epsilon is not None and eps > data_class.max_epsilon:
            yield Finding(BLOCKER, "epsilon_above_class_max",
                          f"{_where(dataset, data_class)} allows a privacy loss of at most ε = {data_class.max_epsilon:g}; "
                          f"this {ctx.subject} targets ε = {eps:g}.")


def delta_above_class_max(ctx):
    # δ None: the engine picks one far below 1/N and never above the class maximum.
    if ctx.settings is None or not ctx.settings.training.dp or ctx.settings.training.target_delta is None:
        return
    delta = ctx.settings.training.target_delta
    for dataset, data_class in _class_pairs(ctx):
        if data_class.max_delta is not None and delta > data_class.max_delta:
            yield Finding(BLOCKER, "delta_above_class_max",
                          f"{_where(dataset, data_class)} allows at most δ = {data_class.max_delta:g}; "
                          f"this {ctx.subject} uses δ = {delta:g}.")


def delta_above_default_max(ctx):
    """Without a data class that allows more, δ stays at or below the ceiling the engine defaults to."""
    t = None if ctx.settings is None else ctx.settings.training
    if t is None or not t.dp:
        return
    # A δ asked for directly, or a raised cap on the default δ (`max_delta`): either one would take
    # δ above the ceiling.
    delta, what = (t.target_delta, "uses δ =") if t.target_delta is not None else (t.max_delta, "raises the cap on δ to")
    if delta is None or delta <= ctx.delta_ceiling:
        return
    if any(c.max_delta is not None for _, c in _class_pairs(ctx)):
        return  # the class maxima decide (delta_above_class_max; the pipeline caps max_delta by them)
    yield Finding(BLOCKER, "delta_above_default_max",
                  f"This {ctx.subject} {what} {delta:g}, and no data class of its datasets allows a δ above "
                  f"{ctx.delta_ceiling:g}: δ is the probability that the guarantee fails outright, so it must stay tiny "
                  "unless the privacy officer has allowed more for this data.")


def delta_not_below_one_over_n(ctx):
    """δ ≥ 1/N allows a mechanism that publishes one record verbatim and still meets (ε, δ)."""
    t = None if ctx.settings is None else ctx.settings.training
    if t is None or not t.dp or t.target_delta is None or t.privacy_unit == "subject":
        return  # subject counts are known only when the job runs: the engine refuses it there
    records = sum(d.records for d in ctx.datasets)
    trained = max(1, round(records * (1 - ctx.settings.holdout_fraction)))
    if t.target_delta >= 1 / trained:
        yield Finding(BLOCKER, "delta_not_below_one_over_n",
                      f"This {ctx.subject} uses δ = {t.target_delta:g} on about {trained} training records, which is not well "
                      f"below 1/{trained}: at δ ≥ 1/N a training method could publish one person's record word for word "
                      f"and still meet the guarantee. Leave δ empty (the portal picks one far below 1/N) or choose one "
                      f"below {0.1 / trained:.2g}.")


def redaction_required(ctx):
    if ctx.settings is None or ctx.settings.redaction:
        return
    for dataset, data_class in _class_pairs(ctx):
        if data_class.redaction_required:
            yield Finding(BLOCKER, "redaction_required",
                          f"{_where(dataset, data_class)} requires redaction of personal data, and this {ctx.subject} turns it off.")


def dataset_shredded(ctx):
    for dataset in ctx.datasets:
        if dataset.state == DatasetState.SHREDDED:
            yield Finding(BLOCKER, "dataset_shredded",
                          f"The dataset “{dataset.name}” was crypto-shredded{_since(ctx)}: its content can no longer be used.")


def pending_high_risk_reviews(ctx):
    for dataset in ctx.datasets:
        if n := dataset.pending_high_risk_reviews:
            yield Finding(BLOCKER, "pending_high_risk_reviews",
                          f"The dataset “{dataset.name}” has {n} high-risk redaction review item{'s' if n != 1 else ''} "
                          "that the privacy officer has not decided yet.")


def high_duplicate_rate(ctx):
    for dataset in ctx.datasets:
        if dataset.duplicate_share is not None and dataset.duplicate_share > HIGH_DUPLICATE_SHARE:
            yield Finding(WARNING, "high_duplicate_rate",
                          f"{dataset.duplicate_share:.0%} of the records of dataset “{dataset.name}” are duplicates: "
                          "de-duplication will drop them, and a record repeated in training is protected less by "
                          "differential privacy than a single one.")


def privacy_budget_exceeded(ctx):
    """Spent (the ledger, composed), plus what queued and running runs hold, plus this request's
    target ε (added: basic composition is the conservative bound before a run exists) must stay
    within the tightest class cap."""
    if ctx.settings is None:
        return
    t = ctx.settings.training
    for dataset in ctx.datasets:
        budget = dataset.budget
        if budget.cap is None:
            continue
        where = f"Data class “{budget.cap_class}” caps the total privacy loss on dataset “{dataset.name}” at ε = {budget.cap:g}"
        if budget.epsilon is None:
            yield Finding(BLOCKER, "privacy_budget_exceeded",
                          f"{where}; a past run trained on it without differential privacy, so its budget is spent.")
        elif not t.dp:
            yield Finding(BLOCKER, "privacy_budget_exceeded",
                          f"{where}; this {ctx.subject} trains without differential privacy, which no budget covers.")
        elif budget.reserved_unbounded:
            yield Finding(BLOCKER, "privacy_budget_exceeded",
                          f"{where}; a run queued or running on it trains without differential privacy, so its budget is spent.")
        elif budget.epsilon + budget.reserved + t.target_epsilon > budget.cap:
            held = (f", {budget.reserved_runs} queued or running run{'s hold' if budget.reserved_runs != 1 else ' holds'} up to "
                    f"ε = {budget.reserved:.3g}," if budget.reserved_runs else "")
            total = budget.epsilon + budget.reserved + t.target_epsilon
            yield Finding(BLOCKER, "privacy_budget_exceeded",
                          f"{where}; {budget.runs} earlier run{'s' if budget.runs != 1 else ''} spent ε = {budget.epsilon:.3g}"
                          f"{held} and this {ctx.subject} adds up to ε = {t.target_epsilon:g}, a total of {total:.3g}.")


def _needs_dpa(ctx) -> bool:
    return ctx.compute.kind == ComputeKind.EXTERNAL_PROVIDER or ctx.compute.dpa is not None


def _the_dpa(c: ComputeFacts, the: str = "The") -> str:
    return f"{the} data processing agreement “{c.dpa.name}”" + (f" with {c.processor}" if c.processor else "")


def no_dpa_in_force(ctx):
    c = ctx.compute
    if c.kind == ComputeKind.EXTERNAL_PROVIDER and c.dpa is None:
        yield Finding(BLOCKER, "no_dpa_in_force",
                      f"The compute target “{c.name}” is an external provider, and no data processing agreement covers it.")
    elif _needs_dpa(ctx) and c.dpa.lapse_reasons:
        yield Finding(BLOCKER, "no_dpa_in_force",
                      f"{_the_dpa(c)} is not in force{_since(ctx) or ' today'}: "
                      f"{'; '.join(c.dpa.lapse_reasons)}.")


def dpa_missing_no_retention(ctx):
    c = ctx.compute
    if c.dpa is not None and not c.dpa.no_retention_of_training_data:
        yield Finding(BLOCKER, "dpa_missing_no_retention",
                      f"{_the_dpa(c)} does not forbid the processor to retain the training data.")


def dpa_missing_no_training(ctx):
    c = ctx.compute
    if c.dpa is not None and not c.dpa.no_training_on_customer_data:
        yield Finding(BLOCKER, "dpa_missing_no_training",
                      f"{_the_dpa(c)} does not forbid the processor to train its own models on our data.")


def region_outside_dpa(ctx):
    c = ctx.compute
    if c.dpa is not None and c.dpa.processing_regions and c.region not in c.dpa.processing_regions:
        yield Finding(BLOCKER, "region_outside_dpa",
                      f"The compute target “{c.name}” runs in {c.region}, which {_the_dpa(c, 'the')} does not list among "
                      f"its processing regions ({', '.join(c.dpa.processing_regions)}).")


def region_not_allowed(ctx):
    for dataset, data_class in _class_pairs(ctx):
        if data_class.allowed_regions and ctx.compute.region not in data_class.allowed_regions:
            yield Finding(BLOCKER, "region_not_allowed",
                          f"{_where(dataset, data_class)} may be processed only in {', '.join(data_class.allowed_regions)}; "
                          f"the compute target “{ctx.compute.name}” is in {ctx.compute.region}.")


# Where the hardware is, as a sentence ends: "may be processed only on premises".
_KIND_PLACE = {ComputeKind.ON_PREMISES: "on premises", ComputeKind.PRIVATE_CLOUD: "in a private cloud",
               ComputeKind.EXTERNAL_PROVIDER: "at an external provider"}


def compute_kind_not_allowed(ctx):
    for dataset, data_class in _class_pairs(ctx):
        if data_class.allowed_compute_kinds and ctx.compute.kind not in data_class.allowed_compute_kinds:
            allowed = " or ".join(_KIND_PLACE.get(k, k) for k in data_class.allowed_compute_kinds)
            yield Finding(BLOCKER, "compute_kind_not_allowed",
                          f"{_where(dataset, data_class)} may be processed only {allowed}; "
                          f"the compute target “{ctx.compute.name}” is {_KIND_PLACE.get(ctx.compute.kind, ctx.compute.kind)}.")


def compute_inactive(ctx):
    if not ctx.compute.active:
        yield Finding(BLOCKER, "compute_inactive", f"The compute target “{ctx.compute.name}” was taken out of service{_since(ctx)}.")


def attestation_expired(ctx):
    """A warning only: when the DPA requires the attestation, its lapse is already a blocker."""
    c = ctx.compute
    for kind in c.expired_attestations:
        label = AttestationKind(kind).label if kind in AttestationKind.values else kind
        yield Finding(WARNING, "attestation_expired",
                      f"The {label} attestation of {c.processor} has expired and has not been renewed.")


def audit_weaker_than_class_minimum(ctx):
    """The privacy officer sets how strong the audit must be; a request may only ask for more. (The
    worker raises a weaker setting to the minimum anyway; this tells the engineer before approval.)"""
    if ctx.settings is None:
        return
    asked = {**{k: v for k, v in (ctx.settings.audit or {}).items()},
             "canaries.count": ctx.settings.canaries.count, "canaries.audit_count": ctx.settings.canaries.audit_count}
    for dataset, data_class in _class_pairs(ctx):
        for setting, minimum in data_class.audit_minimums:
            value = asked.get(setting)
            if value is not None and value < minimum:
                yield Finding(BLOCKER, "audit_weaker_than_class_minimum",
                              f"{_where(dataset, data_class)} requires an audit with at least {minimum} "
                              f"{AUDIT_MINIMUM_WORDS[setting]}; this {ctx.subject} asks for {value}. A weaker audit could "
                              "pass an adapter that remembers its data.")


def canaries_off(ctx):
    if ctx.settings is not None and ctx.settings.canaries.count == 0:
        yield Finding(WARNING, "canaries_off",
                      "No canaries are planted: the memorisation audit will not be able to measure how much the adapter "
                      "exposes a secret it saw in training.")


def base_model_licence_unknown(ctx):
    if not ctx.base_model_licence.strip():
        yield Finding(WARNING, "base_model_licence_unknown",
                      f"The licence of the base model “{ctx.base_model}” is not recorded: it is unknown whether it "
                      "may be adapted and used.")


def threat_model_incomplete(ctx):
    t, missing = ctx.threat, []
    if not t.leak_definition.strip():
        missing.append("what counts as a leak")
    if not [a for a in t.adversaries if a in Adversary.values]:
        missing.append("who might try to extract the data")
    if not t.audience:
        missing.append("who will query the model")
    if not t.intended_use.strip():
        missing.append("what the adapter is for")
    if missing:
        yield Finding(BLOCKER, "threat_model_incomplete", f"The threat model is incomplete: it does not say {', nor '.join(missing)}.")


RULES = (
    settings_invalid, dataset_unclassified, class_forbids_fine_tuning, eval_only_dataset, dp_required, epsilon_above_class_max,
    delta_above_class_max, delta_above_default_max, delta_not_below_one_over_n, redaction_required, dataset_shredded, pending_high_risk_reviews, high_duplicate_rate,
    privacy_budget_exceeded, no_dpa_in_force, dpa_missing_no_retention, dpa_missing_no_training, region_outside_dpa,
    region_not_allowed, compute_kind_not_allowed, compute_inactive, attestation_expired, audit_weaker_than_class_minimum, canaries_off,
    base_model_licence_unknown, threat_model_incomplete,
)


# The rules about the data and the settings alone. A run created without a request (tests,
# benchmarks: no page or API creates one) is held to these when its job starts; the others need a
# request's compute target and threat model. An unclassified dataset is refused through requests,
# which are the only way the portal's users start a run.
DATA_RULES = (
    settings_invalid, class_forbids_fine_tuning, eval_only_dataset, dp_required, epsilon_above_class_max,
    delta_above_class_max, delta_above_default_max, delta_not_below_one_over_n, redaction_required, dataset_shredded,
    pending_high_risk_reviews, privacy_budget_exceeded, audit_weaker_than_class_minimum,
)


def findings_for_run(run) -> list[Finding]:
    """The data rules for a run without a request, as its job starts (it does not hold its own
    budget against itself)."""
    from training.runs import DEFAULT_MAX_DELTA

    run_settings, settings_error = settings_of(run.config)
    ctx = PolicyContext(datasets=dataset_facts(run.datasets.all(), run.pk), settings=run_settings, settings_error=settings_error,
                        compute=None, base_model=run.base_model.name, base_model_licence=run.base_model.licence or "",
                        threat=None, at_start=True, delta_ceiling=DEFAULT_MAX_DELTA, subject="run")
    return [f for rule in DATA_RULES for f in rule(ctx)]


def evaluate(ctx: PolicyContext) -> list[Finding]:
    """Every rule over one context; blockers first, in rule order."""
    findings = [f for rule in RULES for f in rule(ctx)]
    return sorted(findings, key=lambda f: f.severity != BLOCKER)


def findings_for(request, today: dt.date | None = None, *, at_start: bool = False) -> list[Finding]:
    """The findings for a request as of `today` (default: today). `at_start`: evaluated when the
    job starts, after the approvals."""
    return evaluate(context_for(request, today, at_start=at_start))
