"""The broker (Redis) restarts while a run trains and another waits in its queue, with a real
worker. The restarted Redis is empty, as the CI's Redis (no persistence) or any Redis that lost
its memory would be: the queued run's message is gone. The worker reconnects, sends again the runs
the database still holds as queued, and each run trains once: the one in progress finishes, the
one that waited trains after it."""

import shutil
import socket
import subprocess

import pytest

pytest.importorskip("torch")
redis = pytest.importorskip("redis")

from tests.faults.harness import (assert_fault_outcome, enqueue, fault_env, new_marker, now, running_worker,  # noqa: E402
                                  wait_until_ended, wait_until_training)
from tests.training.test_runs import FAST, base_model, queued_run, tiny_base_dir  # noqa: E402,F401
from tests.training.test_worker_kill import wait_for  # noqa: E402
from training.models import RunState, TrainingRun  # noqa: E402

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

LONGER = {**FAST, "training": {**FAST["training"], "epochs": 6}}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """A redis-server of this test only, on a free port: the machine's Redis (6379, which CI
    uses) is never touched. No persistence: a restart comes back empty."""

    def __init__(self, folder):
        self.port, self.folder, self.process = free_port(), folder, None
        folder.mkdir()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no", "--dir", str(self.folder)],
                                        stdout=open(self.folder / "redis.log", "ab"), stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port)
        wait_for(lambda: self._answers(client), 30, "the private redis-server to answer")

    @staticmethod
    def _answers(client) -> bool:
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    def crash(self):
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def private_redis(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed: the broker-restart test starts a private one")
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def test_a_redis_restart_loses_no_run_and_trains_none_twice(engineer, base_model, data_dir, tmp_path, private_redis):
    marker, since = new_marker(), now()
    training = queued_run(engineer, base_model, LONGER, marker)
    waiting = queued_run(engineer, base_model, FAST, marker)
    env, log_path = fault_env(data_dir, tmp_path, CELERY_BROKER_URL=private_redis.url), tmp_path / "worker.log"
    with running_worker(env, log_path) as worker:
        enqueue(env, log_path, training, waiting)
        wait_until_training(training, worker)
        private_redis.crash()
        assert TrainingRun.objects.get(pk=waiting.pk).state == RunState.QUEUED  # its message died with Redis
        private_redis.start()  # same port, empty
        training = wait_until_ended(training, worker)
        waiting = wait_until_ended(waiting, worker, timeout=400)
    for run in (training, waiting):
        assert_fault_outcome(run, engineer, state=RunState.SUCCEEDED, reason_says=[], marker=marker, since=since,
                             data_dir=data_dir, tmp_path=tmp_path, log_path=log_path)
    assert training.started_at < waiting.started_at
