"""Membership inference: attack scores, ROC statistics, the empirical ε bound and the shift check."""

import json
import math
import random

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from audits.engine.membership import (
    bootstrap_ci, distribution_shift_auc, dp_consistent, dp_tpr_limit, empirical_epsilon_lower_bound, evaluate_attack,
    roc, scores_from_log_probs, shift_warning,
)


def normal_scores(members=2000, nonmembers=2000, shift=1.0, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(shift, 1, members), rng.normal(0, 1, nonmembers)


def brute_force_tpr_at(members, nonmembers, target):
    """The highest TPR over thresholds "member when score >= t" whose FPR is at most `target`."""
    best = 0.0
    for t in np.concatenate([members, nonmembers]):
        if np.mean(nonmembers >= t) <= target:
            best = max(best, np.mean(members >= t))
    return best


# --- Scores from token log probs ------------------------------------------------------------------


def test_loss_score_is_the_mean_token_log_prob():
    assert scores_from_log_probs(["abc"], [[-1.0, -2.0, -3.0]])["loss"] == [pytest.approx(-2.0)]


def test_zlib_score_divides_the_total_log_prob_by_the_compressed_length():
    import zlib

    text = "the refund will reach your card"
    expected = -6.0 / len(zlib.compress(text.encode()))
    assert scores_from_log_probs([text], [[-1.0, -2.0, -3.0]])["zlib"] == [pytest.approx(expected)]


def test_min_k_score_averages_the_least_likely_fifth_of_the_tokens():
    log_probs = [-0.1 * i for i in range(1, 11)]  # the two lowest: -1.0 and -0.9
    assert scores_from_log_probs(["x"], [log_probs])["min_k"] == [pytest.approx(-0.95)]


def test_reference_score_is_base_loss_minus_adapted_loss():
    scores = scores_from_log_probs(["x"], [[-1.0, -1.0]], base_log_probs=[[-3.0, -2.0]])
    assert scores["reference"] == [pytest.approx(2.5 - 1.0)]


def test_without_a_base_model_there_is_no_reference_attack():
    assert set(scores_from_log_probs(["x"], [[-1.0]])) == {"loss", "zlib", "min_k"}


def test_a_text_without_a_next_token_is_refused():
    with pytest.raises(ValueError, match="fewer than two tokens"):
        scores_from_log_probs(["a", "b"], [[-1.0], []])


# --- ROC -----------------------------------------------------------------------------------------------


def test_auc_and_tpr_at_low_fpr_match_scikit_learn_and_a_brute_force_count():
    members, nonmembers = normal_scores()
    result = roc(members, nonmembers)
    labels = np.r_[np.ones(len(members)), np.zeros(len(nonmembers))]
    assert result.auc == pytest.approx(roc_auc_score(labels, np.r_[members, nonmembers]))
    assert result.tpr_at_1pct_fpr == pytest.approx(brute_force_tpr_at(members, nonmembers, 0.01))
    assert result.tpr_at_01pct_fpr == pytest.approx(brute_force_tpr_at(members, nonmembers, 0.001))
    assert 0 < result.tpr_at_01pct_fpr < result.tpr_at_1pct_fpr < 1


def test_identical_distributions_give_auc_near_one_half_and_a_ci_containing_it():
    members, nonmembers = normal_scores(shift=0.0)
    assert roc(members, nonmembers).auc == pytest.approx(0.5, abs=0.03)
    low, high = bootstrap_ci(members, nonmembers, n=200)["auc"]
    assert low < 0.5 < high


def test_well_separated_scores_give_auc_one_and_full_tpr_at_low_fpr():
    result = roc(*normal_scores(shift=10.0))
    assert (result.auc, result.tpr_at_1pct_fpr, result.tpr_at_01pct_fpr) == (1.0, 1.0, 1.0)


def test_roc_points_for_charts_are_few_span_the_fpr_axis_and_rise():
    result = roc(*normal_scores())
    assert len(result.fpr) == len(result.tpr) <= 210
    assert result.fpr[0] == 0 and result.fpr[-1] == result.tpr[-1] == 1
    assert np.all(np.diff(result.fpr) > 0) and np.all(np.diff(result.tpr) >= 0)
    assert min(f for f in result.fpr if f > 0) <= 1e-4  # the low-FPR region drawn on log axes


def test_bootstrap_intervals_contain_the_point_estimates():
    members, nonmembers = normal_scores()
    result, ci = roc(members, nonmembers), bootstrap_ci(members, nonmembers, n=200)
    for name in ("auc", "tpr_at_1pct_fpr", "tpr_at_01pct_fpr"):
        low, high = ci[name]
        assert low <= getattr(result, name) <= high


def test_bootstrap_interval_narrows_with_more_samples():
    small, large = (bootstrap_ci(*normal_scores(n, n), n=200)["auc"] for n in (100, 2000))
    assert large[1] - large[0] < (small[1] - small[0]) / 2


def test_the_same_seed_gives_the_same_bootstrap_interval():
    members, nonmembers = normal_scores(300, 300)
    assert bootstrap_ci(members, nonmembers, n=50, seed=3) == bootstrap_ci(members, nonmembers, n=50, seed=3)


def test_attack_result_serialises_to_json():
    result = evaluate_attack("loss", *normal_scores(300, 300), n_bootstrap=50)
    data = json.loads(json.dumps(result.as_dict()))
    assert data["name"] == "loss" and data["members"] == data["nonmembers"] == 300
    assert data["auc_ci"][0] <= data["auc"] <= data["auc_ci"][1]


# --- Against the DP claim ------------------------------------------------------------------------


def test_identical_distributions_prove_no_epsilon():
    bound = empirical_epsilon_lower_bound(*normal_scores(1000, 1000, shift=0.0), delta=1e-5)
    assert bound.epsilon == 0 and bound.threshold is None


def test_perfectly_separated_scores_prove_a_large_epsilon_but_less_than_ln_n():
    members, nonmembers = np.arange(1000) + 1000.0, np.arange(1000.0)
    bound = empirical_epsilon_lower_bound(members, nonmembers, delta=1e-5)
    assert 2 < bound.epsilon < math.log(1000)
    assert (bound.threshold, bound.true_positives, bound.false_positives) == (1000.0, 1000, 0)


def test_ten_records_a_side_cannot_prove_more_than_ln_10():
    bound = empirical_epsilon_lower_bound(np.arange(10) + 10.0, np.arange(10.0), delta=0)
    assert 0 < bound.epsilon < math.log(10)


def test_an_attack_sure_of_non_members_is_caught_by_the_complementary_bound():
    # No member scores below 1, half the non-members do: TNR 0.5 against FNR 0, while TPR 1
    # against FPR 0.5 proves little.
    rng = np.random.default_rng(0)
    members, nonmembers = rng.uniform(1, 2, 1000), np.r_[rng.uniform(0, 1, 500), rng.uniform(1, 2, 500)]
    bound = empirical_epsilon_lower_bound(members, nonmembers, delta=1e-5)
    assert bound.direction == "tnr/fnr" and bound.epsilon > 2


def test_a_larger_delta_never_raises_the_bound():
    members, nonmembers = normal_scores(1000, 1000, shift=2.0)
    bounds = [empirical_epsilon_lower_bound(members, nonmembers, delta=d).epsilon for d in (0, 1e-5, 1e-2, 0.1, 0.5)]
    assert bounds == sorted(bounds, reverse=True) and bounds[-1] < bounds[0]


def test_an_attack_inside_the_dp_region_is_consistent():
    assert dp_consistent(tpr=0.5, fpr=0.3, epsilon=1.0, delta=0)
    assert dp_consistent(tpr=0.02, fpr=0.01, epsilon=1.0, delta=1e-5)


def test_an_attack_above_e_to_the_epsilon_times_fpr_plus_delta_is_inconsistent():
    assert not dp_consistent(tpr=0.5, fpr=0.1, epsilon=1.0, delta=1e-5)


def test_an_attack_with_too_few_false_negatives_is_inconsistent():
    # TPR ≤ e·FPR holds (0.99 ≤ 2.45) but TNR 0.10 > e·FNR 0.027.
    assert not dp_consistent(tpr=0.99, fpr=0.9, epsilon=1.0, delta=0)


def test_the_dp_limit_curve_starts_at_delta_and_bounds_consistent_points():
    fpr = np.linspace(0, 1, 101)
    limit = dp_tpr_limit(fpr, epsilon=1.0, delta=1e-3)
    assert limit[0] == pytest.approx(1e-3) and limit[-1] == 1
    assert all(dp_consistent(t, f, 1.0, 1e-3) for t, f in zip(limit, fpr))
    assert not any(dp_consistent(t + 0.01, f, 1.0, 1e-3) for t, f in zip(limit[:-1], fpr[:-1]))


# --- Distribution shift ----------------------------------------------------------------------------


WORDS = ["parcel", "blue", "monday", "window", "account", "river", "seven", "garden", "ticket", "number", "yellow",
         "station", "letter", "coffee", "table", "morning", "market", "paper", "bridge", "friday"]


def template_texts(rng, count, topic_words):
    return [f"Message {rng.randint(1, 999)}: {' '.join(rng.choices(topic_words, k=4))} {' '.join(rng.choices(WORDS, k=6))}."
            for _ in range(count)]


def test_texts_from_one_template_show_no_distribution_shift():
    rng = random.Random(0)
    auc = distribution_shift_auc(template_texts(rng, 200, WORDS), template_texts(rng, 200, WORDS))
    assert auc < 0.6 and shift_warning(auc) is None


def test_texts_on_different_topics_show_a_distribution_shift_and_a_warning():
    rng = random.Random(0)
    refunds = ["invoice", "refund", "credit", "charged", "billing", "payment"]
    hospital = ["hospital", "appointment", "doctor", "clinic", "nurse", "referral"]
    auc = distribution_shift_auc(template_texts(rng, 200, refunds), template_texts(rng, 200, hospital))
    assert auc > 0.9
    assert shift_warning(auc).startswith(f"A bag-of-words classifier tells members from non-members apart (AUC {auc:.2f})")


def test_the_shift_warning_starts_at_0_6():
    assert shift_warning(0.59) is None and "AUC 0.60" in shift_warning(0.6)


# --- On a tiny model -------------------------------------------------------------------------------


TEXTS = ["My code is 1234", "My code is 98765432", "Hello there, my parcel", "the refund will reach your card",
         "Customer: Hello, the invoice was charged twice. Agent: Your account has been unlocked."]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.engine.tiny_base import build_tiny_base

    directory = build_tiny_base(tmp_path_factory.mktemp("membership") / "base", seed=1)
    return AutoModelForCausalLM.from_pretrained(directory), AutoTokenizer.from_pretrained(directory)


def test_batched_token_log_probs_equal_one_text_at_a_time(tiny):
    from audits.engine.membership import token_log_probs

    model, tokenizer = tiny
    batched = token_log_probs(model, tokenizer, TEXTS, batch_size=len(TEXTS))
    alone = [token_log_probs(model, tokenizer, [t], batch_size=1)[0] for t in TEXTS]
    assert [len(b) for b in batched] == [len(a) for a in alone] == [len(tokenizer(t)["input_ids"]) - 1 for t in TEXTS]
    for b, a in zip(batched, alone):
        assert b == pytest.approx(a, rel=1e-4, abs=1e-5)
        assert all(lp < 0 for lp in b)


def test_attack_scores_give_one_finite_score_per_text_for_each_attack(tiny):
    from audits.engine.membership import attack_scores

    model, tokenizer = tiny
    scores = attack_scores(model, model, tokenizer, TEXTS, batch_size=2)
    assert set(scores) == {"loss", "zlib", "min_k", "reference"}
    assert all(len(values) == len(TEXTS) and all(math.isfinite(v) for v in values) for values in scores.values())


def test_the_reference_attack_is_zero_when_the_adapted_model_is_the_base(tiny):
    from audits.engine.membership import attack_scores

    model, tokenizer = tiny
    assert attack_scores(model, model, tokenizer, TEXTS)["reference"] == [0.0] * len(TEXTS)
