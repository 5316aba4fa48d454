"""A keyed index of personal values: HMAC-SHA256 digests of what redaction removed (and of the
surrogates it put in place), never the values. Built by the training pipeline while it redacts,
read by the leakage audit (`audits.engine.leakage`). No Django here."""

from __future__ import annotations

import hashlib
import hmac
import re

_EDGE_PUNCTUATION = re.compile(r"^[\W_]+|[\W_]+$")
_DIGIT_RUN = re.compile(r"[0-9][0-9 ().+-]{4,}[0-9]")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
MIN_CHARS = 6



def _digit_dominant(value: str) -> bool:
    """Phones, cards, IBANs, account numbers: at least 6 digits, and digits at least 60% of the
    letters and digits. Their spacing and punctuation vary from one writing to the next."""
    alnum = [c for c in value if c.isalnum()]
    digits = sum(c.isdigit() for c in alnum)
    return digits >= 6 and digits * 10 >= 6 * len(alnum)


def normalise_value(value: str) -> str:
    """One spelling per value: case-folded, whitespace collapsed, surrounding punctuation stripped;
    a digit-dominant value keeps only its letters and digits, so "(555) 123-4567", "555 123 4567"
    and "5551234567" are one value."""
    value = _EDGE_PUNCTUATION.sub("", " ".join(value.casefold().split()))
    if _digit_dominant(value):
        return "".join(c for c in value if c.isalnum())
    return value


def candidate_values(text: str, max_words: int = 6) -> set[str]:
    """Every normalised span of the text that could be an indexed value: word n-grams of 1 to
    `max_words` words, digit runs with their separators (a phone split over words or glued to
    punctuation), and email-like tokens (an address glued to a label: "email:jane@x.org")."""
    words = text.split()
    found = {normalise_value(" ".join(words[i:i + n])) for n in range(1, max_words + 1) for i in range(len(words) - n + 1)}
    found |= {re.sub(r"\D", "", m.group()) for m in _DIGIT_RUN.finditer(text)}
    found |= {normalise_value(m.group()) for m in _EMAIL.finditer(text)}
    found.discard("")
    return found


class ValueIndex:
    """A keyed set of normalised identifier values: HMAC-SHA256 digests, never the values.

    Without the key, the digests cannot be tested against guesses (a plain hash of a phone number
    falls to enumerating the phone numbers); with it, the audit can tell whether a generated span is
    one of the values."""

    def __init__(self, key: bytes):
        self._key = key
        self._digests: set[str] = set()

    def _digest(self, normalised: str) -> str:
        return hmac.new(self._key, normalised.encode("utf-8"), hashlib.sha256).hexdigest()

    @staticmethod
    def specific_enough(normalised: str) -> bool:
        """Whether a value identifies someone on its own. A lone word ("john", "smith") turns up in
        any text and would count as a leak every time; a full name, a number or an email does not."""
        if len(normalised) < MIN_CHARS:
            return False
        single_word = " " not in normalised
        return not single_word or _digit_dominant(normalised) or "@" in normalised

    def add(self, value: str) -> bool:
        """Index `value`; False (and nothing indexed) when it is too unspecific to count."""
        normalised = normalise_value(value)
        if not self.specific_enough(normalised):
            return False
        self._digests.add(self._digest(normalised))
        return True

    def __contains__(self, value: str) -> bool:
        return self._digest(normalise_value(value)) in self._digests

    def __len__(self) -> int:
        return len(self._digests)

    def found(self, text: str) -> set[str]:
        """The digests of the indexed values that occur in `text`."""
        return {d for d in (self._digest(c) for c in candidate_values(text)) if d in self._digests}

    def matches(self, text: str) -> int:
        """How many distinct indexed values occur in `text`."""
        return len(self.found(text))

    def to_dict(self) -> dict:
        return {"algorithm": "HMAC-SHA256", "digests": sorted(self._digests)}

    @classmethod
    def from_dict(cls, data: dict, key: bytes) -> "ValueIndex":
        index = cls(key)
        index._digests = set(data["digests"])
        return index


