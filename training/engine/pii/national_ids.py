"""National identification numbers of more countries, each validated by its check digit.

A bare run of nine or eleven digits is an order, a record or a phone number far more often than
an ID, and a random one passes a mod-11 check about one time in eleven. So a number counts when
its check digit is right *and* a cue word for that scheme stands close before it ("BSN", "PESEL",
"Steuer-ID", "tax file number"...), or when it is written in the scheme's own distinctive shape
(a CPF as 123.456.789-09, a codice fiscale's letters and digits). Labelled fields in exports are
typed by training.engine.pii.fields; this covers the same numbers in prose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, List

from presidio_analyzer import AnalysisExplanation, EntityRecognizer, RecognizerResult

from training.engine.pii.recognizers import luhn_valid


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def bsn_valid(value: str) -> bool:
    """Dutch burgerservicenummer: the "11-proef"."""
    d = _digits(value)
    if len(d) != 9:
        return False
    total = sum(int(c) * w for c, w in zip(d[:8], range(9, 1, -1))) - int(d[8])
    return total % 11 == 0 and total != 0


def sin_valid(value: str) -> bool:
    """Canadian social insurance number: nine digits, Luhn (8 begins business numbers, not people)."""
    d = _digits(value)
    return len(d) == 9 and d[0] != "8" and luhn_valid(d)


def steuer_id_valid(value: str) -> bool:
    """German steuerliche Identifikationsnummer: eleven digits, ISO 7064 MOD 11,10."""
    d = _digits(value)
    if len(d) != 11 or d[0] == "0":
        return False
    product = 10
    for c in d[:10]:
        total = (int(c) + product) % 10 or 10
        product = (total * 2) % 11
    return (11 - product) % 10 == int(d[10])


def pesel_valid(value: str) -> bool:
    d = _digits(value)
    if len(d) != 11:
        return False
    total = sum(int(c) * w for c, w in zip(d[:10], (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)))
    return (10 - total % 10) % 10 == int(d[10])


def cpf_valid(value: str) -> bool:
    """Brazilian CPF: eleven digits, two mod-11 check digits; all-equal digits are invalid."""
    d = [int(c) for c in _digits(value)]
    if len(d) != 11 or len(set(d)) == 1:
        return False
    for n in (9, 10):
        total = sum(x * w for x, w in zip(d[:n], range(n + 1, 1, -1)))
        if (total * 10 % 11) % 10 != d[n]:
            return False
    return True


_VERHOEFF_D = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
               [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
               [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
               [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]]
_VERHOEFF_P = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
               [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
               [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8]]


def aadhaar_valid(value: str) -> bool:
    """Indian Aadhaar: twelve digits, not starting with 0 or 1, Verhoeff check digit."""
    d = _digits(value)
    if len(d) != 12 or d[0] in "01":
        return False
    check = 0
    for i, c in enumerate(reversed(d)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[i % 8][int(c)]]
    return check == 0


def tfn_valid(value: str) -> bool:
    """Australian tax file number: nine digits, weighted sum divisible by 11."""
    d = _digits(value)
    return len(d) == 9 and sum(int(c) * w for c, w in zip(d, (1, 4, 3, 7, 5, 8, 6, 9, 10))) % 11 == 0


def my_number_valid(value: str) -> bool:
    """Japanese individual number (My Number): twelve digits, the last a mod-11 check digit."""
    d = _digits(value)
    if len(d) != 12:
        return False
    body = [int(c) for c in reversed(d[:11])]
    total = sum(p * (n + 1 if n <= 6 else n - 5) for n, p in enumerate(body, start=1))
    remainder = total % 11
    return (0 if remainder <= 1 else 11 - remainder) == int(d[11])


_CF_ODD = dict(zip("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                   (1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12,
                    14, 16, 10, 22, 25, 24, 23)))


def codice_fiscale_valid(value: str) -> bool:
    """Italian codice fiscale: sixteen characters, the last a check letter over the first fifteen."""
    code = value.upper()
    if not re.fullmatch(r"[A-Z]{6}[0-9LMNPQRSTUV]{2}[A-EHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]", code):
        return False
    total = 0
    for i, c in enumerate(code[:15]):
        if i % 2 == 0:  # positions 1, 3, 5... counting from one
            total += _CF_ODD[c]
        else:
            total += int(c) if c.isdigit() else ord(c) - 65
    return chr(65 + total % 26) == code[15]


@dataclass(frozen=True)
class Scheme:
    name: str
    pattern: str  # the number's shapes
    valid: Callable[[str], bool]
    cues: str  # words that, close before the number, say which scheme it is
    distinctive: str = ""  # a shape that needs no cue


_GROUPED_9 = r"\d{3}[ -]?\d{3}[ -]?\d{3}"
SCHEMES = (
    Scheme("nl bsn", r"\d{4}\.?\d{2}\.?\d{3}|\d{9}", bsn_valid, r"bsn|burgerservicenummer|sofi(?:nummer)?"),
    Scheme("ca sin", _GROUPED_9, sin_valid, r"sin|social insurance|nas|numéro d'assurance sociale"),
    Scheme("de steuer-id", r"\d{2} ?\d{3} ?\d{3} ?\d{3}", steuer_id_valid,
           r"steuer[- ]?id|steuer-?identifikationsnummer|identifikationsnummer|idnr|tax id|tin|steuernummer"),
    Scheme("pl pesel", r"\d{11}", pesel_valid, r"pesel"),
    Scheme("br cpf", r"\d{3}\.?\d{3}\.?\d{3}-?\d{2}", cpf_valid, r"cpf|cadastro de pessoas", distinctive=r"\d{3}\.\d{3}\.\d{3}-\d{2}"),
    Scheme("in aadhaar", r"\d{4}[ -]?\d{4}[ -]?\d{4}", aadhaar_valid, r"aadhaa?r|uidai|uid"),
    Scheme("au tfn", _GROUPED_9, tfn_valid, r"tfn|tax file(?: number)?"),
    Scheme("jp my number", r"\d{4}[ -]?\d{4}[ -]?\d{4}", my_number_valid, r"my ?number|individual number|kojin bang[oō]|マイナンバー"),
    Scheme("it codice fiscale", r"(?i:[A-Z]{6}[0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z])",
           codice_fiscale_valid, r"codice fiscale|c\.f\.|cf", distinctive=r"(?i:[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z])"),
)
CUE_WINDOW = 48


class ChecksummedNationalIdRecognizer(EntityRecognizer):
    """National IDs of the Netherlands, Canada, Germany, Poland, Brazil, India, Australia, Japan
    and Italy: check digit right, and a cue word or a distinctive shape."""

    SCORE_WITH_CUE, SCORE_BY_SHAPE = 0.85, 0.6

    def __init__(self):
        self._schemes = [(s, re.compile(rf"(?<![\w.,/-])(?:{s.pattern})(?![\w-]|[.,]\d)"),
                          re.compile(rf"(?i)(?<![^\W_])(?:{s.cues})(?![^\W_])"),
                          re.compile(rf"(?:{s.distinctive})\Z") if s.distinctive else None) for s in SCHEMES]
        super().__init__(supported_entities=["NATIONAL_ID"], name="ChecksummedNationalIdRecognizer")

    def load(self) -> None:
        pass

    def analyze(self, text: str, entities: List[str], nlp_artifacts=None) -> List[RecognizerResult]:
        found: dict[tuple[int, int], float] = {}
        for scheme, number, cue, distinctive in self._schemes:
            for match in number.finditer(text):
                value = match.group()
                if not scheme.valid(value):
                    continue
                if cue.search(text[max(0, match.start() - CUE_WINDOW):match.start()]):
                    score = self.SCORE_WITH_CUE
                elif distinctive is not None and distinctive.match(value):
                    score = self.SCORE_BY_SHAPE
                else:
                    continue
                span = (match.start(), match.end())
                found[span] = max(score, found.get(span, 0.0))
        return [self._result(start, end, score) for (start, end), score in found.items()]

    def _result(self, start: int, end: int, score: float) -> RecognizerResult:
        explanation = AnalysisExplanation(recognizer=self.name, original_score=score)
        return RecognizerResult("NATIONAL_ID", start, end, score, analysis_explanation=explanation,
                                recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                                                      RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id})
