"""The gateway's cost: tokens per second and latency through `/v1/chat/completions` against calling
the model directly, on the demo base (SmolLM2-135M-Instruct) with a LoRA adapter.

    .venv/bin/python bench/gateway.py [--requests 30] [--max-tokens 48] [--keep]

One process, a fresh data dir (SQLite database, blobs, keys) under a temporary directory, migrated
in-process. A run on the demo base is audited, released and deployed through the real actions (its
adapter: a LoRA r=8 on q_proj and v_proj, stored encrypted like a trained one), and a consumer key
is issued. Then each prompt is sent twice, alternating which goes first:

- **direct** (the anchor): `serving.engine.generation.Generator.generate` in this process, with the
  deployment's watermark key, greedy decoding.
- **gateway**: an HTTP POST to the portal's `/v1/chat/completions` (Django under wsgiref in a
  thread), which authenticates the key, checks the limits, forwards to the embedded model server
  (another thread: HTTP, the same Generator class), passes the answer through the output filter
  (Presidio + the run's recognizers), writes the query log and runs the extraction detectors.

Both load the same weights and decode greedily with the same watermark, so they generate the same
tokens; the difference is the gateway's work (two HTTP hops, filter, log, monitoring). The last
line prints the p50 latency through the gateway over the direct p50: the gateway's overhead as a
ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PROMPTS = [
    "How do I reset my password?",
    "My order arrived damaged. What should I do?",
    "Can I change the delivery address after ordering?",
    "Write a short apology for a late delivery.",
    "What is your refund policy for digital products?",
    "The app crashes when I open settings. Any idea?",
    "Summarise the steps to export my data.",
    "How long does a bank transfer refund take?",
    "Draft a reply thanking a customer for feedback.",
    "Why was my card declined at checkout?",
    "Explain two-factor authentication in one paragraph.",
    "Can I pause my subscription for a month?",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def make_adapter(base_dir: Path, out: Path) -> Path:
    """A LoRA adapter of the shape the demo trains (r=8 on q_proj and v_proj), with non-zero B so it
    changes the output as a trained one does."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir),
                           LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 1e-3)
    model.save_pretrained(out)
    return out


def start_portal() -> tuple[object, str]:
    """The Django app under wsgiref with one thread per request, as a WSGI server runs it."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from django.core.wsgi import get_wsgi_application

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    httpd = make_server("127.0.0.1", 0, get_wsgi_application(), server_class=Server, handler_class=QuietHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def post_json(url: str, body: dict, secret: str) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {secret}"})
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30, help="calls on each path (prompts cycle)")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="provenant-bench-gateway-"))
    data_dir = work / "var"
    data_dir.mkdir()
    os.environ.update(PROVENANT_DATA_DIR=str(data_dir), DATABASE_URL=f"sqlite:///{data_dir / 'provenant.sqlite3'}",
                      DJANGO_SETTINGS_MODULE="portal.settings", LOG_LEVEL="WARNING")
    for name in ("PROVENANT_SIGNING_KEY", "PROVENANT_SIGNING_KEY_FILE", "PROVENANT_INFERENCE_API_KEY"):
        os.environ.pop(name, None)
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from portal.celery import ensure_broker_folders

        ensure_broker_folders()  # approval queues the run on commit: the message waits there, unconsumed
        from audits import actions as audit_actions
        from governance import roles
        from serving import actions as serving_actions
        from serving.engine.generation import GenerationSettings, Generator
        from serving.engine.model_server import ModelServer
        from serving.engine.watermark import WatermarkKey
        from serving.model_resolver import DeploymentResolver
        from tests.audits import pack_factory
        from training.engine.model_files import demo_base_dir
        from training.models import ArtifactKind

        started = time.perf_counter()
        base_dir = demo_base_dir(REPO / "var" / "models" / "SmolLM2-135M-Instruct")
        adapter_dir = make_adapter(base_dir, work / "adapter")

        def user(name, role):
            u = get_user_model().objects.create_user(name, f"{name}@example.test", "bench-password-9")
            u.groups.add(Group.objects.get(name=role))
            return u

        engineer, legal, privacy = user("erin", roles.ENGINEER), user("lena", roles.LEGAL), user("priya", roles.PRIVACY)
        run, _ = pack_factory.audited_run(engineer, legal, privacy)
        run.base_model.location = str(base_dir)
        run.base_model.save(update_fields=["location"])
        run.artifacts.filter(kind=ArtifactKind.ADAPTER).delete()  # the factory's stand-in weights
        for path in sorted(adapter_dir.iterdir()):
            pack_factory.store_artifact(run, ArtifactKind.ADAPTER, path.name, path.read_bytes())
        audit_actions.release_adapter(privacy, run)
        deployment = serving_actions.deploy_adapter(privacy, run, name="bench-bot", purpose="Benchmark.",
                                                    max_output_tokens=args.max_tokens)
        _, secret = serving_actions.issue_consumer_key(privacy, deployment, "bench", days=1, requests_per_minute=10_000,
                                                       tokens_per_day=10_000_000)
        watermark = WatermarkKey(serving_actions.watermark_key_of(deployment))

        resolver = DeploymentResolver()
        model_server, backend_url = ModelServer(resolver).start_in_thread()
        settings.PROVENANT_INFERENCE_URL = backend_url + "/v1"
        portal, portal_url = start_portal()
        direct = Generator(base_dir, adapter_dir)
        print(f"set-up {time.perf_counter() - started:.1f} s: demo base {base_dir.name}, deployment {deployment.name}, "
              f"device {direct.device}", flush=True)

        def call_direct(prompt: str) -> tuple[float, int, str]:
            t = time.perf_counter()
            done = direct.generate(direct.chat_prompt([{"role": "user", "content": prompt}]),
                                   GenerationSettings(max_new_tokens=args.max_tokens, temperature=0.0), watermark)
            return time.perf_counter() - t, done.completion_tokens, done.text

        def call_gateway(prompt: str) -> tuple[float, int, str]:
            t = time.perf_counter()
            answer = post_json(f"{portal_url}/v1/chat/completions",
                               {"model": deployment.name, "messages": [{"role": "user", "content": prompt}],
                                "max_tokens": args.max_tokens, "temperature": 0}, secret)
            return time.perf_counter() - t, answer["usage"]["completion_tokens"], answer["choices"][0]["message"]["content"]

        # Warm-up: the model server loads the adapter; the gateway loads the detector (spaCy) once per process.
        call_gateway(PROMPTS[0])
        call_direct(PROMPTS[0])
        timings = {"direct": [], "gateway": []}
        tokens = {"direct": 0, "gateway": 0}
        same = 0
        for i in range(args.requests):
            prompt = PROMPTS[i % len(PROMPTS)]
            order = (("direct", call_direct), ("gateway", call_gateway))
            texts = {}
            for name, call in (order if i % 2 == 0 else order[::-1]):
                seconds, n, text = call(prompt)
                timings[name].append(seconds)
                tokens[name] += n
                texts[name] = text
            same += texts["direct"] == texts["gateway"]
            print(f"  {i + 1}/{args.requests}: direct {timings['direct'][-1] * 1000:.0f} ms, gateway "
                  f"{timings['gateway'][-1] * 1000:.0f} ms", flush=True)

        print(f"\n{args.requests} calls each, max_tokens {args.max_tokens}, greedy; identical answers on both paths: "
              f"{same}/{args.requests} (the filter may mask what the model wrote)")
        print(f"{'path':<10}{'tokens/s':>10}{'p50 ms':>10}{'p95 ms':>10}{'tokens':>8}")
        for name in ("direct", "gateway"):
            print(f"{name:<10}{tokens[name] / sum(timings[name]):>10.1f}{percentile(timings[name], 0.5) * 1000:>10.0f}"
                  f"{percentile(timings[name], 0.95) * 1000:>10.0f}{tokens[name]:>8}")
        ratio = percentile(timings["gateway"], 0.5) / percentile(timings["direct"], 0.5)
        overhead_ms = (statistics.median(g - d for g, d in zip(timings["gateway"], timings["direct"]))) * 1000
        print(f"median overhead per call: {overhead_ms:.0f} ms")
        portal.shutdown()
        model_server.shutdown()
        resolver.close()
        print(f"gateway p50 / direct p50: {ratio:.2f}x (filter, log, monitoring and two HTTP hops; anchor: direct "
              f"Generator.generate in this process)")
        return 0
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
