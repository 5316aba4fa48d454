"""Deployments: who may deploy what, keys shown once and kept hashed, state changes and what they
do to keys, the receiver that suspends a deployment when its adapter's release is blocked, the
pages, the API and the CLI."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient

from audits import actions as audit_actions
from governance.keys import master_key
from governance.models import ApiToken, AuditEvent
from serving import actions
from serving.models import ConsumerKey, Deployment, DeploymentState, FlaggedOutput, QueryOutcome, QueryRecord
from tests.audits.pack_factory import audited_run
from tests.conftest import client_for
from tests.serving.conftest import issue, verified_client

pytestmark = pytest.mark.django_db


# --------------------------------------------------------------------------- who may deploy what


def test_an_unreleased_adapter_is_not_deployed(engineer, legal, privacy):
    run, _ = audited_run(engineer, legal, privacy)
    with pytest.raises(actions.DeploymentRefused, match="has not been released"):
        actions.deploy_adapter(privacy, run, name="bot")
    assert not Deployment.objects.exists()


def test_a_blocked_adapter_is_not_deployed_even_after_an_earlier_release(engineer, legal, privacy):
    run, _ = audited_run(engineer, legal, privacy)
    audit_actions.release_adapter(privacy, run)
    audit_actions.block_adapter(privacy, run, "A canary surfaced in a manual probe.")
    with pytest.raises(actions.DeploymentRefused, match="blocked"):
        actions.deploy_adapter(privacy, run, name="bot")


@pytest.mark.parametrize("who", ["engineer", "legal", "admin_user"])
def test_only_the_privacy_officer_deploys(who, request, released_run):
    with pytest.raises(PermissionError, match="Only the privacy officer"):
        actions.deploy_adapter(request.getfixturevalue(who), released_run, name="bot")


def test_deploying_records_the_policy_and_seals_a_watermark_key_for_this_deployment_only(deployment, privacy):
    event = AuditEvent.objects.get(action="deployment.created")
    payload = json.loads(event.payload)
    assert payload["name"] == "support-bot" and payload["max_output_tokens"] == 32
    assert set(payload["adapter"]) == {"adapter_model.safetensors", "adapter_config.json"}
    key = actions.watermark_key_of(deployment)
    assert 0 <= key < 2**64
    assert str(key) not in str(event.payload)
    other = actions.deploy_adapter(privacy, deployment.run, name="support-bot-2")
    with pytest.raises(Exception, match="Cannot open"):  # sealed for its own deployment's context only
        master_key().open(deployment.watermark_key_sealed, other.watermark_context())


def test_a_name_is_used_once(deployment, privacy):
    with pytest.raises(actions.DeploymentRefused, match="exists already"):
        actions.deploy_adapter(privacy, deployment.run, name="support-bot")


# --------------------------------------------------------------------------- keys


def test_a_key_is_returned_once_and_stored_only_as_its_hash(deployment, privacy):
    key, secret = actions.issue_consumer_key(privacy, deployment, "helpdesk-app", days=30, requests_per_minute=5, tokens_per_day=999)
    stored = ConsumerKey.objects.get(pk=key.pk)
    assert secret.startswith("pvk_") and len(secret) > 40
    assert stored.digest == ConsumerKey.digest_of(secret) and secret not in {stored.digest, stored.prefix}
    assert ConsumerKey.objects.by_secret(secret) == stored
    assert not any(secret in e.payload or secret in e.summary for e in AuditEvent.objects.all())


def test_the_issue_key_page_shows_the_secret_once_and_the_deployment_page_never(deployment, privacy):
    client = verified_client(privacy)
    response = client.post(f"/serving/deployments/{deployment.pk}/keys/",
                           {"consumer": "helpdesk-app", "days": 30, "requests_per_minute": 10, "tokens_per_day": 5000})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    key = ConsumerKey.objects.get()
    secret = response.context["secret"]
    assert key.digest == ConsumerKey.digest_of(secret) and secret in response.content.decode()
    page = client.get(deployment.get_absolute_url()).content.decode()
    assert key.prefix in page and secret not in page


@pytest.mark.parametrize("limits,message", [({"days": 0}, "validity"), ({"requests_per_minute": -1}, "requests per minute"),
                                            ({"tokens_per_day": "many"}, "tokens per day")])
def test_bad_key_limits_are_refused_with_the_reason(deployment, privacy, limits, message):
    with pytest.raises(actions.DeploymentRefused, match=message):
        actions.issue_consumer_key(privacy, deployment, "app", **limits)


def test_retiring_revokes_every_key_and_refuses_new_ones(deployment, privacy):
    issue(privacy, deployment, "a")
    issue(privacy, deployment, "b")
    actions.retire_deployment(privacy, deployment, "Replaced by a newer adapter.")
    assert ConsumerKey.objects.filter(revoked_at__isnull=True).count() == 0
    assert set(ConsumerKey.objects.values_list("revoked_reason", flat=True)) == {"The deployment was retired: Replaced by a newer adapter."}
    with pytest.raises(actions.DeploymentRefused, match="retired"):
        actions.issue_consumer_key(privacy, deployment, "c")
    with pytest.raises(actions.DeploymentRefused, match="cannot be resumed"):
        actions.resume_deployment(privacy, deployment, "Oops.")


def test_suspend_and_resume_need_a_reason_and_are_in_the_trail(deployment, privacy):
    with pytest.raises(actions.DeploymentRefused, match="Say why"):
        actions.suspend_deployment(privacy, deployment, " ")
    actions.suspend_deployment(privacy, deployment, "Investigating an alert.")
    actions.resume_deployment(privacy, deployment, "False alarm.")
    assert list(AuditEvent.objects.filter(action__in=["deployment.suspended", "deployment.resumed"])
                .order_by("sequence").values_list("action", flat=True)) == ["deployment.suspended", "deployment.resumed"]
    assert Deployment.objects.get().state == DeploymentState.ACTIVE


def test_blocking_the_release_later_suspends_the_deployment(deployment, privacy):
    audit_actions.block_adapter(privacy, deployment.run, "The re-audit found a canary.")
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.SUSPENDED
    assert "The re-audit found a canary." in deployment.state_reason
    with pytest.raises(actions.DeploymentRefused, match="no longer released"):
        actions.resume_deployment(privacy, deployment, "Try again.")


# --------------------------------------------------------------------------- pages


def test_the_privacy_officer_deploys_from_the_run_page(released_run, privacy):
    client = verified_client(privacy)
    run_page = client.get(released_run.get_absolute_url()).content.decode()
    assert f"/serving/runs/{released_run.pk}/deploy/" in run_page
    response = client.post(f"/serving/runs/{released_run.pk}/deploy/",
                           {"name": "helpdesk", "purpose": "Agents' drafts.", "max_output_tokens": 64, "filter_mode": "withhold"})
    deployment = Deployment.objects.get()
    assert response.status_code == 302 and response["Location"] == deployment.get_absolute_url()
    assert (deployment.name, deployment.max_output_tokens, deployment.filter_mode) == ("helpdesk", 64, "withhold")


def test_the_deploy_form_says_why_an_unreleased_run_is_refused(engineer, legal, privacy):
    run, _ = audited_run(engineer, legal, privacy)
    response = verified_client(privacy).post(f"/serving/runs/{run.pk}/deploy/", {"name": "x", "purpose": "p", "max_output_tokens": 8,
                                                                                  "filter_mode": "mask"})
    assert response.status_code == 200 and "has not been released" in response.content.decode()
    assert not Deployment.objects.exists()


def test_the_engineer_sees_their_runs_deployment_but_not_its_keys(deployment, privacy, engineer):
    issue(privacy, deployment)
    response = client_for(engineer).get(deployment.get_absolute_url())
    assert response.status_code == 200
    assert "Consumer keys" not in response.content.decode()


def test_another_engineer_and_the_regulator_do_not_see_the_deployment(deployment, other_engineer, regulator):
    assert client_for(other_engineer).get(deployment.get_absolute_url()).status_code == 404
    assert client_for(regulator).get(deployment.get_absolute_url()).status_code == 404
    assert client_for(regulator).get("/serving/deployments/").status_code == 403


@pytest.mark.parametrize("who", ["engineer", "outsider", "legal"])
def test_the_privacy_pages_refuse_other_roles(who, request, deployment, privacy):
    user = request.getfixturevalue(who)
    record = QueryRecord.objects.create(deployment=deployment, consumer_pseudonym="x", endpoint="completions",
                                        outcome=QueryOutcome.MASKED)
    flagged = actions.flag_output(record, "Call Jane Roe on 555 010 9999")
    client = client_for(user)
    assert client.get("/serving/flagged/").status_code == 403
    assert client.get(f"/serving/flagged/{flagged.pk}/").status_code in (403, 404)
    assert client.get(f"/serving/flagged/{flagged.pk}/").status_code == (403 if who == "outsider" else 404)
    assert client.get(f"/serving/runs/{deployment.run_id}/deploy/").status_code == 403  # they see the run, may not deploy it
    assert client.post(f"/serving/deployments/{deployment.pk}/suspend/", {"reason": "x"}).status_code in (403, 404)
    assert client.post(f"/serving/deployments/{deployment.pk}/keys/", {"consumer": "me"}).status_code in (403, 404)
    assert Deployment.objects.get().state == DeploymentState.ACTIVE and not ConsumerKey.objects.exists()


def test_opening_a_flagged_original_asks_for_a_justification_kept_in_the_trail(deployment, privacy):
    record = QueryRecord.objects.create(deployment=deployment, consumer_pseudonym="x", endpoint="completions",
                                        outcome=QueryOutcome.MASKED, output_redacted="Call <PERSON> on <PHONE_NUMBER>")
    flagged = actions.flag_output(record, "Call Jane Roe on 555 010 9999")
    assert b"Jane Roe" not in bytes(FlaggedOutput.objects.get().sealed_output)
    client = verified_client(privacy)
    first = client.get(f"/serving/flagged/{flagged.pk}/")
    assert first.status_code == 200 and "Jane Roe" not in first.content.decode()
    ticket = first.context["ticket"]
    justify = client.post(reverse("mfa:justify"), {"ticket": ticket, "justification": "Ticket SEC-42: checking a reported leak."})
    assert justify.status_code == 302
    opened = client.get(f"/serving/flagged/{flagged.pk}/")
    assert "Jane Roe" in opened.content.decode()
    assert AuditEvent.objects.filter(action="access.justified", payload__contains="SEC-42").exists()
    assert AuditEvent.objects.filter(action="flaggedoutput.opened", object_id=str(flagged.pk)).exists()
    reviewed = client.post(f"/serving/flagged/{flagged.pk}/", {"note": "A real customer's phone: key revoked."})
    assert reviewed.status_code == 302
    assert FlaggedOutput.objects.get().state == "reviewed"


# --------------------------------------------------------------------------- API and CLI


def _privacy_api(privacy, *, second_factor=True) -> APIClient:
    _, secret = ApiToken.objects.issue(privacy, days=1, with_second_factor=second_factor)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def test_the_api_deploys_issues_a_key_and_suspends(released_run, privacy):
    client = _privacy_api(privacy)
    created = client.post("/api/deployments/", {"run": released_run.pk, "name": "api-bot", "max_output_tokens": 16}, format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    key = client.post(f"/api/deployments/{pk}/keys/", {"consumer": "batch-job", "days": 7}, format="json")
    assert key.status_code == 201 and ConsumerKey.objects.get().digest == ConsumerKey.digest_of(key.json()["secret"])
    listed = client.get(f"/api/deployments/{pk}/keys/").json()
    assert "secret" not in listed[0]
    suspended = client.post(f"/api/deployments/{pk}/suspend/", {"reason": "Testing."}, format="json")
    assert suspended.status_code == 200 and suspended.json()["state"] == "suspended"
    revoked = client.post(f"/api/deployments/{pk}/keys/{listed[0]['id']}/revoke/", {"reason": "Done."}, format="json")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]


def test_the_api_refuses_an_unreleased_run_with_a_sentence(engineer, legal, privacy):
    run, _ = audited_run(engineer, legal, privacy)
    response = _privacy_api(privacy).post("/api/deployments/", {"run": run.pk, "name": "x"}, format="json")
    assert response.status_code == 400 and "has not been released" in response.json()["detail"]


def test_the_api_refuses_writes_without_second_factor_and_to_other_roles(deployment, privacy, engineer, legal):
    from tests.conftest import api_client_for

    without = _privacy_api(privacy, second_factor=False)
    assert without.post(f"/api/deployments/{deployment.pk}/suspend/", {"reason": "x"}, format="json").status_code == 403
    assert without.post(f"/api/deployments/{deployment.pk}/keys/", {"consumer": "x"}, format="json").status_code == 403
    assert without.get(f"/api/deployments/{deployment.pk}/keys/").status_code == 200  # reading needs no step-up
    assert not ConsumerKey.objects.exists()
    assert api_client_for(engineer).post(f"/api/deployments/{deployment.pk}/suspend/", {"reason": "x"}, format="json").status_code == 403
    assert api_client_for(engineer).get(f"/api/deployments/{deployment.pk}/").status_code == 200
    assert api_client_for(legal).get(f"/api/deployments/{deployment.pk}/keys/").status_code == 403
    assert Deployment.objects.get().state == DeploymentState.ACTIVE


def test_the_cli_deploys_and_prints_a_key_once(released_run, privacy, engineer):
    with pytest.raises(CommandError, match="Only the privacy officer"):
        call_command("deploy_adapter", str(released_run.pk), "--name", "cli-bot", "--as", engineer.username)
    call_command("deploy_adapter", str(released_run.pk), "--name", "cli-bot", "--as", privacy.username, stdout=io.StringIO())
    out, err = io.StringIO(), io.StringIO()
    call_command("issue_consumer_key", "cli-bot", "--consumer", "nightly", "--as", privacy.username, stdout=out, stderr=err)
    secret = out.getvalue().strip()
    assert ConsumerKey.objects.get().digest == ConsumerKey.digest_of(secret) and secret not in err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_the_pages_write_on_the_real_path(released_run, privacy):
    """Outside the test transaction, as a server runs them: deploy, issue a key, suspend, revoke."""
    client = verified_client(privacy)
    assert client.post(f"/serving/runs/{released_run.pk}/deploy/", {"name": "real-path", "purpose": "p", "max_output_tokens": 16,
                                                                    "filter_mode": "mask"}).status_code == 302
    deployment = Deployment.objects.get()
    issued = client.post(f"/serving/deployments/{deployment.pk}/keys/", {"consumer": "app", "days": 1, "requests_per_minute": 1,
                                                                         "tokens_per_day": 10})
    assert issued.status_code == 200 and ConsumerKey.objects.count() == 1
    assert client.post(f"/serving/deployments/{deployment.pk}/suspend/", {"reason": "Drill."}).status_code == 302
    assert client.post(f"/serving/keys/{ConsumerKey.objects.get().pk}/revoke/", {"reason": "Drill."}).status_code == 302
    assert Deployment.objects.get().state == DeploymentState.SUSPENDED and ConsumerKey.objects.get().revoked_at is not None
    assert set(AuditEvent.objects.filter(action__startswith=("deployment.")).values_list("action", flat=True)) == {
        "deployment.created", "deployment.suspended"}


def test_engineers_list_only_their_own_runs_deployments(deployment, engineer, other_engineer, legal):
    assert [d.name for d in client_for(engineer).get("/serving/deployments/").context["object_list"]] == ["support-bot"]
    assert list(client_for(other_engineer).get("/serving/deployments/").context["object_list"]) == []
    assert [d.name for d in client_for(legal).get("/serving/deployments/").context["object_list"]] == ["support-bot"]
