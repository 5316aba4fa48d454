"""The gateway under /v1/, through the official `openai` client where a client would call it:
refusals (no key, another deployment's key, expired, revoked, suspended), limits (429 with
Retry-After, holding across processes), the output filter on a planted original value (masked,
critical alert, flagged output with the original sealed), streaming, the query log.

Most tests point the gateway at a fixed-text OpenAI-compatible backend (tests/serving/conftest.py)
so that what the model says is known; `test_a_real_adapter_answers_through_the_engine_model_server`
serves a tiny base and an untrained LoRA adapter with the engine's model server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from governance.keys import master_key
from serving import actions, limits
from serving.models import (Alert, AlertKind, AlertSeverity, ConsumerKey, Deployment, FlaggedOutput, QueryOutcome,
                            QueryRecord)
from tests.audits.pack_factory import store_artifact
from tests.serving.conftest import issue
from training.models import ArtifactKind

ROOT = Path(__file__).resolve().parents[2]
PLANTED_PHONE = "555-010-4477"
PLANTED_NAME = "Margaret Okonkwo"


def openai_client(live_server, secret):
    from openai import OpenAI

    # No retries: the tests look at the first answer (the client retries 429 and 5xx on its own).
    return OpenAI(base_url=f"{live_server.url}/v1", api_key=secret, max_retries=0)


def post(client, path, body, secret=None, **extra):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
    return client.post(path, data=json.dumps(body), content_type="application/json", **headers, **extra)


def chat(model="support-bot", text="Hello", **extra):
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def plant_original_values(run, *values):
    """The run's keyed index of original values (what redaction removed), holding `values`."""
    from training.engine.pii.value_index import ValueIndex

    key = os.urandom(32)
    originals, surrogates = ValueIndex(key), ValueIndex(key)
    for value in values:
        assert originals.add(value)
    store_artifact(run, ArtifactKind.PII_INDEX, "pii_index.json",
                   json.dumps({"key": key.hex(), "originals": originals.to_dict(), "surrogates": surrogates.to_dict()}).encode())


# --------------------------------------------------------------------------- refusals


@pytest.mark.django_db
def test_no_key_and_an_unknown_key_are_401_in_openai_shape(client, deployment):
    missing = post(client, "/v1/chat/completions", chat())
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
    unknown = post(client, "/v1/chat/completions", chat(), secret="pvk_not-a-key")
    assert unknown.status_code == 401 and unknown.json()["error"]["type"] == "authentication_error"
    assert set(unknown.json()["error"]) == {"message", "type", "param", "code"}


@pytest.mark.django_db
def test_a_key_of_another_deployment_cannot_call_this_one(client, deployment, privacy, fixed_backend):
    other = actions.deploy_adapter(privacy, deployment.run, name="other-bot")
    other_secret = issue(privacy, other)
    response = post(client, "/v1/chat/completions", chat(model="support-bot"), secret=other_secret)
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"
    assert "support-bot" in response.json()["error"]["message"] and fixed_backend.bodies == []
    assert QueryRecord.objects.get().deployment == other and QueryRecord.objects.get().outcome == QueryOutcome.REFUSED


@pytest.mark.django_db
def test_an_expired_key_is_refused_with_the_reason(client, deployment, privacy, fixed_backend):
    secret = issue(privacy, deployment)
    ConsumerKey.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    response = post(client, "/v1/chat/completions", chat(), secret=secret)
    assert response.status_code == 401 and response.json()["error"]["code"] == "key_expired"
    assert "expired" in response.json()["error"]["message"] and fixed_backend.bodies == []


@pytest.mark.django_db
def test_a_revoked_key_is_refused_with_the_reason(client, deployment, privacy, fixed_backend):
    secret = issue(privacy, deployment)
    actions.revoke_consumer_key(privacy, ConsumerKey.objects.get(), "The laptop holding it was stolen.")
    response = post(client, "/v1/chat/completions", chat(), secret=secret)
    assert response.status_code == 401 and response.json()["error"]["code"] == "key_revoked"
    assert "laptop" in response.json()["error"]["message"] and fixed_backend.bodies == []


@pytest.mark.django_db
def test_a_suspended_deployment_refuses_every_call_with_403(client, deployment, privacy, fixed_backend):
    secret = issue(privacy, deployment)
    actions.suspend_deployment(privacy, deployment, "Investigating an alert.")
    for path, body in (("/v1/chat/completions", chat()), ("/v1/completions", {"model": "support-bot", "prompt": "Hi"})):
        response = post(client, path, body, secret=secret)
        assert response.status_code == 403 and response.json()["error"]["code"] == "deployment_suspended"
    assert client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 403
    assert fixed_backend.bodies == []


@pytest.mark.django_db
@pytest.mark.parametrize("body,param,words", [
    ({"model": "support-bot"}, "messages", "`messages` is required"),
    ({"messages": [{"role": "user", "content": "x"}]}, "model", "`model` is required"),
    (chat(temperature=7), "temperature", "from 0 to 2"),
    (chat(max_tokens="lots"), "max_tokens", "whole number"),
    (chat(n=3), "n", "must be 1"),
    (chat(tools=[{"type": "function"}]), "tools", "Not supported"),
    ({"model": "support-bot", "messages": [{"role": "robot", "content": "x"}]}, "messages", "role"),
])
def test_a_bad_body_is_400_saying_what_is_wrong(client, deployment, privacy, body, param, words):
    response = post(client, "/v1/chat/completions", body, secret=issue(privacy, deployment))
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param and words in response.json()["error"]["message"]


@pytest.mark.django_db
def test_a_body_that_is_not_json_is_400(client, deployment, privacy):
    response = client.post("/v1/chat/completions", data="{not json", content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {issue(privacy, deployment)}")
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_wrong_methods_and_unknown_paths_answer_in_openai_shape(client, deployment, privacy):
    wrong = client.get("/v1/chat/completions", HTTP_AUTHORIZATION=f"Bearer {issue(privacy, deployment)}")
    assert wrong.status_code == 405 and wrong["Allow"] == "POST" and wrong.json()["error"]["code"] == "method_not_allowed"
    missing = client.post("/v1/embeddings", data="{}", content_type="application/json")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_a_session_gives_no_access_to_the_gateway(deployment, privacy):
    from tests.serving.conftest import verified_client

    response = post(verified_client(privacy), "/v1/chat/completions", chat())
    assert response.status_code == 401


# --------------------------------------------------------------------------- answers, the filter, the log


@pytest.mark.django_db
def test_max_tokens_is_capped_and_the_backend_gets_the_deployments_name(client, deployment, privacy, fixed_backend):
    secret = issue(privacy, deployment)
    response = post(client, "/v1/chat/completions", chat(max_tokens=5000, temperature=0.7), secret=secret)
    assert response.status_code == 200, response.content
    assert fixed_backend.bodies[0]["max_tokens"] == deployment.max_output_tokens == 32
    assert fixed_backend.bodies[0]["model"] == "support-bot"
    answer = response.json()
    assert answer["object"] == "chat.completion" and answer["model"] == "support-bot"
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": "The weather is fine today."}
    record = QueryRecord.objects.get()
    assert (record.outcome, record.completion_tokens, record.temperature, record.prompt_redacted) == (QueryOutcome.ANSWERED, 7, 0.7, "")
    assert record.consumer_pseudonym and str(ConsumerKey.objects.get().pk) != record.consumer_pseudonym
    assert ConsumerKey.objects.get().last_used_at is not None


@pytest.mark.django_db
def test_a_planted_original_value_is_masked_raises_a_critical_alert_and_is_sealed_for_review(client, deployment, privacy, fixed_backend):
    plant_original_values(deployment.run, PLANTED_PHONE, PLANTED_NAME)
    fixed_backend.text = f"Sure: call {PLANTED_NAME} on {PLANTED_PHONE} about the refund."
    response = post(client, "/v1/chat/completions", chat(), secret=issue(privacy, deployment))
    assert response.status_code == 200
    content = response.json()["choices"][0]["message"]["content"]
    assert PLANTED_PHONE not in content and "4477" not in content and "refund" in content
    record = QueryRecord.objects.get()
    assert record.outcome == QueryOutcome.MASKED and record.original_hits >= 1 and PLANTED_PHONE not in record.output_redacted
    alert = Alert.objects.get()
    assert (alert.kind, alert.severity, alert.query) == (AlertKind.ORIGINAL_VALUE_OUTPUT, AlertSeverity.CRITICAL, record)
    assert PLANTED_PHONE not in alert.summary and PLANTED_PHONE not in json.dumps(alert.details)
    flagged = FlaggedOutput.objects.get()
    assert PLANTED_PHONE.encode() not in bytes(flagged.sealed_output)
    assert master_key().open(flagged.sealed_output, flagged.seal_context()).decode() == fixed_backend.text


@pytest.mark.django_db
def test_withhold_mode_withholds_an_answer_with_personal_data(client, deployment, privacy, fixed_backend):
    Deployment.objects.filter(pk=deployment.pk).update(filter_mode="withhold", log_prompts=True)
    fixed_backend.text = f"Write to {PLANTED_NAME} at margaret.okonkwo@example.org today."
    response = post(client, "/v1/completions", {"model": "support-bot", "prompt": "Who handles refunds? Ask Jane Doe."},
                    secret=issue(privacy, deployment))
    choice = response.json()["choices"][0]
    assert "margaret" not in choice["text"].lower() and choice["finish_reason"] == "content_filter"
    record = QueryRecord.objects.get()
    assert record.outcome == QueryOutcome.WITHHELD and FlaggedOutput.objects.filter(query=record).exists()
    assert "Who handles refunds?" in record.prompt_redacted and "Jane Doe" not in record.prompt_redacted


@pytest.mark.django_db
def test_an_unreachable_backend_is_502_and_logged_as_failed(client, deployment, privacy, settings):
    settings.PROVENANT_INFERENCE_URL = "http://127.0.0.1:9/v1"
    response = post(client, "/v1/chat/completions", chat(), secret=issue(privacy, deployment))
    assert response.status_code == 502 and response.json()["error"]["code"] == "backend_unavailable"
    assert QueryRecord.objects.get().outcome == QueryOutcome.FAILED


# --------------------------------------------------------------------------- the openai client, streaming


@pytest.mark.django_db(transaction=True)
def test_the_openai_client_lists_the_model_and_completes(live_server, deployment, privacy, fixed_backend):
    client = openai_client(live_server, issue(privacy, deployment))
    assert [m.id for m in client.models.list()] == ["support-bot"]
    answer = client.chat.completions.create(model="support-bot", messages=[{"role": "user", "content": "Weather?"}])
    assert answer.choices[0].message.content == "The weather is fine today." and answer.usage.completion_tokens == 7
    text = client.completions.create(model="support-bot", prompt="Weather?")
    assert text.choices[0].text == "The weather is fine today."


@pytest.mark.django_db(transaction=True)
def test_streaming_through_the_openai_client_is_filtered(live_server, deployment, privacy, fixed_backend):
    plant_original_values(deployment.run, PLANTED_PHONE)
    fixed_backend.text = f"Sure, the number is {PLANTED_PHONE} and the office opens at nine."
    client = openai_client(live_server, issue(privacy, deployment))
    stream = client.chat.completions.create(model="support-bot", messages=[{"role": "user", "content": "Number?"}], stream=True,
                                            stream_options={"include_usage": True})
    pieces, usage = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        usage = chunk.usage or usage
    text = "".join(pieces)
    assert "opens at nine" in text and PLANTED_PHONE not in text and "4477" not in text
    assert usage is not None and usage.completion_tokens == len(fixed_backend.text.split(" "))
    record = QueryRecord.objects.get()
    assert record.streamed and record.outcome == QueryOutcome.MASKED and record.original_hits >= 1
    assert Alert.objects.filter(severity=AlertSeverity.CRITICAL).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_suspended_deployment_is_refused_to_the_openai_client(live_server, deployment, privacy, fixed_backend):
    import openai

    client = openai_client(live_server, issue(privacy, deployment))
    actions.suspend_deployment(privacy, deployment, "Incident 7.")
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(model="support-bot", messages=[{"role": "user", "content": "Hi"}])
    assert "suspended" in str(refused.value)


# --------------------------------------------------------------------------- limits


@pytest.mark.django_db
def test_the_requests_per_minute_limit_is_429_with_retry_after(client, deployment, privacy, fixed_backend):
    secret = issue(privacy, deployment, requests_per_minute=2)
    assert [post(client, "/v1/chat/completions", chat(), secret=secret).status_code for _ in range(2)] == [200, 200]
    limited = post(client, "/v1/chat/completions", chat(), secret=secret)
    assert limited.status_code == 429 and 1 <= int(limited["Retry-After"]) <= 60
    assert limited.json()["error"]["code"] == "rate_limit_exceeded" and "2 requests per minute" in limited.json()["error"]["message"]
    assert len(fixed_backend.bodies) == 2
    assert list(QueryRecord.objects.order_by("pk").values_list("outcome", flat=True)) == ["answered", "answered", "limited"]


@pytest.mark.django_db
def test_the_tokens_per_day_limit_is_429_until_midnight(client, deployment, privacy, fixed_backend):
    secret = issue(privacy, deployment, tokens_per_day=12)  # one answer of the fixed backend: 5 + 7 tokens
    assert post(client, "/v1/chat/completions", chat(), secret=secret).status_code == 200
    limited = post(client, "/v1/chat/completions", chat(), secret=secret)
    assert limited.status_code == 429 and "tokens for today" in limited.json()["error"]["message"]
    assert int(limited["Retry-After"]) <= 86400


@pytest.mark.django_db
def test_max_tokens_is_lowered_to_what_is_left_of_the_days_budget(client, deployment, privacy, fixed_backend):
    secret = issue(privacy, deployment, tokens_per_day=20)
    post(client, "/v1/chat/completions", chat(), secret=secret)  # uses 12
    post(client, "/v1/chat/completions", chat(), secret=secret)
    assert fixed_backend.bodies[1]["max_tokens"] == 8


def _counting_processes(key: ConsumerKey, now, attempts: int, data_dir: Path, extra_env: dict) -> list[int]:
    """Two processes counting requests of one key in the same minute, started together."""
    from tests.training.test_worker_kill import database_url

    go = data_dir / "go"
    script = (
        "import sys, time, datetime, pathlib, django; django.setup()\n"
        "from serving import limits; from serving.models import ConsumerKey\n"
        "key = ConsumerKey.objects.get(pk=int(sys.argv[1])); now = datetime.datetime.fromisoformat(sys.argv[2])\n"
        "go = pathlib.Path(sys.argv[3])\n"
        "while not go.exists(): time.sleep(0.01)\n"
        "print(sum(limits.take_request(key, now) is None for _ in range(int(sys.argv[4]))))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVENANT_")}
    env.update(DJANGO_SETTINGS_MODULE="portal.settings", PROVENANT_DATA_DIR=str(data_dir), DATABASE_URL=database_url(), **extra_env)
    children = [subprocess.Popen([sys.executable, "-c", script, str(key.pk), now.isoformat(), str(go), str(attempts)], cwd=ROOT,
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(0.5)  # both are importing Django; the flag starts them together
    go.touch()
    outputs = [child.communicate(timeout=120) for child in children]
    assert all(child.returncode == 0 for child in children), [err for _, err in outputs]
    return [int(out.strip().splitlines()[-1]) for out, _ in outputs]


@pytest.mark.django_db(transaction=True)
def test_the_database_limit_holds_across_two_processes(deployment, privacy, data_dir):
    if connection.vendor != "sqlite" and connection.vendor != "postgresql":
        pytest.skip("two processes share only a file or server database")
    key, _ = actions.issue_consumer_key(privacy, deployment, "batch", requests_per_minute=25)
    now = timezone.now().replace(second=30, microsecond=0)
    taken = _counting_processes(key, now, 20, data_dir, {})
    assert sum(taken) == 25 and all(t > 0 for t in taken)  # 40 tries, exactly the limit let through
    assert limits.take_request(key, now) is not None


def _redis_url() -> str | None:
    try:
        import redis

        redis.Redis.from_url("redis://127.0.0.1:6379/15", socket_connect_timeout=0.5).ping()
        return "redis://127.0.0.1:6379/15"
    except Exception:
        return None


@pytest.mark.django_db(transaction=True)
def test_the_redis_limit_holds_across_two_processes(deployment, privacy, data_dir, settings):
    url = _redis_url()
    if url is None:
        pytest.skip("no Redis on 127.0.0.1:6379")
    settings.PROVENANT_REDIS_URL = url
    key, _ = actions.issue_consumer_key(privacy, deployment, "batch", requests_per_minute=25)
    now = timezone.now().replace(second=30, microsecond=0)
    import redis

    redis.Redis.from_url(url).delete(limits.RedisCounters._name(key, "minute", now.replace(second=0)),
                                     limits.RedisCounters._name(key, "day", now.replace(hour=0, minute=0, second=0)))
    taken = _counting_processes(key, now, 20, data_dir, {"PROVENANT_REDIS_URL": url})
    assert sum(taken) == 25 and all(t > 0 for t in taken)
    assert limits.take_request(key, now) is not None
    assert not ConsumerKey.objects.get().usage.exists()  # counted in Redis, not the database


# --------------------------------------------------------------------------- the real path: engine model server, tiny base, LoRA


@pytest.fixture(scope="session")
def tiny_adapter(tmp_path_factory):
    """A tiny GPT-2 base and an untrained LoRA adapter on it, saved as PEFT saves them."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from training.engine.tiny_base import build_tiny_base

    base = build_tiny_base(tmp_path_factory.mktemp("tiny-base"), seed=0)
    adapter = tmp_path_factory.mktemp("adapter")
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base), LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"],
                                                                                  fan_in_fan_out=True, task_type="CAUSAL_LM"))
    model.save_pretrained(adapter)
    return base, adapter


@pytest.fixture
def served(deployment, tiny_adapter, settings):
    """The deployment's run made to hold the real adapter on the tiny base, and the engine's model
    server serving it in a thread through the portal's resolver."""
    from serving.engine.model_server import ModelServer
    from serving.model_resolver import DeploymentResolver
    from training.models import BaseModel, RunArtifact

    base, adapter = tiny_adapter
    BaseModel.objects.filter(pk=deployment.run.base_model_id).update(location=str(base))
    RunArtifact.objects.filter(run=deployment.run, kind=ArtifactKind.ADAPTER).delete()  # the factory's fake weights
    for path in sorted(adapter.iterdir()):
        store_artifact(deployment.run, ArtifactKind.ADAPTER, path.name, path.read_bytes())
    resolver = DeploymentResolver()
    server = ModelServer(resolver, list_models=resolver.names, api_key="backend-token")
    server.start_in_thread()
    settings.PROVENANT_INFERENCE_URL = f"{server.url}/v1"
    settings.PROVENANT_INFERENCE_API_KEY = "backend-token"
    yield server, resolver
    server.shutdown()
    resolver.close()


@pytest.mark.django_db(transaction=True)
def test_a_real_adapter_answers_and_streams_through_the_engine_model_server(live_server, deployment, privacy, served):
    server, resolver = served
    client = openai_client(live_server, issue(privacy, deployment))
    answer = client.completions.create(model="support-bot", prompt="The customer asked about", max_tokens=200, temperature=0)
    assert answer.usage.completion_tokens <= deployment.max_output_tokens == 32 and answer.model == "support-bot"
    assert server.loaded() == ["support-bot"]
    assert list(resolver.root.iterdir()) == []  # the decrypted adapter is gone once loaded
    stream = client.chat.completions.create(model="support-bot", messages=[{"role": "user", "content": "Hello"}], stream=True,
                                            max_tokens=8)
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert QueryRecord.objects.filter(streamed=True).count() == 1
    record = QueryRecord.objects.get(streamed=True)
    assert record.outcome in (QueryOutcome.ANSWERED, QueryOutcome.MASKED) and record.completion_tokens >= 1
    assert "".join(pieces) or record.completion_tokens  # a random tiny model may emit only whitespace, but it answered


@pytest.mark.django_db
def test_the_resolver_serves_only_active_deployments_and_unseals_their_watermark_key(deployment, privacy):
    from serving.model_resolver import DeploymentResolver

    resolver = DeploymentResolver()
    try:
        spec = resolver("support-bot")
        assert spec.watermark_key.hashing_key == actions.watermark_key_of(deployment) and spec.max_new_tokens_cap == 32
        assert {p.name for p in spec.adapter_dir.iterdir()} == {"adapter_model.safetensors", "adapter_config.json"}
        assert oct(spec.adapter_dir.parent.stat().st_mode & 0o777) == "0o700"
        spec.cleanup()
        assert not spec.adapter_dir.exists()
        actions.suspend_deployment(privacy, deployment, "Incident.")
        assert resolver("support-bot") is None and resolver("no-such-model") is None and resolver.names() == []
    finally:
        resolver.close()
    assert not resolver.root.exists()
