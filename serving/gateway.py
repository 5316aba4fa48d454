"""The guarded OpenAI-compatible gateway under /v1/: authenticate the consumer's key, check the
deployment and the limits, forward to the inference backend under the deployment's name, pass
every answer through the output filter before it leaves, log the call, let monitoring look at it.

Requests and responses follow the OpenAI API (chat completions, completions, models), so the
official clients work unchanged; errors are OpenAI-shaped JSON (`{"error": {"message", "type",
"param", "code"}}`). Refusal statuses:

- 401: no key, an unknown key, an expired or revoked key (the message says which).
- 403: the key's deployment is suspended or retired. Not 503: it is a decision about access, not
  an outage, and 5xx answers make clients retry (the OpenAI client retries 5xx and 429 on its
  own); a suspended deployment must not draw a retry storm.
- 404: `model` names something other than the key's own deployment (a key gives no rights to
  another deployment, and whether that one exists is not the caller's to learn).
- 400: a body the gateway cannot accept, saying what is wrong.
- 429: a limit of the key, with `Retry-After` in seconds.
- 502: the model server failed or could not be reached.

The request side — the errors, the key check, parsing the body into a `Call` — is in
`serving.gateway_requests`; here are the output filter, the query log, the backend, the entry points
(`handle_completion`, `handle_models`) and streaming.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django.http import JsonResponse, StreamingHttpResponse
from django.utils import timezone

from serving import limits
from serving.gateway_requests import (  # noqa: F401 - COMPLETIONS re-exported for serving.gateway_views
    CHAT, COMPLETIONS, Call, GatewayError, authenticate, backend_body, bad_request, capped_max_tokens, check_key,
    consumer_pseudonym, parse_body,
)
from serving.models import ConsumerKey, Deployment, FilterMode, QueryOutcome, QueryRecord

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- the output filter


@lru_cache(maxsize=16)
def _filter_parts(run_id: int) -> tuple:
    """(detect, originals) for a run: the redaction detector as its data classes configure it, and
    the run's keyed index of original values (None when the run kept none). Loading the detector
    takes seconds: once per process and run."""
    from audits.engine.leakage import ValueIndex
    from training import redaction
    from training.engine.pii.detector import PiiDetector
    from training.models import ArtifactKind, TrainingRun

    run = TrainingRun.objects.get(pk=run_id)
    classes = list({dc.pk: dc for d in run.datasets.all() for dc in d.data_classes.all()}.values())
    detector = PiiDetector(redaction.detector_config_for(classes))
    originals = None
    artifact = run.artifacts.filter(kind=ArtifactKind.PII_INDEX, name="pii_index.json", deleted_at__isnull=True).first()
    if artifact is not None:
        index = json.loads(artifact.read_bytes())
        originals = ValueIndex.from_dict(index["originals"], bytes.fromhex(index["key"]))
    return detector.detect, originals


def output_filter_for(deployment: Deployment):
    from serving.engine.output_filter import OutputFilter

    detect, originals = _filter_parts(deployment.run_id)
    return OutputFilter(detect, originals=originals, mode=deployment.filter_mode)


def streaming_filter_for(deployment: Deployment, prompt: str):
    from serving.engine.output_filter import StreamingOutputFilter

    detect, originals = _filter_parts(deployment.run_id)
    return StreamingOutputFilter(detect, originals=originals, mode=deployment.filter_mode, prompt=prompt)


def redact(deployment: Deployment, text: str) -> str:
    """Text for the query log: whatever the detector or the index finds masked, whatever the filter's mode."""
    from serving.engine.output_filter import OutputFilter

    if not text:
        return ""
    detect, originals = _filter_parts(deployment.run_id)
    return OutputFilter(detect, originals=originals, mode=FilterMode.MASK).filter(text).text


def apply_filter_result(call: Call, result) -> None:
    """`result`: the engine's FilteredText (its text is what may leave: masked, or the withheld message)."""
    call.filtered = result.text
    call.findings = result.counts_by_type()
    call.original_hits = int(result.original_hits or 0)
    if result.withheld:
        call.outcome = QueryOutcome.WITHHELD
    elif result.flagged:
        call.outcome = QueryOutcome.MASKED


# --------------------------------------------------------------------------- the query log


def log_call(call: Call) -> QueryRecord | None:
    """Write the call's QueryRecord, count its tokens, file a flagged output, raise the critical
    alert for an original value, then let monitoring inspect it. Never raises: a logging failure
    must not turn an answer into an error after it has been sent (it is logged loudly instead)."""
    if call.deployment is None:
        return None  # no key known: nobody to attribute it to (logged as a warning by the view)
    try:
        return _log_call(call)
    except Exception:
        log.exception("could not log a call to deployment %s", call.deployment.pk)
        return None


def _log_call(call: Call) -> QueryRecord:
    from serving import actions, monitoring
    from serving.models import AlertKind, AlertSeverity

    deployment = call.deployment
    pseudonym = consumer_pseudonym(call.key) if call.key else ""
    # The detector's work before the transaction: a writer holds the database's lock for as little as possible.
    prompt_redacted = redact(deployment, call.prompt) if deployment.log_prompts and call.prompt else ""
    # A whole answer left the filter masked already (or as the withheld message); a stream was masked a
    # sentence at a time, which can cut a span at a boundary: it is redacted again, whole.
    output_redacted = redact(deployment, call.filtered) if call.stream and call.filtered else call.filtered
    signature = prompt_signature(call.prompt, deployment) if call.prompt else {}
    latency_ms = int((time.monotonic() - call.started) * 1000)
    with transaction.atomic():
        record = QueryRecord.objects.create(
            deployment=deployment, key=call.key, consumer_pseudonym=pseudonym, endpoint=call.endpoint, outcome=call.outcome,
            prompt_redacted=prompt_redacted, output_redacted=output_redacted, prompt_tokens=call.prompt_tokens,
            completion_tokens=call.completion_tokens, temperature=call.temperature, streamed=call.stream, findings=call.findings,
            original_hits=call.original_hits, prompt_signature=signature, latency_ms=latency_ms)
        if call.key is not None and call.outcome not in (QueryOutcome.REFUSED,):
            ConsumerKey.objects.filter(pk=call.key.pk).update(last_used_at=timezone.now())
        if call.outcome in (QueryOutcome.MASKED, QueryOutcome.WITHHELD):
            actions.flag_output(record, call.original)
        if call.original_hits:
            monitoring.raise_alert(deployment, AlertKind.ORIGINAL_VALUE_OUTPUT, AlertSeverity.CRITICAL,
                                   f"An answer of '{deployment.name}' contained {call.original_hits} original personal "
                                   f"value{'s' if call.original_hits != 1 else ''} from the training data "
                                   f"({'withheld' if call.outcome == QueryOutcome.WITHHELD else 'masked'} before it left).",
                                   details={"original_hits": call.original_hits, "findings": call.findings},
                                   consumer_pseudonym=pseudonym, key=call.key, query=record)
    if call.key is not None:
        limits.add_tokens(call.key, call.prompt_tokens + call.completion_tokens)
    monitoring.inspect_query(record)
    return record


def prompt_signature(prompt: str, deployment: Deployment) -> dict:
    """What the extraction detectors may know of a prompt without its text (serving.monitoring's)."""
    from serving import monitoring

    signer = getattr(monitoring, "prompt_signature", None)
    return signer(prompt, deployment) if signer else {}


# --------------------------------------------------------------------------- the backend


def _backend_url(endpoint: str) -> str:
    return f"{settings.PROVENANT_INFERENCE_URL}/{endpoint}"


def _backend_headers() -> dict:
    """The backend's own bearer token (the model server's `api_key`, vLLM's `--api-key`), if set."""
    token = getattr(settings, "PROVENANT_INFERENCE_API_KEY", "")
    return {"Authorization": f"Bearer {token}"} if token else {}


def _backend_error(exc_or_status, detail: str = "") -> GatewayError:
    return GatewayError(502, f"The model server did not answer{f': {detail}' if detail else ''}. Try again later.", "api_error",
                        "backend_unavailable", outcome=QueryOutcome.FAILED)


def call_backend(call: Call, body: dict) -> dict:
    import httpx

    try:
        response = httpx.post(_backend_url(call.endpoint), json=body, headers=_backend_headers(),
                              timeout=settings.PROVENANT_INFERENCE_TIMEOUT)
    except httpx.HTTPError as exc:
        raise _backend_error(exc, type(exc).__name__) from None
    if response.status_code == 400:
        raise bad_request(_error_message(response) or "The model server refused the request.")
    if response.status_code != 200:
        raise _backend_error(response.status_code, f"HTTP {response.status_code} {_error_message(response)}".strip())
    return response.json()


def _error_message(response) -> str:
    try:
        return str(response.json()["error"]["message"])[:500]
    except Exception:
        return ""


def _text_of(answer: dict, endpoint: str) -> str:
    choice = (answer.get("choices") or [{}])[0]
    if endpoint == CHAT:
        return (choice.get("message") or {}).get("content") or ""
    return choice.get("text") or ""


def answer(call: Call, backend: dict) -> dict:
    """The backend's answer with the filtered text in place of the original, under the deployment's name."""
    usage = backend.get("usage") or {}
    call.prompt_tokens, call.completion_tokens = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    call.original = _text_of(backend, call.endpoint)
    apply_filter_result(call, output_filter_for(call.deployment).filter(call.original, call.prompt))
    choice = dict((backend.get("choices") or [{}])[0])
    choice["index"] = 0
    if call.endpoint == CHAT:
        choice["message"] = {**(choice.get("message") or {}), "role": "assistant", "content": call.filtered}
    else:
        choice["text"] = call.filtered
    if call.outcome == QueryOutcome.WITHHELD:
        choice["finish_reason"] = "content_filter"
    return {"id": backend.get("id") or f"{'chatcmpl' if call.endpoint == CHAT else 'cmpl'}-{uuid.uuid4().hex}",
            "object": "chat.completion" if call.endpoint == CHAT else "text_completion",
            "created": backend.get("created") or int(time.time()), "model": call.deployment.name, "choices": [choice],
            "usage": {"prompt_tokens": call.prompt_tokens, "completion_tokens": call.completion_tokens,
                      "total_tokens": call.prompt_tokens + call.completion_tokens}}


# --------------------------------------------------------------------------- the views' one entry


def handle_completion(request, endpoint: str):
    """POST /v1/chat/completions and /v1/completions."""
    call = Call(endpoint=endpoint)
    try:
        call.key = authenticate(request)
        call.deployment = call.key.deployment
        check_key(call.key)
        parse_body(request, call)
        if call.body["model"] != call.deployment.name:
            raise GatewayError(404, f"The model '{call.body['model']}' does not exist or your key gives no access to it. "
                               f"Your key is for '{call.deployment.name}'.", "invalid_request_error", "model_not_found", param="model")
        hit = limits.take_request(call.key)
        if hit is not None:
            raise GatewayError(429, hit.message, "rate_limit_error", "rate_limit_exceeded", outcome=QueryOutcome.LIMITED,
                               retry_after=hit.retry_after)
        body = backend_body(call, capped_max_tokens(call))
        if call.stream:
            return stream_response(call, body)
        result = answer(call, call_backend(call, body))
    except GatewayError as error:
        if call.deployment is None:
            log.warning("gateway: %s refused (%s)", endpoint, error.code)
        call.outcome = error.outcome
        log_call(call)
        return error.response()
    except Exception:
        log.exception("gateway: %s failed", endpoint)
        call.outcome = QueryOutcome.FAILED
        log_call(call)
        return GatewayError(500, "The gateway failed on this request; it has been logged.", "api_error", "internal_error").response()
    log_call(call)
    return JsonResponse(result)


def handle_models(request):
    """GET /v1/models: the key's own deployment, if it is usable."""
    try:
        key = authenticate(request)
        check_key(key)
    except GatewayError as error:
        return error.response()
    deployment = key.deployment
    return JsonResponse({"object": "list", "data": [{"id": deployment.name, "object": "model",
                                                     "created": int(deployment.created_at.timestamp()), "owned_by": "provenant"}]})


# --------------------------------------------------------------------------- streaming


def _sse(payload: dict | str) -> bytes:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n".encode()


def stream_response(call: Call, body: dict) -> StreamingHttpResponse:
    """Open the backend's stream first (so a backend that cannot be reached is a 502, not a broken
    stream), then relay its chunks with the text passed through the streaming filter."""
    import httpx

    client = httpx.Client(timeout=settings.PROVENANT_INFERENCE_TIMEOUT)
    try:
        upstream = client.send(client.build_request("POST", _backend_url(call.endpoint), json=body, headers=_backend_headers()),
                               stream=True)
    except httpx.HTTPError as exc:
        client.close()
        raise _backend_error(exc, type(exc).__name__) from None
    if upstream.status_code != 200:
        upstream.read()
        client.close()
        if upstream.status_code == 400:
            raise bad_request(_error_message(upstream) or "The model server refused the request.")
        raise _backend_error(upstream.status_code, f"HTTP {upstream.status_code}")
    response = StreamingHttpResponse(_relay(call, client, upstream), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


def _relay(call: Call, client, upstream):
    kind = "chat.completion.chunk" if call.endpoint == CHAT else "text_completion"
    chunk_id = f"{'chatcmpl' if call.endpoint == CHAT else 'cmpl'}-{uuid.uuid4().hex}"
    created = int(time.time())
    wants_usage = bool((call.body.get("stream_options") or {}).get("include_usage"))
    stream_filter = streaming_filter_for(call.deployment, call.prompt)
    pieces: list[str] = []
    logged = False
    finish_reason = "stop"
    first = True

    def chunk(text: str | None, finish: str | None = None) -> bytes:
        nonlocal first
        if call.endpoint == CHAT:
            delta = {"role": "assistant", "content": text or ""} if first else ({"content": text} if text else {})
            choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        else:
            choice = {"index": 0, "text": text or "", "finish_reason": finish, "logprobs": None}
        first = False
        return _sse({"id": chunk_id, "object": kind, "created": created, "model": call.deployment.name, "choices": [choice]})

    try:
        for line in upstream.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            try:
                event = json.loads(data)
            except ValueError:
                continue
            if event.get("usage"):
                call.prompt_tokens = int(event["usage"].get("prompt_tokens") or 0)
                call.completion_tokens = int(event["usage"].get("completion_tokens") or 0)
            for choice in event.get("choices") or []:
                text = ((choice.get("delta") or {}).get("content") if call.endpoint == CHAT else choice.get("text")) or ""
                if text:
                    pieces.append(text)
                    safe = stream_filter.feed(text)
                    if safe:
                        yield chunk(safe)
                if choice.get("finish_reason"):
                    finish_reason = choice["finish_reason"]
        rest = stream_filter.finish()
        call.original = "".join(pieces)
        apply_filter_result(call, stream_filter.result())
        if call.outcome == QueryOutcome.WITHHELD:
            finish_reason = "content_filter"
        if rest:
            yield chunk(rest)
        yield chunk(None, finish_reason)
        if wants_usage:
            yield _sse({"id": chunk_id, "object": kind, "created": created, "model": call.deployment.name, "choices": [],
                        "usage": {"prompt_tokens": call.prompt_tokens, "completion_tokens": call.completion_tokens,
                                  "total_tokens": call.prompt_tokens + call.completion_tokens}})
        # Logged before the end of the stream reaches the client, so a client that sees [DONE] finds its call in the log.
        logged = True
        log_call(call)
        yield _sse("[DONE]")
    except Exception:
        log.exception("gateway: stream of deployment %s failed", call.deployment.pk)
        call.outcome = QueryOutcome.FAILED
        call.original = "".join(pieces)
        yield _sse({"error": {"message": "The model server's stream broke off; it has been logged.", "type": "api_error",
                              "param": None, "code": "backend_unavailable"}})
    finally:
        upstream.close()
        client.close()
        if not logged:  # broken off, failed, or the client went away
            log_call(call)
