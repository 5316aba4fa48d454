"""HMAC-keyed surrogates: stable per key, different across keys, never the original, same shape."""

import ipaddress
import re

import pytest

from training.engine.pii.recognizers import card_issuer_plausible, luhn_valid
from training.engine.pii.surrogates import SurrogateGenerator

KEY, OTHER_KEY = b"k" * 32, b"q" * 32
VALUES = [
    ("PERSON", "Maria Garcia"), ("PERSON", "o'brien"), ("EMAIL_ADDRESS", "maria.garcia@example.com"),
    ("PHONE_NUMBER", "+44 20 7946 0958"), ("PHONE_NUMBER", "(415) 555-0134"), ("CREDIT_CARD", "2223 0031 2200 3222"),
    ("CREDIT_CARD", "4000056655665556122"), ("IBAN_CODE", "DE89370400440532013000"), ("IP_ADDRESS", "203.0.113.7"),
    ("IP_ADDRESS", "2001:db8::ff00:42:8329"), ("STREET_ADDRESS", "221B Baker Street"), ("DATE_OF_BIRTH", "12 March 1984"),
    ("PROFILE_URL", "https://github.com/mgarcia"), ("NATIONAL_ID", "123-45-6789"), ("ACCOUNT_NUMBER", "4471-2291-03"),
    ("MEDICAL_RECORD_NUMBER", "00482913"), ("ORGANIZATION", "Acme Corp"), ("CUSTOMER_ID", "CUST-004211"),
]


@pytest.mark.parametrize("entity,value", VALUES)
def test_same_key_same_surrogate_in_one_run_and_across_runs(entity, value):
    first_run = SurrogateGenerator(KEY)
    assert first_run.surrogate(entity, value) == first_run.surrogate(entity, value)
    assert SurrogateGenerator(KEY).surrogate(entity, value) == first_run.surrogate(entity, value)


@pytest.mark.parametrize("entity,value", VALUES)
def test_other_key_gives_another_surrogate(entity, value):
    assert SurrogateGenerator(KEY).surrogate(entity, value) != SurrogateGenerator(OTHER_KEY).surrogate(entity, value)


@pytest.mark.parametrize("entity,value", VALUES)
def test_surrogate_never_equals_the_original(entity, value):
    for key in (KEY, OTHER_KEY, b"z" * 16, b"0123456789abcdef"):
        assert SurrogateGenerator(key).surrogate(entity, value) != value


def test_never_equal_even_for_tiny_value_spaces():
    generator = SurrogateGenerator(KEY)
    for digit in "0123456789":
        assert generator.surrogate("ACCOUNT_NUMBER", digit) != digit


def test_spelling_variants_of_one_value_share_a_surrogate():
    generator = SurrogateGenerator(KEY)
    assert generator.surrogate("EMAIL_ADDRESS", "Maria@Example.com").lower() == generator.surrogate("EMAIL_ADDRESS", "maria@example.com")
    assert generator.surrogate("PERSON", "MARIA") == generator.surrogate("PERSON", "maria").upper()
    # A first name alone maps like the same first name inside a full name.
    assert generator.surrogate("PERSON", "Maria Garcia").split()[0] == generator.surrogate("PERSON", "Maria")


def test_email_stays_an_email():
    fake = SurrogateGenerator(KEY).surrogate("EMAIL_ADDRESS", "maria.garcia@example.com")
    assert re.fullmatch(r"[a-z0-9.]+@[a-z0-9.]+\.[a-z]+", fake)


@pytest.mark.parametrize("card", ["2223 0031 2200 3222", "4111-1111-1111-1111", "378282246310005", "4000056655665556122"])
def test_card_keeps_length_layout_issuer_and_passes_luhn(card):
    fake = SurrogateGenerator(KEY).surrogate("CREDIT_CARD", card)
    digits = re.sub(r"\D", "", fake)
    assert len(fake) == len(card) and re.sub(r"\d", "9", fake) == re.sub(r"\d", "9", card)
    assert luhn_valid(digits) and card_issuer_plausible(digits)
    assert digits[0] == card[0]


def test_iban_keeps_country_and_passes_mod97():
    fake = SurrogateGenerator(KEY).surrogate("IBAN_CODE", "DE89370400440532013000")
    assert fake.startswith("DE") and len(fake) == 22
    assert int("".join(str(int(c, 36)) for c in fake[4:] + fake[:4])) % 97 == 1


def test_phone_keeps_country_code_and_layout():
    fake = SurrogateGenerator(KEY).surrogate("PHONE_NUMBER", "+44 20 7946 0958")
    assert fake.startswith("+44 ") and re.sub(r"\d", "9", fake) == "+99 99 9999 9999"


def test_ip_stays_an_address_of_the_same_version():
    generator = SurrogateGenerator(KEY)
    assert ipaddress.ip_address(generator.surrogate("IP_ADDRESS", "203.0.113.7")).version == 4
    assert ipaddress.ip_address(generator.surrogate("IP_ADDRESS", "2001:db8::1")).version == 6


def test_short_keys_are_refused():
    with pytest.raises(ValueError, match="128 bits"):
        SurrogateGenerator(b"short")
