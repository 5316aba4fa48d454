"""Sessions and hardening: argon2, lock-out, headers and CSP, a clean `check --deploy`."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def argon2(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]


def test_passwords_are_hashed_with_argon2(argon2, db):
    user = get_user_model().objects.create_user("kim", password="a-long-passphrase-42")
    assert user.password.startswith("argon2$argon2id$")


def test_login_and_logout_through_the_form(engineer):
    client = Client()
    response = client.post(reverse("login"), {"username": "erin", "password": "correct-horse-battery-9"})
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    assert client.get(reverse("dashboard")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("dashboard")).status_code == 302


def test_repeated_failed_logins_lock_the_account_out(engineer, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "erin", "password": "wrong"})
    response = client.post(reverse("login"), {"username": "erin", "password": "correct-horse-battery-9"})
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_wrong_password_message_does_not_say_which_part_was_wrong(engineer):
    response = Client().post(reverse("login"), {"username": "erin", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_security_headers_and_csp(engineer):
    from tests.conftest import client_for

    response = client_for(engineer).get(reverse("dashboard"))
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "object-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]
    assert "no-store" in response["Cache-Control"]


def test_pages_load_no_third_party_assets(engineer):
    from tests.conftest import client_for

    html = client_for(engineer).get(reverse("dashboard")).content.decode()
    assert "http://" not in html and "https://" not in html
    assert "/static/css/portal.css" in html


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    env = {
        **os.environ,
        "PROVENANT_ENV": "production",
        "PROVENANT_DATA_DIR": str(tmp_path),
        "DJANGO_SECRET_KEY": "x" * 20 + "-production-secret-from-the-environment-0123456789",
        "ALLOWED_HOSTS": "provenant.example.org",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {**os.environ, "PROVENANT_ENV": "production", "PROVENANT_DATA_DIR": str(tmp_path)}
    env.pop("DJANGO_SECRET_KEY", None)
    env.pop("DJANGO_SECRET_KEY_FILE", None)
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_dev_keys_are_generated_private(data_dir, engineer):
    from tests.conftest import make_dataset

    make_dataset(engineer)
    key_file = data_dir / "keys" / "master-keyset.json"
    assert key_file.exists() and (key_file.stat().st_mode & 0o777) == 0o600
    assert (key_file.parent.stat().st_mode & 0o777) == 0o700


def test_an_unexpected_upload_is_refused_not_spooled(engineer, tmp_path, settings):
    """Endpoints that do not expect files never let Django write one to a temporary file."""
    import io

    from tests.conftest import client_for

    spool = tmp_path / "spool"
    spool.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(spool)
    handle = io.BytesIO(b"secret " * 1_000_000)
    handle.name = "x.txt"
    response = client_for(engineer).post(reverse("api_token"), {"file": handle})
    assert response.status_code == 200  # the new token, shown once
    assert list(spool.iterdir()) == []


@pytest.mark.django_db
def test_rotating_an_api_token_voids_the_old_one_and_is_in_the_trail_without_the_token(engineer):
    from governance.models import AuditEvent
    from tests.conftest import client_for

    browser = client_for(engineer)
    first = browser.post(reverse("api_token")).context["secret"]
    second = browser.post(reverse("api_token")).context["secret"]
    assert first != second
    assert Client().get("/api/datasets/", HTTP_AUTHORIZATION=f"Token {first}").status_code == 401
    events = list(AuditEvent.objects.filter(action__startswith="user.api_token").order_by("sequence"))
    assert [e.action for e in events] == ["user.api_token_created", "user.api_token_rotated"]
    assert all(first not in str(e.payload) + e.summary and second not in str(e.payload) + e.summary for e in events)
