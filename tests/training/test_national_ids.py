"""National IDs of nine more countries: the check digit, and a cue word or the scheme's own shape."""

import pytest

from training.engine.pii import national_ids as ids

# Published example numbers (valid check digits) and the same with the last digit changed.
VALID = [
    (ids.bsn_valid, "111222333"), (ids.bsn_valid, "123456782"), (ids.sin_valid, "046 454 286"),
    (ids.steuer_id_valid, "86095742719"), (ids.pesel_valid, "44051401359"), (ids.cpf_valid, "111.444.777-35"),
    (ids.aadhaar_valid, "499118665246"), (ids.tfn_valid, "123 456 782"), (ids.my_number_valid, "123456789018"),
    (ids.codice_fiscale_valid, "RSSMRA85T10A562S"),
]


@pytest.mark.parametrize("valid,number", VALID)
def test_a_published_example_passes_and_a_changed_check_digit_fails(valid, number):
    assert valid(number)
    last = number[-1]
    changed = number[:-1] + (chr((ord(last) - 65 + 1) % 26 + 65) if last.isalpha() else str((int(last) + 1) % 10))
    assert not valid(changed)


def test_all_equal_cpf_digits_are_not_a_cpf():
    assert not ids.cpf_valid("111.111.111-11")


def found(text):
    recognizer = ids.ChecksummedNationalIdRecognizer()
    return {text[r.start:r.end] for r in recognizer.analyze(text, ["NATIONAL_ID"])}


@pytest.mark.parametrize("text,value", [
    ("Mijn BSN is 111222333, graag verwerken.", "111222333"),
    ("PESEL: 44051401359", "44051401359"),
    ("Aadhaar no. 4991 1866 5246 on file", "4991 1866 5246"),
    ("her tax file number 123 456 782 was updated", "123 456 782"),
    ("Steuer-ID 86095742719 liegt vor", "86095742719"),
    ("CPF 111.444.777-35", "111.444.777-35"),
    ("cliente RSSMRA85T10A562S, Roma", "RSSMRA85T10A562S"),  # a codice fiscale needs no cue
    ("paid by 111.444.777-35 yesterday", "111.444.777-35"),  # nor a CPF in its own shape
])
def test_a_valid_number_with_a_cue_or_its_own_shape_is_found(text, value):
    assert value in found(text)


@pytest.mark.parametrize("text", [
    "Order 111222333 shipped to the depot.",  # passes the 11-proef, but nothing says BSN
    "Job 44051401359 finished in 3 s.",
    "BSN 111222334 (typo)",  # a cue, but the check digit is wrong
])
def test_a_number_without_a_cue_or_with_a_wrong_check_digit_is_not_an_id(text):
    assert found(text) == set()
