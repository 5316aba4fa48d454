"""One audit of a run's adapter, in this process: decrypt what the attacks need into a private
scratch directory, run the engine, judge the report by the data classes' thresholds, store
figures and charts, purge the scratch in `finally`.

The adapter, the member sample, the holdout and the canary secrets exist in the clear only inside
that directory (mode 0700), which a killed worker's successor sweeps at its start.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Callable

from django.utils import timezone

from audits import actions
from audits.models import AdapterAudit
from training.engine.prepare import job_scratch
from training.models import ArtifactKind, TrainingRun

log = logging.getLogger(__name__)

# The data class field behind each limit of the engine's verdict (the smallest applies).
THRESHOLD_FIELDS = {
    "max_exposure_bits": "audit_max_exposure_bits",
    "max_mia_auc": "audit_max_mia_auc",
    "max_tpr_at_1pct_fpr": "audit_max_tpr_at_1pct_fpr",
    "max_original_pii_hits": "audit_max_original_pii_hits",
}
# The data class field behind each minimum the verdict holds a check's measurement to (the largest
# applies): a check measured with less is not tested.
MINIMUM_FIELDS = {
    "min_candidates": "audit_min_candidates",
    "min_canaries": "audit_min_canaries",
    "min_mia_sample": "audit_min_mia_sample",
    "min_audit_canaries": "audit_min_audit_canaries",
}


def _classes_of(run: TrainingRun) -> list:
    return list({dc.pk: dc for dataset in run.datasets.all() for dc in dataset.data_classes.all()}.values())


def _strictest(classes, field: str, pick) -> tuple:
    """(value, names of the classes that set it) for the strictest setting of `field`; (None, [])
    when no class sets it."""
    values = [(getattr(dc, field), dc.name) for dc in classes if getattr(dc, field) is not None]
    if not values:
        return None, []
    strictest = pick(v for v, _ in values)
    return strictest, sorted(n for v, n in values if v == strictest)


def training_max_length(run: TrainingRun) -> int:
    from training.engine.dp_lora import TrainConfig

    return int(((run.config or {}).get("training") or {}).get("max_length") or TrainConfig.max_length)


def effective_audit_config(run: TrainingRun, asked: dict):
    """The AuditConfig an audit of `run` runs with: what was asked (the portal's defaults and the
    run's own settings), each knob raised to the strictest minimum of the run's data classes (a
    request can only make the audit stronger), scoring exactly the tokens training saw (the run's
    max_length, never an audit setting of its own)."""
    from audits.engine.audit import AuditConfig, scored_like_training
    from governance.models import DataClass

    known = {f.name for f in fields(AuditConfig)} - {"max_length"}
    values = {k: v for k, v in (asked or {}).items() if k in known}
    classes = _classes_of(run)
    defaults = asdict(AuditConfig())
    for knob, field in DataClass.AUDIT_CONFIG_MINIMUMS.items():
        minimum, _ = _strictest(classes, field, max)
        if minimum is not None and values.get(knob, defaults[knob]) < minimum:
            values[knob] = minimum
    return scored_like_training(AuditConfig(**values), training_max_length(run))


def thresholds_for(run: TrainingRun) -> dict:
    """The strictest limit across the data classes of the run's datasets, and which classes set it.
    With no data class at all, the engine's defaults apply. Also the ε the run may have spent (the
    smaller of the classes' maximum ε and the run's target ε), whether a class requires DP, and
    the minimums a check's measurement must reach to count."""
    from audits.engine.audit import Thresholds

    classes = _classes_of(run)
    defaults = asdict(Thresholds())
    chosen = {}
    for name, field in THRESHOLD_FIELDS.items():
        if not classes:
            chosen[name] = {"value": defaults[name], "from": ["the portal's defaults (no data class)"]}
            continue
        value, names = _strictest(classes, field, min)
        chosen[name] = {"value": value, "from": names}
    _apply_request_limits(run, chosen)
    chosen["max_epsilon"] = _epsilon_limit(run, classes)
    requiring = sorted(dc.name for dc in classes if dc.dp_required)
    chosen["dp_required"] = {"value": bool(requiring), "from": requiring}
    for name, field in MINIMUM_FIELDS.items():
        value, names = _strictest(classes, field, max)
        chosen[name] = {"value": value, "from": names}
    return chosen


def _epsilon_limit(run: TrainingRun, classes) -> dict:
    """The ε the run may have spent: the data classes' maximum and the target the run was approved
    with, whichever is smaller (None: neither is set, or the run trained without DP)."""
    training = (run.config or {}).get("training") or {}
    value, names = _strictest(classes, "max_epsilon", min)
    target = training.get("target_epsilon") if training.get("dp", True) else None
    if target is not None and (value is None or target < value):
        return {"value": target, "from": ["the run's target ε"]}
    if target is not None and target == value:
        names = [*names, "the run's target ε"]
    return {"value": value, "from": names}


# Stricter limits than the data classes', from the layers above (a training request's own limits,
# registered by the workflow): functions of a run returning (threshold name, value, where from).
# They may only tighten: a looser value is ignored.
TIGHTER_LIMITS: list = []


def _apply_request_limits(run: TrainingRun, chosen: dict) -> None:
    for source in TIGHTER_LIMITS:
        for name, value, where in source(run):
            if name not in THRESHOLD_FIELDS or value is None:
                continue
            current = chosen[name]["value"]
            if current is None or value < current:
                chosen[name] = {"value": value, "from": [where]}


def verdict_for(report: dict, thresholds: dict, claimed_epsilon: float | None) -> dict:
    from audits.engine.audit import Thresholds, evaluate_verdict

    return evaluate_verdict(report, Thresholds(**{k: v["value"] for k, v in thresholds.items()}), claimed_epsilon)


class AuditProgress:
    """The engine's phase callbacks, written to the audit at most every couple of seconds."""

    def __init__(self, item: AdapterAudit, echo: Callable[[dict], None] | None = None, every: float = 2.0):
        self.item, self.echo, self.every, self.last = item, echo, every, 0.0

    def __call__(self, state: dict) -> None:
        if self.echo:
            self.echo(state)
        now = time.monotonic()
        if now - self.last < self.every and state.get("done") != state.get("total"):
            return
        self.last = now
        actions.record_audit_progress(self.item, phase=str(state.get("phase", ""))[:60], done=int(state.get("done") or 0),
                                      total=state.get("total"))


def execute_audit(item: AdapterAudit, worker: str, echo: Callable[[dict], None] | None = None) -> AdapterAudit:
    """Run a queued audit here. A failure of the audit ends it `failed` with the reason; never raises."""
    if not actions.mark_audit_started(item, worker):
        return AdapterAudit.objects.get(pk=item.pk)
    purge: dict = {}
    try:
        with job_scratch(TrainingRun.scratch_root(), str(item.job_id), on_purge=purge.update) as scratch:
            report, thresholds, verdict, charts = _audit_in(scratch, item, echo)
    except Exception as exc:  # the audit fails with its reason; the worker stays up
        log.exception("audit %s failed", item.pk)
        return actions.fail_audit(item, f"{type(exc).__name__}: {exc}")
    finally:
        if purge:
            actions.record_audit_purge(item, purge)
    return actions.finish_audit(item, report=report, verdict=verdict, thresholds=thresholds, charts=charts)


def _audit_in(scratch: Path, item: AdapterAudit, echo) -> tuple[dict, dict, dict, dict]:
    from audits.charts import render_charts
    from audits.engine.audit import run_audit
    from audits.engine.leakage import ValueIndex, detector_for
    from training import redaction

    run = TrainingRun.objects.select_related("base_model").get(pk=item.run_id)
    stored = {(a.kind, a.name): a for a in run.artifacts.filter(deleted_at__isnull=True)}
    adapter_dir = scratch / "adapter"
    adapter_dir.mkdir()
    for (kind, name), artifact in stored.items():
        if kind == ArtifactKind.ADAPTER:
            target = adapter_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(artifact.read_bytes())

    def texts(kind, name):
        if (kind, name) not in stored:
            raise ValueError(f"Run {run.pk} kept no {ArtifactKind(kind).label.lower()}: it cannot be audited.")
        return [json.loads(line)["text"] for line in stored[(kind, name)].read_bytes().decode().splitlines() if line.strip()]

    members, nonmembers = texts(ArtifactKind.MEMBERS, "members.jsonl"), texts(ArtifactKind.HOLDOUT, "holdout.jsonl")
    alphabet = (run.config.get("canaries") or {}).get("alphabet")
    canaries = []
    if (ArtifactKind.CANARIES, "canaries.json") in stored:
        canaries = [{**c, **({"alphabet": alphabet} if alphabet else {})}
                    for c in json.loads(stored[(ArtifactKind.CANARIES, "canaries.json")].read_bytes())]
    # The one-run audit's canaries and their secret inclusion bits; runs trained before it have none.
    audit_canaries = None
    if (ArtifactKind.CANARIES, "audit_canaries.json") in stored:
        audit_canaries = json.loads(stored[(ArtifactKind.CANARIES, "audit_canaries.json")].read_bytes())
    originals = surrogates = detect = None
    if (ArtifactKind.PII_INDEX, "pii_index.json") in stored:
        index = json.loads(stored[(ArtifactKind.PII_INDEX, "pii_index.json")].read_bytes())
        key = bytes.fromhex(index["key"])
        originals, surrogates = ValueIndex.from_dict(index["originals"], key), ValueIndex.from_dict(index["surrogates"], key)
        classes = list({dc.pk: dc for d in run.datasets.all() for dc in d.data_classes.all()}.values())
        detect = detector_for(redaction.detector_config_for(classes))
    config = effective_audit_config(run, item.config)
    claimed = run.epsilon_spent
    report = run_audit(Path(run.base_model.location), adapter_dir, members, nonmembers, canaries, config=config,
                       claimed_epsilon=claimed, delta=(run.result or {}).get("delta"), detect=detect, originals=originals,
                       surrogates=surrogates, progress=AuditProgress(item, echo), audit_canaries=audit_canaries)
    report["audited_at"] = timezone.now().isoformat()
    thresholds = thresholds_for(run)
    verdict = verdict_for(report, thresholds, claimed)
    return report, thresholds, verdict, render_charts(report, claimed, (run.result or {}).get("delta"))
