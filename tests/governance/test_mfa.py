"""The second factor: set-up, login, recovery codes, the gate on privileged actions (pages and
API), the step-up, written justifications and an administrator's reset (governance.mfa)."""

import datetime as dt
import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from audits.models import AdapterRelease
from governance import mfa
from governance import models as m
from governance import roles
from tests.audits.pack_factory import audited_run
from tests.conftest import (api_client_for, client_for, make_dataset, second_factor_device, totp_code,
                            verify_second_factor)
from tests.governance.request_factory import make_good_request
from training.models import RedactionReview
from workflow import actions as workflow_actions
from workflow.models import Approval, RequestState

PASSWORD = "correct-horse-battery-9"


@pytest.fixture(autouse=True)
def _no_throttling(settings):
    """django-otp makes a wrong code wait 1, 2, 4 … seconds before the next try; a test that
    follows a wrong code with the right one at once is about the codes, not the waiting (the
    throttle has its own test)."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


def events(action):
    return list(m.AuditEvent.objects.filter(action=action).order_by("sequence"))


def payload(event):
    return json.loads(event.payload)


def signed_in(user) -> Client:
    """A session that gave the password but no code (force_login skips the login page)."""
    client = Client()
    client.force_login(user)
    return client


def enrolled(user) -> list[str]:
    """Set up the user's authenticator through the actions; returns their recovery codes."""
    device = mfa.start_enrolment(user)
    outcome, codes = mfa.confirm_enrolment(user, totp_code(device))
    assert outcome.ok
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)  # the code just used may be used again by the test
    return codes


def shown_codes(response) -> list[str]:
    return re.findall(r'<code class="hash">([a-z2-7]{5}-[a-z2-7]{5})</code>', response.content.decode())


def fresh_code(user) -> str:
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)  # a test may sign in twice in one 30-second step
    return totp_code(device)


def log_in(user, client=None) -> tuple[Client, object]:
    client = client or Client()
    return client, client.post(reverse("login"), {"username": user.username, "password": PASSWORD})


@pytest.fixture
def submitted(engineer):
    request = make_good_request(engineer)
    return workflow_actions.submit_request(engineer, request)


def decide_url(request):
    return reverse("workflow:request_decide", args=[request.pk])


APPROVE = {"decision": "approve", "comment": "Within the contract's purposes."}


# --------------------------------------------------------------------------- who needs it


def test_legal_privacy_and_admin_need_a_second_factor_and_the_other_roles_do_not(engineer, legal, privacy, regulator,
                                                                                 admin_user, outsider):
    assert [mfa.requires_second_factor(u) for u in (legal, privacy, admin_user)] == [True, True, True]
    assert [mfa.requires_second_factor(u) for u in (engineer, regulator, outsider)] == [False, False, False]


# --------------------------------------------------------------------------- setting up


def test_set_up_shows_a_qr_code_and_the_secret_then_a_right_code_puts_it_in_force(privacy):
    client = signed_in(privacy)
    page = client.get(reverse("mfa:setup")).content.decode()
    assert "Privacy officer" in page and "Set up an authenticator app" in page
    client.post(reverse("mfa:setup"), {"action": "start"})
    page = client.get(reverse("mfa:setup")).content.decode()
    device = TOTPDevice.objects.get(user=privacy)
    assert not device.confirmed
    assert 'src="data:image/svg+xml' in page  # the QR code, drawn here, no outside service
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    from base64 import b32encode
    assert secret == b32encode(device.bin_key).decode()

    refused = client.post(reverse("mfa:setup"), {"action": "confirm", "code": "000000" if totp_code(device) != "000000" else "111111"})
    assert refused.status_code == 400 and "not right" in refused.content.decode()
    assert payload(events("mfa.verification_failed")[-1])["purpose"] == "enrolment"
    assert not TOTPDevice.objects.get(pk=device.pk).confirmed

    done = client.post(reverse("mfa:setup"), {"action": "confirm", "code": totp_code(device)})
    codes = shown_codes(done)
    assert done.status_code == 200 and len(codes) == 10 == len(set(codes))
    assert "no-store" in done["Cache-Control"]
    assert TOTPDevice.objects.get(pk=device.pk).confirmed and mfa.recovery_codes_left(privacy) == 10
    assert [e.action for e in m.AuditEvent.objects.filter(action__startswith="mfa.").order_by("sequence")] == [
        "mfa.enrolment_started", "mfa.verification_failed", "mfa.enrolled"]
    # The session that set it up has just confirmed a code: it may approve at once.
    assert client.get(reverse("training:review_queue")).status_code == 200


def test_recovery_codes_are_kept_only_as_keyed_hashes(privacy):
    codes = enrolled(privacy)
    stored = set(StaticToken.objects.filter(device__user=privacy).values_list("token", flat=True))
    assert len(stored) == 10
    assert not stored & {c for code in codes for c in (code, code.replace("-", ""))}


# --------------------------------------------------------------------------- logging in


def test_a_password_login_with_an_authenticator_opens_nothing_until_the_code(legal):
    enrolled(legal)
    client, response = log_in(legal)
    assert response.status_code == 302 and response["Location"].startswith(reverse("mfa:verify"))
    for path in ("/", reverse("workflow:request_list"), reverse("api_token")):
        blocked = client.get(path)
        assert blocked.status_code == 302 and blocked["Location"].startswith(reverse("mfa:verify"))
    assert client.get("/api/requests/").status_code == 403
    answer = client.post(reverse("mfa:verify"), {"code": fresh_code(legal), "next": "/governance/requests/"})
    assert answer.status_code == 302 and answer["Location"] == "/governance/requests/"
    assert client.get("/").status_code == 200


def test_a_wrong_code_is_refused_and_recorded(legal):
    enrolled(legal)
    client, _ = log_in(legal)
    right = fresh_code(legal)
    wrong = "123456" if right != "123456" else "654321"
    response = client.post(reverse("mfa:verify"), {"code": wrong})
    assert response.status_code == 400 and "not right" in response.content.decode()
    assert client.get("/").status_code == 302  # still not signed in
    failure = events("mfa.verification_failed")[-1]
    assert failure.actor == legal and payload(failure)["purpose"] == "login" and payload(failure)["reason"] == "wrong code"


def test_wrong_codes_in_a_row_make_the_next_try_wait(legal, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 60
    enrolled(legal)
    client, _ = log_in(legal)
    right = fresh_code(legal)
    client.post(reverse("mfa:verify"), {"code": "123456" if right != "123456" else "654321"})
    response = client.post(reverse("mfa:verify"), {"code": right})  # right, but too soon after a wrong one
    assert "Too many wrong codes" in response.content.decode()
    assert payload(events("mfa.verification_failed")[-1])["reason"] == "throttled"


def test_each_recovery_code_signs_in_once(privacy):
    codes = enrolled(privacy)
    client, _ = log_in(privacy)
    assert client.post(reverse("mfa:verify"), {"code": codes[0].upper()}).status_code == 302
    assert client.get("/").status_code == 200
    used = events("mfa.recovery_code_used")
    assert len(used) == 1 and payload(used[0])["codes_left"] == 9

    again, _ = log_in(privacy)
    refused = again.post(reverse("mfa:verify"), {"code": codes[0]})
    assert refused.status_code == 400 and again.get("/").status_code == 302
    assert payload(events("mfa.verification_failed")[-1])["kind"] == "recovery"
    assert again.post(reverse("mfa:verify"), {"code": codes[1].replace("-", " ")}).status_code == 302
    assert mfa.recovery_codes_left(privacy) == 8


def test_new_recovery_codes_need_a_fresh_code_and_void_the_old_ones(privacy):
    old = enrolled(privacy)
    client = client_for(privacy)
    verify_second_factor(client, privacy, at=timezone.now() - dt.timedelta(hours=1))
    asked = client.post(reverse("mfa:setup"), {"action": "regenerate"})
    assert asked.status_code == 403 and mfa.CODE_FIELD in asked.content.decode()
    made = client.post(reverse("mfa:setup"), {"action": "regenerate", mfa.CODE_FIELD: fresh_code(privacy)})
    new = shown_codes(made)
    assert len(set(new)) == 10 and not set(new) & set(old)
    assert not mfa.check_code(privacy, old[2], purpose="test").ok
    assert mfa.check_code(privacy, new[2], purpose="test").ok
    assert len(events("mfa.recovery_codes_regenerated")) == 1


def test_a_privileged_user_without_an_authenticator_is_sent_to_set_it_up_at_login(privacy):
    client, response = log_in(privacy)
    assert response["Location"].startswith(reverse("mfa:setup"))
    assert client.get("/").status_code == 200  # not forced yet: only privileged actions are


def test_an_engineer_without_an_authenticator_signs_in_as_before(engineer):
    client, response = log_in(engineer)
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_someone_without_a_role_cannot_set_up_an_authenticator(outsider):
    assert signed_in(outsider).get(reverse("mfa:setup")).status_code == 403
    assert not TOTPDevice.objects.filter(user=outsider).exists()


def test_the_page_returns_only_to_a_path_on_this_site(legal):
    enrolled(legal)
    client, _ = log_in(legal)
    for evil in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        TOTPDevice.objects.filter(user=legal).update(last_t=-1)
        response = client.post(reverse("mfa:verify"), {"code": fresh_code(legal), "next": evil})
        assert response["Location"] == reverse("dashboard")


# --------------------------------------------------------------------------- the gate on pages


def test_an_approval_without_a_verified_second_factor_is_refused_and_goes_on_with_the_code(legal, submitted):
    second_factor_device(legal)
    client = signed_in(legal)  # an authenticator, but this session has not confirmed a code
    response = client.post(decide_url(submitted), APPROVE)
    assert response.status_code == 403
    page = response.content.decode()
    assert mfa.CODE_FIELD in page and 'name="comment" value="Within the contract&#x27;s purposes."' in page
    assert not Approval.objects.exists()

    wrong = client.post(decide_url(submitted), {**APPROVE, mfa.CODE_FIELD: "99999"})
    assert wrong.status_code == 403 and not Approval.objects.exists()
    assert payload(events("mfa.verification_failed")[-1])["purpose"] == "step-up"

    done = client.post(decide_url(submitted), {**APPROVE, mfa.CODE_FIELD: fresh_code(legal)})
    assert done.status_code == 302
    approval = Approval.objects.get()
    assert approval.approver == legal and approval.comment == "Within the contract's purposes."


def test_a_privileged_user_without_an_authenticator_is_sent_to_set_it_up_with_the_reason(engineer, legal, privacy):
    run, _ = audited_run(engineer, legal, privacy, passed=True)
    client = signed_in(privacy)
    response = client.post(reverse("audits:release_decision", args=[run.pk]), {"decision": "release"},
                           HTTP_REFERER=f"http://testserver{run.get_absolute_url()}")
    assert response.status_code == 302
    assert response["Location"] == mfa.url_with_next("mfa:setup", run.get_absolute_url())
    assert not AdapterRelease.objects.exists()
    page = client.get(response["Location"]).content.decode()
    assert "approves, releases and shares only with a second factor" in page


def test_a_release_with_a_recent_second_factor_goes_through(engineer, legal, privacy):
    run, _ = audited_run(engineer, legal, privacy, passed=True)
    client_for(privacy).post(reverse("audits:release_decision", args=[run.pk]), {"decision": "release"})
    assert AdapterRelease.objects.get().decision == "released"


def test_a_stale_session_is_asked_to_step_up_and_returns_where_it_was(privacy):
    client = client_for(privacy)
    step_up = mfa.step_up_seconds()
    verify_second_factor(client, privacy, at=timezone.now() - dt.timedelta(seconds=step_up + 60))
    queue = reverse("training:review_queue")
    response = client.get(queue)
    assert response.status_code == 302 and response["Location"] == mfa.url_with_next("mfa:verify", queue)
    assert "minutes ago" in client.get(response["Location"]).content.decode()
    back = client.post(reverse("mfa:verify"), {"code": fresh_code(privacy), "next": queue})
    assert back["Location"] == queue
    assert client.get(queue).status_code == 200


def test_a_session_just_inside_the_step_up_age_is_not_asked(privacy, settings):
    settings.PROVENANT_MFA_STEP_UP_SECONDS = 3600
    client = client_for(privacy)
    verify_second_factor(client, privacy, at=timezone.now() - dt.timedelta(seconds=1800))
    assert client.get(reverse("training:review_queue")).status_code == 200


def test_role_grants_and_account_changes_need_the_second_factor(admin_user, engineer):
    client = signed_in(admin_user)
    second_factor_device(admin_user)
    response = client.post(reverse("governance:user_propose", args=[engineer.pk]), {"role": roles.REGULATOR, "reason": "audit"})
    assert response.status_code == 403 and not engineer.groups.filter(name=roles.REGULATOR).exists()
    client_for(admin_user).post(reverse("governance:user_propose", args=[engineer.pk]), {"role": roles.REGULATOR, "reason": "audit"})
    assert engineer.groups.filter(name=roles.REGULATOR).exists()


def test_model_card_approval_and_pack_sharing_are_guarded(engineer, legal, privacy):
    from workflow.model_card_views import ModelCardApproveView
    from audits.sharing_views import PackSharesView, ShareRevokeView
    from audits.views import ReleaseDecisionView
    from workflow.request_views import RequestDecideView
    from training.views import ReviewDetailView, ReviewQueueView
    from governance.user_views import RoleGrantDecisionView, UserActionView, UserCreateView

    for view in (ModelCardApproveView, PackSharesView, ShareRevokeView, ReleaseDecisionView, RequestDecideView, ReviewDetailView,
                 ReviewQueueView, RoleGrantDecisionView, UserActionView, UserCreateView):
        assert issubclass(view, mfa.SecondFactorRequiredMixin), view


def test_an_engineer_is_unaffected_and_still_refused_by_role(engineer, submitted):
    client = client_for(engineer)
    assert client.get(submitted.get_absolute_url()).status_code == 200
    assert client.post(decide_url(submitted), APPROVE).status_code == 403
    assert not m.AuditEvent.objects.filter(action__startswith="mfa.").exists()


# --------------------------------------------------------------------------- the gate on the API


def test_an_api_approval_needs_a_token_made_with_the_second_factor(legal, submitted):
    _, secret = m.ApiToken.objects.issue(legal, days=30)  # made without a second factor
    from rest_framework.test import APIClient

    bare = APIClient()
    bare.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    refused = bare.post(f"/api/requests/{submitted.pk}/approve/", {"comment": "ok"}, format="json")
    assert refused.status_code == 403
    detail = refused.json()["detail"]
    assert "second factor" in detail and "Set up an authenticator app" in detail and reverse("api_token") in detail
    second_factor_device(legal)
    assert "made without one" in bare.post(f"/api/requests/{submitted.pk}/approve/", {"comment": "ok"}, format="json").json()["detail"]
    assert not Approval.objects.exists()

    allowed = api_client_for(legal).post(f"/api/requests/{submitted.pk}/approve/", {"comment": "ok"}, format="json")
    assert allowed.status_code == 200 and Approval.objects.get().approver == legal


def test_an_engineers_token_works_as_before(engineer, submitted):
    client = api_client_for(engineer)
    assert not m.ApiToken.objects.get(user=engineer).issued_with_second_factor
    assert client.post(f"/api/requests/{submitted.pk}/withdraw/", {"reason": "changed plans"}, format="json").status_code == 200
    assert client.post(f"/api/requests/{submitted.pk}/approve/", {}, format="json").status_code == 403


def test_a_token_made_from_a_verified_session_carries_the_second_factor(legal):
    client = client_for(legal)
    page = client.post(reverse("api_token")).content.decode()
    token = m.ApiToken.objects.get(user=legal)
    assert token.issued_with_second_factor and "carried" in page
    assert payload(events("user.api_token_created")[-1])["issued_with_second_factor"] is True


def test_a_token_asked_for_by_a_stale_session_needs_the_code_first(legal):
    client = client_for(legal)
    verify_second_factor(client, legal, at=timezone.now() - dt.timedelta(hours=2))
    assert client.post(reverse("api_token")).status_code == 403 and not m.ApiToken.objects.exists()
    client.post(reverse("api_token"), {mfa.CODE_FIELD: fresh_code(legal)})
    assert m.ApiToken.objects.get(user=legal).issued_with_second_factor


def test_a_token_made_without_an_authenticator_does_not_carry_it(legal):
    client = signed_in(legal)
    client.post(reverse("api_token"))
    assert not m.ApiToken.objects.get(user=legal).issued_with_second_factor


# --------------------------------------------------------------------------- justification


@pytest.fixture
def review_items(engineer, privacy):
    dataset = make_dataset(engineer, '{"text": "Patient Amelia Novak, phone +44 20 7946 0958."}\n', name="Ward notes")
    items = []
    for entity, start, end in (("PERSON", 8, 20), ("PHONE_NUMBER", 28, 44)):
        item = RedactionReview(dataset=dataset, record_id="r1", entity_type=entity, start=start, end=end, score=0.9,
                               reason="high_risk", snippet_offset=0)
        item.snippet_sealed = RedactionReview.seal_snippet(item.snippet_id, "Patient Amelia Novak, phone +44 20 7946 0958.")
        item.save()
        items.append(item)
    return items


def justify(client, page, text):
    ticket = re.search(r'name="ticket" value="([^"]+)"', page).group(1)
    return client.post(reverse("mfa:justify"), {"ticket": ticket, "justification": text})


def test_opening_original_text_asks_for_a_justification_kept_in_the_trail(privacy, review_items):
    first, second = review_items
    client = client_for(privacy)
    asked = client.get(first.get_absolute_url())
    page = asked.content.decode()
    assert asked.status_code == 200 and "Why do you need to see this?" in page and "Amelia" not in page
    assert not events("redactionreview.viewed")

    short = justify(client, page, "checking")
    assert short.status_code == 400 and "at least 20 characters" in short.content.decode()
    assert not events("access.justified")

    why = "Ticket PRIV-112: the data subject asked what we hold about them."
    back = justify(client, page, why)
    assert back.status_code == 302 and back["Location"] == first.get_absolute_url()
    shown = client.get(first.get_absolute_url()).content.decode()
    assert "Amelia Novak" in shown
    justified = events("access.justified")
    assert len(justified) == 1 and justified[0].object_type == "training.redactionreview"
    assert justified[0].object_id == str(first.pk) and payload(justified[0])["justification"] == why
    assert justified[0].actor == privacy
    assert len(events("redactionreview.viewed")) == 1

    # The same item again in this session: no new question. Another item: its own.
    assert "Amelia Novak" in client.get(first.get_absolute_url()).content.decode()
    assert "Why do you need to see this?" in client.get(second.get_absolute_url()).content.decode()


def test_a_justification_lapses_after_its_time(privacy, review_items, settings):
    first, _ = review_items
    client = client_for(privacy)
    justify(client, client.get(first.get_absolute_url()).content.decode(), "Ticket PRIV-113: checking a false positive.")
    session = client.session
    key = f"training.redactionreview:{first.pk}"
    entry = session[mfa.SESSION_JUSTIFIED][key]
    entry["at"] = (timezone.now() - dt.timedelta(seconds=settings.PROVENANT_JUSTIFICATION_SECONDS + 1)).isoformat()
    session[mfa.SESSION_JUSTIFIED] = {key: entry}
    session.save()
    assert "Why do you need to see this?" in client.get(first.get_absolute_url()).content.decode()


def test_a_justification_form_made_for_someone_else_is_refused(privacy, review_items):
    first, _ = review_items
    other = get_user_model().objects.create_user("pia", "pia@example.test", PASSWORD)
    other.groups.add(Group.objects.get(name=roles.PRIVACY))
    page = client_for(privacy).get(first.get_absolute_url()).content.decode()
    response = justify(client_for(other), page, "Ticket PRIV-114: borrowing a colleague's form.")
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    assert not events("access.justified")


# --------------------------------------------------------------------------- resets by an administrator


@pytest.fixture
def second_admin(db):
    user = get_user_model().objects.create_user("ada", "ada@example.test", PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=roles.ADMIN))
    return user


def test_an_engineers_second_factor_is_reset_by_one_administrator(admin_user, engineer):
    enrolled(engineer)
    api_client_for(engineer)
    response = client_for(admin_user).post(reverse("governance:user_second_factor", args=[engineer.pk]), {"reason": "lost phone"})
    assert response.status_code == 302
    assert not mfa.has_second_factor(engineer)
    event = events("mfa.device_reset")[-1]
    assert event.actor == admin_user and payload(event)["reason"] == "lost phone" and payload(event)["recovery_codes_voided"] == 10


def test_a_privileged_users_reset_waits_for_a_second_administrator(admin_user, second_admin, privacy):
    enrolled(privacy)
    api_client_for(privacy)
    assert m.ApiToken.objects.get(user=privacy).issued_with_second_factor
    client_for(admin_user).post(reverse("governance:user_second_factor", args=[privacy.pk]), {"reason": "new phone"})
    reset = m.SecondFactorReset.objects.get()
    assert reset.state == "pending" and mfa.is_enrolled(privacy)
    assert len(events("mfa.reset_proposed")) == 1

    with pytest.raises(mfa.SecondFactorRefused, match="second administrator"):
        mfa.confirm_reset(admin_user, reset)
    client_for(second_admin).post(reverse("governance:second_factor_reset_confirm", args=[reset.pk]))
    reset.refresh_from_db()
    assert reset.state == "done" and reset.decided_by == second_admin
    assert not mfa.has_second_factor(privacy)
    assert not m.ApiToken.objects.get(user=privacy).issued_with_second_factor
    assert payload(events("mfa.device_reset")[-1])["proposed_by"] == admin_user.username


def test_nobody_resets_their_own_second_factor_and_only_administrators_reset(admin_user, privacy, legal):
    enrolled(admin_user)
    with pytest.raises(mfa.SecondFactorRefused, match="own"):
        mfa.propose_reset(admin_user, admin_user, "lost it")
    with pytest.raises(PermissionError):
        mfa.propose_reset(privacy, legal, "lost it")
    assert client_for(privacy).get(reverse("governance:user_second_factor", args=[legal.pk])).status_code == 404


def test_a_reset_session_loses_its_second_factor(admin_user, engineer, legal):
    enrolled(legal)
    client = client_for(legal)
    assert client.get(reverse("training:run_list")).status_code == 200
    mfa.propose_reset(admin_user, legal, "lost phone")
    second = get_user_model().objects.create_user("ada", "ada@example.test", PASSWORD)
    second.groups.add(Group.objects.get(name=roles.ADMIN))
    mfa.confirm_reset(second, m.SecondFactorReset.objects.get())
    submitted_request = workflow_actions.submit_request(engineer, make_good_request(engineer))
    response = client.post(decide_url(submitted_request), APPROVE)
    assert response.status_code == 302 and response["Location"].startswith(reverse("mfa:setup"))
    assert submitted_request.state == RequestState.SUBMITTED and not Approval.objects.exists()


# --------------------------------------------------------------------------- the demo


def test_the_demo_gives_its_deciding_users_an_authenticator_and_prints_how_to_use_it(db, data_dir, capsys, settings):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from portal.demo import demo_second_factors_path

    call_command("seed_demo")
    out = capsys.readouterr().out
    User = get_user_model()
    assert [mfa.is_enrolled(User.objects.get(username=u)) for u in ("lena", "priya", "adam", "erin", "rory")] == [
        True, True, True, False, False]
    path = demo_second_factors_path()
    kept = json.loads(path.read_text())
    assert oct(path.stat().st_mode & 0o777) == "0o600" and set(kept) == {"lena", "priya", "adam"}
    assert kept["priya"]["otpauth"] in out and "otpauth://totp/Provenant" in kept["priya"]["otpauth"]
    assert len(events("mfa.enrolled")) == 3

    priya = User.objects.get(username="priya")
    TOTPDevice.objects.filter(user=priya).update(last_t=-1)
    call_command("demo_totp", "priya")
    assert mfa.check_code(priya, capsys.readouterr().out.strip(), purpose="test").ok
    assert mfa.check_code(priya, kept["priya"]["recovery_codes"][0], purpose="test").recovery_code_used
    with pytest.raises(CommandError, match="not a demo user"):
        call_command("demo_totp", "erin")
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="production"):
        call_command("demo_totp", "priya")

    call_command("seed_demo")  # idempotent: nobody is enrolled twice
    assert len(events("mfa.enrolled")) == 3
