"""`make serve`, run: gunicorn with the production settings, static files collected, `check --deploy`
clean, answering over HTTP the way a TLS proxy in front of it would ask.

The server is started by the Makefile's own target (with the virtualenv's stamp taken as up to
date, so the test never reinstalls anything), on a free port, with a temporary data dir and
SQLite in it, and secrets from files as a deployment would hold them.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 240  # check --deploy, migrate, collectstatic (gzip and brotli of every file), then gunicorn


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def production_env(data_dir: Path, secrets_dir: Path | None) -> dict[str, str]:
    """The environment of a deployment: production, its own data dir, secrets in files."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "PROVENANT_", "SECURE_", "DATABASE_URL", "CELERY_"))}
    env.update(PROVENANT_ENV="production", PROVENANT_DATA_DIR=str(data_dir), ALLOWED_HOSTS="127.0.0.1,localhost")
    if secrets_dir is not None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from governance.vault import MasterKey

        files = {
            "DJANGO_SECRET_KEY": os.urandom(40).hex(),
            "PROVENANT_MASTER_KEY": MasterKey.generate_json(),
            "PROVENANT_SIGNING_KEY": Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode(),
        }
        secrets_dir.mkdir(mode=0o700)
        for name, value in files.items():
            (secrets_dir / name.lower()).write_text(value)
            env[f"{name}_FILE"] = str(secrets_dir / name.lower())
    return env


def make_serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        ["make", "--no-print-directory", "-o", ".venv/.installed", "serve", f"PY={sys.executable}",
         f"SERVE_BIND=127.0.0.1:{port}", "SERVE_WORKERS=1"],
        cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)


def get(url: str, headers: dict[str, str] | None = None):
    """One GET that does not follow redirects: (status, headers, body)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`make serve` on a free port until the login page answers; stopped with its process group."""
    tmp = tmp_path_factory.mktemp("serve")
    port, log = free_port(), tmp / "serve.log"
    server = make_serve(production_env(tmp / "data", tmp / "secrets"), port, log)
    base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + STARTUP_SECONDS
    try:
        while True:
            if server.poll() is not None:
                pytest.fail(f"make serve stopped (exit code {server.returncode}):\n{log.read_text(errors='replace')[-4000:]}")
            try:
                get(f"{base}/healthz")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"make serve did not answer within {STARTUP_SECONDS} s:\n{log.read_text(errors='replace')[-4000:]}")
                time.sleep(0.5)
        yield base, log
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def test_serve_runs_check_deploy_clean_before_it_starts_the_server(served):
    _, log = served
    assert "System check identified no issues (0 silenced)." in log.read_text(errors="replace")


def test_the_login_page_answers_behind_the_tls_proxy_with_the_production_headers(served):
    base, _ = served
    status, headers, body = get(f"{base}/login/", {"X-Forwarded-Proto": "https"})
    assert status == 200 and b'name="password"' in body
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
    cookies = headers.get_all("Set-Cookie")
    csrf = next(c for c in cookies if c.startswith("csrftoken="))
    assert "Secure" in csrf and "HttpOnly" in csrf
    assert "DEBUG" not in body.decode() and "Traceback" not in body.decode()


def test_plain_http_is_sent_to_https(served):
    base, _ = served
    status, headers, _ = get(f"{base}/login/")
    assert status == 301 and headers["Location"] == f"https://{base.removeprefix('http://')}/login/"


def test_the_health_check_answers_over_plain_http_for_the_load_balancer(served):
    base, _ = served
    status, _, body = get(f"{base}/healthz")
    assert status == 200 and b'"ok"' in body


def test_static_files_are_served_under_hashed_names_cached_for_good(served):
    base, _ = served
    _, _, body = get(f"{base}/login/", {"X-Forwarded-Proto": "https"})
    stylesheet = re.search(r'href="(/static/css/portal\.[0-9a-f]{12}\.css)"', body.decode())
    assert stylesheet, "the login page links the stylesheet under its hashed name"
    status, headers, css = get(base + stylesheet.group(1), {"X-Forwarded-Proto": "https"})
    assert status == 200 and len(css) > 0
    assert "immutable" in headers["Cache-Control"]


def test_an_unknown_page_is_a_plain_404_without_debug_details(served):
    base, _ = served
    status, _, body = get(f"{base}/no-such-page/", {"X-Forwarded-Proto": "https"})
    assert status == 404 and b"URLconf" not in body


def test_serve_refuses_to_start_without_its_secrets_and_names_them(tmp_path):
    result = subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed", "serve", f"PY={sys.executable}"],
        cwd=REPO, env=production_env(tmp_path / "data", None), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert ("production needs these secrets, not set: DJANGO_SECRET_KEY PROVENANT_MASTER_KEY PROVENANT_SIGNING_KEY."
            in result.stderr)
