"""The evidence pack's PDF: the report's sections, their map to GDPR Art. 30 and 35 and AI Act
Annex IV, and the WeasyPrint rendering of the gathered facts (`workflow.evidence.gather`)."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
from importlib import metadata

from django.conf import settings
from django.template.loader import render_to_string

from governance.keys import public_key_fingerprint

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


def _svg_uri(svg: str | bytes | None) -> str | None:
    if not svg:
        return None
    data = svg.encode("utf-8") if isinstance(svg, str) else svg
    return "data:image/svg+xml;base64," + base64.b64encode(data).decode("ascii")


def portal_facts() -> dict:
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
        "card_fact_rows": card_rows, "portal": portal_facts(), "trail": trail_entries(facts["audit_trail"]["events"]),
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
