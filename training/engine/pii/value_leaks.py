"""Does a personal value survive in a text, in any spelling? A span check asks whether the
redactor covered the characters the annotator marked; this asks the question a privacy officer
asks of the output: can the value still be read anywhere in it — in another case, inside a URL
or an e-mail's local part (john.smith@…), letter-spaced (J o h n), reordered (SMITH, John), or
with its digits regrouped (+44 20 7946 0018 as 02079460018)?

Used by bench/redaction.py to score leaks and by the redaction run to sweep a record for the
other spellings of a value it found. No Django here.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from training.engine.pii.value_index import _digit_dominant  # the index's own rule: phones, cards, IBANs, IDs

# Name parts shorter than this, or these words, are too common to call a leak on their own.
MIN_NAME_PART = 3
_NAME_STOPWORDS = frozenset({"the", "and", "van", "von", "der", "den", "del", "della", "de", "da", "di", "du", "la", "le",
                             "bin", "ibn", "al", "el", "mr", "mrs", "ms", "mx", "dr", "prof", "miss", "sir", "jr", "sr",
                             "ii", "iii", "dos", "das", "ter", "ten", "mc", "st"})
# A digit-dominant value (phone, card, IBAN, ID, account) of at least this many letters and
# digits is searched with every separator removed from both sides.
MIN_COMPACT = 6
_SPACED_LETTERS = re.compile(r"\b(?:[^\W\d_] ){2,}[^\W\d_]\b")


def fold(text: str) -> str:
    """Lower case without accents: "Müller" and "MULLER" are one spelling."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


def _compact(text: str) -> str:
    return "".join(c for c in fold(text) if c.isalnum())


def name_parts(value: str) -> list[str]:
    """The words of a name that identify on their own: "Dr. Anna-Maria de la Cruz" gives anna,
    maria, cruz."""
    return [w for w in re.findall(r"[^\W\d_]+", fold(value)) if len(w) >= MIN_NAME_PART and w not in _NAME_STOPWORDS]


@dataclass(frozen=True)
class OutputView:
    """A text prepared once for many value checks."""

    text: str
    folded: str  # lower case, no accents
    words: frozenset[str]  # its words, and the words of letter-spaced runs joined ("j o h n" -> john)
    tokens: tuple[str, ...]  # each whitespace-separated token, letters and digits only (john.smith@x.org -> johnsmithxorg)
    compact: str  # the whole text, letters and digits only

    @classmethod
    def of(cls, text: str) -> "OutputView":
        folded = fold(text)
        words = set(re.findall(r"[^\W\d_]+", folded))
        words |= {m.group().replace(" ", "") for m in _SPACED_LETTERS.finditer(folded)}
        tokens = tuple({t for t in (_compact(w) for w in folded.split()) if len(t) >= 4})
        return cls(text, folded, frozenset(words), tokens, _compact(text))


def value_survives(value: str, entity_type: str, output: OutputView | str) -> str:
    """How the value can still be read in the output ("" when it cannot): "verbatim",
    "case" (another case or accents), "name part" (a word of a name, anywhere: a word of its
    own, inside an e-mail, URL or handle, or letter-spaced), "digits" (the same characters
    with other separators)."""
    view = output if isinstance(output, OutputView) else OutputView.of(output)
    if value and value in view.text:
        return "verbatim"
    folded_value = fold(value).strip()
    if not folded_value:
        return ""
    if entity_type == "PERSON":
        parts = name_parts(value)
        if any(p in view.words for p in parts):
            return "name part"
        # Glued into a handle, an address or a URL: johnsmith, j.smith, smith_j.
        if any(len(p) >= 4 and p in token for p in parts for token in view.tokens):
            return "name part"
        return ""
    if folded_value in view.folded:
        return "case"
    if _digit_dominant(value):
        compact = _compact(value)
        if len(compact) >= MIN_COMPACT and compact in view.compact:
            return "digits"
    return ""
