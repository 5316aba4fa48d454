"""A real Celery worker, killed with SIGKILL mid-run: the next worker start fails the run and sweeps its scratch."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from tests.training.test_runs import FAST, base_model, queued_run, tiny_base_dir  # noqa: E402,F401
from training.models import RunState, TrainingRun  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
NODE = "killtest@%h"


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def worker_env(data_dir) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVENANT_")}
    env.update(DJANGO_SETTINGS_MODULE="portal.settings", PROVENANT_DATA_DIR=str(data_dir), DATABASE_URL=database_url(),
               CELERY_BROKER_URL="filesystem://", PROVENANT_HEARTBEAT_SECONDS="1", PROVENANT_PROGRESS_SECONDS="0.2",
               PROVENANT_NER_MODEL=settings.PROVENANT_NER_MODEL)
    return env


def start_worker(env, log):
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "portal", "worker", "-P", "solo", "-Q", "gpu", "-n", NODE,
                             "--without-mingle", "--without-gossip", "--without-heartbeat", "-l", "INFO"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_for(condition, timeout, what, worker=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker is not None and worker.poll() is not None:
            raise AssertionError(f"the worker exited ({worker.returncode}) while waiting for {what}")
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_run_leaves_the_run_failed_and_its_scratch_swept(engineer, base_model, data_dir, tmp_path):
    config = {**FAST, "training": {**FAST["training"], "epochs": 2000}}
    run = queued_run(engineer, base_model, config)
    env = worker_env(data_dir)
    for folder in ("queue", "processed"):
        (data_dir / "broker" / folder).mkdir(parents=True, exist_ok=True)
    scratch = data_dir / "scratch" / str(run.job_id)
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        first = start_worker(env, log)
        try:
            subprocess.run([sys.executable, "manage.py", "shell", "-c",
                            f"from training.runs import enqueue_run; from training.models import TrainingRun; "
                            f"enqueue_run(TrainingRun.objects.get(pk={run.pk}))"], cwd=ROOT, env=env, check=True, stdout=log, stderr=subprocess.STDOUT,
                           timeout=120)
            wait_for(lambda: TrainingRun.objects.filter(pk=run.pk, state=RunState.RUNNING, step__gte=1).exists(), 240,
                     "the run to take its first steps", first)
            assert scratch.is_dir() and any(scratch.rglob("*.jsonl"))  # plaintext is in the scratch right now
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        finally:
            if first.poll() is None:
                first.kill()
        assert TrainingRun.objects.get(pk=run.pk).state == RunState.RUNNING  # nobody could tell it yet
        assert scratch.is_dir()  # SIGKILL skips every finally

        second = start_worker(env, log)
        try:
            wait_for(lambda: TrainingRun.objects.filter(pk=run.pk, state=RunState.FAILED).exists(), 180,
                     "the restarted worker to reap the run", second)
        finally:
            second.terminate()
            second.wait(timeout=30)
    run.refresh_from_db()
    assert "stopped while the run was in progress" in run.failure_reason, log_path.read_text()[-3000:]
    wait_for(lambda: not scratch.exists(), 10, "the scratch sweep")
    run.refresh_from_db()
    assert run.purge_report["how"] == "swept at worker start" and run.purge_report["files"] >= 1
    assert not run.artifacts.filter(deleted_at__isnull=True).exists()
