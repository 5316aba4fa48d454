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

import base64
import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import time
import zipfile
from dataclasses import dataclass
from importlib import metadata

from django.conf import settings
from django.template.loader import render_to_string

from audits import verify
from audits.models import AdapterAudit, AdapterRelease, AuditState, EvidencePack
from governance.models import Attestation, AttestationKind, AuditEvent, DataCategory, DataProcessingAgreement, FineTuningUse, LawfulBasis, Regulation, Tier
from workflow.models import Adversary, Approval, Audience, MODEL_CARD_SECTIONS, ModelCard, RequestState, TrainingRequest
from governance.keys import blob_store, master_key, public_key_fingerprint, public_key_pem, signing_key
from training.models import ArtifactKind, TrainingRun

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

# (anchor, title): the order of the report. Tests and the contents page read this list.
SECTIONS = (
    ("verdict", "Verdict summary"),
    ("request", "Training request and threat model"),
    ("data", "Data classes and datasets"),
    ("processors", "Processors, DPAs and attestations"),
    ("findings", "Policy findings"),
    ("approvals", "Approvals"),
    ("redaction", "Redaction report"),
    ("training", "Training configuration and DP accounting"),
    ("audit", "Audit results"),
    ("utility", "Utility"),
    ("model_card", "Model card"),
    ("artifacts", "Artifact hashes"),
    ("trail", "Audit-trail excerpt"),
    ("verification", "Signature and verification"),
    ("appendix", "Appendix: GDPR Art. 30 and 35, EU AI Act Annex IV"),
)
TITLES = dict(SECTIONS)

# Requirement -> the sections of this pack that answer it ("" where the pack does not).
REGULATORY_MAP = (
    ("GDPR Art. 30(1)(a)", "Name and contact details of the controller (and DPO)", ["verification"], "The portal that signed the pack."),
    ("GDPR Art. 30(1)(b)", "Purposes of the processing", ["request"], ""),
    ("GDPR Art. 30(1)(c)", "Categories of data subjects and of personal data", ["data"], ""),
    ("GDPR Art. 30(1)(d)", "Categories of recipients", ["processors"], ""),
    ("GDPR Art. 30(1)(e)", "Transfers to third countries and their safeguards", ["processors"], "Processing regions and transfer terms of each DPA."),
    ("GDPR Art. 30(1)(f)", "Time limits for erasure", ["data", "training"], "Retention of each data class; purge of the plaintext scratch."),
    ("GDPR Art. 30(1)(g)", "Technical and organisational security measures (Art. 32)", ["redaction", "training", "artifacts", "processors"], ""),
    ("GDPR Art. 35(7)(a)", "Systematic description of the processing and its purposes", ["request", "data", "training"], ""),
    ("GDPR Art. 35(7)(b)", "Necessity and proportionality", ["request", "data", "findings"], "Intended and out-of-scope uses, lawful basis, policy findings."),
    ("GDPR Art. 35(7)(c)", "Assessment of the risks to data subjects", ["request", "audit"], "Threat model; memorisation and membership attacks."),
    ("GDPR Art. 35(7)(d)", "Measures to address the risks", ["redaction", "training", "approvals", "verdict"], "Redaction, differential privacy, sign-off, release gate."),
    ("GDPR Art. 35(2)", "Advice of the data protection officer", ["approvals"], "The privacy officer's approval."),
    ("AI Act Annex IV(1)", "General description of the AI system", ["request", "model_card"], ""),
    ("AI Act Annex IV(2)", "Elements and development process: data, training, validation and testing", ["data", "redaction", "training", "audit", "approvals"], ""),
    ("AI Act Annex IV(3)", "Monitoring, functioning and control: capabilities and limitations", ["model_card", "audit", "utility"], ""),
    ("AI Act Annex IV(4)", "Appropriateness of the performance metrics", ["audit", "utility"], ""),
    ("AI Act Annex IV(5)", "Risk management system (Art. 9)", ["request", "findings", "verdict"], ""),
    ("AI Act Annex IV(6)", "Relevant changes made through the lifecycle", ["trail"], ""),
    ("AI Act Annex IV(7)", "Harmonised standards applied", [], "Not claimed by this pack."),
    ("AI Act Annex IV(8)", "EU declaration of conformity", [], "Not part of this pack."),
    ("AI Act Annex IV(9)", "Post-market monitoring plan", [], "Outside the portal; not part of this pack."),
)


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


def _iso(value) -> str | None:
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


def _user(user) -> dict | None:
    if user is None:
        return None
    full = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return {"username": user.username, "name": full or user.username}


def latest_completed_audit(run: TrainingRun) -> AdapterAudit | None:
    return run.audits.filter(state=AuditState.COMPLETED).order_by("-finished_at", "-pk").first()


def _svg_uri(svg: str | bytes | None) -> str | None:
    if not svg:
        return None
    data = svg.encode("utf-8") if isinstance(svg, str) else svg
    return "data:image/svg+xml;base64," + base64.b64encode(data).decode("ascii")


def _portal() -> dict:
    try:
        version = metadata.version("provenant")
    except metadata.PackageNotFoundError:
        version = "unknown"
    try:
        renderer = f"weasyprint {metadata.version('weasyprint')}"
    except metadata.PackageNotFoundError:
        renderer = "weasyprint"
    # The renderer's version is an input too: the same records give the same PDF on the same renderer and fonts.
    return {"name": getattr(settings, "PROVENANT_PORTAL_NAME", "Provenant"), "version": version, "renderer": renderer,
            "public_key_sha256": public_key_fingerprint()}


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


def _event_dict(event: AuditEvent) -> dict:
    return {"sequence": event.sequence, "occurred_at": event.occurred_at.astimezone(dt.timezone.utc).isoformat(timespec="microseconds"),
            "actor_id": event.actor_id, "actor_username": event.actor_username, "action": event.action,
            "object_type": event.object_type, "object_id": event.object_id, "summary": event.summary, "payload": event.payload,
            "prev_hash": event.prev_hash, "hash": event.hash}


def _dpa_dict(dpa: DataProcessingAgreement, day: dt.date) -> dict:
    return {
        "id": dpa.pk, "title": dpa.title, "version": dpa.version, "signed_on": _iso(dpa.signed_on), "effective_from": _iso(dpa.effective_from),
        "expires_on": _iso(dpa.expires_on), "terminated_on": _iso(dpa.terminated_on), "processing_regions": dpa.processing_regions,
        "international_transfers": dpa.international_transfers, "security_measures": dpa.security_measures,
        "subprocessors": dpa.subprocessors, "no_retention_of_training_data": dpa.no_retention_of_training_data,
        "no_training_on_customer_data": dpa.no_training_on_customer_data, "breach_notification_hours": dpa.breach_notification_hours,
        "audit_rights": dpa.audit_rights, "required_attestations": [_label(AttestationKind, k) for k in dpa.required_attestations],
        "document_sha256": dpa.document_sha256, "checked_on": _iso(day), "lapses": dpa.lapses_on(day), "in_force": dpa.in_force_on(day),
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
            "id": request.pk, "title": request.title, "requester": _user(request.requester), "state": _label(RequestState, request.state),
            "intended_use": request.intended_use, "out_of_scope": request.out_of_scope, "content_hash": request.content_hash,
            "submitted_at": _iso(request.submitted_at), "decided_at": _iso(request.decided_at),
            "base_model": request.base_model.name, "compute_target": str(request.compute_target),
            "threat_model": {"leak_definition": request.leak_definition,
                             "adversaries": [_label(Adversary, a) for a in request.adversaries],
                             "audience": _label(Audience, request.audience) if request.audience else ""},
            "settings": request.settings, "audit_thresholds": request.audit_thresholds,
            "required_approvals": request.required_approvals(),
        }
        for a in Approval.objects.filter(request=request).select_related("approver").order_by("created_at", "pk"):
            approvals.append({"approver": _user(a.approver), "role": a.get_role_display(), "decision": a.get_decision_display(),
                              "at": _iso(a.created_at), "content_hash": a.content_hash, "comment": a.comment, "conditions": a.conditions,
                              "voided_at": _iso(a.voided_at), "void_reason": a.void_reason,
                              "binds_to_submitted_version": a.content_hash == request.content_hash})
    findings = list(request.findings) if request is not None else []

    # Data classes and datasets.
    classes = {}
    dataset_facts = []
    for d in datasets:
        for c in d.data_classes.all():
            classes[c.pk] = c
        dataset_facts.append({
            "id": d.pk, "name": d.name, "owner": _user(d.owner), "sha256": d.sha256, "size_bytes": d.size_bytes,
            "records": d.record_count, "lawful_basis": _label(LawfulBasis, d.lawful_basis), "source": d.source,
            "segment": d.get_segment_display(), "state": d.get_state_display(), "file_format": d.file_format,
            "data_classes": [c.name for c in d.data_classes.all()], "uploaded_at": _iso(d.created_at),
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
            compute["attestations"] = [{"kind": a.get_kind_display(), "issued_by": a.issued_by, "issued_on": _iso(a.issued_on),
                                        "expires_on": _iso(a.expires_on), "reference": a.reference, "valid": a.valid_on(day)}
                                       for a in Attestation.objects.filter(processor=processor).order_by("kind", "-expires_on", "pk")]

    # Training and accounting.
    artifacts = list(run.artifacts.order_by("kind", "name"))
    curves = {a.name: a for a in artifacts if a.kind == ArtifactKind.CURVE and a.deleted_at is None}
    result = run.result or {}
    training_config = (run.config or {}).get("training", {})
    training = {
        "config": run.config, "result": result, "target_epsilon": training_config.get("target_epsilon"),
        "dp": training_config.get("dp", True), "started_at": _iso(run.started_at), "finished_at": _iso(run.finished_at),
        "purged_at": _iso(run.purged_at), "purge_report": run.purge_report, "state": run.get_state_display(),
        "records": (run.manifest or {}).get("records", {}), "libraries": (run.manifest or {}).get("libraries", {}),
        "class_max_epsilon": min([c.max_epsilon for c in classes.values() if c.max_epsilon is not None], default=None),
    }

    latest_release = releases[-1] if releases else None
    card_facts = None
    if card is not None:
        card_facts = {"state": card.get_state_display(), "approved": card.state == "approved", "content_hash": card.content_hash,
                      "computed_hash": card.compute_content_hash(), "approved_by": _user(card.approved_by), "approved_at": _iso(card.approved_at),
                      "sections": [{"key": k, "title": t, "text": card.sections.get(k, "")} for k, t in MODEL_CARD_SECTIONS],
                      "facts": card.facts}

    epsilon = result.get("epsilon")
    verdict = {
        "audit_outcome": audit.outcome, "audit_passed": audit.passed,
        "failed_checks": [c.get("label", c.get("code")) for c in audit.failed_checks],
        "untested_checks": [c.get("label", c.get("code")) for c in audit.untested_checks],
        "release": ({"decision": latest_release.get_decision_display(), "by": _user(latest_release.decided_by),
                     "at": _iso(latest_release.decided_at), "override": latest_release.override,
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
        "created": _iso(as_of),
        "run": {"id": run.pk, "job_id": str(run.job_id), "created_by": _user(run.created_by), "created_at": _iso(run.created_at),
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
        "audit": {"id": audit.pk, "requested_by": _user(audit.requested_by), "created_at": _iso(audit.created_at),
                  "finished_at": _iso(audit.finished_at), "outcome": audit.outcome, "passed": audit.passed, "verdict": audit.verdict,
                  "thresholds": audit.thresholds,
                  "report": audit.report, "config": audit.config, "charts": sorted(audit.charts)},
        "other_audits": [{"id": a.pk, "state": a.get_state_display(), "outcome": a.get_outcome_display() if a.outcome else None,
                          "passed": a.passed, "finished_at": _iso(a.finished_at)}
                         for a in audits if a.pk != audit.pk],
        "releases": [{"decision": r.get_decision_display(), "by": _user(r.decided_by), "at": _iso(r.decided_at), "override": r.override,
                      "justification": r.justification, "audit": r.audit_id} for r in releases],
        "model_card": card_facts,
        "artifacts": [{"kind": a.get_kind_display(), "name": a.name, "sha256": a.sha256, "size_bytes": a.size_bytes,
                       "deleted_at": _iso(a.deleted_at)} for a in artifacts if a.kind != ArtifactKind.CHECKPOINT],
        "training_data_sha256": ((run.manifest or {}).get("hashes") or {}).get("training_data_sha256"),
        "audit_trail": {"events": [_event_dict(e) for e in events], "truncated": len(events) < events_about_run,
                        "total": events_about_run, "omitted": events_about_run - len(events)},
        "_charts": {  # not in results.json: the SVGs, for the PDF
            **{f"audit:{name}": svg for name, svg in sorted(audit.charts.items())},
            **{f"run:{name}": a.read_bytes() for name, a in sorted(curves.items())},
        },
    }


# --------------------------------------------------------------------------- rendering


def _pretty(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _flatten(prefix: str, value, rows: list) -> None:
    if isinstance(value, dict) and value:
        for k in sorted(value):
            _flatten(f"{prefix}.{k}" if prefix else str(k), value[k], rows)
    else:
        rows.append((prefix, value if not isinstance(value, (list, dict)) else json.dumps(value, ensure_ascii=False)))


TRAIL_WIDTH = 118  # characters of DejaVu Sans Mono at 6.8 pt in the A4 text width (about 122 fit)


def trail_entries(events: list[dict]) -> list[str]:
    """Each event as a few lines of fixed-width text. The trail can run to thousands of events: one
    preformatted block per event lays out several times faster in WeasyPrint than table rows."""
    import textwrap

    indent = " " * 8
    entries = []
    for e in events:
        head = f"#{e['sequence']:<6} {e['occurred_at'][:19].replace('T', ' ')}  {e['actor_username']}  {e['action']}  {e['object_type']}:{e['object_id']}"
        lines = textwrap.wrap(head, TRAIL_WIDTH, subsequent_indent=indent, break_on_hyphens=False)
        lines += textwrap.wrap(e["summary"], TRAIL_WIDTH, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False)
        lines += [f"{indent}hash {e['hash']}", f"{indent}prev {e['prev_hash']}"]
        entries.append("\n".join(lines))
    return entries


def render_pdf(facts: dict, fingerprint: str, pem: str) -> tuple[bytes, int]:
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    charts = facts["_charts"]
    config_rows: list = []
    _flatten("", facts["training"]["config"], config_rows)
    result_rows: list = []
    _flatten("", facts["training"]["result"], result_rows)
    report = facts["audit"]["report"] or {}
    redaction = facts["redaction"] or {}
    names = {str(d["id"]): f'{d["name"]} (#{d["id"]})' for d in facts["datasets"]}
    card_rows: list = []
    if facts["model_card"]:
        _flatten("", facts["model_card"]["facts"], card_rows)
    context = {
        "f": facts, "sections": SECTIONS, "titles": TITLES, "regulatory_map": [
            {"ref": ref, "what": what, "sections": [(a, TITLES[a]) for a in anchors], "note": note} for ref, what, anchors, note in REGULATORY_MAP],
        "fingerprint": fingerprint, "pem": pem, "report": report,
        "config_rows": config_rows, "result_rows": result_rows,
        "redaction_datasets": [(names.get(str(pk), f"#{pk}"), rep) for pk, rep in sorted((redaction.get("datasets") or {}).items())],
        "card_fact_rows": card_rows, "portal": _portal(), "trail": trail_entries(facts["audit_trail"]["events"]),
        "chart_roc": _svg_uri(charts.get("audit:roc")), "chart_exposure": _svg_uri(charts.get("audit:exposure")),
        "chart_epsilon": _svg_uri(charts.get("run:epsilon.svg")), "chart_loss": _svg_uri(charts.get("run:loss.svg")),
        "other_charts": [(k, _svg_uri(v)) for k, v in sorted(charts.items()) if k not in ("audit:roc", "audit:exposure", "run:epsilon.svg", "run:loss.svg")],
        "request_settings": _pretty(facts["request"]["settings"]) if facts["request"] else "",
        "settings_as_run": bool(facts["request"]) and facts["request"]["settings"] == facts["training"]["config"],
    }
    html = render_to_string("audits/pack/report.html", context)
    # Only data: URIs resolve: no file, no network, whatever a stored SVG or a template might name.
    document = HTML(string=html, base_url="data:,", url_fetcher=URLFetcher(allowed_protocols={"data"})).render()
    with _fixed_font_timestamps(facts["created"]):
        return document.write_pdf(), len(document.pages)


@contextlib.contextmanager
def _fixed_font_timestamps(created: str):
    """Without HarfBuzz's subsetter, WeasyPrint subsets fonts with fontTools, which stamps each
    subset with the time of saving: the same facts would give a different PDF every second. The
    reproducible-builds convention that fontTools honours pins that stamp to the pack's own date."""
    previous = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = str(int(dt.datetime.fromisoformat(created).timestamp()))
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = previous


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


def _zip(files: dict[str, bytes], created: str) -> bytes:
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
        "format": FORMAT, "created": facts["created"], "run": run.pk, "audit": audit.pk, "portal": _portal(),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
        "signature": {"algorithm": "Ed25519", "encoding": "hex", "over": verify.MANIFEST, "public_key_sha256": fingerprint},
    }
    manifest_bytes = verify.canonical_json(manifest).encode("utf-8")
    signature_hex = signing_key().sign(manifest_bytes).hex()
    everything = {**files, verify.MANIFEST: manifest_bytes, verify.SIGNATURE: (signature_hex + "\n").encode("ascii")}
    return RenderedPack(zip_bytes=_zip(everything, facts["created"]), manifest=manifest, manifest_bytes=manifest_bytes,
                        signature_hex=signature_hex, fingerprint=fingerprint, pages=pages, files=everything)


# --------------------------------------------------------------------------- storage


def store_zip(data: bytes) -> tuple[str, bytes]:
    """Encrypt the zip under its own data key, as run artifacts are; return (blob id, wrapped key)."""
    import uuid

    blob_id = str(uuid.uuid4())
    key, wrapped = master_key().new_data_key(EvidencePack.key_context(blob_id))
    with blob_store().writing(blob_id) as destination, key.encrypting(destination) as stream:
        stream.write(data)
    return blob_id, wrapped


def iter_pack_bytes(pack: EvidencePack, chunk_size: int = 1 << 20):
    """The decrypted zip, in chunks (for streaming a download)."""
    key = master_key().unwrap(pack.wrapped_key, EvidencePack.key_context(pack.blob_id))
    with blob_store().open(pack.blob_id) as ciphertext, key.decrypting(ciphertext) as plaintext:
        while chunk := plaintext.read(chunk_size):
            yield chunk


def read_pack_bytes(pack: EvidencePack) -> bytes:
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
