"""The scratch directory's disk fills up under a real worker: the run fails saying so, and the
partly written plaintext goes with the scratch."""

import os
import subprocess

import pytest

pytest.importorskip("torch")

from tests.faults.harness import (assert_fault_outcome, enqueue, fault_env, new_marker, now, running_worker,  # noqa: E402
                                  wait_until_ended)
from tests.training.test_runs import FAST, base_model, queued_run, tiny_base_dir  # noqa: E402,F401
from training.models import RunState  # noqa: E402

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

# One page: the redacted plaintext of the tiny dataset (about 5 KB) does not fit.
SCRATCH_BYTES = 4096


@pytest.fixture
def small_scratch(data_dir):
    """A real full disk: a 4 KB tmpfs mounted on the scratch root (needs root, as in CI here)."""
    scratch = data_dir / "scratch"
    scratch.mkdir(mode=0o700)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs on the scratch directory needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SCRATCH_BYTES},mode=0700", "tmpfs", str(scratch)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield scratch
    finally:
        subprocess.run(["umount", "-l", str(scratch)], check=False)


def test_a_full_scratch_disk_fails_the_run_saying_so_and_leaves_no_plaintext(engineer, base_model, data_dir, tmp_path,
                                                                              small_scratch):
    marker, since = new_marker(), now()
    run = queued_run(engineer, base_model, FAST, marker)
    env, log_path = fault_env(data_dir, tmp_path), tmp_path / "worker.log"
    with running_worker(env, log_path) as worker:
        enqueue(env, log_path, run)
        run = wait_until_ended(run, worker)
        # Checked while the tmpfs is still mounted: what is on the full disk itself.
        assert_fault_outcome(run, engineer, state=RunState.FAILED, marker=marker, since=since, data_dir=data_dir,
                             tmp_path=tmp_path, log_path=log_path,
                             reason_says=["The disk ran out of space while the run was writing to the run's scratch directory",
                                          "The run's plaintext was removed", "queue the run again"])
    # Plaintext had reached the disk before it filled, and the run removed it on its way out.
    assert run.purge_report["files"] >= 1 and run.purge_report["removed"]
    assert run.purge_report["how"] == "removed by the run in finally"
    assert not run.artifacts.filter(deleted_at__isnull=True).exists()
