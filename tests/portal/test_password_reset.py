"""One-time password links go to the user's own address, never to the administrator's screen
(governance.users.issue_password_reset, create_user): the page and the trail say where it went,
the mail holds the link, and the link works once."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from governance import users
from governance.models import AuditEvent
from tests.conftest import _make_user, client_for

NEW_PASSWORD = "A-new-Passphrase-77"
LINK = re.compile(r"https?://[^\s]+/account/reset/[^\s/]+/[^\s/]+/")


def _events(action, user):
    return AuditEvent.objects.filter(action=action, object_type="auth.user", object_id=str(user.pk))


@pytest.fixture
def admin_client(admin_user):
    return client_for(admin_user)


def _reset_on_the_page(client, user, capture):
    """The administrator presses the button; the mail leaves when the action's transaction commits."""
    with capture(execute=True):
        return client.post(reverse("governance:user_reset", args=[user.pk]), follow=True)


def _the_link(user) -> str:
    [message] = mail.outbox
    assert message.to == [user.email]
    [link] = LINK.findall(message.body)
    return link


def _set_password(link):
    client = client_for(None)
    form = client.get(link)
    if form.status_code != 302:  # a used or void link shows the "does not work" page at once
        return form
    return client.post(form.url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, follow=True)


def test_the_administrators_page_says_where_the_link_went_and_never_holds_it(
        admin_client, engineer, django_capture_on_commit_callbacks):
    page = _reset_on_the_page(admin_client, engineer, django_capture_on_commit_callbacks).content.decode()
    assert "A one-time link was sent to e***@example.test" in page
    path = re.sub(r"^https?://[^/]+", "", _the_link(engineer))
    assert path not in page and "/account/reset/" not in page
    assert path.rstrip("/").rsplit("/", 1)[-1] not in page  # nor the token on its own


def test_exactly_one_mail_goes_to_the_users_address_with_a_link_that_works_once(
        admin_client, engineer, django_capture_on_commit_callbacks):
    _reset_on_the_page(admin_client, engineer, django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1
    link = _the_link(engineer)
    assert link.startswith("http://testserver/account/reset/")
    engineer.refresh_from_db()
    assert not engineer.has_usable_password()  # the old password stopped working when the link was issued
    assert _set_password(link).redirect_chain[-1][0] == reverse("password_reset_complete")
    engineer.refresh_from_db()
    assert engineer.check_password(NEW_PASSWORD)
    assert _events("user.password_set", engineer).get().actor_id == engineer.pk
    assert "does not work" in client_for(None).get(link, follow=True).content.decode()  # once only


def test_the_trail_records_the_link_issued_and_where_it_went_but_not_the_link(
        admin_user, admin_client, engineer, django_capture_on_commit_callbacks):
    _reset_on_the_page(admin_client, engineer, django_capture_on_commit_callbacks)
    event = _events("user.password_reset_issued", engineer).get()
    assert event.actor_id == admin_user.pk
    token = _the_link(engineer).rstrip("/").rsplit("/", 1)[-1]
    recorded = f"{event.summary} {event.payload}"
    assert "e***@example.test" in recorded and token not in recorded and "/account/reset/" not in recorded


def test_an_account_without_an_email_address_is_refused_with_the_reason(
        admin_client, django_capture_on_commit_callbacks):
    nomail = _make_user("noah")
    get_user_model().objects.filter(pk=nomail.pk).update(email="")
    page = _reset_on_the_page(admin_client, nomail, django_capture_on_commit_callbacks).content.decode()
    assert "noah has no e-mail address, so a reset link has nowhere to go: add their address first." in page
    assert mail.outbox == [] and not _events("user.password_reset_issued", nomail).exists()
    assert get_user_model().objects.get(pk=nomail.pk).check_password("correct-horse-battery-9")  # untouched


def test_an_address_added_on_the_page_is_recorded_and_then_receives_the_link(
        admin_user, admin_client, django_capture_on_commit_callbacks):
    nomail = _make_user("noah")
    get_user_model().objects.filter(pk=nomail.pk).update(email="")
    admin_client.post(reverse("governance:user_email", args=[nomail.pk]), {"email": "noah@example.test"})
    event = _events("user.email_changed", nomail).get()
    assert event.actor_id == admin_user.pk and "noah@example.test" in str(event.payload)
    _reset_on_the_page(admin_client, nomail, django_capture_on_commit_callbacks)
    assert mail.outbox[0].to == ["noah@example.test"]


def test_a_new_user_gets_their_first_link_by_mail_and_the_administrator_sees_only_where_it_went(
        admin_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        page = admin_client.post(reverse("governance:user_create"), {"username": "nina", "email": "nina@example.test"},
                                 follow=True).content.decode()
    nina = get_user_model().objects.get(username="nina")
    assert "A one-time link was sent to n***@example.test" in page and "/account/reset/" not in page
    link = _the_link(nina)
    _set_password(link)
    nina.refresh_from_db()
    assert nina.check_password(NEW_PASSWORD)


def test_a_new_user_needs_an_email_address(admin_client):
    page = admin_client.post(reverse("governance:user_create"), {"username": "nina"}).content.decode()
    assert "This field is required" in page and not get_user_model().objects.filter(username="nina").exists()


@pytest.mark.django_db(transaction=True)  # the mail leaves at the real commit, before the page answers
def test_a_mail_server_that_refuses_the_message_is_reported_to_the_administrator(admin_client, engineer, monkeypatch):
    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("Connection refused")

    monkeypatch.setattr(users, "send_mail", refuse)
    page = admin_client.post(reverse("governance:user_reset", args=[engineer.pk]), follow=True).content.decode()
    assert "could not be sent to e***@example.test" in page and "issue a new link" in page
