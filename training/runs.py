"""Training runs: validated settings, start checks, and every state change of a run.

Each action is atomic and writes its audit event in the same transaction; the pipeline
(`training.pipeline`) and the views call these and never `save()` a run's state themselves.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from governance.trail import record_event
from governance.models import DatasetFormat
from training.engine.dp_lora import DEFAULT_MAX_DELTA, TrainConfig  # noqa: F401 - policy reads the ceiling here
from training.engine.prepare import CanarySpec
from training import settings_schema, signals
from training.models import ACTIVE_RUN_STATES, RunState, TrainingRun


# Checks of a run's `audit` overrides, each returning its problems as sentences that start with the
# key's path ("audit.candidates: …"); registered by the audits app, which owns the audit's settings
# (training does not import the layer above it). The schema has already made `audit` an object.
AUDIT_SETTINGS_CHECKS: list = []


class InvalidRunSettings(ValueError):
    """What is wrong with run settings, each problem naming its key path ("training.target_epsilon:
    must be a number, got 'abc'"). `problems` holds them one by one (`settings_schema.Problem`)."""

    def __init__(self, message: str, problems=()):
        super().__init__(message)
        self.problems = list(problems)


@dataclass(frozen=True)
class RunSettings:
    """What a run needs beyond its base model and datasets. Built from a plain dict (the request
    form, the API, a YAML file, a stored run config) through the one schema,
    `training.settings_schema.RunSettingsSchema`: types, ranges and unknown keys are refused
    there, and the checks that tie settings together here."""

    training: TrainConfig = field(default_factory=TrainConfig)
    canaries: CanarySpec = field(default_factory=CanarySpec)
    holdout_fraction: float = 0.1
    seed: int = 0
    redaction: bool = True
    # Subject-level DP: the JSONL field or CSV column that names each record's data subject
    # (customer id, patient id, author). Its values never leave the run's scratch directory.
    subject_field: str = ""
    # Overrides of the audit's settings (audits.engine.audit.AuditConfig: candidates, mia_sample…)
    # for the audit queued after training; empty: the portal's defaults.
    audit: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict | None) -> "RunSettings":
        parsed, problems = settings_schema.validate({} if raw is None else raw)
        if problems:
            raise InvalidRunSettings(settings_schema.sentence(problems), problems)
        training = parsed.training.model_dump()
        training["target_modules"] = tuple(training["target_modules"])
        built = cls(training=TrainConfig(**training), canaries=CanarySpec(**parsed.canaries.model_dump()),
                    holdout_fraction=parsed.holdout_fraction, seed=parsed.seed, redaction=parsed.redaction,
                    subject_field=parsed.subject_field, audit=dict(parsed.audit))
        built.validate()
        return built

    def problems(self) -> list[settings_schema.Problem]:
        """What is wrong between settings that are each of the right type and range."""
        t, P = self.training, settings_schema.Problem
        problems = []
        if t.dp and t.target_epsilon <= 0:
            problems.append(P("training.target_epsilon", f"must be positive when training with DP, got {t.target_epsilon:g}"))
        if t.dp and t.max_grad_norm <= 0:
            problems.append(P("training.max_grad_norm", f"must be positive when training with DP, got {t.max_grad_norm:g}"))
        if t.dp and t.target_delta is not None and not 0 < t.target_delta < 1:
            problems.append(P("training.target_delta", f"must be in (0, 1), got {t.target_delta:g}"))
        if t.max_delta is not None and not 0 < t.max_delta <= 1:
            problems.append(P("training.max_delta", f"must be in (0, 1], got {t.max_delta:g}"))
        if t.dp and t.privacy_unit == "subject":
            if not self.subject_field.strip():
                problems.append(P("subject_field", "subject-level DP needs subject_field: the field or column that names "
                                                   "each record's subject"))
            if t.grad_sample_mode == "ghost":
                problems.append(P("training.grad_sample_mode", "subject-level DP needs per-sample gradients: use "
                                                               "grad_sample_mode hooks or functorch, not ghost"))
        for check in AUDIT_SETTINGS_CHECKS:  # the audits app knows its own settings (audits.apps)
            problems.extend(P(*_split_path(sentence, "audit")) for sentence in check(self.audit or {}))
        # Also: enough distinct secrets exist, or making them never ends.
        problems.extend(P("canaries", sentence) for sentence in self.canaries.problems())
        return problems

    def validate(self) -> None:
        problems = self.problems()
        if problems:
            raise InvalidRunSettings(settings_schema.sentence(problems), problems)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["training"].pop("noise_seed", None)  # never stored: the DP noise must stay unpredictable
        data["training"].pop("noise_multiplier", None)  # never chosen by hand: the accountant derives it
        data["training"].pop("seed", None)  # the run's seed is the top-level one
        data["training"]["target_modules"] = list(self.training.target_modules)
        return data


def _split_path(sentence: str, default: str) -> tuple[str, str]:
    """("audit.candidates", "must be …") from "audit.candidates: must be …"; a sentence without a
    path belongs to `default`."""
    head, sep, rest = sentence.partition(": ")
    if sep and head.split(".", 1)[0] == default and " " not in head:
        return head, rest
    return default, sentence


# Checks a run must pass when its job starts, each a function of the run returning the reasons
# it must not train. The workflow registers the policy here (`workflow.apps`): the training layer
# does not know about requests, approvals or data-class rules, but nothing trains while one stands.
START_CHECKS: list = []


def register_start_check(check) -> None:
    if check not in START_CHECKS:
        START_CHECKS.append(check)


def start_blockers(run: TrainingRun) -> list[str]:
    """Why this run must not train now, in sentences a lawyer understands. Checked when the
    worker starts the run, not only when it was created: things change in between."""
    run_settings = RunSettings.from_dict(run.config)
    reasons = _subject_field_blockers(run, run_settings)
    for check in START_CHECKS:
        reasons += check(run)
    return reasons


def _subject_field_blockers(run: TrainingRun, run_settings: RunSettings) -> list[str]:
    t = run_settings.training
    if not (t.dp and t.privacy_unit == "subject"):
        return []
    return [f"Dataset “{dataset}” is plain text, one record per line: it has no field to name each record's subject, so "
            "subject-level DP cannot group its records. Upload it as JSONL or CSV with a "
            f"“{run_settings.subject_field}” field, or train with record-level DP."
            for dataset in run.datasets.all() if dataset.file_format == DatasetFormat.TEXT]


@transaction.atomic
def create_run(actor, base_model, datasets, config: dict, *, enqueue: bool = True, queue: str = "gpu") -> TrainingRun:
    """Register a run and queue it on its compute queue once the transaction commits."""
    from governance.models import Dataset

    run_settings = RunSettings.from_dict(config)
    datasets = list(datasets)
    if not datasets:
        raise InvalidRunSettings("A run needs at least one dataset.")
    visible = set(Dataset.objects.visible_to(actor).filter(pk__in=[d.pk for d in datasets]).values_list("pk", flat=True))
    if visible != {d.pk for d in datasets}:
        raise PermissionError("You can only train on datasets you own or that are shared with you.")
    run = TrainingRun.objects.create(created_by=actor, base_model=base_model, config=run_settings.as_dict(), celery_queue=queue)
    run.datasets.set(datasets)
    record_event(actor, "trainingrun.created", run, f"{actor} queued training run {run.pk} on “{base_model}”",
                 {"base_model": base_model.name, "base_model_weights": base_model.weight_hashes,
           "datasets": {str(d.pk): d.sha256 for d in datasets}, "config": run.config})
    if enqueue:
        transaction.on_commit(lambda: enqueue_run(run))
    return run


def enqueue_run(run: TrainingRun, queue: str | None = None) -> None:
    """Send the run's message to its compute target's queue (`run.celery_queue`, unless told)."""
    # By the task's name: the task module imports the pipeline, which imports this module.
    from celery import current_app

    result = current_app.send_task("training.tasks.run_training", args=[run.pk], queue=queue or run.celery_queue)
    TrainingRun.objects.filter(pk=run.pk).update(celery_task_id=result.id)


def check_cancel(actor, run: TrainingRun) -> None:
    """The one cancel rule, for pages, API, CLI and requests alike: an ended run cannot be
    cancelled (ValueError); only whoever started it, or whoever may cancel any run, may."""
    if not run.is_active:
        raise ValueError(f"Run {run.pk} has already ended ({run.get_state_display().lower()}).")
    if not run.may_be_cancelled_by(actor):
        raise PermissionError("Only whoever started the run (the requester), or a privacy officer, cancels it.")


@transaction.atomic
def request_cancel(actor, run: TrainingRun) -> TrainingRun:
    """A queued run is cancelled at once; a running one stops at its next step (the flag works on
    every broker, unlike revoke) and then purges its scratch."""
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    check_cancel(actor, run)
    run.cancel_requested_at, run.cancel_requested_by = timezone.now(), actor
    if run.state == RunState.QUEUED:
        run.state, run.finished_at, run.phase = RunState.CANCELLED, timezone.now(), "cancelled before it started"
    run.save()
    record_event(actor, "trainingrun.cancel_requested", run, f"{actor} cancelled training run {run.pk}", {"state": run.state})
    signals.run_changed.send(sender=TrainingRun, run=run)
    return run


@transaction.atomic
def mark_started(run: TrainingRun, worker: str) -> bool:
    """Claim a queued run for this worker. False if it is not queued any more (cancelled, or a
    redelivered message for a run that already ended): the worker then does nothing."""
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    if run.state != RunState.QUEUED:
        return False
    now = timezone.now()
    run.state, run.worker, run.started_at, run.heartbeat_at, run.phase = RunState.RUNNING, worker[:200], now, now, "starting"
    run.save()
    record_event(None, "trainingrun.started", run, f"Training run {run.pk} started on {worker}", {"worker": worker})
    signals.run_changed.send(sender=TrainingRun, run=run)
    return True


def record_progress(run: TrainingRun, **values) -> None:
    """Live progress and heartbeat. Telemetry, not a decision, so it is not an audit event."""
    values.setdefault("heartbeat_at", timezone.now())
    TrainingRun.objects.filter(pk=run.pk, state=RunState.RUNNING).update(**values)


def cancel_requested(run: TrainingRun) -> bool:
    return TrainingRun.objects.filter(pk=run.pk, cancel_requested_at__isnull=False).exists()


@transaction.atomic
def finish_run(run: TrainingRun, state: str, *, reason: str = "", result: dict | None = None, manifest: dict | None = None,
               redaction_report: dict | None = None) -> TrainingRun:
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    if run.state != RunState.RUNNING:  # reaped meanwhile: the reaper's verdict stands
        return run
    run.state, run.finished_at, run.failure_reason = state, timezone.now(), reason
    run.phase = {RunState.SUCCEEDED: "trained", RunState.FAILED: "failed", RunState.CANCELLED: "cancelled"}[state]
    if result is not None:
        run.result = result
        run.epsilon_spent = result.get("epsilon")
    if manifest is not None:
        run.manifest = manifest
    if redaction_report is not None:
        run.redaction_report = redaction_report
    run.save()
    summary = {RunState.SUCCEEDED: f"Training run {run.pk} trained an adapter", RunState.CANCELLED: f"Training run {run.pk} was cancelled",
               RunState.FAILED: f"Training run {run.pk} failed: {reason}"}[state]
    record_event(None, f"trainingrun.{state}", run, summary[:500],
                 {"reason": reason, "epsilon": run.epsilon_spent, "steps": run.step, "adapter": (manifest or {}).get("hashes", {}).get("adapter")})
    signals.run_changed.send(sender=TrainingRun, run=run)
    return run


@transaction.atomic
def record_purge(run: TrainingRun, report: dict, *, how: str) -> None:
    """What plaintext was removed and when: by the run itself (`finally`) or by the worker-start sweep."""
    report = {**report, "how": how, "at": timezone.now().isoformat()}
    TrainingRun.objects.filter(pk=run.pk).update(purged_at=timezone.now(), purge_report=report)
    record_event(None, "trainingrun.purged", run, f"Plaintext scratch of training run {run.pk} removed ({how})", report)


@transaction.atomic
def fail_dead_run(run: TrainingRun, reason: str) -> bool:
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    if run.state != RunState.RUNNING:
        return False
    run.state, run.finished_at, run.failure_reason, run.phase = RunState.FAILED, timezone.now(), reason, "failed"
    run.save()
    record_event(None, "trainingrun.failed", run, f"Training run {run.pk} failed: {reason}"[:500], {"reason": reason, "reaped": True})
    signals.run_changed.send(sender=TrainingRun, run=run)
    return True


def reap_dead_runs(this_worker: str | None = None, now=None) -> list[int]:
    """Fail runs whose worker is gone: those this worker node was running before it restarted
    (it cannot be running them now), and any whose heartbeat stopped too long ago."""
    now = now or timezone.now()
    reaped = []
    for run in TrainingRun.objects.filter(state=RunState.RUNNING):
        if this_worker and run.worker == this_worker:
            reason = (f"The worker {run.worker} stopped while the run was in progress (killed or crashed; it restarted at "
                      f"{now:%Y-%m-%d %H:%M:%S} UTC). Nothing was kept; queue the run again.")
        elif run.heartbeat_is_stale(now):
            last = run.heartbeat_at or run.started_at
            reason = (f"The worker {run.worker} sent no heartbeat since {last:%Y-%m-%d %H:%M:%S} UTC "
                      f"(more than {settings.PROVENANT_HEARTBEAT_TIMEOUT_SECONDS:g} s): it was killed or lost.")
        else:
            continue
        if fail_dead_run(run, reason):
            reaped.append(run.pk)
    return reaped


def sweep_scratch_at_worker_start(this_worker: str, also_live=()) -> dict:
    """At worker start: reap the runs that died with the previous worker, then remove every
    scratch directory that no live run owns (nor a job in `also_live`: the audits' job ids, which
    share the scratch root), and record the purge on the runs it belonged to."""
    from training.engine.prepare import scratch_contents, sweep_stale_scratch

    reaped = reap_dead_runs(this_worker)
    root = TrainingRun.scratch_root()
    live = {str(job) for job in TrainingRun.objects.filter(state__in=ACTIVE_RUN_STATES).values_list("job_id", flat=True)}
    live |= {str(job) for job in also_live}
    contents = {p.name: scratch_contents(p) for p in root.iterdir() if p.is_dir() and p.name not in live} if root.exists() else {}
    removed = sweep_stale_scratch(root, live)
    for run in TrainingRun.objects.filter(job_id__in=[name for name in removed if _is_uuid(name)]):
        record_purge(run, {**contents.get(str(run.job_id), {}), "removed": True}, how="swept at worker start")
    return {"reaped": reaped, "swept": removed}


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
