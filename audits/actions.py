"""Every state change of an audit and of an adapter's release. Atomic; each writes its audit event
in the same transaction; Celery work is enqueued on commit."""

from __future__ import annotations


from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audits import signals
from audits.models import ACTIVE_AUDIT_STATES, AdapterAudit, AdapterRelease, AuditOutcome, AuditState, ReleaseDecision
from governance.trail import record_event
from training.models import RunState, TrainingRun


class ReleaseRefused(ValueError):
    """Why an adapter cannot be released (or blocked) now, in a sentence for the privacy officer."""


def default_audit_config() -> dict:
    """The portal's audit settings. Without max_length: an audit scores the tokens the run trained
    on, so the run's own max_length applies (audits.runner.effective_audit_config)."""
    from dataclasses import asdict

    from audits.engine.audit import AuditConfig

    config = asdict(AuditConfig(candidates=settings.PROVENANT_AUDIT_CANDIDATES))
    config.pop("max_length")
    return config


# Who may do what with a run's audits and adapter: the one place each rule lives. Each says why
# not ("" when the user may); the pages show or hide their buttons by it, the actions refuse with it.

def audit_request_refusal(user, run: TrainingRun) -> str:
    if run.created_by_id == user.pk or user.has_perm("audits.release_adapter"):
        return ""
    return "Only the run's engineer or the privacy officer queues an audit of its adapter."


def download_refusal(user, run: TrainingRun) -> str:
    if not (run.created_by_id == user.pk or user.has_perm("audits.release_adapter")):
        return "Only the run's engineer or the privacy officer downloads its adapter."
    if not adapter_is_released(run):
        return "The adapter is downloadable only once the privacy officer has released it."
    return ""


@transaction.atomic
def queue_audit(actor, run: TrainingRun, *, config: dict | None = None, enqueue: bool = True) -> AdapterAudit:
    """Queue the attacks against a trained run's adapter (after training, or again on demand;
    `actor` None: the portal itself, after training)."""
    if actor is not None and (refusal := audit_request_refusal(actor, run)):
        raise PermissionError(refusal)
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    if run.state != RunState.SUCCEEDED:
        raise ValueError(f"Run {run.pk} has no adapter to audit ({run.get_state_display().lower()}).")
    if run.audits.filter(state__in=ACTIVE_AUDIT_STATES).exists():
        raise ValueError(f"An audit of run {run.pk} is already queued or running.")
    if config and "max_length" in config:
        raise ValueError("An audit scores the tokens the run trained on: its max_length is the run's, not an audit setting.")
    config = config or {**default_audit_config(), **(run.config.get("audit") or {})}  # the run's own overrides, if any
    config.pop("max_length", None)  # a run stored before it was refused as an audit setting
    item = AdapterAudit.objects.create(run=run, requested_by=actor, config=config)
    who = f"{actor} queued" if actor else "Queued after training:"
    record_event(actor, "adapteraudit.queued", item, f"{who} audit {item.pk} of run {run.pk}", {"run": run.pk, "config": item.config})
    if enqueue:
        transaction.on_commit(lambda: enqueue_audit(item))
    return item


def enqueue_audit(item: AdapterAudit) -> None:
    # By the task's name: the task module imports the runner, which imports this module.
    from celery import current_app

    # On the run's own compute target: the audit decrypts its adapter and records there too.
    result = current_app.send_task("audits.tasks.run_adapter_audit", args=[item.pk], queue=item.run.celery_queue)
    AdapterAudit.objects.filter(pk=item.pk).update(celery_task_id=result.id)


@transaction.atomic
def mark_audit_started(item: AdapterAudit, worker: str) -> bool:
    item = AdapterAudit.objects.select_for_update().get(pk=item.pk)
    if item.state != AuditState.QUEUED:
        return False  # a redelivered message, or already reaped
    item.state, item.worker, item.started_at, item.phase = AuditState.RUNNING, worker[:200], timezone.now(), "starting"
    item.save()
    record_event(None, "adapteraudit.started", item, f"Audit {item.pk} of run {item.run_id} started on {worker}", {"worker": worker})
    return True


def record_audit_progress(item: AdapterAudit, **values) -> None:
    """Telemetry, not a decision: not an audit event."""
    AdapterAudit.objects.filter(pk=item.pk, state=AuditState.RUNNING).update(**values)


@transaction.atomic
def finish_audit(item: AdapterAudit, *, report: dict, verdict: dict, thresholds: dict, charts: dict) -> AdapterAudit:
    item = AdapterAudit.objects.select_for_update().get(pk=item.pk)
    if item.state != AuditState.RUNNING:
        return item
    item.state, item.finished_at, item.phase = AuditState.COMPLETED, timezone.now(), "completed"
    item.report, item.verdict, item.thresholds, item.charts = report, verdict, thresholds, charts
    item.save()  # sets outcome and passed from the verdict
    if item.outcome == AuditOutcome.PASS:
        summary = f"Audit {item.pk} of run {item.run_id}: passed"
    elif item.outcome == AuditOutcome.FAIL:
        summary = f"Audit {item.pk} of run {item.run_id}: failed ({', '.join(c['code'] for c in item.failed_checks)})"
    else:
        summary = f"Audit {item.pk} of run {item.run_id}: inconclusive (not tested: {', '.join(c['code'] for c in item.untested_checks)})"
    record_event(None, "adapteraudit.completed", item, summary[:500],
                 {"outcome": item.outcome, "passed": item.passed,
                 "checks": [{k: c.get(k) for k in ("code", "value", "limit", "outcome", "passed")} for c in verdict.get("checks", [])],
                 "thresholds": thresholds})
    signals.audit_finished.send(sender=AdapterAudit, audit=item)  # the workflow drafts the card and the pack
    return item


@transaction.atomic
def fail_audit(item: AdapterAudit, reason: str) -> AdapterAudit:
    item = AdapterAudit.objects.select_for_update().get(pk=item.pk)
    if item.state not in ACTIVE_AUDIT_STATES:
        return item
    item.state, item.finished_at, item.failure_reason, item.phase = AuditState.FAILED, timezone.now(), reason, "failed"
    item.save()
    record_event(None, "adapteraudit.failed", item, f"Audit {item.pk} of run {item.run_id} failed: {reason}"[:500], {"reason": reason})
    signals.audit_finished.send(sender=AdapterAudit, audit=item)  # the request shows that its audit failed
    return item


@transaction.atomic
def record_audit_purge(item: AdapterAudit, report: dict) -> None:
    AdapterAudit.objects.filter(pk=item.pk).update(purged_at=timezone.now())
    record_event(None, "adapteraudit.purged", item, f"Plaintext scratch of audit {item.pk} removed", report)


def reap_dead_audits(this_worker: str | None, now=None) -> list[int]:
    """At worker start: audits this worker node was running cannot be running any more, and an
    audit running longer than the task's hard time limit lost its worker, wherever it ran."""
    from datetime import timedelta

    from django.conf import settings

    now = now or timezone.now()
    reaped = []
    for item in AdapterAudit.objects.filter(state=AuditState.RUNNING):
        if this_worker and item.worker == this_worker:
            reason = f"The worker {this_worker} stopped while the audit was in progress (killed or crashed). Run the audit again."
        elif item.started_at and now - item.started_at > timedelta(seconds=settings.PROVENANT_AUDIT_TIME_LIMIT + 300):
            reason = (f"The audit has been running on {item.worker} for longer than the time limit "
                      f"({settings.PROVENANT_AUDIT_TIME_LIMIT} s): its worker was lost. Run the audit again.")
        else:
            continue
        fail_audit(item, reason)
        reaped.append(item.pk)
    return reaped


def _latest_completed_audit(run: TrainingRun) -> AdapterAudit:
    item = AdapterAudit.latest_completed(run)
    if item is None:
        raise ReleaseRefused("The adapter has no completed audit yet: it can be released or blocked only on an audit's evidence.")
    return item


@transaction.atomic
def release_adapter(actor, run: TrainingRun, justification: str = "") -> AdapterRelease:
    """Release on the latest completed audit. An audit that did not pass (failed, or inconclusive
    because a required check did not run) can be overridden only with a written justification,
    which the audit trail keeps."""
    if not actor.has_perm("audits.release_adapter"):
        raise PermissionError("Only the privacy officer releases adapters.")
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    item = _latest_completed_audit(run)
    justification = (justification or "").strip()
    override = item.outcome != AuditOutcome.PASS
    if override and len(justification) < AdapterRelease.MIN_JUSTIFICATION:
        raise ReleaseRefused(f"{why_not_passed(item)} Releasing anyway is an override: write a justification of at least "
                             f"{AdapterRelease.MIN_JUSTIFICATION} characters saying why the risk is acceptable.")
    decision = AdapterRelease.objects.create(run=run, audit=item, decision=ReleaseDecision.RELEASED, override=override,
                                             justification=justification, decided_by=actor)
    verb = f"released, overriding an audit that {'failed' if item.outcome == AuditOutcome.FAIL else 'was inconclusive'}," \
        if override else "released"
    record_event(actor, "adapter.released", decision, f"{actor} {verb} the adapter of run {run.pk} (audit {item.pk})",
                 {"run": run.pk, "audit": item.pk, "audit_outcome": item.outcome, "audit_passed": item.passed, "override": override,
                 "justification": justification,
                 "adapter": {a.name: a.sha256 for a in run.artifacts.filter(kind="adapter", deleted_at__isnull=True)}})
    signals.release_decided.send(sender=AdapterRelease, run=run, decision=decision)
    return decision


def why_not_passed(item: AdapterAudit) -> str:
    """Why an audit did not pass, naming the checks, in a sentence for the privacy officer."""
    if item.outcome == AuditOutcome.FAIL:
        return f"The audit failed ({', '.join(c['label'] for c in item.failed_checks) or 'the verdict'})."
    untested = "; ".join(c["label"] for c in item.untested_checks) or "a required check"
    return (f"The audit is inconclusive: these checks were not tested, so it cannot pass: {untested}. A check that did "
            "not run is no evidence that the adapter is safe.")


@transaction.atomic
def block_adapter(actor, run: TrainingRun, reason: str) -> AdapterRelease:
    if not actor.has_perm("audits.release_adapter"):
        raise PermissionError("Only the privacy officer blocks adapters.")
    reason = (reason or "").strip()
    if not reason:
        raise ReleaseRefused("Say why the adapter is blocked: the engineer reads it.")
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    item = _latest_completed_audit(run)
    decision = AdapterRelease.objects.create(run=run, audit=item, decision=ReleaseDecision.BLOCKED, justification=reason,
                                             decided_by=actor)
    record_event(actor, "adapter.blocked", decision, f"{actor} blocked the adapter of run {run.pk} (audit {item.pk})",
                 {"run": run.pk, "audit": item.pk, "audit_outcome": item.outcome, "audit_passed": item.passed, "reason": reason})
    signals.release_decided.send(sender=AdapterRelease, run=run, decision=decision)
    return decision


def adapter_is_released(run: TrainingRun) -> bool:
    latest = AdapterRelease.latest_for(run)
    return latest is not None and latest.decision == ReleaseDecision.RELEASED


@transaction.atomic  # the trail writer refuses to write outside a transaction (a 500 on the real path)
def record_adapter_download(actor, run: TrainingRun) -> None:
    if refusal := download_refusal(actor, run):
        raise PermissionError(refusal)
    record_event(actor, "adapter.downloaded", run, f"{actor} downloaded the adapter of run {run.pk}",
                 {"run": run.pk, "adapter": {a.name: a.sha256 for a in run.artifacts.filter(kind="adapter", deleted_at__isnull=True)}})
