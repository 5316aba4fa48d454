"""A value leaks when it can be read in the output in any spelling, not only verbatim (issue 16)."""

import pytest

from training.engine.pii.value_leaks import OutputView, name_parts, value_survives

LEAKS = [
    ("John Smith", "PERSON", "Ticket raised by John Smith.", "verbatim"),
    ("John Smith", "PERSON", "SMITH, John called again", "name part"),
    ("John Smith", "PERSON", "reply to john.smith@example.com", "name part"),
    ("John Smith", "PERSON", "signed J o h n", "name part"),
    ("John Smith", "PERSON", "handle @jsmith92 posted", "name part"),
    ("Jürgen Müller", "PERSON", "JURGEN MULLER", "name part"),
    ("+44 20 7946 0018", "PHONE_NUMBER", "call +44-20-7946-0018", "digits"),
    ("DE89 3704 0044 0532 0130 00", "IBAN_CODE", "iban de89370400440532013000", "digits"),
    ("jane@example.com", "EMAIL_ADDRESS", "JANE@EXAMPLE.COM", "case"),
]


@pytest.mark.parametrize("value,entity,output,how", LEAKS)
def test_a_value_is_read_in_another_spelling(value, entity, output, how):
    assert value_survives(value, entity, output) == how


SAFE = [
    ("John Smith", "PERSON", "Ticket raised by [PERSON]."),
    ("Ann Lee", "PERSON", "Hanna Leeds wrote"),  # other people's names that contain the letters
    ("+44 20 7946 0018", "PHONE_NUMBER", "call [PHONE_NUMBER]"),
    ("4471-2291", "ACCOUNT_NUMBER", "account [ACCOUNT_NUMBER], 4471 units"),
]


@pytest.mark.parametrize("value,entity,output", SAFE)
def test_a_removed_value_is_not_reported(value, entity, output):
    assert value_survives(value, entity, OutputView.of(output)) == ""


def test_name_parts_skip_particles_and_titles():
    assert name_parts("Dr. Anna-Maria de la Cruz") == ["anna", "maria", "cruz"]
