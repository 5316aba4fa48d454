"""What every fault test shares: a real Celery worker process on the test database (as in
tests/training/test_worker_kill.py), the tiny model and dataset of the training tests, and the four
things each fault must leave true: the run ended with a reason a person understands (on the run and
on its page), no plaintext on disk, the run trained at most once, and the trail verifies."""

from __future__ import annotations

import contextlib
import html
import subprocess
import sys
import time
from pathlib import Path

from governance.models import AuditEvent
from tests.conftest import client_for
from tests.training.test_runs import files_holding
from tests.training.test_worker_kill import ROOT, start_worker, wait_for, worker_env
from training.models import RunState, TrainingRun

# The dataset the runs train on carries this word in a third of its records; it must never be
# found on disk outside the encrypted blobs once the run has ended.
MARKER_PREFIX = "okapi"


def fault_env(data_dir: Path, tmp_path: Path, **extra: str) -> dict:
    """The worker's environment: the test's data dir and database, and a private TMPDIR, so the
    plaintext scan covers everything the worker could have written."""
    env = worker_env(data_dir)
    temp = tmp_path / "worker-tmp"
    temp.mkdir(exist_ok=True)
    # No audit queued after training: these tests are about the run, and a worker busy auditing
    # would hold its shutdown at the end of the test.
    env.update(TMPDIR=str(temp), PROVENANT_AUDIT_AFTER_TRAINING="0", **extra)
    if env["CELERY_BROKER_URL"].startswith("filesystem://"):
        for folder in ("queue", "processed"):
            (data_dir / "broker" / folder).mkdir(parents=True, exist_ok=True)
    return env


@contextlib.contextmanager
def running_worker(env: dict, log_path: Path):
    """A worker for the length of the block, stopped (TERM, then KILL) at its end."""
    with open(log_path, "ab") as log:
        worker = start_worker(env, log)
        try:
            yield worker
        finally:
            if worker.poll() is None:
                worker.terminate()
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait(timeout=10)


def enqueue(env: dict, log_path: Path, *runs: TrainingRun) -> None:
    """Send the runs' messages from a process configured like the worker (same broker)."""
    ids = [run.pk for run in runs]
    with open(log_path, "ab") as log:
        subprocess.run([sys.executable, "manage.py", "shell", "-c",
                        "from training.runs import enqueue_run; from training.models import TrainingRun\n"
                        f"for pk in {ids!r}: enqueue_run(TrainingRun.objects.get(pk=pk))"],
                       cwd=ROOT, env=env, check=True, stdout=log, stderr=subprocess.STDOUT, timeout=180)


def wait_until_ended(run: TrainingRun, worker, timeout: float = 300) -> TrainingRun:
    ended = (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED)
    wait_for(lambda: TrainingRun.objects.filter(pk=run.pk, state__in=ended).exists(), timeout, f"run {run.pk} to end", worker)
    run.refresh_from_db()
    return run


def wait_until_training(run: TrainingRun, worker, timeout: float = 240) -> None:
    wait_for(lambda: TrainingRun.objects.filter(pk=run.pk, state=RunState.RUNNING, step__gte=1).exists(), timeout,
             f"run {run.pk} to take its first steps", worker)


def times_started(run: TrainingRun) -> int:
    return AuditEvent.objects.filter(object_type="training.trainingrun", object_id=str(run.pk),
                                     action="trainingrun.started").count()


def page_text(run: TrainingRun, user) -> str:
    response = client_for(user).get(run.get_absolute_url())
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def assert_fault_outcome(run: TrainingRun, user, *, state: str, reason_says: list[str], marker: str, since: float,
                         data_dir: Path, tmp_path: Path, log_path: Path) -> None:
    """The four promises of issue 14 for one run after one fault."""
    run.refresh_from_db()
    log_tail = log_path.read_text(errors="replace")[-4000:] if log_path.exists() else ""
    assert run.state == state, f"{run.state}: {run.failure_reason}\n{log_tail}"
    for words in reason_says:
        assert words in run.failure_reason, run.failure_reason
    assert "Error:" not in run.failure_reason and "Traceback" not in run.failure_reason  # no class name, no traceback
    if run.failure_reason:
        assert run.failure_reason in page_text(run, user)
    scratch = data_dir / "scratch"
    assert not scratch.exists() or not any(scratch.iterdir()), list(scratch.rglob("*"))
    assert files_holding(marker, [tmp_path], since) == []  # data dir, worker log and worker TMPDIR alike
    assert times_started(run) == 1
    chain = AuditEvent.verify_chain()
    assert chain.ok, chain.reason


def new_marker() -> str:
    import secrets

    return f"{MARKER_PREFIX}{secrets.token_hex(5)}"


def now() -> float:
    return time.time() - 1
