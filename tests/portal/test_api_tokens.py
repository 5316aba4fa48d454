"""API tokens: kept hashed, shown once, expiring, revocable, and in the trail without the secret."""

import datetime as dt

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from governance import users
from governance.models import ApiToken, AuditEvent
from portal.permissions import NO_ROLE
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def api_get(secret: str, path: str = "/api/datasets/"):
    return Client().get(path, HTTP_AUTHORIZATION=f"Token {secret}")


def made_on_the_page(user) -> str:
    """The secret the API token page shows after its button is pressed."""
    response = client_for(user).post(reverse("api_token"))
    assert response.status_code == 200
    return response.context["secret"]


def test_the_database_holds_no_plaintext_token(engineer):
    secret = made_on_the_page(engineer)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM governance_apitoken")
        rows = cursor.fetchall()
    assert len(rows) == 1 and all(secret not in str(value) for value in rows[0])
    assert ApiToken.objects.get(user=engineer).digest == ApiToken.digest_of(secret)


def test_the_token_is_shown_once_and_works(engineer):
    browser = client_for(engineer)
    secret = made_on_the_page(engineer)
    assert api_get(secret).status_code == 200
    later = browser.get(reverse("api_token"))
    assert later.status_code == 200 and secret not in later.content.decode()
    assert ApiToken.objects.get(user=engineer).prefix in later.content.decode()


def test_the_page_that_shows_the_token_is_not_cached(engineer):
    response = client_for(engineer).post(reverse("api_token"))
    assert "no-store" in response["Cache-Control"]


def test_after_rotation_the_old_token_is_refused(engineer):
    old = made_on_the_page(engineer)
    new = made_on_the_page(engineer)
    assert api_get(old).status_code == 401
    assert api_get(new).status_code == 200


def test_a_new_token_expires_after_the_configured_days(engineer, settings):
    settings.PROVENANT_API_TOKEN_DAYS = 7
    token, _ = users.rotate_api_token(engineer)
    assert dt.timedelta(days=6) < token.expires_at - timezone.now() <= dt.timedelta(days=7)


def test_an_expired_token_is_refused_with_a_sentence_saying_where_to_make_a_new_one(engineer):
    _, secret = users.rotate_api_token(engineer)
    ApiToken.objects.filter(user=engineer).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = api_get(secret)
    assert response.status_code == 401
    detail = response.json()["detail"]
    assert "expired" in detail and reverse("api_token") in detail


def test_a_deactivated_users_token_is_gone(engineer, admin_user):
    _, secret = users.rotate_api_token(engineer)
    users.deactivate_user(admin_user, engineer, "Left the company.")
    assert not ApiToken.objects.filter(user=engineer).exists()
    assert api_get(secret).status_code == 401


def test_a_password_reset_voids_the_token(engineer, admin_user):
    _, secret = users.rotate_api_token(engineer)
    users.issue_password_reset(admin_user, engineer, base_url="http://testserver/")
    assert api_get(secret).status_code == 401


def test_a_revoked_token_is_refused(engineer):
    secret = made_on_the_page(engineer)
    response = client_for(engineer).post(reverse("api_token"), {"revoke": "1"})
    assert response.status_code == 302
    assert api_get(secret).status_code == 401
    assert not ApiToken.objects.filter(user=engineer).exists()


def test_revoking_when_there_is_no_token_says_so(engineer):
    with pytest.raises(users.UserActionRefused, match="no API token"):
        users.revoke_api_token(engineer)


def test_a_token_of_a_user_with_no_role_is_refused_with_403(engineer):
    _, secret = users.rotate_api_token(engineer)
    engineer.groups.clear()
    response = api_get(secret, "/api/")
    assert response.status_code == 403 and response.json()["detail"] == NO_ROLE


def test_use_is_recorded_at_most_once_a_minute(engineer):
    _, secret = users.rotate_api_token(engineer)
    assert ApiToken.objects.get(user=engineer).last_used_at is None
    api_get(secret)
    first = ApiToken.objects.get(user=engineer).last_used_at
    assert first is not None
    api_get(secret)
    assert ApiToken.objects.get(user=engineer).last_used_at == first  # within the minute: no write
    ApiToken.objects.filter(user=engineer).update(last_used_at=first - dt.timedelta(minutes=2))
    api_get(secret)
    assert ApiToken.objects.get(user=engineer).last_used_at >= first  # a minute on: written again


def test_the_trail_records_creation_rotation_and_revocation_without_the_token(engineer):
    first = made_on_the_page(engineer)
    second = made_on_the_page(engineer)
    client_for(engineer).post(reverse("api_token"), {"revoke": "1"})
    events = list(AuditEvent.objects.filter(action__startswith="user.api_token").order_by("sequence"))
    assert [e.action for e in events] == ["user.api_token_created", "user.api_token_rotated", "user.api_token_revoked"]
    assert all(secret not in str(e.payload) + e.summary for e in events for secret in (first, second))
