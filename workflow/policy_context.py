"""What the policy rules read: plain facts about a request (or a run) and its records, read from
the models once (`context_for`, `findings_for_run`'s context), so each rule in `workflow.policy`
is a pure function of this context."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from django.utils import timezone

from workflow.ledger import Budget, budget_for


@dataclass(frozen=True)
class Finding:
    severity: str  # "blocker" or "warning"
    code: str
    message: str  # a sentence a lawyer understands

    def as_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- the context


@dataclass(frozen=True)
class ClassRules:
    name: str
    fine_tuning_use: str
    dp_required: bool
    max_epsilon: float | None
    max_delta: float | None
    redaction_required: bool
    allowed_compute_kinds: tuple[str, ...]
    allowed_regions: tuple[str, ...]
    high_risk: bool
    max_total_epsilon: float | None
    # The weakest audit the class accepts: audit setting (or "canaries.count" / "canaries.audit_count")
    # -> its minimum. Set by the privacy officer; a request may only ask for more.
    audit_minimums: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class DatasetFacts:
    name: str
    state: str
    segment: str
    classes: tuple[ClassRules, ...]
    duplicate_share: float | None  # None: not measured, so not checked
    budget: Budget
    pending_high_risk_reviews: int
    records: int = 0  # as counted at upload


@dataclass(frozen=True)
class DpaFacts:
    name: str
    lapse_reasons: tuple[str, ...]  # empty: in force
    no_retention_of_training_data: bool
    no_training_on_customer_data: bool
    processing_regions: tuple[str, ...]


@dataclass(frozen=True)
class ComputeFacts:
    name: str
    kind: str
    region: str
    active: bool
    processor: str  # "" when none
    dpa: DpaFacts | None
    expired_attestations: tuple[str, ...]  # kinds the processor held, none of which is valid today


@dataclass(frozen=True)
class ThreatModel:
    leak_definition: str
    adversaries: tuple[str, ...]
    audience: str
    intended_use: str


@dataclass(frozen=True)
class PolicyContext:
    datasets: tuple[DatasetFacts, ...]
    settings: object  # training.runs.RunSettings; None when the stored settings are invalid
    settings_error: str
    compute: ComputeFacts
    base_model: str
    base_model_licence: str
    threat: ThreatModel
    at_start: bool = False
    # The largest δ a run may use when no data class allows more (the engine's default cap).
    delta_ceiling: float = 1e-5
    subject: str = "request"  # what the findings speak of: a request, or a run started without one


def _duplicate_share(profile: dict) -> float | None:
    """The share of repeated records, if a profile measured it (the PII profile does not yet)."""
    if "duplicate_share" in profile:
        return float(profile["duplicate_share"])
    if profile.get("total_records") and "exact_duplicates" in profile:
        return (profile["exact_duplicates"] + profile.get("near_duplicates", 0)) / profile["total_records"]
    return None


def _class_rules(data_class) -> ClassRules:
    return ClassRules(
        name=data_class.name, fine_tuning_use=data_class.fine_tuning_use, dp_required=data_class.dp_required,
        max_epsilon=data_class.max_epsilon, max_delta=data_class.max_delta, redaction_required=data_class.redaction_required,
        allowed_compute_kinds=tuple(data_class.allowed_compute_kinds or ()), allowed_regions=tuple(data_class.allowed_regions or ()),
        high_risk=data_class.high_risk, max_total_epsilon=data_class.max_total_epsilon,
        audit_minimums=tuple((setting, getattr(data_class, name)) for setting, name in _AUDIT_MINIMUM_FIELDS
                             if getattr(data_class, name) is not None),
    )


# What each audit-strength minimum of a data class applies to in a request's settings.
_AUDIT_MINIMUM_FIELDS = (("candidates", "audit_min_candidates"), ("mia_sample", "audit_min_mia_sample"),
                         ("extraction_sample", "audit_min_extraction_sample"), ("canaries.count", "audit_min_canaries"),
                         ("canaries.audit_count", "audit_min_audit_canaries"))
AUDIT_MINIMUM_WORDS = {
    "candidates": "candidates each canary is ranked among", "mia_sample": "records a side in the membership attacks",
    "extraction_sample": "records tested for verbatim extraction", "canaries.count": "planted canaries",
    "canaries.audit_count": "one-run audit canaries",
}


def _compute_facts(target, today: dt.date) -> ComputeFacts:
    dpa, processor = target.dpa, target.processor or (target.dpa.processor if target.dpa else None)
    expired = ()
    if processor is not None:
        # An expired attestation matters only if no attestation of its kind is valid today (renewed).
        attestations = list(processor.attestations.all())
        valid = {a.kind for a in attestations if a.valid_on(today)}
        expired = tuple(sorted({a.kind for a in attestations if a.expires_on < today} - valid))
    dpa_facts = None
    if dpa is not None:
        dpa_facts = DpaFacts(
            name=f"{dpa.title} v{dpa.version}", lapse_reasons=tuple(dpa.lapses_on(today)),
            no_retention_of_training_data=dpa.no_retention_of_training_data,
            no_training_on_customer_data=dpa.no_training_on_customer_data,
            processing_regions=tuple(dpa.processing_regions or ()),
        )
    return ComputeFacts(name=target.name, kind=target.kind, region=target.region, active=target.active,
                        processor=str(processor) if processor else "", dpa=dpa_facts, expired_attestations=expired)


def settings_of(raw: dict):
    from training.runs import InvalidRunSettings, RunSettings

    try:
        return RunSettings.from_dict(raw), ""
    except InvalidRunSettings as exc:
        return None, str(exc)


def dataset_facts(datasets, exclude_run_id: int | None) -> tuple[DatasetFacts, ...]:
    from training.models import RedactionReview, ReviewDecision, ReviewReason

    facts = []
    for dataset in datasets.prefetch_related("data_classes").order_by("pk"):
        pending = RedactionReview.objects.filter(dataset=dataset, decision=ReviewDecision.PENDING,
                                                 reason=ReviewReason.HIGH_RISK).count()
        facts.append(DatasetFacts(
            name=dataset.name, state=dataset.state, segment=dataset.segment,
            classes=tuple(_class_rules(c) for c in dataset.data_classes.all()),
            duplicate_share=_duplicate_share(dataset.pii_profile or {}), budget=budget_for(dataset, exclude_run_id=exclude_run_id),
            pending_high_risk_reviews=pending, records=dataset.record_count or 0,
        ))
    return tuple(facts)


def context_for(request, today: dt.date | None = None, *, at_start: bool = False) -> PolicyContext:
    """Read everything the rules need from the models, once."""
    from training.runs import DEFAULT_MAX_DELTA

    today = today or timezone.localdate()
    run_settings, settings_error = settings_of(request.settings)
    threat = ThreatModel(leak_definition=request.leak_definition or "", adversaries=tuple(request.adversaries or ()),
                         audience=request.audience or "", intended_use=request.intended_use or "")
    return PolicyContext(datasets=dataset_facts(request.datasets.all(), request.run_id), settings=run_settings,
                         settings_error=settings_error, compute=_compute_facts(request.compute_target, today),
                         base_model=request.base_model.name, base_model_licence=request.base_model.licence or "",
                         threat=threat, at_start=at_start, delta_ceiling=DEFAULT_MAX_DELTA)


