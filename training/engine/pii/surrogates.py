"""Stable pseudonyms: the same value under the same key always becomes the same realistic fake.

A surrogate is drawn from a random generator seeded with HMAC-SHA256(key, type, normalised
value), so it is stable within a dataset and across runs, differs under another key, and cannot
be traced back without the key (unlike Presidio's `hash` operator, which salts per entity and so
gives one name many pseudonyms). Each type keeps its shape: an email stays an email, a card keeps
its length and issuer digit and passes Luhn, an IBAN keeps its country and passes mod-97.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import random
import re

from training.engine.pii.recognizers import luhn_valid

_FIRST = ["Alex", "Sam", "Jordan", "Taylor", "Morgan", "Casey", "Robin", "Jamie", "Avery", "Riley", "Quinn", "Rowan",
          "Elena", "Marco", "Ingrid", "Tomas", "Priya", "Kenji", "Amara", "Lucas", "Noor", "Mateo", "Freya", "Hugo",
          "Leila", "Oskar", "Nadia", "Felix", "Zara", "Emil", "Ines", "Jonas", "Maya", "Aaron", "Clara", "Idris"]
_LAST = ["Lindqvist", "Moreau", "Okafor", "Brennan", "Castillo", "Novak", "Hartmann", "Ricci", "Sato", "Dubois",
         "Fischer", "Kowalski", "Haddad", "Vermeer", "Oliveira", "Nakamura", "Svensson", "Ahmed", "Petrov", "Keller",
         "Romano", "Byrne", "Laine", "Costa", "Eriksen", "Varga", "Janssen", "Mendes", "Quinlan", "Weiss"]
_STREETS = ["Maple", "Linden", "Harbour", "Chestnut", "Willow", "Orchard", "Station", "Mill", "Church", "Meadow",
            "Cedar", "Bridge", "Victoria", "Garden", "Hillcrest", "Juniper", "Kingfisher", "Lakeside"]
_DOMAINS = ["mailbox.example", "post.example", "inbox.example", "webmail.example", "example.net", "example.org"]
_ORGS = ["Halcyon Partners", "Bluefjord Logistics", "Meridian Analytics", "Copperleaf Holdings", "Northgate Systems",
         "Silverline Foods", "Ardent Health Group", "Kestrel Manufacturing", "Lumen Retail", "Tidewater Energy"]


class SurrogateGenerator:
    def __init__(self, key: bytes):
        if len(key) < 16:
            raise ValueError("A pseudonymisation key needs at least 128 bits.")
        self._key = key
        self._cache: dict[tuple[str, str], str] = {}

    def surrogate(self, entity_type: str, value: str) -> str:
        """A fake of the same type and shape as `value`; never equal to it."""
        cache_key = (entity_type, value)
        if cache_key not in self._cache:
            self._cache[cache_key] = self._make(entity_type, value)
        return self._cache[cache_key]

    def _make(self, entity_type: str, value: str) -> str:
        make = _MAKERS.get(entity_type, _identifier)
        for attempt in range(20):
            rng = random.Random(self._seed(entity_type, value, attempt))
            if entity_type == "PERSON":
                fake = _person(value, rng, token_rng=lambda word, a=attempt: random.Random(self._seed("PERSON_TOKEN", word, a)))
            else:
                fake = make(value, rng)
            if _normalise(entity_type, fake) != _normalise(entity_type, value):
                return fake
        return _same_shape(value, random.Random(self._seed(entity_type, value, 99)), force_change=True)

    def _seed(self, entity_type: str, value: str, attempt: int) -> int:
        message = f"{entity_type}\x1f{_normalise(entity_type, value)}\x1f{attempt}".encode()
        return int.from_bytes(hmac.new(self._key, message, hashlib.sha256).digest()[:16], "big")


def _normalise(entity_type: str, value: str) -> str:
    """What makes two spellings the same value: case for names and emails, digits for numbers."""
    if entity_type in ("PHONE_NUMBER", "CREDIT_CARD", "NATIONAL_ID", "ACCOUNT_NUMBER", "MEDICAL_RECORD_NUMBER"):
        return re.sub(r"[^0-9A-Za-z]", "", value).upper()
    if entity_type in ("IBAN_CODE",):
        return re.sub(r"\s", "", value).upper()
    return " ".join(value.split()).casefold()


def _match_case(template: str, value: str) -> str:
    if template.isupper() and any(c.isalpha() for c in template):
        return value.upper()
    if template.islower():
        return value.lower()
    return value


_TITLES = {"mr", "mr.", "mrs", "mrs.", "ms", "ms.", "dr", "dr.", "prof", "prof.", "miss"}
_NAME_POOL = _FIRST + _LAST


def _person(value: str, rng: random.Random, token_rng=None) -> str:
    """Each word of a name maps on its own, so "Maria" alone and "Maria Garcia" share a first
    word; titles and initials keep their form, and the case of each word is kept."""
    out = []
    for word in value.split():
        if word.lower() in _TITLES:
            out.append(word)
        elif len(word.rstrip(".")) == 1:
            out.append((token_rng(word) if token_rng else rng).choice("ABCDEFGHJKLMNPRSTW") + word[1:])
        else:
            out.append(_match_case(word, (token_rng(word) if token_rng else rng).choice(_NAME_POOL)))
    return " ".join(out)


def _email(value: str, rng: random.Random) -> str:
    local = f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}{rng.randint(1, 99)}".lower()
    return _match_case(value, f"{local}@{rng.choice(_DOMAINS)}")


def _digits_like(value: str, rng: random.Random, keep_prefix: int = 0) -> str:
    out, seen = [], 0
    for ch in value:
        if ch.isdigit():
            out.append(ch if seen < keep_prefix else str(rng.randint(0, 9)))
            seen += 1
        else:
            out.append(ch)
    return "".join(out)


def _phone(value: str, rng: random.Random) -> str:
    # Keep the country code (+44, 0044) so the fake dials the same country, and the layout.
    stripped = value.lstrip()
    keep = 0
    if stripped.startswith("+"):
        keep = 2 if stripped[1:3].isdigit() else 1
    elif stripped.startswith("00"):
        keep = 4
    else:
        keep = 1  # a trunk prefix such as 0 in 06 12 34 56 78
    return _digits_like(value, rng, keep_prefix=keep)


def _card(value: str, rng: random.Random) -> str:
    digits = re.sub(r"\D", "", value)
    keep = 4 if digits.startswith(("2", "5", "6", "3")) else 1  # keeps the issuer (and the 2-series)
    body = digits[:keep] + "".join(str(rng.randint(0, 9)) for _ in range(len(digits) - keep - 1))
    check = next(str(d) for d in range(10) if luhn_valid(body + str(d)))
    fake_digits = iter(body + check)
    return "".join(next(fake_digits) if ch.isdigit() else ch for ch in value)


def _iban(value: str, rng: random.Random) -> str:
    compact = re.sub(r"\s", "", value).upper()
    country, bban = compact[:2], compact[4:]
    fake_bban = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") if c.isalpha() else str(rng.randint(0, 9)) for c in bban)
    numeric = "".join(str(int(c, 36)) for c in fake_bban + country + "00")
    check = f"{98 - int(numeric) % 97:02d}"
    fake = country + check + fake_bban
    if " " in value.strip():
        fake = " ".join(fake[i:i + 4] for i in range(0, len(fake), 4))
    return fake


def _ip(value: str, rng: random.Random) -> str:
    if ":" in value:
        return "2001:db8:" + ":".join(f"{rng.randint(0, 0xFFFF):x}" for _ in range(6))
    return f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _address(value: str, rng: random.Random) -> str:
    def swap_word(match):
        word = match.group()
        compound = re.match(r"(?i)(.+?)(straße|strasse|str\.|weg|platz|allee|gasse|gracht|straat|laan|vej|gatan)$", word)
        if compound:  # Hauptstraße -> Lindenstraße: keep the street-type suffix
            return rng.choice(_STREETS) + compound.group(2).lower()
        return _match_case(word, rng.choice(_STREETS)) if word[0].isupper() or word.islower() else word

    faked = _digits_like(value, rng)
    # Replace the street's proper name(s), keep the suffix and unit words (Street, Apt, rue).
    keep = re.compile(r"(?i)^(?:street|st|avenue|ave|road|rd|lane|ln|drive|dr|court|ct|way|place|pl|suite|apt|apartment|unit|flat|"
                      r"rue|via|calle|de|la|le|del|di|du|des|van|von|der|the|box|po|p\.o\.)\.?$")
    return re.sub(r"[A-Za-zÀ-ÖØ-öø-ÿ'’-]{2,}", lambda m: m.group() if keep.match(m.group()) else swap_word(m), faked)


def _date(value: str, rng: random.Random) -> str:
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d %B %Y", "%B %d, %Y", "%d %b %Y", "%b %d, %Y"):
        try:
            parsed = dt.datetime.strptime(value.strip(), fmt)
        except ValueError:
            continue
        shifted = parsed + dt.timedelta(days=rng.choice([-1, 1]) * rng.randint(30, 3000))
        return shifted.strftime(fmt)
    return _digits_like(value, rng)


def _profile_url(value: str, rng: random.Random) -> str:
    handle = f"{rng.choice(_FIRST)}{rng.choice(_LAST)}{rng.randint(1, 999)}".lower()
    return re.sub(r"([/@])[\w.%-]+(/?)$", lambda m: f"{m.group(1)}{handle}{m.group(2)}", value)


def _organisation(value: str, rng: random.Random) -> str:
    return _match_case(value, rng.choice(_ORGS))


def _same_shape(value: str, rng: random.Random, force_change: bool = False) -> str:
    out = []
    for ch in value:
        if ch.isdigit():
            out.append(str(rng.randint(0, 9)))
        elif ch.isalpha() and ch.isascii():
            letter = rng.choice("abcdefghijklmnopqrstuvwxyz")
            out.append(letter.upper() if ch.isupper() else letter)
        else:
            out.append(ch)
    fake = "".join(out)
    if force_change and fake == value:
        fake = "X" * len(value) if value != "X" * len(value) else "Y" * len(value)
    return fake


def _identifier(value: str, rng: random.Random) -> str:
    """A data class's own identifiers (CUST-004211): keep the letters that say what it is,
    change the digits; change letters too when there are hardly any digits."""
    if sum(ch.isdigit() for ch in value) >= 2:
        return _digits_like(value, rng)
    return _same_shape(value, rng)


_MAKERS = {
    "PERSON": _person,
    "EMAIL_ADDRESS": _email,
    "PHONE_NUMBER": _phone,
    "CREDIT_CARD": _card,
    "IBAN_CODE": _iban,
    "IP_ADDRESS": _ip,
    "STREET_ADDRESS": _address,
    "DATE_OF_BIRTH": _date,
    "PROFILE_URL": _profile_url,
    "ORGANIZATION": _organisation,
    "NATIONAL_ID": lambda v, rng: _digits_like(v, rng),
    "ACCOUNT_NUMBER": _same_shape,
    "MEDICAL_RECORD_NUMBER": _same_shape,
}
