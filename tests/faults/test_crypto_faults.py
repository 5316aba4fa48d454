"""Faults of the encrypted data under a real worker: a damaged dataset blob, a worker started with
another master key. Both end the run failed, at once, with a sentence that says what to do."""

import pytest

pytest.importorskip("torch")

from governance.vault import MasterKey  # noqa: E402
from tests.faults.harness import (assert_fault_outcome, enqueue, fault_env, new_marker, now, running_worker,  # noqa: E402
                                  wait_until_ended)
from tests.training.test_runs import FAST, base_model, queued_run, tiny_base_dir  # noqa: E402,F401
from training.models import PseudonymKey, RunState  # noqa: E402

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def test_a_run_on_a_damaged_dataset_blob_fails_saying_the_file_is_damaged(engineer, base_model, data_dir, tmp_path):
    marker, since = new_marker(), now()
    run = queued_run(engineer, base_model, FAST, marker)
    dataset = run.datasets.get()
    blob = data_dir / "blobs" / dataset.blob_id[:2] / f"{dataset.blob_id}.tink"
    damaged = bytearray(blob.read_bytes())
    for offset in range(len(damaged) // 2, len(damaged) // 2 + 8):  # inside the one encrypted segment
        damaged[offset] ^= 0xFF
    blob.write_bytes(bytes(damaged))
    env, log_path = fault_env(data_dir, tmp_path), tmp_path / "worker.log"
    with running_worker(env, log_path) as worker:
        enqueue(env, log_path, run)
        run = wait_until_ended(run, worker)
    assert_fault_outcome(run, engineer, state=RunState.FAILED, marker=marker, since=since, data_dir=data_dir, tmp_path=tmp_path,
                         log_path=log_path, reason_says=["The encrypted file of dataset “Support chats” is damaged (authentication failed)",
                                                         "upload the dataset again"])
    assert not run.artifacts.filter(deleted_at__isnull=True).exists()


def test_a_worker_with_another_master_key_fails_the_run_before_decrypting_or_sealing_anything(engineer, base_model, data_dir, tmp_path):
    marker, since = new_marker(), now()
    run = queued_run(engineer, base_model, FAST, marker)
    pseudonym_keys = PseudonymKey.objects.count()
    env = fault_env(data_dir, tmp_path, PROVENANT_MASTER_KEY=MasterKey.generate_json())
    log_path = tmp_path / "worker.log"
    with running_worker(env, log_path) as worker:
        enqueue(env, log_path, run)
        run = wait_until_ended(run, worker)
    assert_fault_outcome(run, engineer, state=RunState.FAILED, marker=marker, since=since, data_dir=data_dir, tmp_path=tmp_path,
                         log_path=log_path, reason_says=["This worker's master key cannot open the data key of dataset “Support chats”",
                                                         "Start the worker with the portal's master key"])
    # Nothing was sealed under the stray key: no pseudonym key, no artifact a correct worker could not open.
    assert PseudonymKey.objects.count() == pseudonym_keys
    assert not run.artifacts.exists()
    assert run.purged_at is None  # it never decrypted, so it had no scratch to purge
