"""Upload throughput and memory: a generated JSONL through the real upload path, against `cp`.

The request goes through Django's WSGI handler, middleware, session login, CSRF check, the
multipart parser, the encrypting upload handler (size, binary and UTF-8 checks, SHA-256, Tink
streaming AEAD into the blob store) and the upload action (record validation by decrypting in
memory, database row, audit event). Peak resident memory is sampled during each upload; it must
stay flat as the file grows. Anchor: `cp` of the same JSONL file on the same disk.

    python bench/upload.py [--mb 200] [--small-mb 50]

Last line: the upload/cp time ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
WORK = Path(tempfile.mkdtemp(prefix="provenant-bench-upload-"))
os.environ["PROVENANT_DATA_DIR"] = str(WORK / "var")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ["LOG_LEVEL"] = "WARNING"

BOUNDARY = "provenantbenchboundary7d1f"
CSRF = "a" * 32


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """Samples resident memory every 5 ms on a thread while the block runs."""

    def __enter__(self):
        self.start, self.peak, self._stop = rss_bytes(), rss_bytes(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 1024**2


def generate_jsonl(path: Path, megabytes: int, seed: int = 1) -> int:
    rng = random.Random(seed)
    words = "order refund delivery account invoice replacement tracking address payment support agent customer".split()
    target, written = megabytes * 1024**2, 0
    with open(path, "w", encoding="utf-8") as handle:
        i = 0
        while written < target:
            text = " ".join(rng.choice(words) for _ in range(rng.randint(60, 160)))
            line = json.dumps({"id": f"r{i}", "text": f"Ticket {i}: {text} — café ✓"}, ensure_ascii=False) + "\n"
            handle.write(line)
            written += len(line.encode())
            i += 1
    return path.stat().st_size


def multipart_body(jsonl: Path, body: Path) -> int:
    fields = {"csrfmiddlewaretoken": CSRF, "name": "Bench upload", "file_format": "jsonl", "text_field": "text",
              "source": "bench", "lawful_basis": "contract", "segment": "train"}
    with open(body, "wb") as out:
        for name, value in fields.items():
            out.write(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
        out.write(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{jsonl.name}"\r\n'
                  "Content-Type: application/x-ndjson\r\n\r\n".encode())
        with open(jsonl, "rb") as source:
            shutil.copyfileobj(source, out, 1 << 20)
        out.write(f"\r\n--{BOUNDARY}--\r\n".encode())
    return body.stat().st_size


def upload(handler, session_cookie: str, body: Path) -> tuple[float, str]:
    status = {}

    def start_response(code, headers, exc_info=None):
        status["code"] = code
        status["location"] = dict(headers).get("Location", "")

    with open(body, "rb") as stream:
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": "/governance/datasets/new/", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000", "HTTP_HOST": "127.0.0.1", "wsgi.url_scheme": "http", "wsgi.input": stream,
            "wsgi.errors": sys.stderr, "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
            "CONTENT_LENGTH": str(body.stat().st_size), "HTTP_COOKIE": f"sessionid={session_cookie}; csrftoken={CSRF}",
        }
        started = time.perf_counter()
        response = handler(environ, start_response)
        b"".join(response)
        elapsed = time.perf_counter() - started
    return elapsed, f'{status["code"]} {status["location"]}'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--small-mb", type=int, default=50)
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command
    from django.test import Client

    from governance.models import Dataset

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench", password="bench-password-123")
    user.groups.add(Group.objects.get(name="engineer"))
    client = Client()
    client.force_login(user)
    session_cookie = client.cookies["sessionid"].value
    handler = WSGIHandler()

    results = []
    for megabytes in (1, args.small_mb, args.mb):  # the first, tiny run warms imports and caches
        jsonl, body, copy = WORK / f"data-{megabytes}.jsonl", WORK / f"body-{megabytes}.bin", WORK / f"copy-{megabytes}.jsonl"
        size = generate_jsonl(jsonl, megabytes)
        multipart_body(jsonl, body)
        started = time.perf_counter()
        subprocess.run(["cp", str(jsonl), str(copy)], check=True)
        subprocess.run(["sync", str(copy)], check=True)  # our blob store fsyncs; make cp do the same
        cp_seconds = time.perf_counter() - started
        with PeakRss() as memory:
            seconds, outcome = upload(handler, session_cookie, body)
        if not outcome.startswith("302") or "/governance/datasets/" not in outcome:
            raise SystemExit(f"upload failed: {outcome}")
        dataset = Dataset.objects.order_by("-pk").first()
        results.append((megabytes, size, seconds, cp_seconds, memory.growth_mb, dataset.record_count))
        for path in (jsonl, body, copy):
            path.unlink()

    results = results[1:]
    print(f"{'file':>8} {'records':>9} {'upload s':>9} {'MB/s':>7} {'cp s':>6} {'cp MB/s':>8} {'peak RSS growth':>16}")
    for megabytes, size, seconds, cp_seconds, growth, records in results:
        mb = size / 1024**2
        print(f"{mb:7.0f}M {records:9d} {seconds:9.2f} {mb / seconds:7.1f} {cp_seconds:6.2f} {mb / cp_seconds:8.1f} {growth:13.1f} MB")
    small, large = results[0], results[-1]
    print(f"peak memory growth: {small[4]:.1f} MB at {small[0]} MB, {large[4]:.1f} MB at {large[0]} MB (flat if these are close)")
    shutil.rmtree(WORK, ignore_errors=True)
    mb = large[1] / 1024**2
    print(f"upload {mb:.0f} MB: {mb / large[2]:.1f} MB/s, peak RSS +{large[4]:.1f} MB; cp {mb / large[3]:.1f} MB/s; "
          f"ratio upload/cp time = {large[2] / large[3]:.2f}x")


if __name__ == "__main__":
    main()
