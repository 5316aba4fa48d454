"""Every page and API endpoint, as every role and as an outsider: allowed or refused as designed.

Refused is one of two answers (README, *Who sees what*): 404 when the URL names an object the
persona cannot see at all (SEES says who can), 403 for a page their role lacks or an object they
can see but may not act on. A user with no role gets the one page that says so, everywhere."""

import pytest
from django.urls import reverse

from tests.conftest import api_client_for, client_for

E, L, P, R, A, O = "engineer", "legal", "privacy", "regulator", "admin_user", "outsider"
EVERYONE_WITH_A_ROLE = {E, L, P, R, A}
GOVERNANCE_STAFF = {L, P, A}
CATALOGUE_READERS = {E, L, P, A}
PERSONAS = [E, L, P, R, A, "other_engineer"]  # the outsider: test_a_user_with_no_role_sees_only_that_they_have_none

# (description, method, url builder, who may)
PAGES = [
    ("dashboard", "get", lambda r: reverse("dashboard"), EVERYONE_WITH_A_ROLE | {"other_engineer"}),
    ("pack list", "get", lambda r: reverse("packs:pack_list"), EVERYONE_WITH_A_ROLE | {"other_engineer"}),
    ("signing key", "get", lambda r: reverse("packs:public_key"), EVERYONE_WITH_A_ROLE | {"other_engineer"}),
    ("verify page", "get", lambda r: reverse("packs:verify_pack"), EVERYONE_WITH_A_ROLE | {"other_engineer"}),
    ("users", "get", lambda r: reverse("governance:user_list"), {A}),
    ("new user page", "get", lambda r: reverse("governance:user_create"), {A}),
    ("a user's page", "get", lambda r: reverse("governance:user_detail", args=[r["dataset"].owner.pk]), {A}),
    ("a user's role grant", "post", lambda r: reverse("governance:user_propose", args=[r["dataset"].owner.pk]), {A}),
    ("role grants to confirm", "get", lambda r: reverse("governance:role_grants"), {L, P, A}),
    ("API token page", "get", lambda r: reverse("api_token"), EVERYONE_WITH_A_ROLE | {"other_engineer"}),
    ("API docs", "get", lambda r: reverse("api_docs"), EVERYONE_WITH_A_ROLE | {"other_engineer"}),
    ("API schema", "get", lambda r: reverse("api_schema"), EVERYONE_WITH_A_ROLE | {"other_engineer"}),
    ("audit trail", "get", lambda r: reverse("governance:audit_trail"), GOVERNANCE_STAFF),
    ("audit trail export", "get", lambda r: reverse("governance:audit_trail_export"), GOVERNANCE_STAFF),
    ("DPA document download", "get", lambda r: reverse("governance:dataprocessingagreement_document", args=[r["dataprocessingagreement"].pk]), GOVERNANCE_STAFF),
    ("dataset upload page", "get", lambda r: reverse("governance:dataset_create"), {E, "other_engineer"}),
    ("dataset upload post", "post", lambda r: reverse("governance:dataset_create"), {E, "other_engineer"}),
    ("own dataset detail", "get", lambda r: reverse("governance:dataset_detail", args=[r["dataset"].pk]), {E, L, P, A}),
    ("own dataset edit", "get", lambda r: reverse("governance:dataset_edit", args=[r["dataset"].pk]), {E, P}),
    ("dataset share", "post", lambda r: reverse("governance:dataset_share", args=[r["dataset"].pk]), {E}),
    ("dataset shred", "post", lambda r: reverse("governance:dataset_shred", args=[r["dataset"].pk]), {E, P}),
    ("dataset list", "get", lambda r: reverse("governance:dataset_list"), CATALOGUE_READERS | {"other_engineer"}),
    ("dataset review scan", "post", lambda r: reverse("governance:dataset_review_scan", args=[r["dataset"].pk]), {E, P}),
    ("redaction review queue", "get", lambda r: reverse("training:review_queue"), {P}),
    ("redaction review item", "get", lambda r: reverse("training:review_detail", args=[r["review"].pk]), {P}),
    ("redaction review decision", "post", lambda r: reverse("training:review_detail", args=[r["review"].pk]), {P}),
    ("training run list", "get", lambda r: reverse("training:run_list"), {E, L, P, A, "other_engineer"}),
    ("own training run", "get", lambda r: reverse("training:run_detail", args=[r["run"].pk]), {E, L, P, A}),
    ("own run's loss curve", "get", lambda r: reverse("training:run_artifact", args=[r["run"].pk, r["curve"].pk]), {E, L, P, A}),
    ("own run's canary secrets", "get", lambda r: reverse("training:run_artifact", args=[r["run"].pk, r["canaries"].pk]), set()),
    ("own training run cancel", "post", lambda r: reverse("training:run_cancel", args=[r["run"].pk]), {E, P, A}),
    ("own run's audit report", "get", lambda r: reverse("audits:audit_detail", args=[r["audit"].pk]), {E, L, P, A}),
    ("own run's audit JSON", "get", lambda r: reverse("audits:audit_json", args=[r["audit"].pk]), {E, L, P, A}),
    ("own run's audit chart", "get", lambda r: reverse("audits:audit_chart", args=[r["audit"].pk, "roc"]), {E, L, P, A}),
    ("own run's audit re-run", "post", lambda r: reverse("audits:audit_request", args=[r["run"].pk]), {E, P}),
    ("own run's release decision", "post", lambda r: reverse("audits:release_decision", args=[r["run"].pk]), {P}),
    ("own run's released adapter", "get", lambda r: reverse("audits:adapter_download", args=[r["run"].pk]), {E, P}),
    ("training request list", "get", lambda r: reverse("workflow:request_list"), CATALOGUE_READERS | {"other_engineer"}),
    ("approvals inbox", "get", lambda r: reverse("workflow:request_inbox"), GOVERNANCE_STAFF),
    ("training request form", "get", lambda r: reverse("workflow:request_create"), {E, "other_engineer"}),
    ("training request create", "post", lambda r: reverse("workflow:request_create"), {E, "other_engineer"}),
    ("training request live findings", "post", lambda r: reverse("workflow:request_findings"), {E, "other_engineer"}),
    ("own request detail", "get", lambda r: reverse("workflow:request_detail", args=[r["request"].pk]), {E, L, P, A}),
    ("own request edit page", "get", lambda r: reverse("workflow:request_edit", args=[r["request"].pk]), {E}),
    ("own request edit post", "post", lambda r: reverse("workflow:request_edit", args=[r["request"].pk]), {E}),
    ("own request submit", "post", lambda r: reverse("workflow:request_submit", args=[r["request"].pk]), {E}),
    ("own request decision", "post", lambda r: reverse("workflow:request_decide", args=[r["request"].pk]), GOVERNANCE_STAFF),
    ("own request withdraw", "post", lambda r: reverse("workflow:request_withdraw", args=[r["request"].pk]), {E}),
]
for model, readers, writers in [
    ("dataclass", CATALOGUE_READERS | {"other_engineer"}, {P, A}),
    ("processor", GOVERNANCE_STAFF, GOVERNANCE_STAFF),
    ("attestation", GOVERNANCE_STAFF, GOVERNANCE_STAFF),
    ("dataprocessingagreement", GOVERNANCE_STAFF, GOVERNANCE_STAFF),
    ("computetarget", CATALOGUE_READERS | {"other_engineer"}, {P, A}),
    ("redactionrule", GOVERNANCE_STAFF, {P, A}),
]:
    PAGES += [
        (f"{model} list", "get", lambda r, m=model: reverse(f"governance:{m}_list"), readers),
        (f"{model} detail", "get", lambda r, m=model: reverse(f"governance:{m}_detail", args=[r[m].pk]), readers),
        (f"{model} create page", "get", lambda r, m=model: reverse(f"governance:{m}_create"), writers),
        (f"{model} create post", "post", lambda r, m=model: reverse(f"governance:{m}_create"), writers),
        (f"{model} edit page", "get", lambda r, m=model: reverse(f"governance:{m}_edit", args=[r[m].pk]), writers),
        (f"{model} edit post", "post", lambda r, m=model: reverse(f"governance:{m}_edit", args=[r[m].pk]), writers),
    ]

# Model cards and the sharing of evidence packs.
PAGES += [
    ("own run's model card", "get", lambda r: reverse("workflow:model_card", args=[_model_card(r).run_id]), {E, L, P, A}),
    ("own run's model card README", "get", lambda r: reverse("workflow:model_card_readme", args=[_model_card(r).run_id]), {E, L, P, A}),
    ("own run's model card edit page", "get", lambda r: reverse("workflow:model_card_edit", args=[_model_card(r).run_id]), {E}),
    ("own run's model card edit post", "post", lambda r: reverse("workflow:model_card_edit", args=[_model_card(r).run_id]), {E}),
    ("own run's model card approval", "post", lambda r: reverse("workflow:model_card_approve", args=[_model_card(r).run_id]), {P}),
    ("own run's model card draft", "post", lambda r: reverse("workflow:model_card_draft", args=[r["run"].pk]), {E, P}),
    ("own run's pack shares", "get", lambda r: reverse("audits:pack_shares", args=[_pack(r).pk]), {P}),
    ("own run's pack share post", "post", lambda r: reverse("audits:pack_shares", args=[_pack(r).pk]), {P}),
    ("own run's pack share revoke", "post", lambda r: reverse("audits:share_revoke", args=[_pack_share(r).pk]), {P}),
    ("packs shared with me", "get", lambda r: reverse("audits:shared_with_me"), {R}),
    ("own run's pack", "get", lambda r: reverse("packs:pack_detail", args=[_pack(r).pk]), {E, L, P, A}),
]

# Deployments (serving): the privacy officer deploys and manages them, legal and admin read them, an
# engineer reads those of their own runs; keys, the query log and flagged outputs are privacy's only.
DEPLOYMENT_READERS = {E, L, P, A}
PAGES += [
    ("deployment list", "get", lambda r: reverse("serving:deployment_list"), DEPLOYMENT_READERS | {"other_engineer"}),
    ("own run's deployment", "get", lambda r: reverse("serving:deployment_detail", args=[_deployment(r).pk]), DEPLOYMENT_READERS),
    ("own run's deploy page", "get", lambda r: reverse("serving:deploy", args=[r["run"].pk]), {P}),
    ("own run's deploy post", "post", lambda r: reverse("serving:deploy", args=[r["run"].pk]), {P}),
    ("own run's deployment key issue", "post", lambda r: reverse("serving:issue_key", args=[_deployment(r).pk]), {P}),
    ("own run's deployment suspend", "post", lambda r: reverse("serving:change_state", args=[_deployment(r).pk, "suspend"]), {P}),
    ("own run's deployment consumer key revoke", "post", lambda r: reverse("serving:revoke_key", args=[_consumer_key(r).pk]), {P}),
    ("flagged output queue", "get", lambda r: reverse("serving:flagged_queue"), {P}),
    ("flagged output", "get", lambda r: reverse("serving:flagged_detail", args=[_flagged_output(r).pk]), {P}),
    ("flagged output review", "post", lambda r: reverse("serving:flagged_detail", args=[_flagged_output(r).pk]), {P}),
]

# Alerts, incidents and watermark detection (incidents): the privacy officer's; an administrator
# reads incidents and their evidence packs.
INCIDENT_READERS = {P, A}
PAGES += [
    ("alert list", "get", lambda r: reverse("incidents:alert_list"), {P}),
    ("alert acknowledge", "post", lambda r: reverse("incidents:alert_acknowledge", args=[_alert(r).pk]), {P}),
    ("incident list", "get", lambda r: reverse("incidents:incident_list"), INCIDENT_READERS),
    ("incident open page", "get", lambda r: reverse("incidents:incident_open"), {P}),
    ("incident open post", "post", lambda r: reverse("incidents:incident_open"), {P}),
    ("incident", "get", lambda r: reverse("incidents:incident_detail", args=[_incident(r).pk]), INCIDENT_READERS),
    ("incident notification", "post", lambda r: reverse("incidents:incident_notification", args=[_incident(r).pk]), {P}),
    ("incident close", "post", lambda r: reverse("incidents:incident_close", args=[_incident(r).pk]), {P}),
    ("incident pack download", "get",
     lambda r: reverse("incidents:incident_pack_download", args=[_incident(r).pk, _incident_pack(r).pk]), INCIDENT_READERS),
    ("incident pack build", "post", lambda r: reverse("incidents:incident_pack_build", args=[_incident(r).pk]), {P}),
    # Last: it suspends the deployment and revokes its keys (an allowed caller's empty form names no deployment: 404).
    ("incident containment", "post", lambda r: reverse("incidents:incident_contain", args=[_incident(r).pk, "suspend"]), {P}),
    ("watermark detection page", "get", lambda r: reverse("incidents:watermark_detect"), {P}),
    ("watermark detection post", "post", lambda r: reverse("incidents:watermark_detect"), {P}),
]
# What an allowed caller posts, where an empty form would not reach the view's work.
POSTED = {"incident containment": lambda r: {"deployment": _deployment(r).pk}}

# Who can see the object each row's URL names; a row not here names none (a list, a form).
RUN_READERS = {E, L, P, A}
SEES = {
    "DPA document download": GOVERNANCE_STAFF,
    "a user's page": {A}, "a user's role grant": {A},
    "redaction review item": {P}, "redaction review decision": {P},
    "own run's pack share revoke": {P},
    **{what: RUN_READERS for what, *_ in PAGES if what.startswith(("own ", "dataset share", "dataset shred", "dataset review"))
       and what not in ("own run's pack share revoke",)},
}
SEES.update({
    "own run's deploy page": RUN_READERS, "own run's deploy post": RUN_READERS,
    **{what: DEPLOYMENT_READERS for what in ("own run's deployment", "own run's deployment key issue", "own run's deployment suspend")},
    **{what: {P} for what in ("own run's deployment consumer key revoke", "flagged output", "flagged output review", "alert acknowledge")},
    **{what: INCIDENT_READERS for what in ("incident", "incident notification", "incident close", "incident pack download",
                                           "incident pack build", "incident containment")},
})
for model, readers, _ in [("dataclass", CATALOGUE_READERS | {"other_engineer"}, 0), ("processor", GOVERNANCE_STAFF, 0),
                          ("attestation", GOVERNANCE_STAFF, 0), ("dataprocessingagreement", GOVERNANCE_STAFF, 0),
                          ("computetarget", CATALOGUE_READERS | {"other_engineer"}, 0), ("redactionrule", GOVERNANCE_STAFF, 0)]:
    SEES.update({f"{model} {what}": readers for what in ("detail", "edit page", "edit post")})


def _model_card(r):
    """A model card of the engineer's run, made the first time a row needs it."""
    if "model_card" not in r:
        from workflow.model_cards import draft_sections, facts_for
        from workflow.models import ModelCard

        facts = facts_for(r["run"])
        r["model_card"] = ModelCard.objects.create(run=r["run"], facts=facts, sections=draft_sections(r["run"], facts))
    return r["model_card"]


def _pack(r):
    if "pack" not in r:
        import uuid

        from audits.models import EvidencePack

        r["pack"] = EvidencePack.objects.create(run=r["run"], sha256="a" * 64, size_bytes=1, blob_id=str(uuid.uuid4()), manifest={},
                                                signature="b" * 128, public_key_fingerprint="c" * 64)
    return r["pack"]


def _pack_share(r):
    """The pack shared with a regulator of its own (not the persona under test)."""
    if "pack_share" not in r:
        from audits.models import PackShare
        from django.contrib.auth import get_user_model

        from tests.conftest import _make_user

        rex = get_user_model().objects.filter(username="rex").first() or _make_user("rex", "regulator")
        r["pack_share"] = PackShare.objects.create(pack=_pack(r), regulator=rex, shared_by=get_user_model().objects.get(username="priya"))
    return r["pack_share"]


def _deployment(r):
    """A deployment of the engineer's released run (made directly: the matrix's run kept no adapter files)."""
    if "deployment" not in r:
        from audits.models import AdapterRelease
        from django.contrib.auth import get_user_model

        from serving.models import Deployment

        r["deployment"] = Deployment.objects.create(name="support-bot", run=r["run"], release=AdapterRelease.latest_for(r["run"]),
                                                    created_by=get_user_model().objects.get(username="priya"))
    return r["deployment"]


def _consumer_key(r):
    if "consumer_key" not in r:
        from django.contrib.auth import get_user_model

        from serving.models import ConsumerKey

        r["consumer_key"] = ConsumerKey.objects.issue(_deployment(r), consumer="helpdesk-app", days=30, requests_per_minute=60,
                                                      tokens_per_day=1000, created_by=get_user_model().objects.get(username="priya"))[0]
    return r["consumer_key"]


def _flagged_output(r):
    if "flagged_output" not in r:
        from serving import actions as serving_actions
        from serving.models import QueryOutcome, QueryRecord

        record = QueryRecord.objects.create(deployment=_deployment(r), consumer_pseudonym="c1", endpoint="completions",
                                            outcome=QueryOutcome.MASKED)
        r["flagged_output"] = serving_actions.flag_output(record, "Call Jane Roe on 555 010 9999")
    return r["flagged_output"]


def _alert(r):
    if "alert" not in r:
        from serving.models import AlertKind, AlertSeverity
        from serving.monitoring import raise_alert

        r["alert"] = raise_alert(_deployment(r), AlertKind.CANARY_PREFIX, AlertSeverity.CRITICAL, "A canary's prefix was probed.")
    return r["alert"]


def _incident(r):
    if "incident" not in r:
        from django.contrib.auth import get_user_model

        from incidents.actions import open_incident

        r["incident"] = open_incident(get_user_model().objects.get(username="priya"), "Canary prefix probed", "high",
                                      deployments=[_deployment(r)])
    return r["incident"]


def _incident_pack(r):
    if "incident_pack" not in r:
        from django.contrib.auth import get_user_model

        from incidents.actions import build_incident_pack

        r["incident_pack"] = build_incident_pack(get_user_model().objects.get(username="priya"), _incident(r))
    return r["incident_pack"]


API = [
    ("datasets list", "get", lambda r: "/api/datasets/", CATALOGUE_READERS | {"other_engineer"}),
    ("own dataset", "get", lambda r: f"/api/datasets/{r['dataset'].pk}/", {E, L, P, A}),
    ("own dataset patch", "patch", lambda r: f"/api/datasets/{r['dataset'].pk}/", {E, P}),
    ("dataset upload", "post", lambda r: "/api/datasets/", {E, "other_engineer"}),
    ("dataset shred", "post", lambda r: f"/api/datasets/{r['dataset'].pk}/shred/", {E, P}),
    ("dataset share", "post", lambda r: f"/api/datasets/{r['dataset'].pk}/share/", {E}),
    ("audit events", "get", lambda r: "/api/audit-events/", GOVERNANCE_STAFF),
    ("audit event", "get", lambda r: "/api/audit-events/1/", GOVERNANCE_STAFF),
    ("requests list", "get", lambda r: "/api/requests/", CATALOGUE_READERS | {"other_engineer"}),
    ("request create", "post", lambda r: "/api/requests/", {E, "other_engineer"}),
    ("own request", "get", lambda r: f"/api/requests/{_own_request(r).pk}/", {E, L, P, A}),
    ("own request patch", "patch", lambda r: f"/api/requests/{_own_request(r).pk}/", {E}),
    ("own request submit", "post", lambda r: f"/api/requests/{_own_request(r).pk}/submit/", {E}),
    # Admins sign only as additional approvers, which this request does not need.
    ("own request approve", "post", lambda r: f"/api/requests/{_own_request(r).pk}/approve/", {L, P}),
    ("own request reject", "post", lambda r: f"/api/requests/{_own_request(r).pk}/reject/", {L, P, A}),
    ("own request withdraw", "post", lambda r: f"/api/requests/{_own_request(r).pk}/withdraw/", {E}),
    ("own request cancel", "post", lambda r: f"/api/requests/{_own_request(r).pk}/cancel/", {E, P, A}),
    ("runs list", "get", lambda r: "/api/runs/", CATALOGUE_READERS | {"other_engineer"}),
    ("own run", "get", lambda r: f"/api/runs/{r['run'].pk}/", {E, L, P, A}),
    ("own run cancel", "post", lambda r: f"/api/runs/{r['run'].pk}/cancel/", {E, P, A}),
]
API += [
    ("deployments list", "get", lambda r: "/api/deployments/", DEPLOYMENT_READERS | {"other_engineer"}),
    ("own run's deployment", "get", lambda r: f"/api/deployments/{_deployment(r).pk}/", DEPLOYMENT_READERS),
    ("deploy", "post", lambda r: "/api/deployments/", {P}),
    ("own run's deployment suspend", "post", lambda r: f"/api/deployments/{_deployment(r).pk}/suspend/", {P}),
    ("own run's deployment resume", "post", lambda r: f"/api/deployments/{_deployment(r).pk}/resume/", {P}),
    ("own run's deployment retire", "post", lambda r: f"/api/deployments/{_deployment(r).pk}/retire/", {P}),
    ("own run's deployment keys", "get", lambda r: f"/api/deployments/{_deployment(r).pk}/keys/", {P}),
    ("own run's deployment key issue", "post", lambda r: f"/api/deployments/{_deployment(r).pk}/keys/", {P}),
    ("own run's deployment key revoke", "post",
     lambda r: f"/api/deployments/{_deployment(r).pk}/keys/{_consumer_key(r).pk}/revoke/", {P}),
]
for prefix, model, readers, writers in [
    ("data-classes", "dataclass", CATALOGUE_READERS | {"other_engineer"}, {P, A}),
    ("processors", "processor", GOVERNANCE_STAFF, GOVERNANCE_STAFF),
    ("attestations", "attestation", GOVERNANCE_STAFF, GOVERNANCE_STAFF),
    ("dpas", "dataprocessingagreement", GOVERNANCE_STAFF, GOVERNANCE_STAFF),
    ("compute-targets", "computetarget", CATALOGUE_READERS | {"other_engineer"}, {P, A}),
    ("redaction-rules", "redactionrule", GOVERNANCE_STAFF, {P, A}),
]:
    API += [
        (f"{prefix} list", "get", lambda r, p=prefix: f"/api/{p}/", readers),
        (f"{prefix} detail", "get", lambda r, p=prefix, m=model: f"/api/{p}/{r[m].pk}/", readers),
        (f"{prefix} create", "post", lambda r, p=prefix: f"/api/{p}/", writers),
        (f"{prefix} patch", "patch", lambda r, p=prefix, m=model: f"/api/{p}/{r[m].pk}/", writers),
    ]


API_SEES = {
    **{what: RUN_READERS for what, *_ in API if what.startswith(("own ", "dataset shred", "dataset share"))},
    "audit event": GOVERNANCE_STAFF,
    **{what: DEPLOYMENT_READERS for what, *_ in API if what.startswith("own run's deployment")},
}
for prefix, readers in [("data-classes", CATALOGUE_READERS | {"other_engineer"}), ("processors", GOVERNANCE_STAFF),
                        ("attestations", GOVERNANCE_STAFF), ("dpas", GOVERNANCE_STAFF),
                        ("compute-targets", CATALOGUE_READERS | {"other_engineer"}), ("redaction-rules", GOVERNANCE_STAFF)]:
    API_SEES.update({f"{prefix} detail": readers, f"{prefix} patch": readers})


def _own_request(r):
    """The engineer's submitted training request, made the first time a row needs it."""
    if "request" not in r:
        from workflow import actions as workflow_actions

        data = dict(title="Reply drafts", intended_use="Draft replies for agents.", base_model=r["run"].base_model,
                    compute_target=r["computetarget"], settings={})
        r["request"] = workflow_actions.submit_request(r["dataset"].owner, workflow_actions.create_request(r["dataset"].owner, data, [r["dataset"]]))
    return r["request"]


def _personas(request, name):
    return None if name is None else request.getfixturevalue(name)


@pytest.fixture
def with_document(records, legal):
    """Give the DPA a signed document, so its download is a real endpoint."""
    import io

    from governance import actions

    from workflow import actions as workflow_actions
    from governance.uploads import encrypt_stream
    from governance.views import dpa_document_rules

    upload = encrypt_stream(io.BytesIO(b"%PDF-1.4 signed"), dpa_document_rules()["document"], "signed.pdf")
    actions.attach_dpa_document(legal, records["dataprocessingagreement"], upload)
    from training.engine.pii.detector import Detection
    from training.engine.redaction import Record
    from training.actions import _review_item

    review = _review_item(records["dataset"], Record("line-1", "Call Maria now"), Detection(5, 10, "PERSON", 0.4, "test"), "low_confidence")
    review.save()
    records["review"] = review
    records.update(_run_with_artifacts(records))
    from tests.governance.request_factory import make_good_request

    records["request"] = workflow_actions.submit_request(records["dataset"].owner, make_good_request(records["dataset"].owner))
    return records


def _run_with_artifacts(records):
    from training.models import ArtifactKind, BaseModel
    from training.pipeline import _store_file
    from training.runs import create_run

    base = BaseModel.objects.create(name="tiny", source="local_directory", location="/nowhere", architecture="gpt2",
                                    parameter_count=1, licence="Apache-2.0")
    run = create_run(records["dataset"].owner, base, [records["dataset"]], {}, enqueue=False)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "loss.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
        (Path(tmp) / "canaries.json").write_text('[{"secret": "123456"}]')
        curve = _store_file(run, ArtifactKind.CURVE, Path(tmp) / "loss.svg", "loss.svg")
        canaries = _store_file(run, ArtifactKind.CANARIES, Path(tmp) / "canaries.json", "canaries.json")
    from audits.models import AdapterAudit, AdapterRelease
    from django.contrib.auth import get_user_model

    audit = AdapterAudit.objects.create(run=run, state="completed", passed=True, verdict={"passed": True, "checks": []},
                                        charts={"roc": "<svg xmlns='http://www.w3.org/2000/svg'/>"})
    AdapterRelease.objects.create(run=run, audit=audit, decision="released", decided_by=get_user_model().objects.get(username="priya"))
    return {"run": run, "curve": curve, "canaries": canaries, "audit": audit}


def _check(persona, allowed, what, status, location="", sees=None):
    """Return a complaint, or None when the outcome is the designed one: reached when allowed;
    otherwise 404 if the URL names an object the persona cannot see (`sees`), else 403."""
    if persona in allowed:
        if status in (200, 201, 204, 400) or (status == 302 and "/login/" not in location):
            return None
        return f"{persona} should reach {what}, got {status}"
    expected = 404 if sees is not None and persona not in sees else 403
    if status == expected:
        return None
    return f"{persona} should be refused {what} with {expected}, got {status}"


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_page_as_every_persona(request, with_document, persona):
    client = client_for(request.getfixturevalue(persona))
    complaints = []
    for what, method, url, allowed in PAGES:
        response = getattr(client, method)(url(with_document), POSTED[what](with_document) if what in POSTED else {})
        complaints.append(_check(persona, allowed, what, response.status_code, response.get("Location", ""), SEES.get(what)))
    assert [c for c in complaints if c] == []


def test_anonymous_visitor_is_sent_to_login_everywhere(with_document):
    client, complaints = client_for(None), []
    for what, method, url, _ in PAGES:
        response = getattr(client, method)(url(with_document), {})
        if what == "API docs" or what == "API schema":
            ok = response.status_code in (401, 403)
        else:
            ok = response.status_code == 302 and response["Location"].startswith(reverse("login"))
        if not ok:
            complaints.append(f"anonymous reached {what}: {response.status_code}")
    assert complaints == []


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_api_endpoint_as_every_persona(request, with_document, persona):
    client = api_client_for(request.getfixturevalue(persona))
    complaints = []
    for what, method, url, allowed in API:
        # An empty body: allowed callers get past the permission check to a 400 of field errors.
        response = getattr(client, method)(url(with_document), {}, format="json" if method != "get" else None)
        complaints.append(_check(persona, allowed, what, response.status_code, sees=API_SEES.get(what)))
    assert [c for c in complaints if c] == []


def test_api_without_credentials_is_refused_everywhere(with_document):
    from rest_framework.test import APIClient

    client, complaints = APIClient(), []
    for what, method, url, _ in API:
        response = getattr(client, method)(url(with_document), {}, format="json" if method != "get" else None)
        if response.status_code not in (401, 403):
            complaints.append(f"anonymous reached {what}: {response.status_code}")
    assert complaints == []


def test_other_engineers_dataset_is_invisible_until_shared(records, engineer, other_engineer):
    from governance import actions

    url = reverse("governance:dataset_detail", args=[records["other_dataset"].pk])
    assert client_for(engineer).get(url).status_code == 404
    assert records["other_dataset"].name not in client_for(engineer).get(reverse("governance:dataset_list")).content.decode()
    actions.share_dataset(other_engineer, records["other_dataset"], engineer)
    assert client_for(engineer).get(url).status_code == 200
    assert records["other_dataset"].name in client_for(engineer).get(reverse("governance:dataset_list")).content.decode()


NO_ROLE = "You have no role yet — ask an administrator."


def test_a_user_with_no_role_sees_only_that_they_have_none(with_document, outsider):
    """Not the pack list, the signing key, the verify page, the API root or anything else: the
    home page says so (200), every other page answers 403 with the same sentence."""
    client, complaints = client_for(outsider), []
    for what, method, url, _ in PAGES + [("API root", "get", lambda r: "/api/", None), ("signing key PEM", "get", lambda r: reverse("packs:public_key_pem"), None),
                                         ("Django admin", "get", lambda r: "/admin/", None), ("no such page", "get", lambda r: "/no/such/page/", None)]:
        response = getattr(client, method)(url(with_document), {})
        expected = 200 if what == "dashboard" else 403
        # Under /api/ (docs and schema included) the answer is JSON, as for API clients.
        body = response.json()["detail"] if response["Content-Type"] == "application/json" else response.content.decode()
        if response.status_code != expected or NO_ROLE not in body:
            complaints.append(f"outsider got {response.status_code} at {what}")
        elif 'aria-label="Main"' in body:
            complaints.append(f"outsider sees the navigation at {what}")
    assert complaints == []


def test_a_user_with_no_role_is_refused_by_the_api_with_that_sentence(with_document, outsider):
    client, complaints = api_client_for(outsider), []
    for what, method, url, _ in API + [("API root", "get", lambda r: "/api/", None)]:
        response = getattr(client, method)(url(with_document), {}, format="json" if method != "get" else None)
        if response.status_code != 403 or response.json() != {"detail": NO_ROLE}:
            complaints.append(f"outsider got {response.status_code} at {what}")
    assert complaints == []


def test_a_user_with_no_role_can_still_log_out(outsider):
    response = client_for(outsider).post(reverse("logout"))
    assert response.status_code == 302 and "_auth_user_id" not in client_for(None).session
