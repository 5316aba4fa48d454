"""Every reaction of the story, in one place. The apps below announce what happened (their
`signals.py`); this module decides what follows:

    dataset classified     -> requests naming it that await approval go back to draft
    run changed            -> the request follows the run; a run that trained queues its audit
    audit finished         -> the request follows; once committed, the model card is drafted and a
                              first evidence pack built
    release decided        -> the request follows (released or blocked)

Receivers run inside the transaction of the change they react to; work for a worker is enqueued
with `transaction.on_commit` by the actions they call. `RECEIVERS` lists every connection, and a
test checks each signal has its receiver and each terminal state reaches the request.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audits import signals as audit_signals
from audits.models import AdapterAudit, AdapterRelease, AuditState, ReleaseDecision
from governance import signals as governance_signals
from governance.models import Dataset
from governance.trail import record_event
from training import signals as training_signals
from training.models import RunState, TrainingRun
from workflow.models import RequestState, TrainingRequest

log = logging.getLogger(__name__)

# What the request shows once its run exists: it follows the run, its audit and the release.
_RUN_TO_REQUEST = {RunState.QUEUED: RequestState.QUEUED, RunState.RUNNING: RequestState.RUNNING,
                   RunState.FAILED: RequestState.FAILED, RunState.CANCELLED: RequestState.CANCELLED}


def request_state_for(run: TrainingRun, current: str) -> str:
    """The state a dispatched request shows for its run, the run's latest audit and release."""
    if run.state != RunState.SUCCEEDED:
        return _RUN_TO_REQUEST.get(run.state, current)
    release = AdapterRelease.latest_for(run)
    if release is not None:
        return RequestState.RELEASED if release.decision == ReleaseDecision.RELEASED else RequestState.BLOCKED
    if run.audits.filter(state=AuditState.COMPLETED).exists():
        return RequestState.AUDITED
    latest = run.audits.order_by("-created_at", "-pk").first()
    if latest is not None and latest.state == AuditState.FAILED:
        return RequestState.AUDIT_FAILED
    return RequestState.RUNNING  # trained; its audit runs next


def follow_run(run: TrainingRun) -> None:
    """Bring a dispatched request's state in line with its run, audit and release decision."""
    request = TrainingRequest.objects.filter(run=run).first()
    if request is None:
        return
    state = request_state_for(run, request.state)
    if state != request.state:
        TrainingRequest.objects.filter(pk=request.pk).update(state=state, updated_at=timezone.now())
        record_event(None, "trainingrequest.state_changed", request,
                     f"Training request “{request}” is now {RequestState(state).label.lower()}",
                     {"from": request.state, "to": state, "run": run.pk})


def reopen_requests_naming(sender, dataset: Dataset, reason: str, **kwargs) -> None:
    """Requests not yet dispatched go back to draft, their approvals voided; a dispatched one is
    held to the new classes when its job starts (policy runs again there)."""
    from workflow.actions import void_approvals

    waiting = (RequestState.SUBMITTED, RequestState.IN_REVIEW, RequestState.APPROVED)
    for request in TrainingRequest.objects.select_for_update().filter(datasets=dataset, state__in=waiting, run__isnull=True):
        voided = void_approvals(request, reason)
        request.state, request.content_hash, request.findings, request.updated_at = RequestState.DRAFT, "", [], timezone.now()
        request.save()
        record_event(None, "trainingrequest.reopened", request, f"Training request “{request}” is back to draft: {reason}"
                     + (f"; {voided} approval(s) voided" if voided else ""), {"reason": reason, "voided_approvals": voided})


def on_run_changed(sender, run: TrainingRun, **kwargs) -> None:
    follow_run(run)
    if run.state == RunState.SUCCEEDED and settings.PROVENANT_AUDIT_AFTER_TRAINING and not run.audits.exists():
        from audits.actions import queue_audit

        try:  # its own savepoint: a refusal leaves the run's success standing
            queue_audit(None, run)  # the audit runs as its own task on `gpu`, from the encrypted artifacts
        except ValueError as exc:
            log.warning("run %s trained but its audit was not queued: %s", run.pk, exc)


def on_audit_finished(sender, audit: AdapterAudit, **kwargs) -> None:
    follow_run(audit.run)
    if audit.state == AuditState.COMPLETED:
        # Once this commits: the model card is drafted (or its figures refreshed) from the completed
        # audit, then a first evidence pack is built. A failure there must not undo the audit's result.
        run_id = audit.run_id
        transaction.on_commit(lambda: after_audit(run_id), robust=True)


def after_audit(run_id: int) -> None:
    from workflow.actions import build_pack, draft_model_card

    run = TrainingRun.objects.get(pk=run_id)
    draft_model_card(run)
    if settings.PROVENANT_PACK_AFTER_AUDIT:
        build_pack(None, run)


def on_release_decided(sender, run: TrainingRun, **kwargs) -> None:
    follow_run(run)


RECEIVERS = (
    (governance_signals.dataset_classified, reopen_requests_naming),
    (training_signals.run_changed, on_run_changed),
    (audit_signals.audit_finished, on_audit_finished),
    (audit_signals.release_decided, on_release_decided),
)


def connect() -> None:
    for signal, receiver in RECEIVERS:
        signal.connect(receiver, dispatch_uid=f"workflow.lifecycle.{receiver.__name__}")


def start_check(run: TrainingRun) -> list[str]:
    """Policy again when the job starts (a DPA may have lapsed since approval): the whole policy
    for a run from a request; the data rules for one created without (tests, benchmarks)."""
    from workflow import policy

    request = TrainingRequest.objects.filter(run=run).first()
    findings = policy.findings_for(request, at_start=True) if request is not None else policy.findings_for_run(run)
    return [f.message for f in findings if f.severity == "blocker"]


def request_audit_limits(run: TrainingRun) -> list[tuple[str, float, str]]:
    """A request's own audit limits, for the verdict (registered in audits.runner.TIGHTER_LIMITS)."""
    request = TrainingRequest.objects.filter(run=run).first()
    if request is None:
        return []
    return [(name, value, f"training request “{request}”") for name, value in (request.audit_thresholds or {}).items()]
