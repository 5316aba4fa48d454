"""The gateway's request side (`serving.gateway` holds the rest): OpenAI-shaped errors
(`GatewayError`), who is calling (the consumer's key, checked; its pseudonym for the log), and the
body parsed into a `Call` — what is forwarded of it, what is refused, the output-token cap. The
refusal statuses and why are in `serving.gateway`'s docstring.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.http import JsonResponse
from django.utils import timezone

from serving import limits
from serving.models import ConsumerKey, Deployment, DeploymentState, QueryOutcome


CHAT, COMPLETIONS = "chat/completions", "completions"
# What the gateway forwards of a request; anything else is refused so the caller knows it was not applied.
SAMPLING_FIELDS = {"max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "seed", "stream", "stream_options",
                   "n", "user", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "echo",
                   "best_of", "suffix"}
UNSUPPORTED = {"tools", "tool_choice", "functions", "function_call", "response_format", "logit_bias", "logprobs", "top_logprobs",
               "echo", "best_of", "suffix", "audio", "modalities", "prediction"}


class GatewayError(Exception):
    """A refusal, as the OpenAI API words them."""

    def __init__(self, status: int, message: str, error_type: str, code: str | None = None, *, param: str | None = None,
                 outcome: str = QueryOutcome.REFUSED, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.message, self.error_type, self.code, self.param = status, message, error_type, code, param
        self.outcome, self.retry_after = outcome, retry_after

    def response(self) -> JsonResponse:
        response = JsonResponse({"error": {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}},
                                status=self.status)
        if self.retry_after is not None:
            response["Retry-After"] = str(self.retry_after)
        if self.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="provenant"'
        return response


def bad_request(message: str, param: str | None = None) -> GatewayError:
    return GatewayError(400, message, "invalid_request_error", "invalid_request", param=param)


# --------------------------------------------------------------------------- who is calling


def pseudonym_key() -> bytes:
    """The key of the consumer pseudonyms in the query log: `PROVENANT_PSEUDONYM_KEY`, or derived
    from Django's SECRET_KEY (which the portal keeps secret anyway) under a purpose label."""
    configured = getattr(settings, "PROVENANT_PSEUDONYM_KEY", "")
    secret = configured or settings.SECRET_KEY
    return hashlib.sha256(f"provenant:consumer-pseudonym:{secret}".encode()).digest()


def consumer_pseudonym(key: ConsumerKey) -> str:
    """HMAC-SHA256 of the key's id: the same consumer key, the same pseudonym; no way back without the key."""
    return hmac.new(pseudonym_key(), f"consumer-key:{key.pk}".encode(), hashlib.sha256).hexdigest()


def authenticate(request) -> ConsumerKey:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise GatewayError(401, "No API key: send `Authorization: Bearer <your key>`. The deployment's owner issues keys.",
                           "authentication_error", "missing_api_key")
    key = ConsumerKey.objects.by_secret(secret.strip())
    if key is None:
        raise GatewayError(401, "Unknown API key. Check that you copied the whole key; the deployment's owner issues keys.",
                           "authentication_error", "invalid_api_key")
    return key


def check_key(key: ConsumerKey, now=None) -> None:
    now = now or timezone.now()
    if key.revoked_at is not None:
        raise GatewayError(401, f"This API key was revoked ({key.revoked_reason or 'no reason given'}). "
                           "Ask the deployment's owner for a new one.", "authentication_error", "key_revoked")
    if now >= key.expires_at:
        raise GatewayError(401, f"This API key expired on {key.expires_at:%Y-%m-%d %H:%M} UTC. Ask the deployment's owner for a new one.",
                           "authentication_error", "key_expired")
    deployment = key.deployment
    if deployment.state != DeploymentState.ACTIVE:
        raise GatewayError(403, f"The deployment '{deployment.name}' is {deployment.get_state_display().lower()}: it answers no calls"
                           f"{' until it is resumed' if deployment.state == DeploymentState.SUSPENDED else ''}.",
                           "permission_error", f"deployment_{deployment.state}")


# --------------------------------------------------------------------------- the request


@dataclass
class Call:
    """One call at the gateway, as it goes: what was asked, what came back, what the filter did."""

    endpoint: str
    key: ConsumerKey | None = None
    deployment: Deployment | None = None
    body: dict = field(default_factory=dict)
    prompt: str = ""
    started: float = field(default_factory=time.monotonic)
    stream: bool = False
    temperature: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    original: str = ""  # the backend's answer, before the filter
    filtered: str = ""
    findings: dict = field(default_factory=dict)
    original_hits: int = 0
    outcome: str = QueryOutcome.ANSWERED


def _number(body: dict, name: str, low: float, high: float, whole: bool = False):
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and not isinstance(value, int)):
        raise bad_request(f"`{name}` must be {'a whole number' if whole else 'a number'} from {low} to {high}, got {json.dumps(value)}.",
                          name)
    if not low <= value <= high:
        raise bad_request(f"`{name}` must be from {low} to {high}, got {value}.", name)
    return value


def parse_body(request, call: Call) -> dict:
    """The request's JSON, checked: what is wrong is said, with the parameter's name."""
    if request.content_type != "application/json":
        raise bad_request("Send the request as JSON (Content-Type: application/json).")
    try:
        body = json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"The body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise bad_request("The body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise bad_request("`model` is required: the name of the deployment your key is for.", "model")
    unsupported = sorted(k for k in body if k in UNSUPPORTED)
    if unsupported:
        raise bad_request(f"Not supported by this gateway: {', '.join(unsupported)}.", unsupported[0])
    if call.endpoint == CHAT:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise bad_request("`messages` is required: a list of {\"role\", \"content\"} objects.", "messages")
        parts = []
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant", "developer"):
                raise bad_request(f"messages[{i}] must be an object with a `role` of system, developer, user or assistant.", "messages")
            content = message.get("content")
            if isinstance(content, list):  # content parts: text only
                if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content):
                    raise bad_request(f"messages[{i}].content: only text parts are supported.", "messages")
                content = "".join(p["text"] for p in content)
            if not isinstance(content, str):
                raise bad_request(f"messages[{i}].content must be a string.", "messages")
            parts.append(content)
        call.prompt = "\n".join(parts)
    else:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise bad_request("`prompt` is required: one string (a list of prompts is not supported; send one request each).", "prompt")
        call.prompt = prompt
    if body.get("n", 1) != 1 or isinstance(body.get("n"), bool):
        # More samples per call would multiply what one request can extract, past the per-request limits.
        raise bad_request("`n` must be 1: one answer per request (send more requests; each counts against your limits).", "n")
    for name in ("max_tokens", "max_completion_tokens"):
        _number(body, name, 1, 1_000_000, whole=True)
    call.temperature = _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    _number(body, "seed", -(2**63), 2**63 - 1, whole=True)
    if "stream" in body and not isinstance(body["stream"], bool):
        raise bad_request("`stream` must be true or false.", "stream")
    call.stream = bool(body.get("stream"))
    stop = body.get("stop")
    if stop is not None and not (isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))):
        raise bad_request("`stop` must be a string or a list of strings.", "stop")
    call.body = body
    return body


def backend_body(call: Call, max_tokens: int) -> dict:
    """The request as the backend gets it: the deployment's own name as `model`, the output length capped."""
    body = {k: v for k, v in call.body.items() if k in SAMPLING_FIELDS | {"messages", "prompt"}}
    body.pop("max_completion_tokens", None)
    body["model"] = call.deployment.name
    body["max_tokens"] = max_tokens
    body["n"] = 1
    if call.stream:
        body["stream_options"] = {"include_usage": True}  # the gateway counts tokens even when the client did not ask
    return body


def capped_max_tokens(call: Call) -> int:
    asked = call.body.get("max_completion_tokens") or call.body.get("max_tokens") or call.deployment.max_output_tokens
    return max(1, min(int(asked), call.deployment.max_output_tokens, limits.tokens_left_today(call.key) or 1))
