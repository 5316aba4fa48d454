"""Run preparation: private scratch, purged on every exit; random split; CSPRNG canaries."""

import contextlib
import random
import signal
import stat

import pytest

from training.engine.prepare import (AUDIT_CANARY_PREFIX, CanarySpec, insert_canaries, job_scratch, make_audit_canaries,
                                     make_canaries, split_train_holdout, sweep_stale_scratch)


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


@contextlib.contextmanager
def fails_after(seconds: float):
    """Turns a call that would loop for ever into a failure."""
    def give_up(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_the_default_canary_settings_have_no_problems():
    assert CanarySpec().problems() == []
    assert CanarySpec().audit_count == 64


@pytest.mark.parametrize("changes, words", [
    ({"count": -1}, "canary count must be 0 or more"),
    ({"repetitions": 0}, "repetitions >= 1"),
    ({"length": 3}, "at least 4 characters"),
    ({"audit_count": -1}, "audit_count >= 0"),
])
def test_each_bad_canary_setting_is_named(changes, words):
    problems = CanarySpec(**changes).problems()
    assert len(problems) == 1 and words in problems[0]


def test_a_one_character_alphabet_is_refused_instead_of_looping_for_ever():
    spec = CanarySpec(alphabet="7")
    assert any("1 distinct character makes only 1 different secret" in p for p in spec.problems())
    with fails_after(5), pytest.raises(ValueError, match="too few for 74 distinct canaries"):
        make_canaries(spec)
    with fails_after(5), pytest.raises(ValueError, match="too few"):
        make_audit_canaries(spec)


def test_an_alphabet_is_counted_by_its_distinct_characters_against_all_the_canaries():
    # "0101" allows 2^4 = 16 secrets: enough for one canary, not for one and 64 audit canaries.
    assert CanarySpec(alphabet="0101", length=4, count=1, audit_count=0).problems() == []
    assert "too few for 65 distinct canaries" in CanarySpec(alphabet="0101", length=4, count=1).problems()[0]


def test_audit_canaries_are_distinct_and_apart_from_the_exposure_canaries():
    spec = CanarySpec(count=30, audit_count=200, alphabet="0123", length=7)  # 16,384 secrets: some draws collide
    canaries = make_canaries(spec)
    audit = make_audit_canaries(spec, avoid={c.secret for c in canaries})
    assert len(audit) == 200 and len({c.secret for c in audit}) == 200
    assert not {c.secret for c in audit} & {c.secret for c in canaries}
    assert all(c.text == AUDIT_CANARY_PREFIX + c.secret and not c.text.startswith(spec.prefix_template) for c in audit)


def test_audit_canary_inclusion_bits_come_from_secret_randomness_not_the_seed():
    spec = CanarySpec(audit_count=64)
    random.seed(0)
    first = [c.included for c in make_audit_canaries(spec)]
    random.seed(0)
    second = [c.included for c in make_audit_canaries(spec)]
    assert first != second  # equal by chance with probability 2^-64


def test_about_half_of_the_audit_canaries_are_included():
    bits = [c.included for c in make_audit_canaries(CanarySpec(audit_count=4000))]
    assert abs(sum(bits) / len(bits) - 0.5) < 0.04  # 5 standard deviations


def test_included_audit_canaries_are_inserted_once_each():
    audit = [c for c in make_audit_canaries(CanarySpec(audit_count=20)) if c.included]
    records = [f"record {i}" for i in range(10)]
    mixed = insert_canaries(records, audit, seed=3)
    assert len(mixed) == 10 + len(audit) and all(mixed.count(c.text) == 1 for c in audit)
