"""Every state change of an incident and of the alerts it grows from. Atomic (but for key
rotations, which commit their own transactions); each writes its trail event naming the incident,
so the incident's timeline is the trail. Only the privacy officer acts (`incidents.access`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from audits.actions import ReleaseRefused, adapter_is_released, block_adapter
from governance.trail import record_event
from incidents.access import may_respond
from incidents.models import Incident, IncidentSeverity, IncidentState
from serving import actions as serving_actions
from serving.models import Alert, Deployment, DeploymentState


class IncidentRefused(ValueError):
    """Why an incident action cannot be taken now, in a sentence for the privacy officer."""


CONTAINMENTS = {"suspend": "suspended", "retire": "retired"}


def _require(actor, what: str) -> None:
    if not may_respond(actor):
        raise PermissionError(f"Only the privacy officer {what}.")


def _locked(incident: Incident) -> Incident:
    return Incident.objects.select_for_update().get(pk=incident.pk)


def _open_only(incident: Incident, what: str) -> None:
    if incident.state == IncidentState.CLOSED:
        raise IncidentRefused(f"Incident {incident.pk} is closed: it cannot {what}. Open a new incident if it is not over.")


def _mark_contained(incident: Incident) -> None:
    if incident.state == IncidentState.OPEN:
        incident.state, incident.contained_at = IncidentState.CONTAINED, timezone.now()
        incident.save(update_fields=["state", "contained_at"])


# --------------------------------------------------------------------------- alerts


@transaction.atomic
def acknowledge_alert(actor, alert: Alert, note: str = "") -> Alert:
    """The privacy officer has seen the alert: it leaves the dashboard. The trail keeps who and when."""
    _require(actor, "acknowledges alerts")
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    if alert.acknowledged_at is not None:
        raise IncidentRefused(f"Alert {alert.pk} was acknowledged already by {alert.acknowledged_by} on "
                              f"{alert.acknowledged_at:%Y-%m-%d %H:%M} UTC.")
    alert.acknowledged_at, alert.acknowledged_by = timezone.now(), actor
    alert.save(update_fields=["acknowledged_at", "acknowledged_by"])
    note = (note or "").strip()
    record_event(actor, "alert.acknowledged", alert, f"{actor} acknowledged alert {alert.pk} on '{alert.deployment.name}'"
                 + (f": {note}" if note else ""), {"deployment": alert.deployment_id, "kind": alert.kind, "note": note})
    return alert


# --------------------------------------------------------------------------- the incident


@transaction.atomic
def open_incident(actor, title: str, severity: str, alerts=(), deployments=(), description: str = "") -> Incident:
    """Open an incident, by hand or from alerts. The alerts' deployments are affected too; the
    alerts are acknowledged by the opening (they are now handled in the incident)."""
    _require(actor, "opens incidents")
    title = (title or "").strip()
    if not title:
        raise IncidentRefused("Give the incident a title: it names the incident on every page and in the notification.")
    if len(title) > 200:
        raise IncidentRefused("The title is at most 200 characters long; put the rest in the description.")
    if severity not in IncidentSeverity.values:
        raise IncidentRefused(f"The severity must be one of {', '.join(IncidentSeverity.values)}, got '{severity}'.")
    alerts = list(Alert.objects.select_for_update().filter(pk__in=[a.pk for a in alerts]).select_related("deployment"))
    affected = {d.pk: d for d in deployments} | {a.deployment_id: a.deployment for a in alerts}
    incident = Incident.objects.create(title=title, severity=severity, description=(description or "").strip(), opened_by=actor)
    incident.alerts.set(alerts)
    incident.deployments.set(list(affected.values()))
    now = timezone.now()
    for alert in alerts:
        if alert.acknowledged_at is None:
            alert.acknowledged_at, alert.acknowledged_by = now, actor
            alert.save(update_fields=["acknowledged_at", "acknowledged_by"])
    record_event(actor, "incident.opened", incident, f"{actor} opened incident {incident.pk} ({severity}): {title}"[:500],
                 {"severity": severity, "alerts": sorted(a.pk for a in alerts), "deployments": sorted(affected)})
    return incident


@transaction.atomic
def add_deployment(actor, incident: Incident, deployment: Deployment) -> Incident:
    _require(actor, "changes incidents")
    incident = _locked(incident)
    _open_only(incident, "take in another deployment")
    incident.deployments.add(deployment)
    record_event(actor, "incident.deployment_added", incident, f"{actor} added deployment '{deployment.name}' to incident "
                 f"{incident.pk}", {"deployment": deployment.pk})
    return incident


@transaction.atomic
def contain_deployment(actor, incident: Incident, deployment: Deployment, how: str = "suspend") -> dict:
    """One button: suspend (or retire) the deployment and revoke every key it has, at once. The
    deployment stops answering with its state; the keys are revoked so that resuming it later does
    not bring back the keys that may have leaked."""
    _require(actor, "contains incidents")
    if how not in CONTAINMENTS:
        raise IncidentRefused(f"Containment is one of {', '.join(CONTAINMENTS)}, got '{how}'.")
    incident = _locked(incident)
    _open_only(incident, "take containment actions")
    if not incident.deployments.filter(pk=deployment.pk).exists():
        raise IncidentRefused(f"Deployment '{deployment.name}' is not affected by incident {incident.pk}: add it first.")
    deployment = Deployment.objects.select_for_update().get(pk=deployment.pk)
    reason = f"Incident {incident.pk}: {incident.title}"
    before = deployment.state
    revoked = list(deployment.keys.filter(revoked_at__isnull=True).values_list("prefix", flat=True))
    if how == "retire":
        if before == DeploymentState.RETIRED:
            raise IncidentRefused(f"Deployment '{deployment.name}' is retired already.")
        serving_actions.retire_deployment(actor, deployment, reason)
    elif before == DeploymentState.ACTIVE:
        serving_actions.suspend_deployment(actor, deployment, reason)
    for key in deployment.keys.filter(revoked_at__isnull=True):  # retiring revoked them already; suspending did not
        serving_actions.revoke_consumer_key(actor, key, reason)
    deployment.refresh_from_db()
    if before == deployment.state and not revoked:
        raise IncidentRefused(f"Deployment '{deployment.name}' is {deployment.get_state_display().lower()} with no key left to "
                              "revoke: nothing to contain there.")
    _mark_contained(incident)
    outcome = {"deployment": deployment.pk, "from": before, "to": deployment.state, "keys_revoked": revoked}
    record_event(actor, "incident.deployment_contained", incident,
                 f"{actor} contained '{deployment.name}' for incident {incident.pk}: {deployment.get_state_display().lower()}, "
                 f"{len(revoked)} key{'s' if len(revoked) != 1 else ''} revoked", outcome)
    return outcome


@transaction.atomic
def revoke_release(actor, incident: Incident, run) -> object:
    """Block the adapter (a BLOCKED decision on its latest audit, the incident as the reason); the
    serving app suspends its active deployments as it does for any block."""
    _require(actor, "revokes releases")
    incident = _locked(incident)
    _open_only(incident, "revoke releases")
    if not incident.runs().filter(pk=run.pk).exists():
        raise IncidentRefused(f"Run {run.pk} has no deployment affected by incident {incident.pk}.")
    if not adapter_is_released(run):
        raise IncidentRefused(f"The adapter of run {run.pk} is not released (blocked already, or never released).")
    try:
        decision = block_adapter(actor, run, f"Incident {incident.pk}: {incident.title}")
    except ReleaseRefused as exc:
        raise IncidentRefused(str(exc)) from None
    _mark_contained(incident)
    record_event(actor, "incident.release_revoked", incident, f"{actor} revoked the release of run {run.pk} for incident "
                 f"{incident.pk}", {"run": run.pk, "decision": decision.pk})
    return decision


def rotate_master_key(actor, incident: Incident, reason: str = ""):
    """Rotate the portal's master key (governance.key_rotation: a new keyset version, every wrapped
    key re-wrapped, the old version disabled), then note it in the incident. Not inside a
    transaction: the rotation commits its own and writes the key file after."""
    from governance.key_rotation import rotate_master_key as rotate

    _require(actor, "rotates keys for an incident")
    _open_only(incident, "rotate keys")
    result = rotate(actor, _rotation_reason(incident, reason))
    _after_rotation(actor, incident, "master", {"old_key_ids": list(result.old_key_ids), "new_key_id": result.new_key_id})
    return result


def rotate_signing_key(actor, incident: Incident, reason: str = ""):
    """A new Ed25519 signing key (governance.signing_keys); the old one stays in the history with
    its period, so the packs it signed still verify."""
    from governance.signing_keys import rotate_signing_key as rotate

    _require(actor, "rotates keys for an incident")
    _open_only(incident, "rotate keys")
    result = rotate(actor, _rotation_reason(incident, reason))
    _after_rotation(actor, incident, "signing", {"old_fingerprint": result.old_fingerprint,
                                                 "new_fingerprint": result.new_fingerprint})
    return result


def _rotation_reason(incident: Incident, reason: str) -> str:
    return f"Incident {incident.pk}: {incident.title}" + (f" — {reason.strip()}" if (reason or "").strip() else "")


@transaction.atomic
def _after_rotation(actor, incident: Incident, which: str, payload: dict) -> None:
    incident = _locked(incident)
    _mark_contained(incident)
    record_event(actor, f"incident.{which}_key_rotated", incident, f"{actor} rotated the {which} key for incident {incident.pk}",
                 payload)


@transaction.atomic
def save_notification(actor, incident: Incident, text: str) -> Incident:
    """Keep the (edited) notification draft. The trail records its SHA-256 and length, so the text
    sent can be matched later."""
    _require(actor, "drafts notifications")
    incident = _locked(incident)
    text = (text or "").strip()
    if not text:
        raise IncidentRefused("The notification is empty: start from the draft the portal writes from the record.")
    incident.notification_draft, incident.notification_updated_at = text, timezone.now()
    incident.save(update_fields=["notification_draft", "notification_updated_at"])
    record_event(actor, "incident.notification_saved", incident, f"{actor} saved the notification draft of incident {incident.pk}",
                 {"sha256": hashlib.sha256(text.encode()).hexdigest(), "characters": len(text)})
    return incident


@transaction.atomic
def close_incident(actor, incident: Incident, post_mortem: str) -> Incident:
    """Close with a written post-mortem (what happened, why, what changes)."""
    _require(actor, "closes incidents")
    incident = _locked(incident)
    _open_only(incident, "be closed again")
    post_mortem = (post_mortem or "").strip()
    if len(post_mortem) < Incident.MIN_POST_MORTEM:
        raise IncidentRefused(f"Write the post-mortem before closing, at least {Incident.MIN_POST_MORTEM} characters: what "
                              "happened, how it was found and contained, its impact, and what changes so it does not recur.")
    incident.state, incident.post_mortem, incident.closed_at, incident.closed_by = (IncidentState.CLOSED, post_mortem,
                                                                                     timezone.now(), actor)
    incident.save(update_fields=["state", "post_mortem", "closed_at", "closed_by"])
    record_event(actor, "incident.closed", incident, f"{actor} closed incident {incident.pk}", {"post_mortem": post_mortem})
    return incident


# --------------------------------------------------------------------------- impact and notification


@dataclass
class Impact:
    """Who and what the incident may touch, from the records (read only)."""

    runs: list = field(default_factory=list)  # one dict per affected run
    datasets: list = field(default_factory=list)  # one dict per dataset of those runs
    records: int = 0  # records of those datasets (an upper bound of what trained)
    subjects: int | None = None  # data subjects, when every run counted them (subject-level DP)
    subjects_note: str = ""
    data_categories: list = field(default_factory=list)
    regulations: list = field(default_factory=list)
    data_subject_categories: list = field(default_factory=list)  # the "customers": from the DPAs
    sources: list = field(default_factory=list)
    breach_notification_hours: int | None = None  # the shortest a processor's DPA promises


def impact(incident: Incident) -> Impact:
    """The datasets of the affected runs, the data subjects' counts, and the customers affected.

    The portal keeps no customer list. "Customers affected" is what the records say about whose data
    it is: the categories of data subjects in the processing agreements that covered the runs'
    compute, the data categories and regulations of the datasets' data classes, and the systems the
    datasets came from (their source)."""
    from governance.models import DataCategory, Regulation
    from workflow.models import TrainingRequest

    result = Impact()
    seen_datasets, categories, regulations, subject_categories, sources = {}, set(), set(), [], set()
    subjects_known = True
    subject_total = 0
    for run in incident.runs().prefetch_related("datasets__data_classes"):
        datasets = list(run.datasets.all())
        run_subjects = (run.result or {}).get("subjects")
        trained = ((run.manifest or {}).get("records") or {}).get("train")
        result.runs.append({"run": run, "subjects": run_subjects, "trained_records": trained,
                            "deployments": [d for d in incident.deployments.all() if d.run_id == run.pk]})
        if run_subjects is None:
            subjects_known = False
        else:
            subject_total += int(run_subjects)
        for dataset in datasets:
            seen_datasets.setdefault(dataset.pk, dataset)
            sources.add(dataset.source)
            for data_class in dataset.data_classes.all():
                categories.update(data_class.categories)
                regulations.update(data_class.regulations)
        request = TrainingRequest.objects.select_related("compute_target__dpa").filter(run=run).first()
        dpa = request.compute_target.dpa if request is not None and request.compute_target_id else None
        if dpa is not None:
            if dpa.data_subject_categories and dpa.data_subject_categories not in subject_categories:
                subject_categories.append(dpa.data_subject_categories)
            if dpa.breach_notification_hours:
                hours = result.breach_notification_hours
                result.breach_notification_hours = min(hours, dpa.breach_notification_hours) if hours else dpa.breach_notification_hours
    result.datasets = [{"dataset": d, "records": d.record_count, "classes": [c.name for c in d.data_classes.all()]}
                       for d in sorted(seen_datasets.values(), key=lambda d: d.pk)]
    result.records = sum(d.record_count for d in seen_datasets.values())
    if result.runs and subjects_known:
        result.subjects = subject_total
        result.subjects_note = "counted by the runs (subject-level privacy), summed over runs: a person in two runs counts twice"
    else:
        result.subjects_note = (f"not counted (the runs trained per record): at most {result.records}, one per record, "
                                "and fewer where one person has several records")
    result.data_categories = sorted(DataCategory(c).label if c in DataCategory.values else c for c in categories)
    result.regulations = sorted(Regulation(r).label if r in Regulation.values else r for r in regulations)
    result.data_subject_categories = subject_categories
    result.sources = sorted(s for s in sources if s)
    return result


def draft_notification(incident: Incident, actor=None) -> str:
    """A first draft of the supervisory authority notification (GDPR Art. 33(3)), filled from the
    record; the privacy officer edits it before it is sent."""
    facts = impact(incident)
    alerts = list(incident.alerts.all())
    deployments = list(incident.deployments.all())
    measures = _measures_taken(incident)
    subjects = (f"{facts.subjects}" if facts.subjects is not None else f"not known exactly; at most {facts.records}") \
        if facts.runs else "not known"
    contact = ""
    who = actor or incident.opened_by
    if who is not None:
        contact = f"{who.get_full_name() or who.username} <{who.email}>" if who.email else (who.get_full_name() or who.username)
    lines = [
        f"Personal data breach notification — incident {incident.pk}: {incident.title}",
        f"Severity (internal): {incident.get_severity_display()}. Opened {incident.opened_at:%Y-%m-%d %H:%M} UTC.",
        "",
        "1. Nature of the breach (Art. 33(3)(a))",
        (f"A fine-tuned language model served as {', '.join(repr(d.name) for d in deployments) or '(no deployment named)'} "
         "may have disclosed personal data from its training records to a caller of its inference endpoint."),
        *(f"   - Alert {a.pk} ({a.created_at:%Y-%m-%d %H:%M} UTC): {a.summary}" for a in alerts),
        *( [f"   {incident.description}"] if incident.description else []),
        "",
        "2. Categories and approximate numbers of data subjects and records (Art. 33(3)(a))",
        f"   Data subjects: {subjects}.",
        f"   Categories of data subjects: {'; '.join(facts.data_subject_categories) or 'not recorded in the processing agreements'}.",
        f"   Records: {facts.records} in {len(facts.datasets)} dataset(s): "
        + (", ".join(f"{d['dataset'].name} ({d['records']})" for d in facts.datasets) or "none") + ".",
        f"   Categories of personal data: {', '.join(facts.data_categories) or 'not classified'}; "
        f"regulations: {', '.join(facts.regulations) or 'none recorded'}.",
        "",
        "3. Contact point (Art. 33(3)(b))",
        f"   {contact or '[name and contact details of the data protection officer]'}",
        "",
        "4. Likely consequences (Art. 33(3)(c))",
        "   [Assess: which personal data could have been disclosed, to whom, and the risk to the people concerned. "
        "The models were trained with differential privacy and audited for memorisation; see the evidence pack.]",
        "",
        "5. Measures taken or proposed (Art. 33(3)(d))",
        *(f"   - {m}" for m in measures or ["[none recorded yet]"]),
        "",
        ("Processor commitments: the shortest breach notification period in the processing agreements is "
         f"{facts.breach_notification_hours} hours." if facts.breach_notification_hours else ""),
        "Notify the supervisory authority within 72 hours of becoming aware of the breach (Art. 33(1)); give reasons for any delay.",
    ]
    return "\n".join(line for line in lines if line is not None).strip() + "\n"


def _measures_taken(incident: Incident) -> list[str]:
    from governance.models import AuditEvent

    events = AuditEvent.objects.filter(object_type="incidents.incident", object_id=str(incident.pk)).exclude(
        action__in=["incident.opened", "incident.notification_saved", "incident.pack_built"]).order_by("sequence")
    return [f"{e.occurred_at:%Y-%m-%d %H:%M} UTC: {e.summary}" for e in events]


# --------------------------------------------------------------------------- the evidence pack


def build_incident_pack(actor, incident: Incident):
    """Render and sign the pack (outside the transaction: a PDF takes seconds), store it encrypted,
    then record it and its trail event."""
    from incidents import evidence
    from incidents.models import IncidentPack

    _require(actor, "builds incident packs")
    rendered = evidence.render_pack(incident)
    blob_id, wrapped = evidence.store_zip(rendered.zip_bytes)
    digest = hashlib.sha256(rendered.zip_bytes).hexdigest()
    with transaction.atomic():
        pack = IncidentPack.objects.create(incident=incident, created_by=actor, sha256=digest, size_bytes=len(rendered.zip_bytes),
                                           blob_id=blob_id, wrapped_key=wrapped, manifest=rendered.manifest,
                                           signature=rendered.signature_hex, public_key_fingerprint=rendered.fingerprint)
        record_event(actor, "incident.pack_built", incident, f"{actor} built evidence pack {pack.pk} of incident {incident.pk}",
                     {"pack": pack.pk, "sha256": digest, "files": rendered.manifest["files"],
                      "public_key_sha256": rendered.fingerprint})
    return pack


@transaction.atomic
def record_pack_download(actor, pack) -> None:
    record_event(actor, "incident.pack_downloaded", pack.incident, f"{actor} downloaded evidence pack {pack.pk} of incident "
                 f"{pack.incident_id}", {"pack": pack.pk, "sha256": pack.sha256})
