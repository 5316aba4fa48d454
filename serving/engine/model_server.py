"""An OpenAI-compatible model server for the gateway, on the standard library's HTTP server. No Django here.

It speaks the subset of OpenAI's API that vLLM's server speaks, so the gateway can point at either:

    POST /v1/completions        {"model", "prompt", "max_tokens", "temperature", "top_p", "stop", "seed", "stream",
                                 "stream_options": {"include_usage": true}}
    POST /v1/chat/completions   {"model", "messages", "max_tokens" | "max_completion_tokens", ... the same}
    GET  /v1/models
    GET  /health

With `"stream": true` the answer is Server-Sent Events in OpenAI's chunk format (`data: {...}` per
piece, `data: [DONE]` at the end); the usage chunk (`"choices": []`) comes only when
`stream_options.include_usage` asks for it, as with OpenAI and vLLM. Errors are OpenAI's JSON,
`{"error": {"message", "type", "param", "code"}}`: 400 for bad input (with what to fix), 401 for a
wrong bearer token, 404 for an unknown model, 500 only for the server's own failures.

The caller names the models: `resolve(name) -> ModelSpec | None` gives the base model, the adapter,
the deployment's watermark key and its output cap (the Django command's resolver decrypts the adapter
into a scratch dir and removes it in `ModelSpec.cleanup`, called as soon as the weights are loaded).
The key comes from there, never from a client. Loaded models stay in a small LRU; `forget(name)` drops
one (after a suspension or a change of its spec). Generations run one at a time in the process
(see `serving.engine.generation`). The server binds where it is told: keep it on loopback or a
private network behind the gateway, and give it an `api_key` so only the gateway can call it.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

from serving.engine.generation import MAX_NEW_TOKENS_LIMIT, GenerationSettings, Generator
from serving.engine.watermark import WatermarkKey

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4 * 1024 * 1024
OWNER = "provenant"


@dataclass(frozen=True)
class ModelSpec:
    base_dir: Path
    adapter_dir: Path | None
    watermark_key: WatermarkKey | None
    max_new_tokens_cap: int
    cleanup: Callable[[], None] | None = field(default=None, compare=False, repr=False)


class ApiError(Exception):
    """An error answered as OpenAI's JSON error object."""

    def __init__(self, status: int, message: str, *, code: str, type_: str = "invalid_request_error", param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.type, self.param = status, message, code, type_, param

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def _bad(message: str, param: str | None = None, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, code=code, param=param)


# --------------------------------------------------------------------------- reading a request


def _number(body: dict, name: str, default: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(f"{name} must be a number.", name)
    return value


def _settings(body: dict, spec: ModelSpec, *, chat: bool) -> GenerationSettings:
    for name, allowed, why in (("n", (None, 1), "Only n=1 is supported: send one request per completion."),
                               ("best_of", (None, 1), "best_of is not supported."),
                               ("echo", (None, False), "echo is not supported."),
                               ("suffix", (None,), "suffix is not supported."),
                               ("tools", (None, []), "Tools are not supported by this server."),
                               ("logit_bias", (None, {}), "logit_bias is not supported.")):
        if body.get(name) not in allowed:
            raise _bad(why, name, "unsupported_parameter")
    if body.get("logprobs") not in (None, False, 0):
        raise _bad("logprobs are not supported.", "logprobs", "unsupported_parameter")
    for name in ("presence_penalty", "frequency_penalty"):
        if _number(body, name, 0) != 0:
            raise _bad(f"{name} is not supported; leave it out or send 0.", name, "unsupported_parameter")
    name = "max_completion_tokens" if chat and body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = body.get(name)
    if max_tokens is None:
        max_tokens = spec.max_new_tokens_cap
    elif isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise _bad(f"{name} must be a whole number of at least 1.", name)
    elif max_tokens > spec.max_new_tokens_cap:
        raise _bad(f"{name} is {max_tokens}, above this model's limit of {spec.max_new_tokens_cap} tokens; ask for fewer.", name)
    stop = body.get("stop")
    if stop is None:
        stop = ()
    elif isinstance(stop, str):
        stop = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        stop = tuple(stop)
    else:
        raise _bad("stop must be a string or a list of strings.", "stop")
    seed = body.get("seed")
    try:
        return GenerationSettings(max_new_tokens=max_tokens, temperature=_number(body, "temperature", 1.0),
                                  top_p=_number(body, "top_p", 1.0), stop=stop, seed=seed)
    except ValueError as exc:
        raise _bad(str(exc)) from exc


def _completion_prompt(body: dict) -> str:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if isinstance(prompt, list):
        raise _bad("Send one prompt, as a string: batches and token-id prompts are not supported.", "prompt")
    if not isinstance(prompt, str):
        raise _bad("prompt is required and must be a string.", "prompt")
    return prompt


def _include_usage(body: dict) -> bool:
    options = body.get("stream_options")
    if options is None:
        return False
    if not isinstance(options, dict):
        raise _bad("stream_options must be an object.", "stream_options")
    if options and not body.get("stream"):
        raise _bad("stream_options is only allowed when stream is true.", "stream_options")
    return bool(options.get("include_usage"))


# --------------------------------------------------------------------------- the server


class ModelServer:
    """Serves the models that `resolve` names. `serve_forever()` in the foreground, or
    `start_in_thread()` (tests, the gateway's embedded default), then `shutdown()`."""

    def __init__(self, resolve: Callable[[str], ModelSpec | None], *, host: str = "127.0.0.1", port: int = 0,
                 list_models: Callable[[], list[str]] | None = None, cache_size: int = 2, api_key: str | None = None,
                 generator_factory: Callable[..., Generator] = Generator):
        if cache_size < 1:
            raise ValueError("cache_size must be at least 1.")
        self.resolve = resolve
        self.list_models = list_models
        self.cache_size = cache_size
        self.api_key = api_key
        self.generator_factory = generator_factory
        self._loaded: OrderedDict[str, tuple[ModelSpec, Generator]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._loading_locks: dict[str, threading.Lock] = {}
        self.httpd = ThreadingHTTPServer((host, port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.model_server = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def serve_forever(self) -> None:
        log.info("model server listening on %s", self.url)
        self.httpd.serve_forever(poll_interval=0.2)

    def start_in_thread(self) -> tuple["ModelServer", str]:
        self._thread = threading.Thread(target=self.serve_forever, name="model-server", daemon=True)
        self._thread.start()
        return self, self.url

    def shutdown(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        with self._cache_lock:
            self._loaded.clear()

    def forget(self, name: str) -> bool:
        """Drop a loaded model; the next request resolves and loads it again."""
        with self._cache_lock:
            return self._loaded.pop(name, None) is not None

    def loaded(self) -> list[str]:
        with self._cache_lock:
            return list(self._loaded)

    def model_names(self) -> list[str]:
        return list(self.list_models()) if self.list_models is not None else self.loaded()

    def generator(self, name) -> tuple[ModelSpec, Generator]:
        """The loaded model named `name`, loading it (once, however many requests wait) if needed."""
        if not isinstance(name, str) or not name:
            raise _bad("model is required: the name of a model this server serves (GET /v1/models).", "model")
        with self._cache_lock:
            if name in self._loaded:
                self._loaded.move_to_end(name)
                return self._loaded[name]
            loading = self._loading_locks.setdefault(name, threading.Lock())
        with loading:
            with self._cache_lock:
                if name in self._loaded:
                    return self._loaded[name]
            spec = self._resolve(name)
            try:
                generator = self.generator_factory(Path(spec.base_dir), Path(spec.adapter_dir) if spec.adapter_dir else None)
            except Exception as exc:
                log.exception("model server: could not load model %r", name)
                raise ApiError(500, f"The model {name} could not be loaded; the server's log says why.", code="model_load_failed",
                               type_="server_error") from exc
            finally:
                if spec.cleanup is not None:
                    spec.cleanup()
            with self._cache_lock:
                self._loaded[name] = (spec, generator)
                while len(self._loaded) > self.cache_size:
                    self._loaded.popitem(last=False)
            return spec, generator

    def _resolve(self, name: str) -> ModelSpec:
        try:
            spec = self.resolve(name)
        except LookupError:
            spec = None
        except Exception as exc:
            log.exception("model server: resolving %r failed", name)
            raise ApiError(500, f"The model {name} could not be prepared; the server's log says why.", code="resolve_failed",
                           type_="server_error") from exc
        if spec is None:
            raise ApiError(404, f"The model {name!r} does not exist on this server (GET /v1/models lists them).",
                           code="model_not_found", param="model")
        if not isinstance(spec.max_new_tokens_cap, int) or not 1 <= spec.max_new_tokens_cap <= MAX_NEW_TOKENS_LIMIT:
            raise ApiError(500, f"The model {name} is misconfigured (its output cap).", code="bad_model_spec", type_="server_error")
        return spec


def start_in_thread(resolve: Callable[[str], ModelSpec | None], **options) -> tuple[ModelServer, str]:
    """A server on `options` (host, port 0 = any free port, ...), serving in a daemon thread."""
    return ModelServer(resolve, **options).start_in_thread()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ProvenantModelServer/1"

    @property
    def app(self) -> ModelServer:
        return self.server.model_server

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        log.debug("model server: %s - %s", self.address_string(), format % args)

    # ----------------------------------------------------------------- routing

    def do_GET(self):
        self._dispatch({"/v1/models": self._models, "/health": self._health}, reads_body=False)

    def do_POST(self):
        self._dispatch({"/v1/completions": self._completions, "/v1/chat/completions": self._chat_completions}, reads_body=True)

    def _dispatch(self, routes: dict, reads_body: bool) -> None:
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        try:
            route = routes.get(path)
            if route is None:
                other = ("/v1/models", "/health") if reads_body else ("/v1/completions", "/v1/chat/completions")
                if path in other:
                    raise ApiError(405, f"{self.command} is not allowed on {path}.", code="method_not_allowed")
                raise ApiError(404, f"There is no {path} on this server.", code="not_found")
            if path != "/health":
                self._authenticate()
            route(self._body() if reads_body else None)
        except ApiError as error:
            # The body may be unread (a refused token, an unknown path): the connection cannot carry another request.
            self.close_connection = True
            self._json(error.status, error.body())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            log.exception("model server: %s %s failed", self.command, path)
            self.close_connection = True
            self._json(500, ApiError(500, "The server failed to answer; its log says why.", code="internal_error",
                                     type_="server_error").body())

    def _authenticate(self) -> None:
        if self.app.api_key is None:
            return
        header = self.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        if not hmac.compare_digest(token.encode(), self.app.api_key.encode()):
            raise ApiError(401, "A valid bearer token is required (Authorization: Bearer ...).", code="invalid_api_key")

    def _body(self) -> dict:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raise ApiError(411, "Send the body with a Content-Length (chunked request bodies are not supported).",
                           code="length_required")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _bad("The Content-Length header is not a number.", code="invalid_request") from None
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise ApiError(413, f"The request body is over {MAX_BODY_BYTES // (1024 * 1024)} MB.", code="request_too_large")
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError):
            raise _bad("The request body is not valid JSON.", code="invalid_json") from None
        if not isinstance(body, dict):
            raise _bad("The request body must be a JSON object.", code="invalid_json")
        return body

    # ----------------------------------------------------------------- answers

    def _json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _health(self, _body) -> None:
        self._json(200, {"status": "ok"})

    def _models(self, _body) -> None:
        created = int(time.time())
        self._json(200, {"object": "list", "data": [{"id": name, "object": "model", "created": created, "owned_by": OWNER}
                                                     for name in self.app.model_names()]})

    def _completions(self, body: dict) -> None:
        prompt = _completion_prompt(body)
        self._generate(body, chat=False, prompt_of=lambda generator: prompt)

    def _chat_completions(self, body: dict) -> None:
        messages = body.get("messages")

        def prompt_of(generator: Generator) -> str:
            try:
                return generator.chat_prompt(messages)
            except ValueError as exc:
                raise _bad(str(exc), "messages") from exc

        self._generate(body, chat=True, prompt_of=prompt_of)

    def _generate(self, body: dict, *, chat: bool, prompt_of) -> None:
        stream = body.get("stream") or False
        if not isinstance(stream, bool):
            raise _bad("stream must be true or false.", "stream")
        include_usage = _include_usage(body)
        name = body.get("model")
        spec, generator = self.app.generator(name)
        settings = _settings(body, spec, chat=chat)
        prompt = prompt_of(generator)
        try:
            pieces = generator.stream(prompt, settings, spec.watermark_key)
        except ValueError as exc:
            raise _bad(str(exc), "messages" if chat else "prompt", "context_length_exceeded") from exc
        ident = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        created = int(time.time())
        if stream:
            self._sse(pieces, chat=chat, ident=ident, created=created, model=name, include_usage=include_usage)
            return
        for _ in pieces:
            pass
        completion = pieces.completion()
        if chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": completion.text}, "logprobs": None,
                      "finish_reason": completion.finish_reason}
        else:
            choice = {"index": 0, "text": completion.text, "logprobs": None, "finish_reason": completion.finish_reason}
        self._json(200, {"id": ident, "object": "chat.completion" if chat else "text_completion", "created": created,
                         "model": name, "choices": [choice], "usage": _usage(completion)})

    def _sse(self, pieces, *, chat: bool, ident: str, created: int, model: str, include_usage: bool) -> None:
        kind = "chat.completion.chunk" if chat else "text_completion"

        def chunk(choices: list, **extra) -> dict:
            return {"id": ident, "object": kind, "created": created, "model": model, "choices": choices, **extra}

        def choice(text: str | None, finish: str | None, first: bool = False) -> dict:
            if chat:
                delta = {"role": "assistant", "content": ""} if first else ({"content": text} if text is not None else {})
                return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True
        try:
            if chat:
                self._event(chunk([choice(None, None, first=True)]))
            try:
                for piece in pieces:
                    self._event(chunk([choice(piece, None)]))
                completion = pieces.completion()
            except (BrokenPipeError, ConnectionResetError):
                raise
            except Exception:
                log.exception("model server: generation failed mid-stream")
                self._event(ApiError(500, "The generation failed; the server's log says why.", code="internal_error",
                                     type_="server_error").body())
            else:
                self._event(chunk([choice(None, completion.finish_reason)]))
                if include_usage:
                    self._event(chunk([], usage=_usage(completion)))
            self._write_chunk(b"data: [DONE]\n\n")
            self._write_chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            pieces.cancel()  # the client went away: stop generating for nobody
            log.info("model server: the client of %s disconnected mid-stream", ident)

    def _event(self, payload: dict) -> None:
        self._write_chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def _usage(completion) -> dict:
    return {"prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens,
            "total_tokens": completion.prompt_tokens + completion.completion_tokens}
