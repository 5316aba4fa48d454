"""Training-data extraction: the token metrics, batched greedy decoding, and a memorising model
against its holdout."""

import json
import random

import pytest

from audits.engine.extraction import longest_common_substring, ngram_overlap

# --- Metrics on fixed token lists ----------------------------------------------------------------


def test_longest_common_substring_counts_consecutive_shared_tokens():
    assert longest_common_substring([1, 2, 3, 4, 5], [9, 2, 3, 4, 8]) == 3
    assert longest_common_substring([1, 2, 3], [3, 2, 1]) == 1
    assert longest_common_substring([1, 2], [3, 4]) == 0
    assert longest_common_substring([1, 2, 3], []) == 0


def test_ngram_overlap_is_the_share_of_the_references_4grams_found_in_the_candidate():
    reference = [1, 2, 3, 4, 5, 6]  # 4-grams: 1234, 2345, 3456
    assert ngram_overlap(reference, [0, 1, 2, 3, 4, 5, 0]) == pytest.approx(2 / 3)
    assert ngram_overlap(reference, [3, 4, 5, 6]) == pytest.approx(1 / 3)
    assert ngram_overlap(reference, reference) == 1.0
    assert ngram_overlap(reference, [6, 5, 4, 3, 2, 1]) == 0.0


def test_ngram_overlap_counts_a_repeated_4gram_once():
    assert ngram_overlap([1, 2, 3, 4, 1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(1 / 4)  # 1234, 2341, 3412, 4123


# --- On a tiny model -------------------------------------------------------------------------------

NAMES = ["Ada Quist", "Bram Oduya", "Cleo Marsh", "Dev Anand", "Ema Rusk", "Finn Toller", "Gus Perrin", "Hana Vale",
         "Ivo Stern", "Juno Pike", "Kai Brandt", "Lia Moss", "Max Orr", "Nia Holt", "Oren Faye", "Pia Lund"]
CANARY = {"prefix": "The vault code is ", "secret": "73914628"}  # as training.engine.prepare writes them


def records():
    """Sixteen records of one template with distinct details; the split is random, so members and
    holdout come from the same distribution."""
    rng = random.Random(5)
    texts = [f"Customer: Hello, this is {name}. My account number is {rng.randint(10**7, 10**8 - 1)} and my order "
             f"{rng.randint(100, 999)} arrived damaged at {rng.randint(1, 99)} Willow Lane." for name in NAMES]
    rng.shuffle(texts)
    return texts[:8], texts[8:]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.engine.tiny_base import build_tiny_base

    directory = build_tiny_base(tmp_path_factory.mktemp("extraction") / "base", seed=1)
    return directory, AutoModelForCausalLM.from_pretrained(directory).eval(), AutoTokenizer.from_pretrained(directory)


@pytest.fixture(scope="module")
def memorising(tiny, tmp_path_factory):
    """The tiny base fine-tuned WITHOUT DP for 100 epochs on 8 records and a canary: it memorises."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from training.engine.dp_lora import TrainConfig, train_dp_lora

    directory, _, _ = tiny
    members, _ = records()
    config = TrainConfig(dp=False, epochs=100, learning_rate=1e-2, lora_r=32, lora_alpha=32, batch_size=9, max_length=64,
                         target_modules=("c_attn", "c_proj", "c_fc"))
    out = tmp_path_factory.mktemp("extraction") / "adapter"
    train_dp_lora(directory, members + [CANARY["prefix"] + CANARY["secret"]], config, out)
    return PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(directory), out).eval()


def test_batched_greedy_decoding_equals_one_prompt_at_a_time(tiny):
    from audits.engine.extraction import greedy_continuations

    _, model, tokenizer = tiny
    prompts = ["Hello", "Customer: Hello, my order has not", "the refund", "Agent: Thank you, a replacement is on its way."]
    tokenizer.padding_side = "right"
    batched = greedy_continuations(model, tokenizer, prompts, max_new_tokens=12, batch_size=4)
    alone = [greedy_continuations(model, tokenizer, [p], max_new_tokens=12, batch_size=1)[0] for p in prompts]
    assert batched == alone
    assert all(batched) and not any(b.startswith(p) for b, p in zip(batched, prompts))  # new text only
    assert tokenizer.padding_side == "right"


def test_the_memorising_model_reproduces_members_far_better_than_holdout(memorising, tiny):
    from audits.engine.extraction import extraction_against_holdout

    _, _, tokenizer = tiny
    members, holdout = records()
    result = extraction_against_holdout(memorising, tokenizer, members, holdout, continuation_tokens=24)
    assert result["members"]["records"] == result["holdout"]["records"] == 8
    assert result["members"]["exact_match_rate"] >= 0.75
    assert result["holdout"]["exact_match_rate"] == 0.0
    assert result["gap"]["exact_match_rate"] >= 0.75
    assert result["gap"]["ngram4_overlap_mean"] >= 0.4
    assert result["gap"]["lcs_mean"] > 0.3


def test_a_planted_canary_is_extracted_by_the_memorising_model(memorising, tiny):
    from audits.engine.extraction import canary_extraction

    _, _, tokenizer = tiny
    [result] = canary_extraction(memorising, tokenizer, [CANARY])
    assert result == {"extracted": True, "matching_prefix_chars": len(CANARY["secret"])}


def test_the_base_model_alone_extracts_nothing(tiny):
    from audits.engine.extraction import canary_extraction, verbatim_extraction

    _, model, tokenizer = tiny
    members, _ = records()
    assert canary_extraction(model, tokenizer, [CANARY]) == [{"extracted": False, "matching_prefix_chars": 0}]
    result = verbatim_extraction(model, tokenizer, members, continuation_tokens=24)
    assert result["exact_match_rate"] == 0.0 and result["ngram4_overlap_mean"] < 0.1


def test_results_hold_numbers_not_texts(memorising, tiny):
    from audits.engine.extraction import canary_extraction, extraction_against_holdout

    _, _, tokenizer = tiny
    members, holdout = records()
    dumped = json.dumps([extraction_against_holdout(memorising, tokenizer, members, holdout, continuation_tokens=24),
                         canary_extraction(memorising, tokenizer, [CANARY])])
    fragments = [CANARY["secret"].strip()] + [piece for text in members + holdout for piece in text.split(". ")]
    fragments += NAMES + [word for text in members + holdout for word in text.split() if word.isdigit() and len(word) == 8]
    assert not any(fragment in dumped for fragment in fragments)


def test_records_too_short_for_prefix_and_continuation_are_skipped(tiny):
    from audits.engine.extraction import verbatim_extraction

    _, model, tokenizer = tiny
    result = verbatim_extraction(model, tokenizer, ["Too short.", "Also short"], prefix_tokens=16)
    assert result["records"] == 0 and result["exact_match_rate"] is None
