"""Run preparation: private scratch, purged on every exit; random split; CSPRNG canaries."""

import stat

import pytest

from training.engine.prepare import (CanarySpec, insert_canaries, job_scratch, make_canaries, split_train_holdout,
                                     sweep_stale_scratch)


def test_scratch_is_private_and_removed_after_success(tmp_path):
    with job_scratch(tmp_path / "scratch", "run-1") as path:
        (path / "plain.jsonl").write_text("secret plaintext")
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert not path.exists()


@pytest.mark.parametrize("error", [RuntimeError("training diverged"), KeyboardInterrupt()])
def test_scratch_is_removed_after_failure_or_cancel(tmp_path, error):
    with pytest.raises(type(error)):
        with job_scratch(tmp_path / "scratch", "run-2") as path:
            (path / "plain.jsonl").write_text("secret plaintext")
            raise error
    assert not path.exists()


def test_sweep_removes_scratch_of_dead_jobs_only(tmp_path):
    root = tmp_path / "scratch"
    for job in ("dead-1", "dead-2", "alive"):
        (root / job).mkdir(parents=True)
        (root / job / "data").write_text("x")
    assert sweep_stale_scratch(root, live_job_ids={"alive"}) == ["dead-1", "dead-2"]
    assert [p.name for p in root.iterdir()] == ["alive"]


def test_split_is_random_disjoint_complete_and_reproducible():
    items = [f"r{i}" for i in range(100)]
    train, holdout = split_train_holdout(items, 0.2, seed=4)
    assert len(holdout) == 20 and set(train) | set(holdout) == set(items) and not set(train) & set(holdout)
    assert (train, holdout) == split_train_holdout(items, 0.2, seed=4)
    assert holdout != items[-20:] and holdout != items[:20]  # not a head or tail cut
    assert split_train_holdout(items, 0.2, seed=5)[1] != holdout


def test_canaries_are_distinct_secrets_of_the_requested_format():
    canaries = make_canaries(CanarySpec(count=50, length=6))
    assert len({c.secret for c in canaries}) == 50
    assert all(c.secret.isdigit() and len(c.secret) == 6 for c in canaries)
    assert make_canaries(CanarySpec(count=50, length=6)) != canaries  # from the CSPRNG, not a seed


def test_canaries_are_inserted_with_their_repetitions():
    canaries = make_canaries(CanarySpec(count=3, repetitions=4))
    records = [f"record {i}" for i in range(20)]
    mixed = insert_canaries(records, canaries, seed=1)
    assert len(mixed) == 32 and all(mixed.count(c.text) == 4 for c in canaries)
    assert [r for r in mixed if r.startswith("record")] == records


def test_bad_canary_settings_are_refused():
    with pytest.raises(ValueError, match="at least 4 characters"):
        make_canaries(CanarySpec(length=2))
