"""Monitoring at the gateway: alerts, and the extraction-attempt detectors that raise them.

`raise_alert` is the one writer of alerts (trail event in the same transaction). `inspect_query`
runs on every logged call at the gateway and raises what it finds:

- a prompt that reproduces a canary's prefix (critical) or the opening of a training record
  (warning; critical once one consumer has reproduced `PROVENANT_OPENING_HITS_CRITICAL` different
  openings within the window), checked against the run's probe index through keyed digests only;
- a burst of near-duplicate prompts from one consumer (`PROVENANT_NEAR_DUPLICATE_COUNT` prompts with
  MinHash Jaccard at least `PROVENANT_NEAR_DUPLICATE_JACCARD` within the window);
- sampling at high temperature in volume (`PROVENANT_HIGH_TEMPERATURE_COUNT` calls at temperature at
  least `PROVENANT_HIGH_TEMPERATURE` within the window).

One alert per consumer, kind and severity within the window (`PROVENANT_MONITOR_WINDOW_SECONDS`):
a burst is one alert, not one per query.

Also here: the query log's retention, the scheduled re-audit of deployed adapters, and the
receiver that suspends a deployment whose adapter's audit no longer passes.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from audits.models import AdapterAudit, AuditOutcome, AuditState
from governance.trail import record_event
from serving.engine import extraction
from serving.models import Alert, AlertKind, AlertSeverity, Deployment, DeploymentState, FlaggedOutputState, QueryRecord
from training.models import ArtifactKind, RunArtifact

log = logging.getLogger(__name__)

DEFAULT_TEMPERATURE = 1.0  # what the model server samples at when the client names none


@transaction.atomic
def raise_alert(deployment: Deployment, kind: str, severity: str, summary: str, *, details: dict | None = None,
                consumer_pseudonym: str = "", key=None, query=None) -> Alert:
    """Record an alert and its trail event (actor: the system). Details hold counts, digests and
    ids, never prompt or output text."""
    alert = Alert.objects.create(deployment=deployment, kind=kind, severity=severity, summary=summary, details=details or {},
                                 consumer_pseudonym=consumer_pseudonym, key=key, query=query)
    record_event(None, f"alert.{'critical' if severity == AlertSeverity.CRITICAL else 'raised'}", alert, summary,
                 {"deployment": deployment.pk, "kind": kind, "severity": severity, "consumer": consumer_pseudonym,
                  "query": getattr(query, "pk", None), **(details or {})})
    return alert


# --------------------------------------------------------------------------- the prompt's signature

_probe_cache: dict[int, extraction.ProbeIndex] = {}  # probe-index artifact id -> index (immutable once stored)
_probe_lock = threading.Lock()


def probe_artifact(run) -> RunArtifact | None:
    return RunArtifact.objects.filter(run=run, kind=ArtifactKind.PROBE_INDEX, deleted_at__isnull=True).order_by("-pk").first()


def probe_index_for(run) -> extraction.ProbeIndex | None:
    """The run's probe index, decrypted once per process; None for a run trained before probe
    indexes existed (or whose index is damaged: logged, and the page says detection is unavailable)."""
    artifact = probe_artifact(run)
    if artifact is None:
        return None
    with _probe_lock:
        cached = _probe_cache.get(artifact.pk)
    if cached is not None:
        return cached
    try:
        index = extraction.ProbeIndex.from_bytes(artifact.read_bytes())
    except extraction.ProbeIndexUnreadable as exc:
        log.error("run %s: %s; extraction probes are not checked for it", run.pk, exc)
        return None
    with _probe_lock:
        _probe_cache[artifact.pk] = index
    return index


def probe_key_for(deployment: Deployment) -> extraction.ProbeKey:
    minhash_key = salted_hmac("provenant.serving.monitoring.minhash", f"deployment:{deployment.pk}", algorithm="sha256").digest()
    return extraction.ProbeKey(minhash_key=minhash_key, index=probe_index_for(deployment.run))


def prompt_signature(prompt: str, deployment: Deployment) -> dict:
    """What the gateway stores of a prompt for the detectors (see serving.engine.extraction)."""
    return extraction.prompt_signature(prompt or "", probe_key_for(deployment))


def probe_detection_note(deployment: Deployment) -> str:
    """For the deployment page: a sentence when prompts cannot be checked against the run's
    records and canaries, "" when they are."""
    if probe_artifact(deployment.run) is not None:
        return ""
    return (f"Probe detection not available for this run: run {deployment.run_id} was trained before the portal kept a probe "
            "index, so prompts that reproduce a canary's prefix or a training record's opening are not detected at this "
            "deployment. Near-duplicate bursts and high-temperature volume are still watched. Retrain the adapter to get it.")


# --------------------------------------------------------------------------- the detectors


def _window() -> timedelta:
    return timedelta(seconds=settings.PROVENANT_MONITOR_WINDOW_SECONDS)


def _already_alerted(record: QueryRecord, kind: str, severity: str) -> bool:
    since = record.created_at - _window()
    return Alert.objects.filter(deployment_id=record.deployment_id, consumer_pseudonym=record.consumer_pseudonym, kind=kind,
                                severity=severity, created_at__gte=since).exists()


def _raise_once(record: QueryRecord, kind: str, severity: str, summary: str, details: dict) -> Alert | None:
    """The alert, unless this consumer raised the same one within the window. The deployment's row
    is locked while checking, so two gateway processes do not both raise it (on PostgreSQL;
    SQLite serialises writers anyway)."""
    with transaction.atomic():
        deployment = Deployment.objects.select_for_update().get(pk=record.deployment_id)
        if _already_alerted(record, kind, severity):
            return None
        return raise_alert(deployment, kind, severity, summary, details=details, consumer_pseudonym=record.consumer_pseudonym,
                           key=record.key, query=record)


def _recent(record: QueryRecord):
    return QueryRecord.objects.filter(deployment_id=record.deployment_id, consumer_pseudonym=record.consumer_pseudonym,
                                      created_at__gte=record.created_at - _window(), created_at__lte=record.created_at)


def _who(record: QueryRecord) -> str:
    return f"consumer {record.consumer_pseudonym[:12]}…" if record.consumer_pseudonym else "an unidentified consumer"


def _check_probes(record: QueryRecord, signature: dict) -> list[Alert]:
    alerts = []
    name = record.deployment.name
    canary_hits = signature.get("canary_prefix_hits") or []
    if canary_hits:
        alert = _raise_once(record, AlertKind.CANARY_PREFIX, AlertSeverity.CRITICAL,
                            f"A prompt to '{name}' from {_who(record)} reproduces the prefix of a canary planted in the "
                            "training data: someone is probing for memorised secrets.",
                            {"digests": canary_hits, "window_seconds": settings.PROVENANT_MONITOR_WINDOW_SECONDS})
        alerts += [alert] if alert else []
    if signature.get("opening_hits"):
        openings = set()
        for earlier in _recent(record).values_list("prompt_signature", flat=True):
            openings.update((earlier or {}).get("opening_hits") or [])
        critical = len(openings) >= settings.PROVENANT_OPENING_HITS_CRITICAL
        severity = AlertSeverity.CRITICAL if critical else AlertSeverity.WARNING
        alert = _raise_once(record, AlertKind.TRAINING_OPENING, severity,
                            f"Prompts to '{name}' from {_who(record)} reproduce the opening words of {len(openings)} training "
                            f"record{'s' if len(openings) != 1 else ''} within {settings.PROVENANT_MONITOR_WINDOW_SECONDS // 60} "
                            "minutes" + (": a systematic extraction attempt." if critical else "."),
                            {"distinct_openings": len(openings), "critical_at": settings.PROVENANT_OPENING_HITS_CRITICAL,
                             "window_seconds": settings.PROVENANT_MONITOR_WINDOW_SECONDS})
        alerts += [alert] if alert else []
    return alerts


def _check_near_duplicates(record: QueryRecord, signature: dict) -> Alert | None:
    minhash = signature.get("minhash")
    if not minhash:
        return None
    scan = settings.PROVENANT_NEAR_DUPLICATE_SCAN
    earlier = [(s or {}).get("minhash") for s in
               _recent(record).exclude(pk=record.pk).order_by("-created_at", "-pk").values_list("prompt_signature", flat=True)[:scan]]
    similar = 1 + extraction.similar_count(minhash, [m for m in earlier if m], settings.PROVENANT_NEAR_DUPLICATE_JACCARD)
    if similar < settings.PROVENANT_NEAR_DUPLICATE_COUNT:
        return None
    return _raise_once(record, AlertKind.NEAR_DUPLICATE_BURST, AlertSeverity.WARNING,
                       f"{_who(record).capitalize()} sent '{record.deployment.name}' {similar} near-duplicate prompts within "
                       f"{settings.PROVENANT_MONITOR_WINDOW_SECONDS // 60} minutes (MinHash similarity at least "
                       f"{settings.PROVENANT_NEAR_DUPLICATE_JACCARD}): a pattern of extraction by repeated variation.",
                       {"similar_prompts": similar, "jaccard_at_least": settings.PROVENANT_NEAR_DUPLICATE_JACCARD,
                        "window_seconds": settings.PROVENANT_MONITOR_WINDOW_SECONDS})


def _check_high_temperature(record: QueryRecord) -> Alert | None:
    hot = settings.PROVENANT_HIGH_TEMPERATURE
    temperature = DEFAULT_TEMPERATURE if record.temperature is None else record.temperature
    if temperature < hot:
        return None
    count = _recent(record).filter(temperature__gte=hot).count()
    if count < settings.PROVENANT_HIGH_TEMPERATURE_COUNT:
        return None
    return _raise_once(record, AlertKind.HIGH_TEMPERATURE_VOLUME, AlertSeverity.WARNING,
                       f"{_who(record).capitalize()} sampled '{record.deployment.name}' {count} times at temperature {hot} or "
                       f"above within {settings.PROVENANT_MONITOR_WINDOW_SECONDS // 60} minutes: many diverse samples are how "
                       "memorised text is mined.",
                       {"calls": count, "temperature_at_least": hot, "window_seconds": settings.PROVENANT_MONITOR_WINDOW_SECONDS})


def inspect_query(record: QueryRecord) -> list[Alert]:
    """The extraction detectors on one logged call; the alerts it raised (none when this consumer
    already has the same alert within the window)."""
    signature = record.prompt_signature or {}
    alerts = _check_probes(record, signature)
    for alert in (_check_near_duplicates(record, signature), _check_high_temperature(record)):
        if alert is not None:
            alerts.append(alert)
    return alerts


# --------------------------------------------------------------------------- retention


@transaction.atomic
def delete_expired_queries(now=None) -> dict:
    """Delete query records older than `PROVENANT_QUERY_LOG_DAYS`. A record whose flagged output
    still awaits the privacy officer's review stays until it is reviewed (the review needs it)."""
    now = now or timezone.now()
    days = settings.PROVENANT_QUERY_LOG_DAYS
    cutoff = now - timedelta(days=days)
    expired = QueryRecord.objects.filter(created_at__lt=cutoff)
    held = expired.filter(flag__state=FlaggedOutputState.OPEN)
    kept = held.count()
    ids = list(expired.exclude(pk__in=held.values("pk")).values_list("pk", flat=True))
    QueryRecord.objects.filter(pk__in=ids).delete()
    outcome = {"deleted": len(ids), "kept_for_review": kept, "older_than": cutoff.isoformat(), "days": days}
    record_event(None, "querylog.expired", "serving.queryrecord",
                 f"Query log retention: {len(ids)} record{'s' if len(ids) != 1 else ''} older than {days} days deleted"
                 + (f"; {kept} kept until their flagged output is reviewed" if kept else ""), outcome)
    return outcome


# --------------------------------------------------------------------------- re-audits


def reaudit_deployed_adapters() -> dict:
    """Queue an audit of every adapter with an active deployment (the beat task's body). An adapter
    already being audited is skipped: that audit's verdict counts."""
    from audits.actions import queue_audit

    queued, skipped = [], []
    runs = {d.run for d in Deployment.objects.filter(state=DeploymentState.ACTIVE).select_related("run")}
    for run in sorted(runs, key=lambda r: r.pk):
        try:
            queue_audit(None, run)
            queued.append(run.pk)
        except ValueError as exc:
            log.warning("scheduled re-audit of run %s not queued: %s", run.pk, exc)
            skipped.append(run.pk)
    return {"queued": queued, "skipped": skipped}


def on_audit_finished(sender, audit: AdapterAudit, **kwargs) -> list[int]:
    """A deployed adapter whose audit no longer passes is suspended at once, with a critical alert
    (receiver of audits.signals.audit_finished, in the transaction of the audit's end). An audit
    that could not complete (its worker died) suspends nothing: a warning says to run it again."""
    from serving.actions import suspend_deployment

    deployments = list(Deployment.objects.filter(run_id=audit.run_id, state=DeploymentState.ACTIVE))
    if not deployments:
        return []
    if audit.state == AuditState.FAILED:
        for deployment in deployments:
            raise_alert(deployment, AlertKind.REAUDIT_FAILED, AlertSeverity.WARNING,
                        f"Audit {audit.pk} of the adapter deployed as '{deployment.name}' could not complete "
                        f"({audit.failure_reason or 'no reason given'}). The deployment stays active on its last verdict; "
                        "run the audit again.", details={"audit": audit.pk, "run": audit.run_id, "state": audit.state})
        return []
    if audit.state != AuditState.COMPLETED or audit.outcome == AuditOutcome.PASS:
        return []
    verdict = "failed" if audit.outcome == AuditOutcome.FAIL else "was inconclusive"
    checks = [c.get("label", c.get("code")) for c in (audit.failed_checks or audit.untested_checks)]
    suspended = []
    for deployment in deployments:
        reason = f"Audit {audit.pk} of its adapter {verdict}" + (f" ({'; '.join(checks)})" if checks else "")
        suspend_deployment(None, deployment, reason)
        raise_alert(deployment, AlertKind.REAUDIT_FAILED, AlertSeverity.CRITICAL,
                    f"'{deployment.name}' was suspended: {reason}. Review the audit; resume it only on new evidence.",
                    details={"audit": audit.pk, "run": audit.run_id, "outcome": audit.outcome, "checks": checks})
        suspended.append(deployment.pk)
    return suspended
