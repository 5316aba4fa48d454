"""Fixtures of the serving tests: a released run, its deployment, consumer keys, a session that
has confirmed its second factor, and a fake OpenAI-compatible backend answering a fixed text."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from audits import actions as audit_actions
from serving import actions
from tests.audits.pack_factory import audited_run
from tests.conftest import client_for


@pytest.fixture
def no_broker(monkeypatch):
    """Approving the fixtures' requests queues a run on commit (transactional tests commit): keep
    the messages here instead of a broker (as tests/e2e/test_real_path.py does)."""
    import types
    import uuid

    from celery import Celery

    monkeypatch.setattr(Celery, "send_task", lambda app, name, *a, **k: types.SimpleNamespace(id=str(uuid.uuid4())))


@pytest.fixture(autouse=True)
def _fresh_filter_cache():
    """The gateway caches each run's detector and index per process; test runs reuse run ids."""
    from serving import gateway

    gateway._filter_parts.cache_clear()
    yield
    gateway._filter_parts.cache_clear()


@pytest.fixture
def released_run(engineer, legal, privacy, no_broker):
    run, _ = audited_run(engineer, legal, privacy)
    audit_actions.release_adapter(privacy, run)
    return run


@pytest.fixture
def deployment(privacy, released_run):
    return actions.deploy_adapter(privacy, released_run, name="support-bot", purpose="Answers support agents.",
                                  max_output_tokens=32)


def issue(privacy, deployment, consumer="helpdesk-app", **limits) -> str:
    _, secret = actions.issue_consumer_key(privacy, deployment, consumer, **limits)
    return secret


def verified_client(user):
    """A browser session of `user` that confirmed a code from an enrolled authenticator just now."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from governance import mfa

    client = client_for(user)
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
        user=user, name=mfa.TOTP_DEVICE_NAME, confirmed=True)
    session = client.session
    session["otp_device_id"] = device.persistent_id
    session[mfa.SESSION_VERIFIED_AT] = timezone.now().isoformat()
    session.save()
    return client


class FixedBackend:
    """An OpenAI-compatible server that answers every completion with `text` (streamed in pieces
    when asked), and remembers the bodies it got."""

    def __init__(self, text: str):
        self.text, self.bodies = text, []
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                backend.bodies.append(body)
                chat = self.path.endswith("/chat/completions")
                if body.get("stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    words = backend.text.split(" ")
                    for i, word in enumerate(words):
                        piece = word if i == 0 else " " + word
                        choice = {"index": 0, "delta": {"content": piece}, "finish_reason": None} if chat else \
                            {"index": 0, "text": piece, "finish_reason": None}
                        self.wfile.write(f"data: {json.dumps({'id': 'x', 'object': 'chunk', 'choices': [choice]})}\n\n".encode())
                    end = {"index": 0, "delta": {}, "finish_reason": "stop"} if chat else {"index": 0, "text": "", "finish_reason": "stop"}
                    self.wfile.write(f"data: {json.dumps({'id': 'x', 'choices': [end]})}\n\n".encode())
                    usage = {"prompt_tokens": 5, "completion_tokens": len(words), "total_tokens": 5 + len(words)}
                    self.wfile.write(f"data: {json.dumps({'id': 'x', 'choices': [], 'usage': usage})}\n\n".encode())
                    self.wfile.write(b"data: [DONE]\n\n")
                    return
                choice = {"index": 0, "message": {"role": "assistant", "content": backend.text}, "finish_reason": "stop"} if chat \
                    else {"index": 0, "text": backend.text, "finish_reason": "stop"}
                payload = json.dumps({"id": "cmpl-fixed", "object": "chat.completion" if chat else "text_completion", "created": 1,
                                      "model": body.get("model"), "choices": [choice],
                                      "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fixed_backend(settings):
    """A backend answering "The weather is fine today." unless a test changes `.text`."""
    backend = FixedBackend("The weather is fine today.")
    settings.PROVENANT_INFERENCE_URL = backend.url
    yield backend
    backend.close()
