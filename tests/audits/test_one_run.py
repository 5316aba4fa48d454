"""The one-run audit of an ε claim (Steinke, Nasr and Jagielski 2023): its p-value and bounds against
hand-computed values and simulated mechanisms, and the whole path on a tiny model: audit canaries
planted by secret coin flips, kept out of the manifest, guessed from the adapter."""

import json
import math
import stat

import numpy as np
import pytest

from audits.engine.one_run import (METHOD, audit_one_run, epsilon_lower_bound, guess_counts, max_provable_epsilon,
                                   p_value)
# The portal test builds its run with the training tests' fixtures.
from tests.training.test_runs import FAST, _quiet_heartbeat, base_model, queued_run, tiny_base_dir  # noqa: F401

# --- The mathematics ----------------------------------------------------------------------------------


def test_without_delta_the_p_value_is_the_binomial_tail():
    # P[Binomial(10, ½) ≥ 8] = (C(10,8) + C(10,9) + C(10,10)) / 2^10 = 56 / 1024
    assert p_value(0.0, canaries=10, guesses=10, correct=8, delta=0) == pytest.approx(56 / 1024)
    # ε = ln 3: q = 3/4, and P[Binomial(2, ¾) ≥ 2] = 9/16
    assert p_value(math.log(3), canaries=4, guesses=2, correct=2, delta=0) == pytest.approx(9 / 16)


def test_delta_adds_two_m_delta_times_the_largest_slope_of_the_tail():
    # r = v = 2, ε = 0: f(2) = ¼; (f(1) − f(2)) / 1 = ½ and (f(0) − f(2)) / 2 = ⅜, so α = ½;
    # p = ¼ + 2·m·δ·α = 0.25 + 2·2·0.01·0.5 = 0.27
    assert p_value(0.0, canaries=2, guesses=2, correct=2, delta=0.01) == pytest.approx(0.27)
    # The δ term grows with the number of canaries, guessed or not.
    assert p_value(0.0, canaries=20, guesses=2, correct=2, delta=0.01) == pytest.approx(0.25 + 2 * 20 * 0.01 * 0.5)


@pytest.mark.parametrize("guesses", [10, 48, 300])
def test_a_perfect_attack_without_delta_proves_the_epsilon_whose_accuracy_to_the_r_is_beta(guesses):
    # (e^ε / (1 + e^ε))^r = β  ⇔  q = β^(1/r), ε = ln(q / (1 − q))
    q = 0.05 ** (1 / guesses)
    expected = math.log(q / (1 - q))
    bound = epsilon_lower_bound(canaries=guesses, guesses=guesses, correct=guesses, delta=0)
    assert bound == pytest.approx(expected, abs=1e-9) and bound <= expected


def test_a_coin_flip_attack_proves_nothing():
    assert epsilon_lower_bound(canaries=64, guesses=48, correct=24, delta=0) == 0.0
    assert epsilon_lower_bound(canaries=64, guesses=48, correct=30, delta=1e-5) == 0.0  # p ≈ 0.06 at ε = 0


def test_the_bound_is_where_the_p_value_crosses_beta():
    bound = epsilon_lower_bound(canaries=200, guesses=150, correct=120, delta=1e-5)
    assert bound > 0
    assert p_value(bound, canaries=200, guesses=150, correct=120, delta=1e-5) < 0.05
    assert p_value(bound + 1e-6, canaries=200, guesses=150, correct=120, delta=1e-5) >= 0.05


def test_max_provable_epsilon_grows_with_the_number_of_canaries():
    provable = [max_provable_epsilon(canaries=m, guesses=sum(guess_counts(m)), delta=1e-5) for m in (16, 64, 256, 1024)]
    assert provable == sorted(provable) and len(set(provable)) == 4
    assert 2.5 < provable[1] < 3  # the default of 64 audit canaries


def test_a_larger_delta_lets_the_audit_show_less_and_a_large_one_nothing():
    provable = [max_provable_epsilon(canaries=64, guesses=48, delta=d) for d in (0, 1e-5, 1e-3, 1e-2, 0.05)]
    assert provable == sorted(provable, reverse=True) and provable[0] > provable[2] > provable[3] > 0
    assert provable[-1] == 0.0  # 2·m·δ = 6.4: the δ term alone is above β even at ε = 0


# --- The audit of scores ------------------------------------------------------------------------------


def test_the_attack_guesses_included_for_the_highest_scores_and_excluded_for_the_lowest():
    scores = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    included = [True, True, False, True, False, True, False, False, True, False]
    result = audit_one_run(scores, included, delta=0, k_plus=3, k_minus=3)
    # "included" for 9, 8, 7 (two right), "excluded" for 2, 1, 0 (two right); 5 and 4… abstained on
    assert (result["guesses"], result["correct"]) == (6, 4)


def test_the_result_holds_counts_and_bounds_only():
    included = [bool(i % 2) for i in range(64)]
    result = audit_one_run([float(i % 2) for i in range(64)], included, delta=1e-5)
    assert set(result) == {"canaries", "guesses", "correct", "confidence", "delta", "epsilon_lower_bound",
                           "max_provable_epsilon", "method"}
    assert result["method"] == METHOD and result["confidence"] == 0.95 and result["delta"] == 1e-5
    assert (result["canaries"], result["guesses"]) == (64, 48) and result["correct"] == 48
    assert result["epsilon_lower_bound"] == result["max_provable_epsilon"] > 0


def test_ties_are_not_broken_by_the_inclusion_bits():
    # Every score equal: the attack knows nothing, and the guesses follow the canaries' order.
    included = [False] * 6 + [True] * 6
    result = audit_one_run([0.0] * 12, included, delta=0, k_plus=3, k_minus=3)
    assert result["correct"] == 0


def test_a_coin_flip_attack_rarely_proves_a_positive_epsilon():
    rng = np.random.default_rng(1)
    positive = sum(audit_one_run(rng.normal(size=64), rng.random(64) < 0.5, delta=0)["epsilon_lower_bound"] > 0
                   for _ in range(400))
    assert positive / 400 <= 0.05 + 0.03  # at most β, up to sampling error (sd 0.011)


def test_the_bound_exceeds_the_true_epsilon_of_randomized_response_at_most_one_time_in_twenty():
    """Each score is the canary's bit, flipped with probability 1/(1 + e^ε): exactly ε-DP per canary."""
    rng = np.random.default_rng(2)
    epsilon = 1.0
    above, bounds = 0, []
    for _ in range(400):
        included = rng.random(64) < 0.5
        kept = rng.random(64) < math.exp(epsilon) / (1 + math.exp(epsilon))
        scores = np.where(kept, included, ~included) + rng.normal(scale=1e-3, size=64)  # ties broken at random
        bound = audit_one_run(scores, included, delta=0)["epsilon_lower_bound"]
        above += bound > epsilon
        bounds.append(bound)
    assert above / 400 <= 0.05 + 0.03
    assert np.mean(bounds) > 0.1  # and it does see the leak


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="One inclusion bit"):
        audit_one_run([1.0, 2.0], [True], delta=0)
    with pytest.raises(ValueError, match="finite score"):
        audit_one_run([1.0, float("nan")], [True, False], delta=0)
    with pytest.raises(ValueError, match="between 0 and the number"):
        audit_one_run([1.0, 2.0], [True, False], delta=0, k_plus=2, k_minus=1)


# --- Training and auditing a tiny model ---------------------------------------------------------------

AUDIT_CANARIES = 32  # 12 guessed each way: a perfect attack shows ε ≥ 2.02


@pytest.fixture(scope="module")
def single_thread():
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, single_thread):
    """A non-DP adapter trained hard on its data, its exposure canary and the audit canaries whose
    coin came up heads, through the training engine as a run uses it."""
    from training.engine import train as engine_train
    from training.engine.tiny_base import build_tiny_base, generate_corpus

    work = tmp_path_factory.mktemp("one-run")
    base = build_tiny_base(work / "base", seed=0, n_layer=2, n_embd=128, n_head=4, train_steps=200)
    data = work / "data.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in generate_corpus(16, seed=11)))
    out = work / "out"
    manifest = engine_train.run({
        "base_model": str(base), "data": str(data), "out": str(out), "holdout_fraction": 0.25, "seed": 0,
        # 12-digit secrets: 8 left the tiny model's guesses wrong on a few canaries in some runs
        "canaries": {"count": 1, "audit_count": AUDIT_CANARIES, "length": 12},
        "training": {"dp": False, "epochs": 200, "batch_size": 16, "learning_rate": 4e-3, "lora_r": 32, "lora_alpha": 64,
                     "max_length": 32, "target_modules": ["c_attn", "c_proj", "c_fc"]}})
    return {"base": base, "out": out, "manifest": manifest}


def texts_of(path):
    return [json.loads(line)["text"] for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def audited(trained):
    from audits.engine.audit import AuditConfig, run_audit

    out = trained["out"]
    phases = []
    report = run_audit(trained["base"], out / "adapter", texts_of(out / "members.jsonl"), texts_of(out / "holdout.jsonl"),
                       None, config=AuditConfig(candidates=100, bootstrap=20, extraction_sample=4, max_length=32),
                       claimed_epsilon=0.5, delta=1e-5, progress=phases.append,
                       audit_canaries=json.loads((out / "audit_canaries.json").read_text()))
    return {"report": report, "phases": phases}


def test_training_writes_the_audit_canaries_and_their_bits_to_a_private_file(trained):
    path = trained["out"] / "audit_canaries.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    audit = json.loads(path.read_text())
    assert len(audit) == AUDIT_CANARIES and len({c["text"] for c in audit}) == AUDIT_CANARIES
    assert {type(c["included"]) for c in audit} == {bool}


def test_the_manifest_has_the_number_of_audit_canaries_and_no_canary_or_bit(trained):
    out = trained["out"]
    manifest_text = (out / "manifest.json").read_text()
    assert trained["manifest"]["records"]["audit_canaries"] == AUDIT_CANARIES
    assert "canaries.json" not in manifest_text and "audit_canaries.json" not in manifest_text
    assert "included" not in manifest_text
    assert not any(c["text"] in manifest_text for c in json.loads((out / "audit_canaries.json").read_text()))
    assert not any(c["secret"] in manifest_text for c in json.loads((out / "canaries.json").read_text()))


def test_only_the_included_audit_canaries_are_trained_on(trained):
    audit = json.loads((trained["out"] / "audit_canaries.json").read_text())
    included = sum(c["included"] for c in audit)
    result = trained["manifest"]["result"]
    # the training records, the one exposure canary, and each included audit canary once
    assert result["records"] == trained["manifest"]["records"]["train"] + 1 + included


def test_a_memorising_adapter_shows_a_positive_epsilon_lower_bound_and_what_it_could_show(audited):
    one_run = audited["report"]["one_run"]
    assert list(one_run) == ["canaries", "guesses", "correct", "confidence", "delta", "epsilon_lower_bound",
                             "max_provable_epsilon", "claimed_epsilon", "method"]
    assert one_run["canaries"] == AUDIT_CANARIES and one_run["guesses"] == 24
    assert one_run["epsilon_lower_bound"] > 0
    assert one_run["max_provable_epsilon"] == pytest.approx(max_provable_epsilon(canaries=32, guesses=24, delta=1e-5))
    assert one_run["epsilon_lower_bound"] <= one_run["max_provable_epsilon"]
    assert one_run["delta"] == 1e-5 and one_run["claimed_epsilon"] == 0.5 and one_run["confidence"] == 0.95


def test_the_one_run_phase_is_timed_and_reported_in_progress(audited):
    assert "one_run" in audited["report"]["seconds"]
    assert [p["phase"] for p in audited["phases"]] == ["canaries", "extraction", "membership", "one_run", "utility", "done"]


def test_the_report_holds_no_audit_canary_text(audited, trained):
    stored = json.dumps(audited["report"])
    assert not any(c["text"] in stored for c in json.loads((trained["out"] / "audit_canaries.json").read_text()))


def test_without_audit_canaries_the_report_says_none_were_planted(trained):
    from audits.engine.audit import AuditConfig, run_audit

    out = trained["out"]
    report = run_audit(trained["base"], out / "adapter", texts_of(out / "members.jsonl"), texts_of(out / "holdout.jsonl"),
                       None, config=AuditConfig(candidates=100, bootstrap=20, extraction_sample=4, max_length=32))
    assert report["one_run"] == {"canaries": 0} and "one_run" not in report["seconds"]


def test_without_a_claimed_delta_the_audit_uses_zero(trained):
    from audits.engine.audit import AuditConfig, run_audit

    out = trained["out"]
    report = run_audit(trained["base"], out / "adapter", texts_of(out / "members.jsonl"), texts_of(out / "holdout.jsonl"),
                       None, config=AuditConfig(candidates=100, bootstrap=20, extraction_sample=4, max_length=32),
                       audit_canaries=json.loads((out / "audit_canaries.json").read_text()))
    assert report["one_run"]["delta"] == 0.0 and report["one_run"]["claimed_epsilon"] is None


def write_jsonl(path, texts):
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return path


def test_the_cli_reads_the_audit_canaries_file(trained, tmp_path):
    from audits.engine.audit import main

    out = trained["out"]
    report = tmp_path / "report.json"
    main(["--base", str(trained["base"]), "--adapter", str(out / "adapter"), "--members", str(out / "members.jsonl"),
          "--nonmembers", str(out / "holdout.jsonl"), "--audit-canaries", str(out / "audit_canaries.json"),
          "--candidates", "100", "--max-length", "32", "--no-pii", "--json", str(report)])
    assert json.loads(report.read_text())["report"]["one_run"]["canaries"] == AUDIT_CANARIES


def test_the_cli_refuses_a_malformed_audit_canaries_file_with_exit_code_2(tmp_path, capsys):
    from audits.engine.audit import main

    (tmp_path / "base").mkdir()
    good = write_jsonl(tmp_path / "good.jsonl", ["one record", "another record"])
    bad = tmp_path / "audit.json"
    bad.write_text(json.dumps([{"text": "Audit reference 12345678", "included": "yes"}]))
    assert main(["--base", str(tmp_path / "base"), "--adapter", str(tmp_path / "base"), "--members", str(good),
                 "--nonmembers", str(good), "--audit-canaries", str(bad), "--no-pii"]) == 2
    assert "“included” true or false" in capsys.readouterr().err


# --- In the portal ------------------------------------------------------------------------------------


@pytest.fixture
def _small_audit(settings):
    settings.PROVENANT_AUDIT_CANDIDATES = 200


def test_a_portal_run_stores_its_audit_canaries_encrypted_and_its_audit_tests_the_claim(engineer, base_model, _small_audit):
    from audits.runner import execute_audit
    from training.models import ArtifactKind, RunState
    from training.pipeline import execute_run

    # Without redaction: no PII detector to load, and nothing here is about personal data.
    config = {**FAST, "redaction": False, "canaries": {**FAST["canaries"], "audit_count": 16}}
    run = execute_run(queued_run(engineer, base_model, config), "test-worker")
    assert run.state == RunState.SUCCEEDED, run.failure_reason
    artifact = run.artifacts.get(kind=ArtifactKind.CANARIES, name="audit_canaries.json")
    audit_canaries = json.loads(artifact.read_bytes())
    assert len(audit_canaries) == 16 and run.manifest["records"]["audit_canaries"] == 16
    assert not any(c["text"] in json.dumps(run.manifest) for c in audit_canaries)
    ended = execute_audit(run.audits.get(), "test-worker")
    one_run = ended.report["one_run"]
    assert one_run["canaries"] == 16 and one_run["guesses"] == 12
    assert one_run["claimed_epsilon"] == run.epsilon_spent and one_run["delta"] == run.result["delta"]
    assert not any(c["text"] in json.dumps([ended.report, ended.verdict]) for c in audit_canaries)
