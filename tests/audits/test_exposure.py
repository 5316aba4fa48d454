"""Canary exposure: the arithmetic, and the batched scorer against one-at-a-time scoring."""

import math

import pytest

from audits.engine.exposure import exposure_from_rank


def test_rank_one_among_ten_thousand_is_13_29_bits():
    assert exposure_from_rank(1, 10_000) == pytest.approx(13.2877, abs=1e-4)


def test_the_median_rank_gives_one_bit_and_the_last_gives_zero():
    assert exposure_from_rank(5_000, 10_000) == pytest.approx(1.0)
    assert exposure_from_rank(10_000, 10_000) == 0


def test_an_impossible_rank_is_refused():
    with pytest.raises(ValueError):
        exposure_from_rank(0, 10)


def test_batched_log_perplexities_equal_one_sequence_at_a_time(tmp_path):
    pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from audits.engine.exposure import log_perplexities
    from training.engine.tiny_base import build_tiny_base

    directory = build_tiny_base(tmp_path / "base", seed=1)
    model, tokenizer = AutoModelForCausalLM.from_pretrained(directory), AutoTokenizer.from_pretrained(directory)
    texts = ["My code is 1234", "My code is 98765432", "Hello", "the refund will reach your card"]
    batched = log_perplexities(model, tokenizer, texts, batch_size=4)
    alone = [log_perplexities(model, tokenizer, [t], batch_size=1)[0] for t in texts]
    assert batched == pytest.approx(alone, rel=1e-4)
    assert all(math.isfinite(s) and s > 0 for s in batched)


def test_the_skew_normal_extrapolation_of_a_score_four_sigma_below_a_normal_sample_is_about_14_9_bits():
    np = pytest.importorskip("numpy")
    from scipy.stats import norm

    from audits.engine.exposure import extrapolated_exposure

    sample = np.random.default_rng(0).normal(50.0, 5.0, 5_000)
    expected = -norm.logcdf(-4) / math.log(2)  # 14.95 bits: beyond log2(5000) = 12.3, which ranks cannot pass
    assert extrapolated_exposure(sample, 50.0 - 4 * 5.0) == pytest.approx(expected, abs=1.0)


def test_the_extrapolation_is_capped_when_the_probability_underflows_and_absent_without_spread():
    np = pytest.importorskip("numpy")
    from audits.engine.exposure import MAX_EXTRAPOLATED_BITS, extrapolated_exposure

    sample = np.random.default_rng(0).normal(50.0, 5.0, 1_000)
    assert extrapolated_exposure(sample, -1e6) == MAX_EXTRAPOLATED_BITS
    assert extrapolated_exposure([3.0] * 10, 1.0) is None


def test_the_histogram_spans_the_secret_and_counts_every_candidate():
    from audits.engine.exposure import score_histogram

    histogram = score_histogram([10.0, 11.0, 12.0, 12.5], 2.0, bins=5)
    assert len(histogram["edges"]) == 6 and sum(histogram["counts"]) == 4
    assert histogram["edges"][0] == 2.0 and histogram["secret_score"] == 2.0


def test_the_shared_prefix_scorer_gives_the_scores_of_the_plain_batched_one(tmp_path):
    pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from audits.engine.exposure import log_perplexities, shared_prefix_log_perplexities
    from training.engine.tiny_base import build_tiny_base

    directory = build_tiny_base(tmp_path / "base", seed=1)
    model, tokenizer = AutoModelForCausalLM.from_pretrained(directory), AutoTokenizer.from_pretrained(directory)
    texts = [f"My account recovery code is {code}" for code in ("123456", "98765", "000000", "4242424242", "7")]
    shared = shared_prefix_log_perplexities(model, tokenizer, texts, batch_size=2)
    assert shared == pytest.approx(log_perplexities(model, tokenizer, texts, batch_size=8), rel=1e-4)
