"""Evidence packs: everything a regulator needs about one run, as a signed zip.

    report.pdf      WeasyPrint render of templates/audits/pack/report.html (print CSS, page numbers,
                    repeated table headers); every field a user typed goes through Django's autoescape
    results.json    the same facts, machine-readable, with the audit-trail excerpt and its hashes
    public_key.pem  the portal's Ed25519 public key
    README.txt      how to verify
    manifest.json   canonical JSON {"files": {name: sha256}, "created", "run", "audit", "portal", "format", ...}
    signature.sig   Ed25519 over the bytes of manifest.json, 128 hex characters and a newline

The same inputs give the same manifest (and the same zip): "created" is the time of the newest
input (the last audit event about the run, its audit, its request...), never the time of the
build; the PDF's dates come from it too, and WeasyPrint writes no random identifier. Verification
is `audits.verify` (standard library and `cryptography` only).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import time
import zipfile
from dataclasses import dataclass


from audits import verify
from audits.models import AdapterAudit, AdapterRelease, EvidencePack
from governance.models import Attestation, AttestationKind, AuditEvent, DataCategory, DataProcessingAgreement, FineTuningUse, LawfulBasis, Regulation, Tier
from workflow.models import Adversary, Approval, Audience, MODEL_CARD_SECTIONS, ModelCard, RequestState, TrainingRequest
from governance.keys import blob_store, master_key, public_key_fingerprint, public_key_pem, signing_key
from training.models import ArtifactKind, TrainingRun
from workflow.evidence_pdf import REGULATORY_MAP, SECTIONS, TITLES, portal_facts, render_pdf, trail_entries  # noqa: F401 - the pack's API

FORMAT = verify.FORMAT
MAX_TRAIL_EVENTS = 5000

# The events that decide the run's fate or record the outcome a decision rests on. The excerpt keeps
# every one of them however long the trail grows (a long run must not push its release decision
# out), and fills the rest of its room with the newest events.
DECISION_ACTIONS = frozenset({
    "trainingrequest.submitted", "trainingrequest.approved", "trainingrequest.rejected", "trainingrequest.withdrawn",
    "trainingrequest.fully_approved", "trainingrequest.dispatched", "trainingrequest.dispatch_refused",
    "trainingrun.created", "trainingrun.cancel_requested", "trainingrun.cancelled", "trainingrun.succeeded", "trainingrun.failed",
    "adapteraudit.completed", "adapteraudit.failed",
    "adapter.released", "adapter.blocked",  # an override is a release with "override" in its payload
    "modelcard.approved",
})

README = """Provenant evidence pack for training run {run}
================================================

report.pdf      the evidence report
results.json    the same facts, machine-readable (sorted keys, UTF-8)
public_key.pem  the portal's Ed25519 public key (SubjectPublicKeyInfo PEM), fingerprint
                SHA-256(raw key) = {fingerprint}
manifest.json   canonical JSON: the SHA-256 of every other file, the run, the time of the
                newest input ("created"), the portal
signature.sig   the Ed25519 signature over the exact bytes of manifest.json, in hex

To verify, with Python 3 and the `cryptography` package, against the public key published on
the portal (not the copy in this zip):

    python -m audits.verify THIS.zip --public-key portal-public-key.pem

or by hand: check signature.sig over manifest.json with the key, then `sha256sum` each file and
compare with manifest.json; no other file may be present.
"""


class PackRefused(ValueError):
    """Why a pack cannot be built for this run now, in a sentence."""


@dataclass
class RenderedPack:
    zip_bytes: bytes
    manifest: dict
    manifest_bytes: bytes
    signature_hex: str
    fingerprint: str
    pages: int
    files: dict[str, bytes]


# --------------------------------------------------------------------------- gathering


def iso_utc(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return value.isoformat()


def _label(choices, value) -> str:
    try:
        return choices(value).label
    except ValueError:
        return str(value)


def user_dict(user) -> dict | None:
    if user is None:
        return None
    full = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return {"username": user.username, "name": full or user.username}


def latest_completed_audit(run: TrainingRun) -> AdapterAudit | None:
    return AdapterAudit.latest_completed(run)


def _trail(run: TrainingRun, request, audits, releases, card, datasets) -> tuple[list[AuditEvent], int]:
    """The excerpt (every decision event and the newest others, MAX_TRAIL_EVENTS in all unless the
    decisions alone exceed it, in chronological order) and how many events about the run there are."""
    from django.db.models import Max, Q

    wanted = Q(object_type="training.trainingrun", object_id=str(run.pk))
    if request is not None:
        wanted |= Q(object_type="governance.trainingrequest", object_id=str(request.pk))
    if audits:
        wanted |= Q(object_type="audits.adapteraudit", object_id__in=[str(a.pk) for a in audits])
    if releases:
        wanted |= Q(object_type="audits.adapterrelease", object_id__in=[str(r.pk) for r in releases])
    if card is not None:
        wanted |= Q(object_type="governance.modelcard", object_id=str(card.pk))
    if datasets:
        wanted |= Q(object_type="governance.dataset", object_id__in=[str(d.pk) for d in datasets], action="dataset.uploaded")
    about = AuditEvent.objects.filter(wanted)
    # One upper bound for the three queries, so an event appended meanwhile cannot skew the count.
    last = about.aggregate(last=Max("sequence"))["last"]
    if last is None:
        return [], 0
    about = about.filter(sequence__lte=last)
    decisions = list(about.filter(action__in=DECISION_ACTIONS))
    room = max(MAX_TRAIL_EVENTS - len(decisions), 0)
    newest = list(about.exclude(action__in=DECISION_ACTIONS).order_by("-sequence")[:room])
    return sorted(decisions + newest, key=lambda e: e.sequence), about.count()


def event_dict(event: AuditEvent) -> dict:
    return {"sequence": event.sequence, "occurred_at": event.occurred_at.astimezone(dt.timezone.utc).isoformat(timespec="microseconds"),
            "actor_id": event.actor_id, "actor_username": event.actor_username, "action": event.action,
            "object_type": event.object_type, "object_id": event.object_id, "summary": event.summary, "payload": event.payload,
            "prev_hash": event.prev_hash, "hash": event.hash}


def _dpa_dict(dpa: DataProcessingAgreement, day: dt.date) -> dict:
    return {
        "id": dpa.pk, "title": dpa.title, "version": dpa.version, "signed_on": iso_utc(dpa.signed_on), "effective_from": iso_utc(dpa.effective_from),
        "expires_on": iso_utc(dpa.expires_on), "terminated_on": iso_utc(dpa.terminated_on), "processing_regions": dpa.processing_regions,
        "international_transfers": dpa.international_transfers, "security_measures": dpa.security_measures,
        "subprocessors": dpa.subprocessors, "no_retention_of_training_data": dpa.no_retention_of_training_data,
        "no_training_on_customer_data": dpa.no_training_on_customer_data, "breach_notification_hours": dpa.breach_notification_hours,
        "audit_rights": dpa.audit_rights, "required_attestations": [_label(AttestationKind, k) for k in dpa.required_attestations],
        "document_sha256": dpa.document_sha256, "checked_on": iso_utc(day), "lapses": dpa.lapses_on(day), "in_force": dpa.in_force_on(day),
    }


def gather(run: TrainingRun, audit: AdapterAudit) -> dict:
    """Every fact of the pack, as plain JSON values: the source of results.json and of the PDF."""
    run = TrainingRun.objects.select_related("base_model", "created_by").get(pk=run.pk)
    request = (TrainingRequest.objects.select_related("requester", "compute_target__processor", "compute_target__dpa__processor", "base_model")
               .filter(run=run).first())
    datasets = list(run.datasets.select_related("owner").prefetch_related("data_classes").order_by("pk"))
    audits = list(run.audits.order_by("pk"))
    releases = list(AdapterRelease.objects.filter(run=run).select_related("decided_by").order_by("decided_at", "pk"))
    card = ModelCard.objects.select_related("approved_by").filter(run=run).first()
    events, events_about_run = _trail(run, request, audits, releases, card, datasets)
    as_of = max([t for t in (run.finished_at, run.created_at, audit.finished_at, card.updated_at if card else None,
                             card.approved_at if card else None, *(e.occurred_at for e in events[-1:]),
                             *(r.decided_at for r in releases)) if t is not None])
    day = (run.started_at or run.created_at).date()

    # The request and its threat model.
    request_facts = None
    approvals = []
    if request is not None:
        request_facts = {
            "id": request.pk, "title": request.title, "requester": user_dict(request.requester), "state": _label(RequestState, request.state),
            "intended_use": request.intended_use, "out_of_scope": request.out_of_scope, "content_hash": request.content_hash,
            "submitted_at": iso_utc(request.submitted_at), "decided_at": iso_utc(request.decided_at),
            "base_model": request.base_model.name, "compute_target": str(request.compute_target),
            "threat_model": {"leak_definition": request.leak_definition,
                             "adversaries": [_label(Adversary, a) for a in request.adversaries],
                             "audience": _label(Audience, request.audience) if request.audience else ""},
            "settings": request.settings, "audit_thresholds": request.audit_thresholds,
            "required_approvals": request.required_approvals(),
        }
        for a in Approval.objects.filter(request=request).select_related("approver").order_by("created_at", "pk"):
            approvals.append({"approver": user_dict(a.approver), "role": a.get_role_display(), "decision": a.get_decision_display(),
                              "at": iso_utc(a.created_at), "content_hash": a.content_hash, "comment": a.comment, "conditions": a.conditions,
                              "voided_at": iso_utc(a.voided_at), "void_reason": a.void_reason,
                              "binds_to_submitted_version": a.content_hash == request.content_hash})
    findings = list(request.findings) if request is not None else []

    # Data classes and datasets.
    classes = {}
    dataset_facts = []
    for d in datasets:
        for c in d.data_classes.all():
            classes[c.pk] = c
        dataset_facts.append({
            "id": d.pk, "name": d.name, "owner": user_dict(d.owner), "sha256": d.sha256, "size_bytes": d.size_bytes,
            "records": d.record_count, "lawful_basis": _label(LawfulBasis, d.lawful_basis), "source": d.source,
            "segment": d.get_segment_display(), "state": d.get_state_display(), "file_format": d.file_format,
            "data_classes": [c.name for c in d.data_classes.all()], "uploaded_at": iso_utc(d.created_at),
        })
    class_facts = [{
        "id": c.pk, "name": c.name, "tier": _label(Tier, c.tier), "categories": [_label(DataCategory, x) for x in c.categories],
        "regulations": [_label(Regulation, x) for x in c.regulations], "fine_tuning_use": _label(FineTuningUse, c.fine_tuning_use),
        "dp_required": c.dp_required, "max_epsilon": c.max_epsilon, "max_delta": c.max_delta, "redaction_required": c.redaction_required,
        "retention_days": c.retention_days, "max_total_epsilon": c.max_total_epsilon,
        "audit_limits": {"max_exposure_bits": c.audit_max_exposure_bits, "max_mia_auc": c.audit_max_mia_auc,
                         "max_tpr_at_1pct_fpr": c.audit_max_tpr_at_1pct_fpr, "max_original_pii_hits": c.audit_max_original_pii_hits},
    } for c in sorted(classes.values(), key=lambda c: c.name)]

    # Processors, DPAs and attestations, as of the day training started.
    compute = None
    if request is not None:
        target = request.compute_target
        processor = target.processor or (target.dpa.processor if target.dpa else None)
        compute = {"name": target.name, "kind": target.get_kind_display(), "region": target.region, "egress_blocked": target.egress_blocked,
                   "processor": None, "dpas": [], "attestations": []}
        if processor is not None:
            compute["processor"] = {"name": processor.name, "legal_entity": processor.legal_entity, "country": processor.country,
                                    "services": processor.services}
            dpas = [target.dpa] if target.dpa else list(DataProcessingAgreement.objects.filter(processor=processor).order_by("-version"))
            compute["dpas"] = [_dpa_dict(x, day) for x in dpas]
            compute["attestations"] = [{"kind": a.get_kind_display(), "issued_by": a.issued_by, "issued_on": iso_utc(a.issued_on),
                                        "expires_on": iso_utc(a.expires_on), "reference": a.reference, "valid": a.valid_on(day)}
                                       for a in Attestation.objects.filter(processor=processor).order_by("kind", "-expires_on", "pk")]

    # Training and accounting.
    artifacts = list(run.artifacts.order_by("kind", "name"))
    curves = {a.name: a for a in artifacts if a.kind == ArtifactKind.CURVE and a.deleted_at is None}
    result = run.result or {}
    training_config = (run.config or {}).get("training", {})
    training = {
        "config": run.config, "result": result, "target_epsilon": training_config.get("target_epsilon"),
        "dp": training_config.get("dp", True), "started_at": iso_utc(run.started_at), "finished_at": iso_utc(run.finished_at),
        "purged_at": iso_utc(run.purged_at), "purge_report": run.purge_report, "state": run.get_state_display(),
        "records": (run.manifest or {}).get("records", {}), "libraries": (run.manifest or {}).get("libraries", {}),
        "class_max_epsilon": min([c.max_epsilon for c in classes.values() if c.max_epsilon is not None], default=None),
    }

    latest_release = releases[-1] if releases else None
    card_facts = None
    if card is not None:
        card_facts = {"state": card.get_state_display(), "approved": card.state == "approved", "content_hash": card.content_hash,
                      "computed_hash": card.compute_content_hash(), "approved_by": user_dict(card.approved_by), "approved_at": iso_utc(card.approved_at),
                      "sections": [{"key": k, "title": t, "text": card.sections.get(k, "")} for k, t in MODEL_CARD_SECTIONS],
                      "facts": card.facts}

    epsilon = result.get("epsilon")
    verdict = {
        "audit_outcome": audit.outcome, "audit_passed": audit.passed,
        "failed_checks": [c.get("label", c.get("code")) for c in audit.failed_checks],
        "untested_checks": [c.get("label", c.get("code")) for c in audit.untested_checks],
        "release": ({"decision": latest_release.get_decision_display(), "by": user_dict(latest_release.decided_by),
                     "at": iso_utc(latest_release.decided_at), "override": latest_release.override,
                     "justification": latest_release.justification, "audit": latest_release.audit_id} if latest_release else None),
        "epsilon": epsilon, "target_epsilon": training["target_epsilon"], "class_max_epsilon": training["class_max_epsilon"],
        "epsilon_within_class_limit": (epsilon is None or training["class_max_epsilon"] is None or epsilon <= training["class_max_epsilon"]),
        "approvals_valid": sum(1 for a in approvals if a["decision"] == "Approve" and not a["voided_at"] and a["binds_to_submitted_version"]),
        "blockers_at_submission": sum(1 for f in findings if f.get("severity") == "blocker"),
        "warnings_at_submission": sum(1 for f in findings if f.get("severity") == "warning"),
        "dpas_in_force": all(x["in_force"] for x in compute["dpas"]) if compute and compute["dpas"] else None,
        "model_card": card_facts["state"] if card_facts else None,
    }
    verdict["overall"] = {"pass": "PASSED", "fail": "FAILED", "inconclusive": "INCONCLUSIVE"}.get(audit.outcome, "FAILED")

    return {
        "format": FORMAT,
        "created": iso_utc(as_of),
        "run": {"id": run.pk, "job_id": str(run.job_id), "created_by": user_dict(run.created_by), "created_at": iso_utc(run.created_at),
                "base_model": {"name": run.base_model.name, "architecture": run.base_model.architecture,
                               "parameters": run.base_model.parameter_count, "licence": run.base_model.licence,
                               "weights": run.base_model.weight_hashes}},
        "verdict": verdict,
        "request": request_facts,
        "approvals": approvals,
        "findings": findings,
        "data_classes": class_facts,
        "datasets": dataset_facts,
        "compute": compute,
        "redaction": run.redaction_report or {},
        "training": training,
        "audit": {"id": audit.pk, "requested_by": user_dict(audit.requested_by), "created_at": iso_utc(audit.created_at),
                  "finished_at": iso_utc(audit.finished_at), "outcome": audit.outcome, "passed": audit.passed, "verdict": audit.verdict,
                  "thresholds": audit.thresholds,
                  "report": audit.report, "config": audit.config, "charts": sorted(audit.charts)},
        "other_audits": [{"id": a.pk, "state": a.get_state_display(), "outcome": a.get_outcome_display() if a.outcome else None,
                          "passed": a.passed, "finished_at": iso_utc(a.finished_at)}
                         for a in audits if a.pk != audit.pk],
        "releases": [{"decision": r.get_decision_display(), "by": user_dict(r.decided_by), "at": iso_utc(r.decided_at), "override": r.override,
                      "justification": r.justification, "audit": r.audit_id} for r in releases],
        "model_card": card_facts,
        "artifacts": [{"kind": a.get_kind_display(), "name": a.name, "sha256": a.sha256, "size_bytes": a.size_bytes,
                       "deleted_at": iso_utc(a.deleted_at)} for a in artifacts if a.kind != ArtifactKind.CHECKPOINT],
        "training_data_sha256": ((run.manifest or {}).get("hashes") or {}).get("training_data_sha256"),
        "audit_trail": {"events": [event_dict(e) for e in events], "truncated": len(events) < events_about_run,
                        "total": events_about_run, "omitted": events_about_run - len(events)},
        "_charts": {  # not in results.json: the SVGs, for the PDF
            **{f"audit:{name}": svg for name, svg in sorted(audit.charts.items())},
            **{f"run:{name}": a.read_bytes() for name, a in sorted(curves.items())},
        },
    }


def deterministic_zip(files: dict[str, bytes], created: str) -> bytes:
    stamp = dt.datetime.fromisoformat(created.replace("Z", "+00:00")).astimezone(dt.timezone.utc)
    date_time = (max(stamp.year, 1980), stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            archive.writestr(info, data, compresslevel=6)
    return buffer.getvalue()


def render_pack(run: TrainingRun, audit: AdapterAudit) -> RenderedPack:
    """Gather, render and sign. No database writes."""
    facts = gather(run, audit)
    fingerprint, pem = public_key_fingerprint(), public_key_pem()
    pdf, pages = render_pdf(facts, fingerprint, pem)
    results = {k: v for k, v in facts.items() if not k.startswith("_")}
    files = {
        "report.pdf": pdf,
        "results.json": (json.dumps(results, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8"),
        "public_key.pem": pem.encode("ascii"),
        "README.txt": README.format(run=run.pk, fingerprint=fingerprint).encode("utf-8"),
    }
    manifest = {
        "format": FORMAT, "created": facts["created"], "run": run.pk, "audit": audit.pk, "portal": portal_facts(),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
        "signature": {"algorithm": "Ed25519", "encoding": "hex", "over": verify.MANIFEST, "public_key_sha256": fingerprint},
    }
    manifest_bytes = verify.canonical_json(manifest).encode("utf-8")
    signature_hex = signing_key().sign(manifest_bytes).hex()
    everything = {**files, verify.MANIFEST: manifest_bytes, verify.SIGNATURE: (signature_hex + "\n").encode("ascii")}
    return RenderedPack(zip_bytes=deterministic_zip(everything, facts["created"]), manifest=manifest, manifest_bytes=manifest_bytes,
                        signature_hex=signature_hex, fingerprint=fingerprint, pages=pages, files=everything)


# --------------------------------------------------------------------------- storage


def store_zip(data: bytes, key_context=EvidencePack.key_context) -> tuple[str, bytes]:
    """Encrypt a pack's zip under its own data key, as run artifacts are; return (blob id, wrapped
    key). `key_context`: the pack model's (run packs by default; incident packs pass theirs)."""
    import uuid

    blob_id = str(uuid.uuid4())
    key, wrapped = master_key().new_data_key(key_context(blob_id))
    with blob_store().writing(blob_id) as destination, key.encrypting(destination) as stream:
        stream.write(data)
    return blob_id, wrapped


def iter_pack_bytes(pack, chunk_size: int = 1 << 20):
    """The decrypted zip of a pack (a run's or an incident's), in chunks (for streaming a download)."""
    key = master_key().unwrap(pack.wrapped_key, type(pack).key_context(pack.blob_id))
    with blob_store().open(pack.blob_id) as ciphertext, key.decrypting(ciphertext) as plaintext:
        while chunk := plaintext.read(chunk_size):
            yield chunk


def read_pack_bytes(pack) -> bytes:
    return b"".join(iter_pack_bytes(pack))


def choose_audit(run: TrainingRun) -> AdapterAudit:
    from training.models import RunState

    if run.state != RunState.SUCCEEDED:
        raise PackRefused(f"Run {run.pk} is {run.get_state_display().lower()}: a pack is built for a trained run.")
    audit = latest_completed_audit(run)
    if audit is None:
        raise PackRefused(f"Run {run.pk} has no completed audit yet: a pack is the evidence of an audit.")
    return audit


def timed_render(run: TrainingRun) -> tuple[AdapterAudit, RenderedPack, float]:
    audit = choose_audit(run)
    started = time.perf_counter()
    rendered = render_pack(run, audit)
    return audit, rendered, time.perf_counter() - started
