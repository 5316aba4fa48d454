"""The database fails under a training run's progress writes, with a real worker. Progress is
telemetry: the run loses that update, writes the next one on a fresh connection, trains to its
end and records it. On SQLite (the embedded default) the fault is another process holding the
write lock past the worker's busy timeout, so the write fails with "database is locked" (SQLite
has no server connection to drop); on PostgreSQL the worker's connections are terminated by the
server (pg_terminate_backend), as a restart or a failover would."""

import sqlite3

import pytest

pytest.importorskip("torch")

from django.db import connection  # noqa: E402

from tests.faults.harness import (assert_fault_outcome, enqueue, fault_env, new_marker, now, running_worker,  # noqa: E402
                                  wait_until_ended, wait_until_training)
from tests.training.test_runs import FAST, base_model, queued_run, tiny_base_dir  # noqa: E402,F401
from tests.training.test_worker_kill import wait_for  # noqa: E402
from training.models import RunState  # noqa: E402

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

# Enough steps that the fault lands in the middle of training, with steps left after it.
LONGER = {**FAST, "training": {**FAST["training"], "epochs": 6}}
# What the worker logs when a progress write, a heartbeat or the cancel check meets the fault.
LOST_WRITE = "the database is unavailable"
WORKER_APP = "provenant-fault-worker"


def on_sqlite() -> bool:
    return connection.vendor == "sqlite"


def _assert_trained_through(run, engineer, marker, since, data_dir, tmp_path, log_path):
    assert LOST_WRITE in log_path.read_text(errors="replace")  # the fault did reach the worker
    assert_fault_outcome(run, engineer, state=RunState.SUCCEEDED, reason_says=[], marker=marker, since=since,
                         data_dir=data_dir, tmp_path=tmp_path, log_path=log_path)
    assert run.total_steps and run.step == run.total_steps  # progress resumed after the lost write
    assert run.epsilon_spent is not None and run.purged_at is not None


@pytest.mark.skipif("not on_sqlite()", reason="the SQLite leg: a held write lock; PostgreSQL has its own test below")
def test_a_progress_write_refused_by_a_locked_sqlite_database_is_skipped_and_the_run_trains_to_its_end(
        engineer, base_model, data_dir, tmp_path):
    marker, since = new_marker(), now()
    run = queued_run(engineer, base_model, LONGER, marker)
    env, log_path = fault_env(data_dir, tmp_path), tmp_path / "worker.log"
    with running_worker(env, log_path) as worker:
        enqueue(env, log_path, run)
        wait_until_training(run, worker)
        # Another writer takes the database's write lock and keeps it until the worker's next
        # progress write has waited out its busy timeout (30 s) and failed.
        lock = sqlite3.connect(connection.settings_dict["NAME"], timeout=60, isolation_level=None)
        try:
            lock.execute("BEGIN IMMEDIATE")
            wait_for(lambda: LOST_WRITE in log_path.read_text(errors="replace"), 180, "a progress write to fail", worker)
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        run = wait_until_ended(run, worker)
    _assert_trained_through(run, engineer, marker, since, data_dir, tmp_path, log_path)


@pytest.mark.skipif("on_sqlite()", reason="the PostgreSQL leg (DATABASE_URL=postgres://…): the server drops the connection")
def test_a_dropped_postgres_connection_loses_one_progress_write_and_the_run_trains_to_its_end(
        engineer, base_model, data_dir, tmp_path):
    marker, since = new_marker(), now()
    run = queued_run(engineer, base_model, LONGER, marker)
    # libpq names the worker's connections, so the test can terminate exactly those.
    env, log_path = fault_env(data_dir, tmp_path, PGAPPNAME=WORKER_APP), tmp_path / "worker.log"
    with running_worker(env, log_path) as worker:
        enqueue(env, log_path, run)
        wait_until_training(run, worker)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", [WORKER_APP])
            assert cursor.fetchall(), "no connection of the worker to terminate"
        wait_for(lambda: LOST_WRITE in log_path.read_text(errors="replace"), 120, "the worker to meet the dropped connection", worker)
        run = wait_until_ended(run, worker)
    _assert_trained_through(run, engineer, marker, since, data_dir, tmp_path, log_path)
