"""The whole story through a real Celery worker on the embedded broker: an engineer submits a
request, legal counsel and the privacy officer approve it, the worker trains a tiny model under
DP and audits it, the verdict is recorded, the plaintext is purged, and the audit chain holds."""

import json
import secrets
import subprocess
import sys
import tempfile
import time

import pytest

pytest.importorskip("torch")

from workflow import actions  # noqa: E402
from governance.models import AuditEvent  # noqa: E402
from workflow.models import TrainingRequest  # noqa: E402
from workflow.models import RequestState
from tests.conftest import make_dataset  # noqa: E402
from tests.governance.test_requests import request_data, setup  # noqa: E402,F401
from tests.training.test_runs import base_model, corpus_with_marker, files_holding, tiny_base_dir  # noqa: E402,F401
from tests.training.test_worker_kill import ROOT, start_worker, wait_for, worker_env  # noqa: E402


@pytest.mark.django_db(transaction=True)
def test_submit_approve_train_audit_purge_through_a_real_worker(engineer, legal, privacy, setup, base_model, data_dir,
                                                                 tmp_path, monkeypatch):
    from training import runs

    marker = f"okapi{secrets.token_hex(5)}"
    dataset = make_dataset(engineer, corpus_with_marker(marker, lines=40), name="Support chats")
    dataset.data_classes.add(setup["dataclass"])
    env = {**worker_env(data_dir), "PROVENANT_AUDIT_CANDIDATES": "1000"}
    for folder in ("queue", "processed", "control"):
        (data_dir / "broker" / folder).mkdir(parents=True, exist_ok=True)

    def enqueue_in_the_workers_broker(run, queue="gpu"):
        # This test process's Celery app points at the broker of the data dir it started with;
        # enqueue from a process configured like the worker.
        subprocess.run([sys.executable, "manage.py", "shell", "-c",
                        f"from training.runs import enqueue_run; from training.models import TrainingRun; "
                        f"enqueue_run(TrainingRun.objects.get(pk={run.pk}), {queue!r})"],
                       cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)

    monkeypatch.setattr(runs, "enqueue_run", enqueue_in_the_workers_broker)
    since = time.time() - 1
    data = request_data(setup, base_model=base_model)
    request = actions.submit_request(engineer, actions.create_request(engineer, data, [dataset]))
    actions.decide_request(legal, request, "approve", comment="Covered by the support contract.")
    actions.decide_request(privacy, request, "approve", conditions="Internal use only.")
    request.refresh_from_db()
    assert request.state == RequestState.QUEUED and request.run is not None

    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = start_worker(env, log)
        try:
            wait_for(lambda: TrainingRequest.objects.get(pk=request.pk).state in (RequestState.AUDITED, RequestState.FAILED),
                     600, "the run to be trained and audited", worker)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    request.refresh_from_db()
    run = request.run
    run.refresh_from_db()
    assert request.state == RequestState.AUDITED, (run.failure_reason, log_path.read_text()[-4000:])
    audit = run.audits.get()
    assert audit.passed is not None and audit.verdict["checks"] and audit.report["membership"]["attacks"]
    assert run.purged_at and audit.purged_at
    assert not any((data_dir / "scratch").iterdir())
    assert files_holding(marker, [data_dir, tempfile.gettempdir()], since) == []
    assert AuditEvent.verify_chain().ok
    trail = list(AuditEvent.objects.order_by("sequence").values_list("action", flat=True))
    for step in ("trainingrequest.submitted", "trainingrequest.approved", "trainingrequest.dispatched", "trainingrun.started",
                 "trainingrun.succeeded", "adapteraudit.completed"):
        assert step in trail
    assert trail.index("trainingrequest.dispatched") < trail.index("trainingrun.started") < trail.index("adapteraudit.completed")
    assert json.dumps(audit.report).count(marker) == 0
