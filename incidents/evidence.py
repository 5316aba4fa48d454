"""The incident evidence pack: a signed zip laid out as the run packs are (workflow.evidence), so the
same verifier checks it (`python -m audits.verify PACK.zip --public-key KEY.pem`, or the portal's
verify page):

    report.pdf      WeasyPrint render of templates/incidents/pack/report.html
    results.json    the incident's facts, machine-readable, with the audit-trail excerpt (each
                    event with its hash, which the verifier recomputes)
    public_key.pem  the portal's Ed25519 public key
    README.txt      how to verify
    manifest.json   canonical JSON {"files": {name: sha256}, "created", "incident", "portal", "format", "signature"}
    signature.sig   Ed25519 over the bytes of manifest.json, in hex, and a newline
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from django.db.models import Q
from django.template.loader import render_to_string

from audits import verify
from governance.keys import public_key_fingerprint, public_key_pem, signing_key
from governance.models import AuditEvent
from incidents.models import Incident, IncidentPack
from serving.models import ConsumerKey
from workflow import evidence as run_packs
from workflow.evidence import deterministic_zip, event_dict, iso_utc, user_dict

MAX_TRAIL_EVENTS = 5000

README = """Provenant evidence pack for incident {incident}
================================================

report.pdf      the incident report: timeline, containment, impact, notification, post-mortem
results.json    the same facts, machine-readable (sorted keys, UTF-8), with the audit-trail excerpt
public_key.pem  the portal's Ed25519 public key (SubjectPublicKeyInfo PEM), fingerprint
                SHA-256(raw key) = {fingerprint}
manifest.json   canonical JSON: the SHA-256 of every other file, the incident, the time of the
                newest event ("created"), the portal
signature.sig   the Ed25519 signature over the exact bytes of manifest.json, in hex

To verify, with Python 3 and the `cryptography` package, against the public key published on
the portal (not the copy in this zip):

    python -m audits.verify THIS.zip --public-key portal-public-key.pem
"""


@dataclass
class RenderedIncidentPack:
    zip_bytes: bytes
    manifest: dict
    signature_hex: str
    fingerprint: str


def trail_excerpt(incident: Incident) -> tuple[list[AuditEvent], int]:
    """The events about the incident, its alerts, its deployments and their keys, and the release
    decisions of their runs, oldest first (the newest MAX_TRAIL_EVENTS when there are more)."""
    deployments = [str(pk) for pk in incident.deployments.values_list("pk", flat=True)]
    keys = [str(pk) for pk in ConsumerKey.objects.filter(deployment__in=incident.deployments.all()).values_list("pk", flat=True)]
    alerts = [str(pk) for pk in incident.alerts.values_list("pk", flat=True)]
    runs = [r.pk for r in incident.runs()]
    wanted = (Q(object_type="incidents.incident", object_id=str(incident.pk))
              | Q(object_type="serving.alert", object_id__in=alerts)
              | Q(object_type="serving.deployment", object_id__in=deployments)
              | Q(object_type="serving.consumerkey", object_id__in=keys)
              | Q(action__in=["adapter.released", "adapter.blocked"], object_type="audits.adapterrelease",
                  object_id__in=[str(pk) for pk in _release_ids(runs)]))
    about = AuditEvent.objects.filter(wanted)
    total = about.count()
    newest = list(about.order_by("-sequence")[:MAX_TRAIL_EVENTS])
    return sorted(newest, key=lambda e: e.sequence), total


def _release_ids(run_ids) -> list[int]:
    from audits.models import AdapterRelease

    return list(AdapterRelease.objects.filter(run_id__in=run_ids).values_list("pk", flat=True))


def gather(incident: Incident) -> dict:
    from incidents.actions import impact

    facts = impact(incident)
    events, total = trail_excerpt(incident)
    created = max([incident.opened_at, *(e.occurred_at for e in events[-1:])])
    return {
        "format": verify.FORMAT,
        "kind": "incident",
        "created": iso_utc(created),
        "incident": {"id": incident.pk, "title": incident.title, "severity": incident.severity, "state": incident.state,
                     "description": incident.description, "opened_by": user_dict(incident.opened_by), "opened_at": iso_utc(incident.opened_at),
                     "contained_at": iso_utc(incident.contained_at), "closed_at": iso_utc(incident.closed_at),
                     "closed_by": user_dict(incident.closed_by), "notification_draft": incident.notification_draft,
                     "post_mortem": incident.post_mortem},
        "alerts": [{"id": a.pk, "kind": a.kind, "severity": a.severity, "summary": a.summary, "created_at": iso_utc(a.created_at),
                    "deployment": a.deployment_id, "details": a.details} for a in incident.alerts.order_by("created_at", "pk")],
        "deployments": [{"id": d.pk, "name": d.name, "run": d.run_id, "state": d.state, "state_reason": d.state_reason,
                         "keys": [{"prefix": k.prefix, "consumer": k.consumer, "revoked_at": iso_utc(k.revoked_at)}
                                  for k in d.keys.order_by("pk")]} for d in incident.deployments.order_by("pk")],
        "impact": {"runs": [{"run": r["run"].pk, "subjects": r["subjects"], "trained_records": r["trained_records"]} for r in facts.runs],
                   "datasets": [{"id": d["dataset"].pk, "name": d["dataset"].name, "records": d["records"], "sha256": d["dataset"].sha256,
                                 "data_classes": d["classes"]} for d in facts.datasets],
                   "records": facts.records, "subjects": facts.subjects, "subjects_note": facts.subjects_note,
                   "data_categories": facts.data_categories, "regulations": facts.regulations,
                   "data_subject_categories": facts.data_subject_categories, "sources": facts.sources},
        "audit_trail": {"events": [event_dict(e) for e in events], "total": total, "truncated": len(events) < total},
    }


def _render_pdf(facts: dict, fingerprint: str, pem: str) -> bytes:
    from weasyprint import HTML

    html = render_to_string("incidents/pack/report.html", {"f": facts, "fingerprint": fingerprint, "pem": pem})
    return HTML(string=html).write_pdf()


def render_pack(incident: Incident) -> RenderedIncidentPack:
    """Gather, render and sign. No database writes."""
    from workflow.evidence_pdf import portal_facts

    facts = gather(incident)
    fingerprint, pem = public_key_fingerprint(), public_key_pem()
    files = {
        "report.pdf": _render_pdf(facts, fingerprint, pem),
        "results.json": (json.dumps(facts, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8"),
        "public_key.pem": pem.encode("ascii"),
        "README.txt": README.format(incident=incident.pk, fingerprint=fingerprint).encode("utf-8"),
    }
    manifest = {
        "format": verify.FORMAT, "kind": "incident", "created": facts["created"], "incident": incident.pk, "portal": portal_facts(),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
        "signature": {"algorithm": "Ed25519", "encoding": "hex", "over": verify.MANIFEST, "public_key_sha256": fingerprint},
    }
    manifest_bytes = verify.canonical_json(manifest).encode("utf-8")
    signature_hex = signing_key().sign(manifest_bytes).hex()
    everything = {**files, verify.MANIFEST: manifest_bytes, verify.SIGNATURE: (signature_hex + "\n").encode("ascii")}
    return RenderedIncidentPack(zip_bytes=deterministic_zip(everything, facts["created"]), manifest=manifest, signature_hex=signature_hex,
                                fingerprint=fingerprint)


def store_zip(data: bytes) -> tuple[str, bytes]:
    return run_packs.store_zip(data, IncidentPack.key_context)


def read_pack_bytes(pack: IncidentPack) -> bytes:
    return run_packs.read_pack_bytes(pack)
