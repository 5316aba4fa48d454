"""Portal latency under load: concurrent users over the main pages and the API, on PostgreSQL,
served by gunicorn with the production settings, as `make serve` serves it.

    .venv/bin/python bench/portal_load.py [--users 50] [--seconds 60] [--workers 3] [--wait 1-2]

1. A database of its own on the PostgreSQL at 127.0.0.1:5432 (trust auth, user postgres), dropped
   and created afresh (`--database`, default `provenant_bench`), migrated and seeded in a child
   process: `manage.py seed_demo`, then demo-sized records through the real actions and the test
   factories, nothing trained: 21 personas (10 engineers, 3 legal counsels, 3 privacy officers,
   3 regulators, 2 admins), 40 datasets, 40 requests (draft, submitted, signed once, approved), 10
   runs looking trained and audited, 4 evidence packs built (WeasyPrint) and shared with every
   regulator, and the audit trail all this writes.
2. Static files collected, then gunicorn (`--workers` sync workers, PROVENANT_ENV=production)
   on a free port. Requests carry `X-Forwarded-Proto: https`, as the TLS proxy in front sends it.
3. Locust, headless, in this process: `--users` users, each logging in through the login form
   as a persona of its role (engineer 5 : legal 2 : privacy 2 : regulator 1 : admin 1), then
   reading the pages that role reads, with `--wait` seconds of think time between requests.
   Engineers also call the API with their token. After every user has logged in, the statistics
   are reset and the load runs `--seconds` more.

No page in the mix renders a PDF (pack zips are built ahead, not served here), so every page
counts towards the target; the login (Argon2 on purpose) is reported but not counted. A
response other than 200 counts as an error.

Latency on a shared machine depends on whatever else runs on it, so the bench also prints the
gunicorn workers' CPU time per request and the load average: a slow p95 on a busy machine shows
as a load above the core count, with an unchanged CPU per request.

Anchor: the issue's target of a p95 under 300 ms at 50 users on this machine (2 cores). The
last line prints the p95 and its ratio to that target.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_MS = 300.0
PASSWORD = "bench-load-passphrase-2026"
PERSONAS = {"engineer": 10, "legal": 3, "privacy": 3, "regulator": 3, "admin": 2}
PROXY = {"X-Forwarded-Proto": "https"}


# --------------------------------------------------------------------------- the seed (a child process)


def seed(database: str, out: Path) -> None:
    """Create, migrate and fill the bench database; write the personas and object ids to `out`."""
    import psycopg

    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')

    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from governance.models import ApiToken

    call_command("migrate", verbosity=0)
    call_command("seed_demo", stdout=open(os.devnull, "w"))

    from audits.sharing import share_pack
    from tests.audits.pack_factory import audited_run
    from tests.governance.request_factory import good_base_model, good_compute_target, good_data_class, good_dataset, make_good_request
    from workflow import actions as workflow_actions

    User = get_user_model()
    people: dict[str, list] = {}
    for role, count in PERSONAS.items():
        people[role] = []
        for i in range(1, count + 1):
            user = User.objects.create_user(f"{role}{i:02d}", f"{role}{i:02d}@bench.provenant.local", PASSWORD,
                                            first_name=role.title(), last_name=f"{i:02d}", is_staff=role == "admin")
            user.groups.add(Group.objects.get(name=role))
            people[role].append(user)
    legal, privacy = people["legal"][0], people["privacy"][0]
    data_class = good_data_class(name="Bench support tickets")
    fields = dict(base_model=good_base_model(name="bench-base"), compute_target=good_compute_target(name="Bench cluster"))
    ids: dict[str, dict] = {"datasets": {}, "requests": {}, "runs": {}}
    audits, packs = [], []
    for n, engineer in enumerate(people["engineer"]):
        datasets = [good_dataset(engineer, data_class, name=f"{engineer.username} tickets {k}") for k in range(4)]
        draft = make_good_request(engineer, datasets=[datasets[0]], title=f"Draft by {engineer.username}", **fields)
        submitted = workflow_actions.submit_request(
            engineer, make_good_request(engineer, datasets=[datasets[1]], title=f"Waiting, by {engineer.username}", **fields))
        signed_once = workflow_actions.submit_request(
            engineer, make_good_request(engineer, datasets=[datasets[2]], title=f"Signed once, by {engineer.username}", **fields))
        workflow_actions.decide_request(legal, signed_once, "approve", comment="Within the contract's purposes.")
        run, audit = audited_run(engineer, legal, privacy, datasets=[datasets[3]], title=f"Trained, by {engineer.username}", **fields)
        ids["datasets"][engineer.username] = [d.pk for d in datasets]
        ids["requests"][engineer.username] = [draft.pk, submitted.pk, signed_once.pk, run.request.pk]
        ids["runs"][engineer.username] = [run.pk]
        audits.append(audit.pk)
        if n < 4:
            pack = workflow_actions.build_pack(privacy, run)
            for regulator in people["regulator"]:
                share_pack(privacy, pack, regulator, note="Bench pack.")
            packs.append(pack.pk)
    out.write_text(json.dumps({
        "people": {role: [u.username for u in users] for role, users in people.items()},
        "tokens": {u.username: ApiToken.objects.issue(u, days=90)[1] for u in people["engineer"]},
        "audits": audits, "packs": packs, **ids,
    }))


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, server: subprocess.Popen, log: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn stopped (exit code {server.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
        try:
            urllib.request.urlopen(urllib.request.Request(url, headers=PROXY), timeout=5).read()
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not answer within {seconds:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)


# --------------------------------------------------------------------------- the load (Locust, this process)


def workers_cpu_seconds(master_pid: int) -> float:
    """User and system CPU time of the gunicorn master's children (the workers) so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[1]) == master_pid:  # fields[1] is the ppid; utime and stime are fields 14 and 15 of the line
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def run_load(host: str, seeded: dict, args, master_pid: int) -> dict:
    """Locust headless in this process; returns {group: StatsEntry} and the merged target entry."""
    import gevent
    from locust import HttpUser, between, task
    from locust.env import Environment
    from locust.stats import StatsEntry

    wait_low, wait_high = (float(x) for x in args.wait.split("-"))
    people, rng = seeded["people"], random.Random(1)
    next_persona = {role: itertools.cycle(names) for role, names in people.items()}
    logged_in = []

    class Persona(HttpUser):
        abstract = True
        role = ""
        wait_time = between(wait_low, wait_high)

        def on_start(self):
            self.username = next(next_persona[self.role])
            login = self.client.get("/login/", headers=PROXY, name="login", allow_redirects=False)
            csrf = login.cookies.get("csrftoken")
            # The cookies are Secure (production) and the bench speaks plain HTTP to gunicorn, as the
            # TLS proxy does: they are carried by hand, as the proxy passes the browser's.
            with self.client.post("/login/", name="login", allow_redirects=False, catch_response=True,
                                  data={"username": self.username, "password": PASSWORD, "csrfmiddlewaretoken": csrf},
                                  headers={**PROXY, "Cookie": f"csrftoken={csrf}", "Origin": host.replace("http://", "https://"),
                                           "Referer": host.replace("http://", "https://") + "/login/"}) as response:
                session = response.cookies.get("sessionid")
                if response.status_code != 302 or not session:
                    response.failure(f"login as {self.username} answered {response.status_code}")
            self.client.cookies.clear()
            self.headers = {**PROXY, "Cookie": f"sessionid={session}; csrftoken={csrf}"}
            logged_in.append(self.username)

        def page(self, path: str, name: str, headers: dict | None = None):
            with self.client.get(path, name=name, headers=headers or self.headers, allow_redirects=False,
                                 catch_response=True) as response:
                if response.status_code != 200:
                    response.failure(f"{path} answered {response.status_code}")

        def api(self, path: str, name: str):
            self.page(path, name, {**PROXY, "Authorization": f"Token {seeded['tokens'][self.username]}",
                                   "Accept": "application/json"})

    def own(kind: str, username: str) -> int:
        return rng.choice(seeded[kind][username])

    def anyone(kind: str) -> int:
        return rng.choice([pk for pks in seeded[kind].values() for pk in pks])

    class Engineer(Persona):
        role, weight = "engineer", 5

        @task(3)
        def dashboard(self): self.page("/", "dashboard")

        @task(2)
        def datasets(self): self.page("/governance/datasets/", "dataset list")

        @task(2)
        def dataset(self): self.page(f"/governance/datasets/{own('datasets', self.username)}/", "dataset detail")

        @task(2)
        def requests(self): self.page("/governance/requests/", "request list")

        @task(2)
        def request(self): self.page(f"/governance/requests/{own('requests', self.username)}/", "request detail")

        @task(1)
        def runs(self): self.page("/training/runs/", "run list")

        @task(1)
        def run_page(self): self.page(f"/training/runs/{own('runs', self.username)}/", "run detail")

        @task(1)
        def api_datasets(self): self.api("/api/datasets/", "api: datasets")

        @task(1)
        def api_requests(self): self.api("/api/requests/", "api: requests")

        @task(1)
        def api_runs(self): self.api("/api/runs/", "api: runs")

        @task(1)
        def api_request(self): self.api(f"/api/requests/{own('requests', self.username)}/", "api: request detail")

    class Legal(Persona):
        role, weight = "legal", 2

        @task(3)
        def dashboard(self): self.page("/", "dashboard")

        @task(2)
        def inbox(self): self.page("/governance/requests/inbox/", "approvals inbox")

        @task(1)
        def requests(self): self.page("/governance/requests/", "request list")

        @task(2)
        def request(self): self.page(f"/governance/requests/{anyone('requests')}/", "request detail")

        @task(1)
        def dpas(self): self.page("/governance/dpas/", "records: DPAs, processors")

        @task(1)
        def processors(self): self.page("/governance/processors/", "records: DPAs, processors")

    class Privacy(Persona):
        role, weight = "privacy", 2

        @task(2)
        def dashboard(self): self.page("/", "dashboard")

        @task(1)
        def inbox(self): self.page("/governance/requests/inbox/", "approvals inbox")

        @task(1)
        def datasets(self): self.page("/governance/datasets/", "dataset list")

        @task(1)
        def dataset(self): self.page(f"/governance/datasets/{anyone('datasets')}/", "dataset detail")

        @task(1)
        def request(self): self.page(f"/governance/requests/{anyone('requests')}/", "request detail")

        @task(1)
        def runs(self): self.page("/training/runs/", "run list")

        @task(1)
        def run_page(self): self.page(f"/training/runs/{anyone('runs')}/", "run detail")

        @task(1)
        def audit(self): self.page(f"/audits/{rng.choice(seeded['audits'])}/", "audit detail")

        @task(1)
        def trail(self): self.page("/governance/audit-trail/", "audit trail")

        @task(1)
        def packs(self): self.page("/audits/packs/", "pack list")

        @task(1)
        def data_classes(self): self.page("/governance/data-classes/", "records: data classes")

    class Regulator(Persona):
        role, weight = "regulator", 1

        @task(2)
        def packs(self): self.page("/audits/packs/", "pack list")

        @task(2)
        def pack(self): self.page(f"/audits/packs/{rng.choice(seeded['packs'])}/", "pack detail")

        @task(1)
        def key(self): self.page("/audits/signing-key/", "signing key")

    class Admin(Persona):
        role, weight = "admin", 1

        @task(2)
        def dashboard(self): self.page("/", "dashboard")

        @task(1)
        def trail(self): self.page("/governance/audit-trail/", "audit trail")

        @task(1)
        def runs(self): self.page("/training/runs/", "run list")

        @task(1)
        def requests(self): self.page("/governance/requests/", "request list")

    env = Environment(user_classes=[Engineer, Legal, Privacy, Regulator, Admin], host=host)
    runner = env.create_local_runner()
    runner.start(args.users, spawn_rate=args.users / 5)
    deadline = time.monotonic() + 120
    while len(logged_in) < args.users and time.monotonic() < deadline:
        gevent.sleep(0.5)
    gevent.sleep(5)  # every user has logged in and read a page or two: measure from here
    warmup_failures = {key: entry.num_failures for key, entry in env.stats.entries.items() if entry.num_failures}
    env.stats.reset_all()
    cpu_before = workers_cpu_seconds(master_pid)
    gevent.sleep(args.seconds)
    users, cpu_seconds, load = runner.user_count, workers_cpu_seconds(master_pid) - cpu_before, os.getloadavg()[0]
    runner.quit()
    runner.greenlet.join()

    groups = {name: entry for (name, _method), entry in env.stats.entries.items()}
    pages = StatsEntry(env.stats, "pages and API", "", use_response_times_cache=False)
    for name, entry in groups.items():
        if name != "login":
            pages.extend(entry)
    errors = sorted({f"{error.name}: {error.error}" for error in env.stats.errors.values()})
    return {"groups": groups, "pages": pages, "errors": errors, "warmup_failures": warmup_failures, "users": users,
            "cpu_seconds": cpu_seconds, "load": load}


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60, help="measured seconds, after every user has logged in")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers (make serve's default)")
    parser.add_argument("--wait", default="1-2", help="think time between one user's requests, seconds (low-high)")
    parser.add_argument("--database", default="provenant_bench")
    parser.add_argument("--conn-max-age", type=int, help="DATABASE_CONN_MAX_AGE for the server (default: the production settings' own)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir (and the seeded database)")
    parser.add_argument("--reuse", type=Path, help="a data dir kept by --keep: skip the seed, load its database again")
    parser.add_argument("--seed", type=Path, help=argparse.SUPPRESS)  # the child that seeds
    args = parser.parse_args()

    work = args.reuse or Path(args.seed.parent if args.seed else tempfile.mkdtemp(prefix="provenant-bench-load-"))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("PROVENANT_", "DJANGO_", "SECURE_"))},
           "PROVENANT_DATA_DIR": str(work / "var"), "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{args.database}",
           "CELERY_BROKER_URL": "memory://localhost/", "DJANGO_SETTINGS_MODULE": "portal.settings", "LOG_LEVEL": "WARNING",
           "PROVENANT_PACK_AFTER_AUDIT": "0", "PROVENANT_AUDIT_AFTER_TRAINING": "0"}
    if args.seed:
        os.environ.update(env)
        seed(args.database, args.seed)
        return

    import locust  # noqa: F401  gevent patches the standard library on import: first, so the children are waited for

    server = None
    try:
        started = time.perf_counter()
        seeded_path = work / "seeded.json"
        # The seed runs as development, which generates the keys into the data dir; production reads them there.
        production = {**env, "PROVENANT_ENV": "production"}
        if args.conn_max_age is not None:
            production["DATABASE_CONN_MAX_AGE"] = str(args.conn_max_age)
        if not args.reuse:
            subprocess.run([sys.executable, __file__, "--seed", str(seeded_path), "--database", args.database], env=env,
                           cwd=REPO, check=True)
            subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"], env=production,
                           cwd=REPO, check=True)
            print(f"seeded {args.database} and collected static files in {time.perf_counter() - started:.0f} s", flush=True)
        seeded = json.loads(seeded_path.read_text())
        port, log = free_port(), work / "gunicorn.log"
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "portal.wsgi:application", "--bind", f"127.0.0.1:{port}",
                                   "--workers", str(args.workers), "--preload", "--timeout", "600"], env=production, cwd=REPO,
                                  stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        host = f"http://127.0.0.1:{port}"
        wait_until_up(f"{host}/healthz", server, log)
        print(f"gunicorn: {args.workers} sync workers, PROVENANT_ENV=production, PostgreSQL, DATABASE_CONN_MAX_AGE={production.get('DATABASE_CONN_MAX_AGE', '(settings)')}; "
              f"{args.users} users, think time {args.wait} s, measuring {args.seconds:.0f} s", flush=True)
        result = run_load(host, seeded, args, server.pid)
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        if not (args.keep or args.reuse):
            shutil.rmtree(work, ignore_errors=True)

    print(f"\n{'page group':<28} {'requests':>8} {'errors':>6} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}")
    rows = sorted(result["groups"].items(), key=lambda item: -item[1].get_response_time_percentile(0.95))
    for name, entry in rows + [("all pages and API", result["pages"])]:
        if entry.num_requests:
            print(f"{name:<28} {entry.num_requests:8d} {entry.num_failures:6d} {entry.get_response_time_percentile(0.5):7.0f} "
                  f"{entry.get_response_time_percentile(0.95):7.0f} {entry.max_response_time:7.0f}")
    pages = result["pages"]
    print(f"throughput: {pages.num_requests / args.seconds:.1f} requests/s; errors: {pages.num_failures} of {pages.num_requests}")
    # Latency on a shared machine depends on what else runs; the server's CPU per request does not.
    print(f"gunicorn workers' CPU: {1000 * result['cpu_seconds'] / max(pages.num_requests, 1):.0f} ms per request; "
          f"load average at the end: {result['load']:.1f} on {os.cpu_count()} cores"
          + (" (busy: other work competed for the CPU)" if result["load"] > os.cpu_count() else ""))
    for error in result["errors"]:
        print(f"  error: {error}")
    if result["warmup_failures"]:
        print(f"  failures while logging in and warming up: {result['warmup_failures']}")
    p95 = pages.get_response_time_percentile(0.95)
    print(f"p95 at {result['users']} users: {p95:.0f} ms; ratio to the {TARGET_MS:.0f} ms target: {p95 / TARGET_MS:.2f}")


if __name__ == "__main__":
    main()
