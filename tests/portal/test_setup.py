"""The embedded default works as the README promises: demo data, Celery queues, health."""

import json

from django.contrib.auth import get_user_model
from django.core.management import call_command

from governance import models as m
from portal.celery import app


def test_seed_demo_creates_a_user_per_role_and_records_through_actions(db, data_dir, capsys):
    call_command("seed_demo")
    out = capsys.readouterr().out
    users = get_user_model().objects.filter(username__in=["erin", "lena", "priya", "rory", "adam"])
    assert {g for u in users for g in u.groups.values_list("name", flat=True)} == {"engineer", "legal", "privacy", "regulator", "admin"}
    passwords = json.loads((data_dir / "keys" / "demo-users.json").read_text())
    for username, password in passwords.items():
        assert password in out
        assert get_user_model().objects.get(username=username).check_password(password)
    assert m.Dataset.objects.count() == 2 and m.DataProcessingAgreement.objects.count() == 1
    assert m.AuditEvent.verify_chain().ok and m.AuditEvent.objects.count() > 10
    call_command("seed_demo")  # idempotent
    assert m.Dataset.objects.count() == 2


def test_celery_has_the_default_and_gpu_queues_and_results_in_the_database(settings):
    assert {q.name for q in app.conf.task_queues} == {"default", "gpu"}
    assert app.conf.result_backend == "django-db"
    assert app.conf.task_acks_late is True


def test_health_endpoint(client, db):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_run_portal_serves_and_stops_web_server_and_worker_together(tmp_path):
    """`make run`'s last step: the web server, the worker (with beat) and the model server behind
    /v1/ start, the portal answers, one signal stops all three."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PROVENANT_DATA_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
           "CELERY_BROKER_URL": "filesystem://"}
    repo = Path(__file__).resolve().parents[2]
    portal = subprocess.Popen([sys.executable, "manage.py", "run_portal", "--addr", f"127.0.0.1:{port}"], cwd=repo, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, answer = time.time() + 60, None
        while time.time() < deadline and answer is None:
            try:
                answer = urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=2).status
            except OSError:
                time.sleep(0.5)
        assert answer == 200
        # The web server may answer before the worker (importing torch under a loaded CI
        # machine) has printed its banner; stop both only once the worker is up too.
        worker_log = tmp_path / "logs" / "worker.log"
        while time.time() < deadline + 60 and not (worker_log.exists() and "[tasks]" in worker_log.read_text()):
            time.sleep(0.5)
        children = subprocess.run(["pgrep", "-P", str(portal.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) == 3  # web server, worker, model server
        portal.send_signal(signal.SIGTERM)
        terminal, _ = portal.communicate(timeout=60)
        time.sleep(0.5)
        alive = [pid for pid in children if subprocess.run(["kill", "-0", pid], capture_output=True).returncode == 0]
        assert alive == []
        # A person reads the terminal: the URL and where the logs are, not each page served or
        # the worker's banner, which go to the log files.
        assert f"Provenant is at http://127.0.0.1:{port}/" in terminal and "worker.log" in terminal
        assert "GET /login/" not in terminal and "[tasks]" not in terminal
        assert "GET /login/" in (tmp_path / "logs" / "web.log").read_text() + (tmp_path / "logs" / "provenant.log").read_text()
        assert "[tasks]" in worker_log.read_text()
    finally:
        if portal.poll() is None:
            portal.kill()
