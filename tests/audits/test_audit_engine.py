"""The audit orchestrator and its verdict: thresholds on hand-made reports, and the whole audit on a
tiny model that memorises without DP and does not at ε = 1."""

import json
import math
import random
import statistics

import pytest

from audits.engine import membership
from audits.engine.audit import AuditConfig, Thresholds, evaluate_verdict

# --- Verdict on hand-made reports ------------------------------------------------------------------


def made_report(exposure=1.0, auc=0.52, tpr=0.01, pii_hits=0, epsilon_bound=0.0, shift=0.5, pii=True, one_run_bound=0.4, low=0.5):
    attack = {"auc": auc, "tpr_at_1pct_fpr": tpr, "epsilon_lower_bound": {"epsilon": epsilon_bound}}
    report = {
        "canaries": [{"exposure_bits": low, "max_bits": 13.29, "candidates": 10_000},
                     {"exposure_bits": exposure, "max_bits": 13.29, "candidates": 10_000}],
        "membership": {"members": 200, "nonmembers": 200,
                       "attacks": {"loss": attack, "zlib": {**attack, "auc": 0.5, "tpr_at_1pct_fpr": 0.0,
                                                            "epsilon_lower_bound": {"epsilon": 0.0}}},
                       "distribution_shift": {"auc": shift, "warning": membership.shift_warning(shift)}},
        "one_run": {"canaries": 1000, "guesses": 200, "correct": 150, "confidence": 0.95, "delta": 1e-5,
                    "epsilon_lower_bound": one_run_bound, "max_provable_epsilon": 3.0, "claimed_epsilon": 2.0, "method": "test"},
    }
    if pii:
        report["pii"] = {"original_hits": pii_hits, "original_hits_attributable": pii_hits}
    return report


def check(verdict, code):
    return next(c for c in verdict["checks"] if c["code"] == code)


# Every check has what it needs: a limit, enough power, a claimed ε the one-run audit can test.
FULL = Thresholds(max_epsilon=2.5, dp_required=True, min_audit_canaries=100)


def test_a_report_within_every_limit_passes_with_a_reason_for_each_check():
    verdict = evaluate_verdict(made_report(), FULL, claimed_epsilon=2.0)
    assert verdict["passed"] and verdict["outcome"] == "pass" and verdict["not_tested"] == []
    assert {c["code"] for c in verdict["checks"]} == {"canary_exposure", "canary_memorised", "mia_auc", "mia_tpr_at_1pct_fpr",
                                                      "pii_original_hits", "epsilon_spent", "epsilon_one_run",
                                                      "distribution_shift"}
    assert all(c["passed"] and c["outcome"] == "passed" and c["reason"] for c in verdict["checks"])


@pytest.mark.parametrize("code, changes", [
    ("canary_exposure", {"exposure": 5.2, "low": 2.0}),  # mean 3.6; the highest under the 5.32 bits of chance
    ("mia_auc", {"auc": 0.65}),
    ("mia_tpr_at_1pct_fpr", {"tpr": 0.2}),
    ("pii_original_hits", {"pii_hits": 1}),
])
def test_each_limit_fails_the_verdict_when_exceeded_and_only_that_check(code, changes):
    verdict = evaluate_verdict(made_report(**changes), FULL, claimed_epsilon=2.0)
    assert not verdict["passed"] and verdict["outcome"] == "fail"
    assert [c["code"] for c in verdict["checks"] if c["outcome"] == "failed"] == [code]
    assert "above the limit" in check(verdict, code)["reason"]


def test_the_mean_canary_exposure_is_held_to_the_limit():
    verdict = evaluate_verdict(made_report(exposure=5.0), Thresholds(), None)
    assert check(verdict, "canary_exposure")["value"] == pytest.approx(2.75) and verdict["passed"]


def test_one_canary_learned_by_heart_fails_even_when_the_mean_is_low():
    report = made_report()
    report["canaries"] = [{"exposure_bits": 0.5, "max_bits": 13.29}] * 9 + [{"exposure_bits": 13.29, "max_bits": 13.29}]
    verdict = evaluate_verdict(report, Thresholds(), None)
    assert check(verdict, "canary_exposure")["passed"]  # mean 1.78 bits
    memorised = check(verdict, "canary_memorised")
    assert not memorised["passed"] and not verdict["passed"] and "by heart" in memorised["reason"]


def test_a_greedily_extracted_canary_fails():
    report = made_report()
    report["canaries"][0]["extracted"] = True
    assert check(evaluate_verdict(report, Thresholds(), None), "canary_memorised")["outcome"] == "failed"


def test_tpr_at_one_percent_is_not_judged_on_too_few_non_members():
    report = made_report(tpr=0.2)
    report["membership"]["nonmembers"] = 24
    verdict = evaluate_verdict(report, Thresholds(), None)
    tpr = check(verdict, "mia_tpr_at_1pct_fpr")
    assert tpr["outcome"] == "not_tested" and not tpr["passed"] and "cannot be measured" in tpr["reason"]
    assert verdict["outcome"] == "inconclusive" and verdict["not_tested"] == ["mia_tpr_at_1pct_fpr"]


def test_a_limit_set_to_none_is_not_tested_and_not_required():
    verdict = evaluate_verdict(made_report(auc=0.99), Thresholds(max_mia_auc=None), None)
    auc = check(verdict, "mia_auc")
    assert auc["outcome"] == "not_tested" and not auc["passed"] and not auc["required"]
    assert "no data class sets a limit" in auc["reason"]
    assert verdict["outcome"] == "pass"


def test_pii_not_measured_is_not_tested_and_makes_the_verdict_inconclusive():
    verdict = evaluate_verdict(made_report(pii=False), Thresholds(), None)
    pii = check(verdict, "pii_original_hits")
    assert pii["value"] is None and pii["outcome"] == "not_tested" and not pii["passed"]
    assert "not measured" in pii["reason"]
    assert verdict["outcome"] == "inconclusive" and not verdict["passed"]


def test_an_audit_ε_bound_above_the_claimed_one_is_a_critical_failure():
    verdict = evaluate_verdict(made_report(one_run_bound=2.6), FULL, claimed_epsilon=2.0)
    failed = check(verdict, "epsilon_one_run")
    assert verdict["outcome"] == "fail" and failed["outcome"] == "failed" and failed["critical"]
    assert failed["value"] == 2.6 and failed["limit"] == 2.0
    assert "bug in training or in the privacy accounting" in failed["reason"]


def test_an_audit_ε_bound_below_the_claim_passes_and_no_claim_is_not_tested():
    assert check(evaluate_verdict(made_report(one_run_bound=0.7), FULL, 2.0), "epsilon_one_run")["outcome"] == "passed"
    unclaimed = check(evaluate_verdict(made_report(one_run_bound=5.0), Thresholds(), None), "epsilon_one_run")
    assert unclaimed["outcome"] == "not_tested" and "without differential privacy" in unclaimed["reason"]


def test_distribution_shift_warns_without_failing_the_verdict():
    verdict = evaluate_verdict(made_report(shift=0.75), Thresholds(), None)
    warning = check(verdict, "distribution_shift")
    assert verdict["passed"] and not warning["passed"] and warning["advisory"]
    assert "0.75" in warning["reason"]
    assert check(evaluate_verdict(made_report(shift=0.55), Thresholds(), None), "distribution_shift")["passed"]


# --- The whole audit on a tiny model ---------------------------------------------------------------

CANDIDATES = 2_000  # log2(2000) = 10.97 bits at most; 8 of 13.29 bits scales to 6.6 here
TRAIN = dict(epochs=200, batch_size=16, learning_rate=3e-3, lora_r=32, lora_alpha=64, max_length=32,
             target_modules=("c_attn", "c_proj", "c_fc"), seed=0, noise_seed=0)


@pytest.fixture(scope="module")
def single_thread():
    """The tiny model's steps are too small to split across threads, and on a shared 2-core
    machine two spinning OpenMP threads made training several times slower."""
    torch = pytest.importorskip("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, single_thread):
    from training.engine.tiny_base import build_tiny_base, generate_corpus

    work = tmp_path_factory.mktemp("audit")
    base = build_tiny_base(work / "base", seed=0, n_layer=2, n_embd=128, n_head=4, train_steps=200)
    corpus = generate_corpus(48, seed=11)
    random.Random(0).shuffle(corpus)  # members and non-members split at random from one source
    rng = random.Random(7)  # fixed secrets keep the test reproducible; real canaries use the OS CSPRNG
    canaries = [{"prefix": "My account recovery code is ", "secret": "".join(rng.choice("0123456789") for _ in range(6))}
                for _ in range(3)]
    return {"work": work, "base": base, "members": corpus[:24], "nonmembers": corpus[24:], "canaries": canaries}


def train(setup, dp: bool):
    from training.engine.dp_lora import TrainConfig, train_dp_lora

    texts = setup["members"] + [c["prefix"] + c["secret"] for c in setup["canaries"]]
    random.Random(0).shuffle(texts)
    out = setup["work"] / ("dp" if dp else "plain")
    result = train_dp_lora(setup["base"], texts, TrainConfig(dp=dp, target_epsilon=1.0, **TRAIN), out)
    return out, result


@pytest.fixture(scope="module")
def plain(setup):
    from audits.engine.audit import run_audit
    from audits.engine.leakage import ValueIndex

    adapter, _ = train(setup, dp=False)
    phases = []
    originals = ValueIndex(b"test-key")
    originals.add("Jane Example-Person")
    report = run_audit(setup["base"], adapter, setup["members"], setup["nonmembers"], setup["canaries"],
                       config=AuditConfig(candidates=CANDIDATES, bootstrap=200),
                       detect=lambda texts: [[] for _ in texts], originals=originals, progress=phases.append)
    return {"adapter": adapter, "report": report, "phases": phases}


@pytest.fixture(scope="module")
def private(setup):
    from audits.engine.audit import run_audit

    adapter, result = train(setup, dp=True)
    report = run_audit(setup["base"], adapter, setup["members"], setup["nonmembers"], setup["canaries"],
                       config=AuditConfig(candidates=CANDIDATES, bootstrap=200), claimed_epsilon=result.epsilon,
                       delta=result.delta)
    return {"adapter": adapter, "report": report, "epsilon": result.epsilon, "delta": result.delta}


def test_without_dp_the_canaries_are_exposed_and_members_told_apart(plain):
    report = plain["report"]
    bits = [c["exposure_bits"] for c in report["canaries"]]
    assert statistics.mean(bits) > 8 / math.log2(10_000) * math.log2(CANDIDATES)
    assert all(c["extrapolated_bits"] >= c["exposure_bits"] - 1 for c in report["canaries"])
    assert report["membership"]["attacks"]["loss"]["auc"] > 0.8
    assert not evaluate_verdict(report, Thresholds(), None)["passed"]


def test_under_dp_at_epsilon_one_exposure_is_low_and_membership_near_chance(private):
    report = private["report"]
    assert private["epsilon"] == pytest.approx(1.0, abs=0.05)
    assert statistics.mean(c["exposure_bits"] for c in report["canaries"]) < 4
    assert report["membership"]["attacks"]["loss"]["auc"] < 0.7
    assert all(a["dp_region"]["respected"] for a in report["membership"]["attacks"].values())
    assert check(evaluate_verdict(report, Thresholds(max_epsilon=1.0), private["epsilon"]), "epsilon_spent")["passed"]


def test_the_report_has_every_section_with_timings_and_reports_progress(plain):
    report = plain["report"]
    sections = ["canaries", "extraction", "pii", "membership", "utility"]
    # Without audit canaries the one-run phase does not run, and its section says so.
    assert set(report) == {*sections, "one_run", "config", "seconds"} and set(report["seconds"]) == set(sections)
    assert report["one_run"] == {"canaries": 0}
    assert [p["phase"] for p in plain["phases"]] == [*sections, "done"]
    assert plain["phases"][-1]["done"] == plain["phases"][-1]["total"] == 5
    assert set(report["membership"]["attacks"]) == set(membership.ATTACKS)
    assert report["utility"]["adapter_perplexity"] > 0 and report["utility"]["base_perplexity"] > 0
    assert report["pii"]["original_hits"] == 0 and report["pii"]["samples"] > 0
    histogram = report["canaries"][0]["histogram"]
    assert len(histogram["counts"]) == 40 and sum(histogram["counts"]) == CANDIDATES - 1


def strings_in(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)
    elif isinstance(value, str):
        yield value


def test_the_report_is_strict_json_and_holds_no_canary_secret_and_no_member_text(plain, setup):
    text = json.dumps(plain["report"], allow_nan=False)
    assert json.loads(text) == plain["report"]
    strings = list(strings_in(plain["report"]))  # numbers may contain any digit run by chance; strings may not
    for canary in setup["canaries"]:
        assert not any(canary["secret"] in s for s in strings)
    for record in setup["members"]:
        assert not any(record[:20] in s for s in strings)


# --- CLI ---------------------------------------------------------------------------------------------


def write_jsonl(path, texts):
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return path


def cli_args(setup, adapter, tmp_path):
    canaries = tmp_path / "canaries.json"
    canaries.write_text(json.dumps(setup["canaries"]))
    return ["--base", str(setup["base"]), "--adapter", str(adapter),
            "--members", str(write_jsonl(tmp_path / "m.jsonl", setup["members"])),
            "--nonmembers", str(write_jsonl(tmp_path / "n.jsonl", setup["nonmembers"])),
            "--canaries", str(canaries), "--candidates", "300", "--no-pii"]


def test_the_cli_fails_a_memorising_adapter_with_exit_code_1(plain, setup, tmp_path, capsys):
    from audits.engine.audit import main

    out = tmp_path / "report.json"
    assert main(cli_args(setup, plain["adapter"], tmp_path) + ["--json", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "VERDICT: FAIL" in printed and "[FAIL] Canary exposure" in printed and "MIA loss" in printed
    assert json.loads(out.read_text())["verdict"]["passed"] is False


def dp_cli_args(private, setup, tmp_path):
    # Limits above what chance alone reaches with 3 canaries and 24 non-members.
    return cli_args(setup, private["adapter"], tmp_path) + [
        "--epsilon", str(private["epsilon"]), "--delta", str(private["delta"]), "--max-exposure-bits", "6", "--max-auc", "0.75"]


def test_the_cli_passes_the_dp_adapter_with_exit_code_0_when_no_required_check_is_left_untested(private, setup, tmp_path,
                                                                                                capsys):
    from audits.engine.audit import main

    # 24 non-members cannot measure TPR at 1% FPR and --no-pii measures no PII: say neither is required.
    assert main(dp_cli_args(private, setup, tmp_path) + ["--max-tpr", "none", "--max-pii-hits", "none"]) == 0
    assert "VERDICT: PASS" in capsys.readouterr().out


def test_the_cli_calls_the_dp_adapter_inconclusive_with_exit_code_3_when_a_required_check_did_not_run(private, setup, tmp_path,
                                                                                                      capsys):
    from audits.engine.audit import main

    out = tmp_path / "report.json"
    assert main(dp_cli_args(private, setup, tmp_path) + ["--json", str(out)]) == 3
    printed = capsys.readouterr().out
    assert "VERDICT: INCONCLUSIVE" in printed and "[not tested] Members identified at 1% false positives" in printed
    assert "Not tested, and required for a pass: Members identified at 1% false positives (best attack); Original " \
           "personal data reproduced." in printed
    verdict = json.loads(out.read_text())["verdict"]
    assert verdict["outcome"] == "inconclusive" and verdict["passed"] is False


def test_the_cli_names_a_missing_file_and_a_bad_line_with_exit_code_2(tmp_path, capsys):
    from audits.engine.audit import main

    (tmp_path / "base").mkdir()
    good = write_jsonl(tmp_path / "good.jsonl", ["one record", "another record"])
    common = ["--base", str(tmp_path / "base"), "--adapter", str(tmp_path / "base"), "--no-pii"]
    assert main(common + ["--members", str(tmp_path / "absent.jsonl"), "--nonmembers", str(good)]) == 2
    assert "absent.jsonl: no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": broken\n')
    assert main(common + ["--members", str(good), "--nonmembers", str(bad)]) == 2
    assert "bad.jsonl, line 2: not valid JSON" in capsys.readouterr().err
