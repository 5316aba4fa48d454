"""Incident response: opened from alerts or by hand, contained in one click (deployment and keys at
once, the release revoked, keys rotated), its impact and notification, closed with a post-mortem,
and a signed pack the existing verifier accepts. Only the privacy officer acts; an administrator
reads; everyone else is refused."""

import io
import json
import zipfile

import pytest

from audits.models import AdapterRelease, ReleaseDecision
from audits.verify import verify_pack
from governance.keys import public_key_pem
from governance.models import AuditEvent
from incidents import actions
from incidents.models import Incident, IncidentPack, IncidentState
from serving import monitoring
from serving.models import ConsumerKey, DeploymentState
from tests.conftest import client_for
from tests.e2e.test_real_path import enqueued  # noqa: F401 - fixture: no message reaches a broker
from tests.serving.monitoring_factory import deployed_run, log_query

pytestmark = pytest.mark.django_db

POST_MORTEM = ("A consumer probed the support bot with canary prefixes over ten minutes. The alert fired at once; the deployment "
               "was suspended and its keys revoked within five minutes. No canary secret was returned.")


@pytest.fixture
def deployed(engineer, legal, privacy):
    return deployed_run(engineer, legal, privacy)


@pytest.fixture
def alert(deployed):
    run, audit, deployment, key = deployed
    [raised] = monitoring.inspect_query(log_query(deployment, key, "My account recovery code is"))
    return raised


@pytest.fixture
def incident(privacy, alert):
    return actions.open_incident(privacy, "Canary probe on support-bot", "critical", alerts=[alert])


def test_the_privacy_officer_opens_an_incident_from_an_alert_on_the_page(privacy, alert):
    client = client_for(privacy)
    form = client.get(f"/monitoring/incidents/new/?alert={alert.pk}").content.decode()
    assert "A prompt reproduces a canary&#x27;s prefix on support-bot" in form
    response = client.post("/monitoring/incidents/new/", {"title": "Canary probe", "severity": "critical", "alerts": [alert.pk]})
    incident = Incident.objects.get()
    assert response.status_code == 302 and response["Location"] == incident.get_absolute_url()
    assert list(incident.alerts.all()) == [alert] and list(incident.deployments.all()) == [alert.deployment]
    alert.refresh_from_db()
    assert alert.acknowledged_by == privacy
    assert AuditEvent.objects.filter(action="incident.opened", object_id=str(incident.pk)).exists()


def test_an_incident_without_a_title_is_refused_with_a_reason(privacy):
    with pytest.raises(actions.IncidentRefused, match="title"):
        actions.open_incident(privacy, " ", "high")


def test_one_click_suspends_the_deployment_and_revokes_every_key_at_once(privacy, deployed, incident):
    from serving.actions import issue_consumer_key

    run, audit, deployment, key = deployed
    issue_consumer_key(privacy, deployment, "Second app")
    page = client_for(privacy).get(f"/monitoring/incidents/{incident.pk}/").content.decode()
    for shown in ("Suspend and revoke its keys", "Revoke the adapter", "Rotate the master key", "Rotate the signing key",
                  "Customers affected", "Nature of the breach", "Close the incident"):
        assert shown in page, shown
    response = client_for(privacy).post(f"/monitoring/incidents/{incident.pk}/contain/suspend/", {"deployment": deployment.pk})
    assert response.status_code == 302
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.SUSPENDED and f"Incident {incident.pk}" in deployment.state_reason
    assert ConsumerKey.objects.filter(deployment=deployment, revoked_at__isnull=True).count() == 0
    assert ConsumerKey.objects.filter(deployment=deployment).count() == 2
    incident.refresh_from_db()
    assert incident.state == IncidentState.CONTAINED and incident.contained_at is not None
    event = AuditEvent.objects.get(action="incident.deployment_contained", object_id=str(incident.pk))
    assert len(json.loads(event.payload)["keys_revoked"]) == 2


def test_retiring_from_the_incident_retires_and_revokes(privacy, deployed, incident):
    run, audit, deployment, key = deployed
    outcome = actions.contain_deployment(privacy, incident, deployment, "retire")
    assert outcome["keys_revoked"] == [key.prefix]
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.RETIRED
    assert not ConsumerKey.objects.filter(deployment=deployment, revoked_at__isnull=True).exists()


def test_revoking_the_release_blocks_the_adapter_with_the_incident_as_reason(privacy, deployed, incident):
    run, audit, deployment, key = deployed
    client_for(privacy).post(f"/monitoring/incidents/{incident.pk}/contain/revoke-release/", {"run": run.pk})
    decision = AdapterRelease.latest_for(run)
    assert decision.decision == ReleaseDecision.BLOCKED and f"Incident {incident.pk}" in decision.justification
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.SUSPENDED  # the serving app suspends a blocked adapter's deployments
    assert AuditEvent.objects.filter(action="incident.release_revoked", object_id=str(incident.pk)).exists()


def test_rotating_the_signing_key_from_an_incident_is_in_its_timeline(privacy, incident):
    from governance.keys import public_key_fingerprint

    before = public_key_fingerprint()
    result = actions.rotate_signing_key(privacy, incident, "probe on the gateway")
    assert result.new_fingerprint == public_key_fingerprint() != before
    assert AuditEvent.objects.filter(action="incident.signing_key_rotated", object_id=str(incident.pk)).exists()


def test_impact_lists_the_datasets_records_subjects_and_categories(incident, deployed):
    run, audit, deployment, key = deployed
    found = actions.impact(incident)
    assert [r["run"] for r in found.runs] == [run]
    assert [d["dataset"] for d in found.datasets] == list(run.datasets.all())
    assert found.records == sum(d.record_count for d in run.datasets.all())
    assert found.subjects is None and "at most" in found.subjects_note  # trained per record: not counted
    assert "Personal data" in found.data_categories


def test_the_notification_draft_carries_the_article_33_fields_and_saves_with_a_hash(privacy, incident):
    text = actions.draft_notification(incident, privacy)
    for heading in ("Nature of the breach", "approximate numbers of data subjects and records", "Contact point",
                    "Likely consequences", "Measures taken"):
        assert heading in text
    assert "priya@example.test" in text and "support-bot" in text
    client_for(privacy).post(f"/monitoring/incidents/{incident.pk}/notification/", {"text": text + "\nEdited."})
    incident.refresh_from_db()
    assert incident.notification_draft.endswith("Edited.")
    event = AuditEvent.objects.get(action="incident.notification_saved")
    assert "Edited" not in event.payload and len(json.loads(event.payload)["sha256"]) == 64


def test_closing_needs_a_post_mortem(privacy, incident):
    with pytest.raises(actions.IncidentRefused, match="post-mortem"):
        actions.close_incident(privacy, incident, "Done.")
    client_for(privacy).post(f"/monitoring/incidents/{incident.pk}/close/", {"post_mortem": POST_MORTEM})
    incident.refresh_from_db()
    assert incident.state == IncidentState.CLOSED and incident.post_mortem == POST_MORTEM and incident.closed_by == privacy
    with pytest.raises(actions.IncidentRefused, match="closed"):
        actions.contain_deployment(privacy, incident, incident.deployments.get(), "suspend")


def test_the_incident_pack_is_signed_and_verifies_like_a_run_pack(privacy, deployed, incident):
    run, audit, deployment, key = deployed
    actions.contain_deployment(privacy, incident, deployment, "suspend")
    actions.close_incident(privacy, incident, POST_MORTEM)
    client = client_for(privacy)
    client.post(f"/monitoring/incidents/{incident.pk}/packs/")
    pack = IncidentPack.objects.get()
    response = client.get(f"/monitoring/incidents/{incident.pk}/packs/{pack.pk}/")
    data = b"".join(response.streaming_content) if response.streaming else response.content
    result = verify_pack(io.BytesIO(data), public_key_pem())
    assert result.valid, result.problems
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        results = json.loads(archive.read("results.json"))
        assert archive.read("report.pdf").startswith(b"%PDF")
    actions_in_trail = {e["action"] for e in results["audit_trail"]["events"]}
    assert {"incident.opened", "incident.deployment_contained", "consumerkey.revoked", "alert.critical"} <= actions_in_trail
    assert results["impact"]["records"] == actions.impact(incident).records
    # The portal's own verify page accepts it too.
    from django.core.files.uploadedfile import SimpleUploadedFile

    page = client.post("/audits/verify/", {"pack": SimpleUploadedFile("incident.zip", data, content_type="application/zip")})
    assert page.status_code == 200 and 'class="state-succeeded">VALID' in page.content.decode()


def test_a_changed_incident_pack_fails_verification(privacy, incident):
    pack = actions.build_incident_pack(privacy, incident)
    from incidents.evidence import read_pack_bytes

    original = read_pack_bytes(pack)
    with zipfile.ZipFile(io.BytesIO(original)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    files["results.json"] = files["results.json"].replace(b"Canary probe", b"Nothing happened")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    result = verify_pack(io.BytesIO(buffer.getvalue()), public_key_pem())
    assert not result.valid and any("results.json" in p for p in result.problems)


def test_the_alert_page_lists_and_acknowledges(privacy, alert):
    client = client_for(privacy)
    assert "reproduces the prefix of a canary" in client.get("/monitoring/alerts/").content.decode()
    client.post(f"/monitoring/alerts/{alert.pk}/acknowledge/", {"note": "Looked at it"})
    alert.refresh_from_db()
    assert alert.acknowledged_by == privacy
    assert "reproduces the prefix of a canary" not in client.get("/monitoring/alerts/").content.decode()
    assert AuditEvent.objects.filter(action="alert.acknowledged", object_id=str(alert.pk)).exists()


def test_the_dashboard_shows_alerts_and_open_incidents_to_the_privacy_officer(privacy, engineer, alert):
    page = client_for(privacy).get("/").content.decode()
    assert "Alerts awaiting you" in page and "reproduces the prefix of a canary" in page
    actions.open_incident(privacy, "Probe seen on the gateway", "high")
    page = client_for(privacy).get("/").content.decode()
    assert "Probe seen on the gateway" in page
    assert "Alerts awaiting you" not in client_for(engineer).get("/").content.decode()


# --------------------------------------------------------------------------- access


def _pages(incident, alert, pack):
    return {
        "get": ["/monitoring/alerts/", "/monitoring/incidents/", "/monitoring/incidents/new/", f"/monitoring/incidents/{incident.pk}/",
                f"/monitoring/incidents/{incident.pk}/packs/{pack.pk}/", "/monitoring/watermark/"],
        "post": [f"/monitoring/alerts/{alert.pk}/acknowledge/", "/monitoring/incidents/new/",
                 f"/monitoring/incidents/{incident.pk}/contain/suspend/", f"/monitoring/incidents/{incident.pk}/contain/revoke-release/",
                 f"/monitoring/incidents/{incident.pk}/contain/rotate-signing-key/", f"/monitoring/incidents/{incident.pk}/notification/",
                 f"/monitoring/incidents/{incident.pk}/close/", f"/monitoring/incidents/{incident.pk}/packs/",
                 "/monitoring/watermark/"],
    }


@pytest.mark.parametrize("who", ["outsider", "engineer", "legal", "regulator"])
def test_everyone_but_the_privacy_officer_and_admin_is_refused_every_page(request, who, privacy, incident, alert):
    pack = actions.build_incident_pack(privacy, incident)
    client = client_for(request.getfixturevalue(who))
    for method, urls in _pages(incident, alert, pack).items():
        for url in urls:
            response = getattr(client, method)(url, {"title": "x", "severity": "low", "deployment": 1, "run": 1, "text": "x"})
            assert response.status_code in (403, 404), (who, method, url, response.status_code)
    incident.refresh_from_db()
    assert incident.state == IncidentState.OPEN and Incident.objects.count() == 1
    assert not AuditEvent.objects.filter(action="incident.pack_downloaded").exists()


def test_an_administrator_reads_incidents_but_cannot_act(admin_user, privacy, incident, alert, deployed):
    pack = actions.build_incident_pack(privacy, incident)
    client = client_for(admin_user)
    assert client.get("/monitoring/incidents/").status_code == 200
    assert client.get(f"/monitoring/incidents/{incident.pk}/").status_code == 200
    assert client.get(f"/monitoring/incidents/{incident.pk}/packs/{pack.pk}/").status_code == 200
    for url in _pages(incident, alert, pack)["post"]:
        assert client.post(url, {"deployment": deployed[2].pk}).status_code in (403, 404), url
    deployed[2].refresh_from_db()
    assert deployed[2].state == DeploymentState.ACTIVE
    assert client.get("/monitoring/alerts/").status_code == 403


def test_anonymous_visitors_are_sent_to_the_login(incident):
    from django.test import Client

    assert Client().get(f"/monitoring/incidents/{incident.pk}/").status_code == 302


# --------------------------------------------------------------------------- the master key, outside the test transaction


@pytest.mark.django_db(transaction=True)
def test_rotating_the_master_key_from_an_incident_keeps_its_pack_readable(engineer, legal, privacy, enqueued):
    from governance import key_rotation
    from incidents.evidence import read_pack_bytes
    from serving.models import Deployment, FlaggedOutput

    # The serving app's sealed columns must be registered for any rotation to start (idempotent; the
    # serving app's ready() is to do it — see /work/notes/engine-interface.md).
    if "serving.Deployment.watermark_key_sealed" not in {e.label for e in key_rotation.protected_fields()}:
        key_rotation.register_sealed_value(Deployment, "watermark_key_sealed", context=lambda row: row.watermark_context(),
                                           context_fields=("id",))
        key_rotation.register_sealed_value(FlaggedOutput, "sealed_output", context=lambda row: row.seal_context(),
                                           context_fields=("query",))
    run, audit, deployment, key = deployed_run(engineer, legal, privacy)
    incident = actions.open_incident(privacy, "Suspected key exposure", "critical", deployments=[deployment])
    pack = actions.build_incident_pack(privacy, incident)
    before = read_pack_bytes(pack)
    result = actions.rotate_master_key(privacy, incident, "the keyset file was copied")
    assert result.rewrapped.get("incidents.IncidentPack.wrapped_key") == 1
    pack.refresh_from_db()
    assert read_pack_bytes(pack) == before
    assert verify_pack(io.BytesIO(before), public_key_pem()).valid
    assert AuditEvent.objects.filter(action="incident.master_key_rotated", object_id=str(incident.pk)).exists()
