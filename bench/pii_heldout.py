"""Held-out labelled PII corpus: the set that redaction quality is reported on.

Written separately from the redaction recognizers and from the templates of bench/pii_corpus.py
(only its GoldSpan / GoldRecord / PII_TYPES / _CONTEXT_TYPES definitions are reused), so that it is
not tuned to our detector. Other kinds of documents, other phrasing:

* PII families: e-mail threads with signatures and quoted replies, CSV exports, JSON exports, chat
  logs, scanned-form OCR text, clinical and insurance notes, CVs, KYC / payroll case notes;
* no-PII families (about 10%): release notes, build logs, inventory exports, news paragraphs about
  public figures and landmarks. They carry only technical look-alikes and context spans.

Labelling conventions:

* an address written as one run ("ul. Długa 5/12, 00-238 Warszawa") is one STREET_ADDRESS span,
  postcode and city included; when a form or an export puts street, postcode and city in separate
  fields, the street line is STREET_ADDRESS, the postcode ZIP_CODE and the city LOCATION;
* honorifics ("Dr.", "Ms", "Herr") stay outside PERSON spans; "SURNAME: X  GIVEN NAMES: Y" gives two
  PERSON spans; a clinician's or a colleague's name is a PERSON like any other;
* insurance policy / member numbers and bank account numbers are ACCOUNT_NUMBER; patient and
  hospital numbers are MEDICAL_RECORD_NUMBER;
* chat handles ("@jdoe92") are left unlabelled (no type fits; they are neither gold nor hard
  negatives), so the scorer neither rewards nor punishes redacting them;
* bank routing codes (BSB, IFSC, sort codes), company registration and VAT numbers of companies,
  timestamps of log and chat lines are hard negatives, as are public figures in news-style
  sentences (PUBLIC_FIGURE) and landmarks (FAMOUS_PLACE).

Spans are recorded while the text is concatenated, never found by searching the finished text.

    python bench/pii_heldout.py   # self-check: offsets, overlaps, checksums, determinism, counts
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import random
import re
import sys
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable
from typing import NamedTuple

from faker import Faker


def _corpus_module():
    for name in ("pii_corpus", "bench.pii_corpus"):
        if name in sys.modules:
            return sys.modules[name]
    try:
        import pii_corpus as module
    except ImportError:
        from bench import pii_corpus as module
    return module


_pc = _corpus_module()
GoldSpan = _pc.GoldSpan
GoldRecord = _pc.GoldRecord
PII_TYPES = _pc.PII_TYPES
_CONTEXT_TYPES = _pc._CONTEXT_TYPES
_ALL_TYPES = PII_TYPES | _CONTEXT_TYPES

PII_FAMILIES = ("email_thread", "csv_export", "json_export", "chat_log", "ocr_form", "clinical_note", "resume", "kyc_case")
NO_PII_FAMILIES = ("release_notes", "build_log", "inventory_export", "news")


# ---------------------------------------------------------------------------------------------
# Text builder


class Lab(NamedTuple):
    text: str
    type: str
    neg: bool = False


def G(text: str, type_: str) -> Lab:  # gold span
    return Lab(text, type_, False)


def N(text: str, kind: str) -> Lab:  # hard negative
    return Lab(text, kind, True)


_SLOT = re.compile(r"\{(\w+)\}")


def _pieces(template: str, resolve: Callable[[str], object]) -> list:
    out: list = []
    pos = 0
    for m in _SLOT.finditer(template):
        out.append(template[pos:m.start()])
        out.append(resolve(m.group(1)))
        pos = m.end()
    out.append(template[pos:])
    return out


def _quote(pieces, prefix: str = "> ") -> list:
    out: list = [prefix]
    for p in _flatten(pieces):
        out.append(p.replace("\n", "\n" + prefix) if isinstance(p, str) else p)
    return out


def _flatten(pieces):
    if pieces is None:
        return
    if isinstance(pieces, (str, Lab)):
        yield pieces
        return
    for p in pieces:
        yield from _flatten(p)


class _Doc:
    def __init__(self, case: str = "as_is"):
        self.parts: list[str] = []
        self.n = 0
        self.spans: list = []
        self.negs: list = []
        self.case = case

    def _cased(self, s: str) -> str:
        if self.case == "lower":
            return s.lower()
        if self.case == "upper":
            return s.upper()
        return s

    def add(self, s: str, label: str | None = None, neg: bool = False) -> None:
        s = self._cased(s)
        if not s:
            return
        if label:
            span = GoldSpan(self.n, self.n + len(s), label, s)
            (self.negs if neg else self.spans).append(span)
        self.parts.append(s)
        self.n += len(s)

    def put(self, pieces) -> None:
        for p in _flatten(pieces):
            if isinstance(p, Lab):
                self.add(p.text, p.type, p.neg)
            else:
                self.add(p)

    def text(self) -> str:
        return "".join(self.parts)


# ---------------------------------------------------------------------------------------------
# Checksums


def _luhn_digit(payload: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_ok(number: str) -> bool:
    digits = re.sub(r"\D", "", number)
    return len(digits) > 1 and _luhn_digit(digits[:-1]) == digits[-1]


def _iban_numeric(s: str) -> int:
    return int("".join(str(int(c, 36)) for c in s))


def iban_ok(iban: str) -> bool:
    s = re.sub(r"\s", "", iban).upper()
    return len(s) > 4 and _iban_numeric(s[4:] + s[:4]) % 97 == 1


_VERHOEFF_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
_VERHOEFF_P = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]
_VERHOEFF_INV = [0, 4, 3, 2, 1, 5, 6, 7, 8, 9]


def _verhoeff_digit(payload: str) -> str:
    c = 0
    for i, ch in enumerate(reversed(payload)):
        c = _VERHOEFF_D[c][_VERHOEFF_P[(i + 1) % 8][int(ch)]]
    return str(_VERHOEFF_INV[c])


def verhoeff_ok(number: str) -> bool:
    c = 0
    for i, ch in enumerate(reversed(number)):
        c = _VERHOEFF_D[c][_VERHOEFF_P[i % 8][int(ch)]]
    return c == 0


def _steuer_digit(first10: str) -> str:
    product = 10
    for ch in first10:
        s = (int(ch) + product) % 10
        if s == 0:
            s = 10
        product = (s * 2) % 11
    check = 11 - product
    return "0" if check == 10 else str(check)


def steuer_id_ok(v: str) -> bool:
    d = re.sub(r"\D", "", v)
    if len(d) != 11 or d[0] == "0":
        return False
    counts = Counter(d[:10])
    if sorted(counts.values(), reverse=True)[0] not in (2, 3) or len(counts) not in (8, 9):
        return False
    return _steuer_digit(d[:10]) == d[10]


def nir_ok(v: str) -> bool:
    d = re.sub(r"\s", "", v)
    return len(d) == 15 and d.isdigit() and 97 - int(d[:13]) % 97 == int(d[13:])


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def dni_ok(v: str) -> bool:
    s = re.sub(r"[\s-]", "", v).upper()
    if s[0] in "XYZ":
        s = str("XYZ".index(s[0])) + s[1:]
    return len(s) == 9 and s[:8].isdigit() and _DNI_LETTERS[int(s[:8]) % 23] == s[8]


def bsn_ok(v: str) -> bool:
    d = re.sub(r"\D", "", v)
    if len(d) != 9:
        return False
    total = sum(int(d[i]) * (9 - i) for i in range(8)) - int(d[8])
    return total % 11 == 0


def ssn_ok(v: str) -> bool:
    m = re.fullmatch(r"(\d{3})-?(\d{2})-?(\d{4})", v.strip())
    if not m:
        return False
    area, group, serial = (int(x) for x in m.groups())
    return 0 < area < 900 and area != 666 and group > 0 and serial > 0


def pesel_ok(v: str) -> bool:
    w = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3]
    return len(v) == 11 and v.isdigit() and (10 - sum(int(v[i]) * w[i] for i in range(10)) % 10) % 10 == int(v[10])


def _cpf_digits(nine: str) -> str:
    d1 = sum(int(nine[i]) * (10 - i) for i in range(9)) * 10 % 11 % 10
    ten = nine + str(d1)
    d2 = sum(int(ten[i]) * (11 - i) for i in range(10)) * 10 % 11 % 10
    return f"{d1}{d2}"


def cpf_ok(v: str) -> bool:
    d = re.sub(r"\D", "", v)
    return len(d) == 11 and _cpf_digits(d[:9]) == d[9:]


def tfn_ok(v: str) -> bool:
    d = re.sub(r"\D", "", v)
    w = [1, 4, 3, 7, 5, 8, 6, 9, 10]
    return len(d) == 9 and sum(int(d[i]) * w[i] for i in range(9)) % 11 == 0


def _mynumber_digit(eleven: str) -> str:
    total = 0
    for n in range(1, 12):
        p = int(eleven[11 - n])
        q = n + 1 if n <= 6 else n - 5
        total += p * q
    rem = total % 11
    return "0" if rem <= 1 else str(11 - rem)


def mynumber_ok(v: str) -> bool:
    d = re.sub(r"\D", "", v)
    return len(d) == 12 and _mynumber_digit(d[:11]) == d[11]


_CF_ODD = dict(zip("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                   [1, 0, 5, 7, 9, 13, 15, 17, 19, 21] + [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8,
                                                          12, 14, 16, 10, 22, 25, 24, 23]))


def _cf_char(fifteen: str) -> str:
    total = 0
    for i, ch in enumerate(fifteen):
        if i % 2 == 0:
            total += _CF_ODD[ch]
        else:
            total += int(ch) if ch.isdigit() else ord(ch) - 65
    return chr(65 + total % 26)


def cf_ok(v: str) -> bool:
    s = v.upper()
    return len(s) == 16 and _cf_char(s[:15]) == s[15]


def nino_ok(v: str) -> bool:
    return re.fullmatch(r"[A-CEGHJ-PR-TW-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]", v.upper()) is not None


def _upc_ok(v: str) -> bool:
    d = [int(c) for c in v]
    if len(d) == 12:
        return (3 * sum(d[0:11:2]) + sum(d[1:11:2]) + d[11]) % 10 == 0
    if len(d) == 13:
        return (sum(d[0:12:2]) + 3 * sum(d[1:12:2]) + d[12]) % 10 == 0
    return False


VALIDATORS: dict[str, Callable[[str], bool]] = {
    "card": luhn_ok, "iban": iban_ok, "steuer_id": steuer_id_ok, "nir": nir_ok, "dni": dni_ok, "bsn": bsn_ok,
    "aadhaar": lambda v: len(re.sub(r"\D", "", v)) == 12 and verhoeff_ok(re.sub(r"\D", "", v)),
    "sin": lambda v: len(re.sub(r"\D", "", v)) == 9 and luhn_ok(v), "ssn": ssn_ok,
    "pesel": pesel_ok, "cpf": cpf_ok, "tfn": tfn_ok, "mynumber": mynumber_ok, "cf": cf_ok, "nino": nino_ok,
    "upc": _upc_ok,
}


# ---------------------------------------------------------------------------------------------
# World: random source, Faker instances, checksum log


_LOCALES = ("es_ES", "de_DE", "pl_PL", "vi_VN", "zh_CN", "ja_JP", "tr_TR", "pt_BR", "pt_PT", "fr_FR", "it_IT",
            "nl_NL", "en_IN", "yo_NG", "en_GB", "en_US", "en_AU", "fr_CA")


class _World:
    def __init__(self, r: random.Random, fakers: dict[str, Faker], checks: list):
        self.r = r
        self.f = fakers
        self.checks = checks

    def digits(self, k: int) -> str:
        return "".join(str(self.r.randrange(10)) for _ in range(k))

    def check(self, kind: str, value: str) -> str:
        self.checks.append((kind, value))
        return value


_FOLD = str.maketrans({"ß": "ss", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ø": "o", "ı": "i", "æ": "ae", "œ": "oe"})


def _ascii(s: str) -> str:
    s = unicodedata.normalize("NFKD", s.translate(_FOLD))
    return "".join(c for c in s if c.isascii() and (c.isalnum() or c in " -'"))


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", _ascii(s).lower())


# ---------------------------------------------------------------------------------------------
# Names

_KO_FAMILY = ["Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Cho", "Yoon", "Jang", "Lim", "Han", "Shin", "Seo", "Kwon", "Hwang"]
_KO_GIVEN_F = ["Seo-yeon", "Ha-eun", "Ji-woo", "Soo-ah", "Min-seo", "Ye-jin", "Da-eun", "Hye-won", "Eun-ji", "Yu-na"]
_KO_GIVEN_M = ["Min-jun", "Ji-hoon", "Do-yoon", "Hyun-woo", "Seung-min", "Jae-won", "Tae-yang", "Joon-ho", "Sung-ho", "Woo-jin"]
_AR_GIVEN_M = ["Mohammed", "Ahmed", "Khalid", "Omar", "Youssef", "Hassan", "Abdullah", "Tariq", "Samir", "Faisal", "Karim",
               "Bilal"]
_AR_GIVEN_F = ["Fatima", "Aisha", "Layla", "Nour", "Mariam", "Rania", "Huda", "Salma", "Yasmin", "Amal", "Reem", "Dalia"]
_AR_FAMILY = ["al-Harbi", "al-Rashid", "Al-Zahrani", "El-Sayed", "Haddad", "al-Qahtani", "Mansour", "El-Masri",
              "Al-Amin", "Nasser", "al-Shami", "Abu Zaid", "Khoury", "al-Tamimi"]
_NG_GIVEN = ["Chinedu", "Ngozi", "Emeka", "Chiamaka", "Ifeoma", "Obinna", "Aminu", "Zainab", "Uchenna", "Nkechi", "Musa", "Hauwa"]
_NG_FAMILY = ["Okafor", "Okonkwo", "Eze", "Nwosu", "Abubakar", "Ibrahim", "Onyekachi", "Chukwuemeka", "Bello", "Nnamdi", "Okeke"]
_DE_UMLAUT = ["Müller", "Schröder", "Köhler", "Jäger", "Bäcker", "Groß", "Löwe", "Böhm", "Krüger", "Günther", "Hoffmann-Weiß",
              "Schäfer", "Fuchs", "Vögele", "Dührkoop"]
_DE_GIVEN_F = ["Jürgen", "Jörg", "Björn", "Sören", "Uwe", "Günter"]

_CULTURES = ("es", "de", "pl", "vi", "zh", "ko", "ja", "ar", "in", "ng", "tr", "pt", "fr", "it", "nl", "en")
_HOME = {"es": "ES", "de": "DE", "pl": "PL", "ja": "JP", "in": "IN", "pt": "BR", "fr": "FR", "it": "IT", "nl": "NL",
         "en": "AU", "zh": "CA", "ko": "CA"}
_COUNTRIES = ("DE", "FR", "NL", "ES", "IT", "PL", "IN", "JP", "BR", "AU", "CA")


def _fk_first(f: Faker, female: bool) -> str:
    try:
        return f.first_name_female() if female else f.first_name_male()
    except AttributeError:
        return f.first_name()


def _fk_last(f: Faker, female: bool) -> str:
    if female and hasattr(f, "last_name_female"):
        return f.last_name_female()
    return f.last_name()


def _make_name(w: _World, culture: str, female: bool) -> tuple[str, str, str, bool]:
    """(given, surname, family-name used after an honorific, family name first?)"""
    r, f = w.r, w.f
    if culture == "es":
        given = _fk_first(f["es_ES"], female)
        if r.random() < 0.3:
            given = f"{given} {_fk_first(f['es_ES'], female)}"
        sur = f"{f['es_ES'].last_name()} {f['es_ES'].last_name()}"
        return given, sur, sur, False
    if culture == "de":
        given = _fk_first(f["de_DE"], female) if female or r.random() < 0.8 else r.choice(_DE_GIVEN_F)
        sur = r.choice(_DE_UMLAUT) if r.random() < 0.4 else f["de_DE"].last_name()
        return given, sur, sur, False
    if culture == "pl":
        sur = _fk_last(f["pl_PL"], female)
        return _fk_first(f["pl_PL"], female), sur, sur, False
    if culture == "vi":
        fam = f["vi_VN"].last_name()
        given = f"{f['vi_VN'].middle_name()} {_fk_first(f['vi_VN'], female)}"
        return given, fam, fam, True
    if culture == "zh":
        return f["zh_CN"].first_romanized_name(), f["zh_CN"].last_romanized_name(), "", r.random() < 0.5
    if culture == "ko":
        given = r.choice(_KO_GIVEN_F if female else _KO_GIVEN_M)
        return given, r.choice(_KO_FAMILY), "", r.random() < 0.6
    if culture == "ja":
        return f["ja_JP"].first_romanized_name(), f["ja_JP"].last_romanized_name(), "", r.random() < 0.4
    if culture == "ar":
        given = r.choice(_AR_GIVEN_F if female else _AR_GIVEN_M)
        fam = r.choice(_AR_FAMILY)
        if r.random() < 0.4:
            link = "bint" if female else "bin"
            return given, f"{link} {r.choice(_AR_GIVEN_M)} {fam}", fam, False
        return given, fam, fam, False
    if culture == "in":
        sur = f["en_IN"].last_name()
        return _fk_first(f["en_IN"], female), sur, sur, False
    if culture == "ng":
        if r.random() < 0.5:
            sur = f["yo_NG"].last_name()
            return _fk_first(f["yo_NG"], female), sur, sur, False
        sur = r.choice(_NG_FAMILY)
        return r.choice(_NG_GIVEN), sur, sur, False
    if culture == "tr":
        sur = f["tr_TR"].last_name()
        return _fk_first(f["tr_TR"], female), sur, sur, False
    if culture == "pt":
        loc = r.choice(["pt_BR", "pt_PT"])
        particle = r.choice(["", "", "da ", "dos ", "de "])
        sur = f"{particle}{f[loc].last_name()} {f[loc].last_name()}"
        return _fk_first(f[loc], female), sur, sur.split()[-1], False
    loc = {"fr": "fr_FR", "it": "it_IT", "nl": "nl_NL"}.get(culture) or r.choice(["en_GB", "en_US", "en_AU", "fr_CA"])
    sur = f[loc].last_name()
    return _fk_first(f[loc], female), sur, sur, False


_MONTHS = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
           "December"],
    "de": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober", "November",
           "Dezember"],
    "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre",
           "décembre"],
    "es": ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre", "noviembre",
           "diciembre"],
    "pl": ["stycznia", "lutego", "marca", "kwietnia", "maja", "czerwca", "lipca", "sierpnia", "września", "października",
           "listopada", "grudnia"],
    "pt": ["janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto", "setembro", "outubro", "novembro",
           "dezembro"],
    "it": ["gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre", "ottobre",
           "novembre", "dicembre"],
    "nl": ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober", "november",
           "december"],
}
_WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _fmt_date(r: random.Random, d: dt.date, lang: str = "en") -> str:
    m = d.month
    en = _MONTHS["en"][m - 1]
    options = [
        f"{d.day:02d}/{m:02d}/{d.year}", f"{m:02d}/{d.day:02d}/{d.year}", d.isoformat(), f"{d.day} {en} {d.year}",
        f"{en} {d.day}, {d.year}", f"{d.day:02d}.{m:02d}.{d.year}", f"{d.day:02d}.{m:02d}.{d.year % 100:02d}",
        f"{d.day}-{en[:3]}-{d.year}", f"{d.year}{m:02d}{d.day:02d}", f"{d.day:02d} {m:02d} {d.year}", f"{d.day}/{m}/{d.year}",
        f"{d.day:02d}-{m:02d}-{d.year}", f"{d.year}/{m:02d}/{d.day:02d}", f"{d.day} {en[:3]} {d.year}",
        f"{_ordinal(d.day)} of {en} {d.year}", f"{en[:3].upper()} {d.day:02d} {d.year}",
    ]
    local = {
        "de": f"{d.day}. {_MONTHS['de'][m - 1]} {d.year}", "fr": f"{d.day} {_MONTHS['fr'][m - 1]} {d.year}",
        "es": f"{d.day} de {_MONTHS['es'][m - 1]} de {d.year}", "pl": f"{d.day} {_MONTHS['pl'][m - 1]} {d.year}",
        "it": f"{d.day} {_MONTHS['it'][m - 1]} {d.year}", "nl": f"{d.day} {_MONTHS['nl'][m - 1]} {d.year}",
        "pt": f"{d.day} de {_MONTHS['pt'][m - 1]} de {d.year}",
    }
    if lang in local and r.random() < 0.5:
        return local[lang]
    return r.choice(options)


_LANG = {"DE": "de", "FR": "fr", "ES": "es", "PL": "pl", "IT": "it", "NL": "nl", "BR": "pt"}


# ---------------------------------------------------------------------------------------------
# Addresses, phones, identifiers

_CITIES = {
    "DE": [("Berlin", "10"), ("Hamburg", "20"), ("München", "80"), ("Köln", "50"), ("Leipzig", "04"), ("Freiburg im Breisgau",
                                                                                                       "79"),
           ("Düsseldorf", "40"), ("Nürnberg", "90")],
    "FR": [("Paris", "75"), ("Lyon", "69"), ("Marseille", "13"), ("Toulouse", "31"), ("Nantes", "44"), ("Lille", "59"),
           ("Strasbourg", "67")],
    "NL": [("Amsterdam", "10"), ("Rotterdam", "30"), ("Utrecht", "35"), ("Den Haag", "25"), ("Eindhoven", "56"), ("Groningen",
                                                                                                                  "97")],
    "ES": [("Madrid", "28"), ("Barcelona", "08"), ("Valencia", "46"), ("Sevilla", "41"), ("Bilbao", "48"), ("Málaga", "29")],
    "IT": [("Roma", "00", "RM"), ("Milano", "20", "MI"), ("Torino", "10", "TO"), ("Napoli", "80", "NA"), ("Bologna", "40", "BO"),
           ("Firenze", "50", "FI")],
    "PL": [("Warszawa", "0"), ("Kraków", "3"), ("Gdańsk", "8"), ("Wrocław", "5"), ("Poznań", "6"), ("Łódź", "9")],
    "IN": [("Bengaluru", "560", "Karnataka"), ("Mumbai", "400", "Maharashtra"), ("Chennai", "600", "Tamil Nadu"),
           ("Hyderabad", "500", "Telangana"), ("Pune", "411", "Maharashtra"), ("Kolkata", "700", "West Bengal")],
    "JP": [("Shibuya-ku, Tokyo", "150"), ("Setagaya-ku, Tokyo", "154"), ("Kita-ku, Osaka", "530"), ("Naka-ku, Yokohama", "231"),
           ("Sakyo-ku, Kyoto", "606"), ("Chuo-ku, Sapporo", "060")],
    "BR": [("São Paulo", "0", "SP"), ("Rio de Janeiro", "2", "RJ"), ("Belo Horizonte", "3", "MG"), ("Curitiba", "8", "PR"),
           ("Porto Alegre", "9", "RS"), ("Salvador", "4", "BA")],
    "AU": [("Newtown", "2042", "NSW"), ("Fitzroy", "3065", "VIC"), ("Fremantle", "6160", "WA"), ("West End", "4101", "QLD"),
           ("Glenelg", "5045", "SA"), ("Braddon", "2612", "ACT")],
    "CA": [("Toronto", "M", "ON"), ("Montréal", "H", "QC"), ("Vancouver", "V", "BC"), ("Calgary", "T", "AB"), ("Halifax", "B",
                                                                                                               "NS"),
           ("Ottawa", "K", "ON")],
}
_STREETS = {
    "DE": ["Hauptstraße", "Bahnhofstraße", "Schillerstraße", "Lindenallee", "Am Mühlbach", "Gartenweg", "Königsallee",
           "Schönhauser Allee", "Kastanienallee", "Friedrich-Ebert-Str."],
    "FR": ["rue de la République", "avenue Victor Hugo", "boulevard Saint-Michel", "rue des Lilas", "impasse du Moulin",
           "allée des Tilleuls", "rue Pasteur", "place de la Liberté"],
    "NL": ["Keizersgracht", "Oudegracht", "Lindenlaan", "Kerkstraat", "Prinsengracht", "Molenweg", "Dorpsstraat",
           "Stationsplein"],
    "ES": ["Calle Mayor", "Avenida de la Constitución", "Calle de Alcalá", "Paseo de Gracia", "Calle del Sol", "Plaza de España",
           "Calle Real"],
    "IT": ["Via Roma", "Via Garibaldi", "Corso Vittorio Emanuele II", "Via dei Mille", "Viale Europa", "Piazza Dante",
           "Via Mazzini"],
    "PL": ["ul. Długa", "ul. Marszałkowska", "ul. Piękna", "al. Jerozolimskie", "ul. Słowackiego", "ul. Ogrodowa", "os. Zielone"],
    "IN": ["MG Road", "Linking Road", "Anna Salai", "Banjara Hills Road No. 12", "FC Road", "Park Street", "100 Feet Road"],
    "JP": ["Jingumae", "Sangenjaya", "Umeda", "Yamashita-cho", "Shimogamo", "Kita 3-jo Nishi"],
    "BR": ["Rua das Flores", "Avenida Paulista", "Rua Augusta", "Rua XV de Novembro", "Avenida Atlântica", "Rua da Bahia"],
    "AU": ["King Street", "Brunswick Street", "High Street", "Beach Road", "Boundary Street", "Lonsdale Street"],
    "CA": ["Queen Street West", "Rue Sainte-Catherine Ouest", "Commercial Drive", "17 Avenue SW", "Spring Garden Road",
           "Bank Street"],
}
_IN_BUILDINGS = ["Sai Residency", "Prestige Shantiniketan", "Lodha Bellissimo", "Green Park Apartments", "Sobha Orchid"]
_IN_AREAS = ["Indiranagar", "Bandra West", "T. Nagar", "Jubilee Hills", "Koregaon Park", "Salt Lake"]
_BR_BAIRROS = ["Pinheiros", "Centro", "Copacabana", "Savassi", "Batel", "Moinhos de Vento", "Barra"]


class _Addr(NamedTuple):
    line: str
    zip: str
    city: str
    full: str


def _address(w: _World, cc: str) -> _Addr:
    r = w.r
    city = r.choice(_CITIES[cc])
    street = r.choice(_STREETS[cc])
    if cc in ("DE", "NL", "PL", "FR", "IT") and r.random() < 0.3:
        loc = {"DE": "de_DE", "NL": "nl_NL", "PL": "pl_PL", "FR": "fr_FR", "IT": "it_IT"}[cc]
        street = w.f[loc].street_name()
        if cc == "PL":
            street = "ul. " + street
        if cc == "IT" and not street.lower().startswith(("via", "viale", "piazza", "strada", "corso", "borgo", "contrada")):
            street = "Via " + street
    no = r.randint(1, 180)
    if cc == "DE":
        line = f"{street} {no}{r.choice(['', '', 'a', 'b'])}"
        z = city[1] + w.digits(3)
        return _Addr(line, z, city[0], f"{line}, {z} {city[0]}")
    if cc == "FR":
        line = f"{no}{r.choice(['', '', ' bis'])} {street}"
        z = city[1] + w.digits(3) if city[0] != "Paris" else f"750{r.randint(1, 20):02d}"
        return _Addr(line, z, city[0], f"{line}, {z} {city[0]}")
    if cc == "NL":
        line = f"{street} {no}{r.choice(['', '', '-2', ' A', 'bis'])}"
        z = f"{city[1]}{w.digits(2)} {r.choice('ABCDEGHJKLMNPRSTVWXZ')}{r.choice('ABCDEGHJKLMNPRSTVWXZ')}"
        return _Addr(line, z, city[0], f"{line}, {z} {city[0]}")
    if cc == "ES":
        line = f"{street}, {no}, {r.randint(1, 9)}º {r.choice('ABCD')}" if r.random() < 0.6 else f"{street} {no}"
        z = city[1] + w.digits(3)
        return _Addr(line, z, city[0], f"{line}, {z} {city[0]}")
    if cc == "IT":
        line = f"{street} {no}" if r.random() < 0.6 else f"{street}, {no}"
        z = city[1] + w.digits(3)
        city_s = f"{city[0]} ({city[2]})" if r.random() < 0.5 else f"{city[0]} {city[2]}"
        return _Addr(line, z, city_s, f"{line}, {z} {city_s}")
    if cc == "PL":
        line = f"{street} {no}/{r.randint(1, 60)}" if r.random() < 0.6 else f"{street} {no}"
        z = f"{city[1]}{w.digits(1)}-{w.digits(3)}"
        return _Addr(line, z, city[0], f"{line}, {z} {city[0]}")
    if cc == "IN":
        line = (f"Flat {r.randint(1, 12)}0{r.randint(1, 9)}, {r.choice(_IN_BUILDINGS)}, {no} {street}, {r.choice(_IN_AREAS)}"
                if r.random() < 0.6 else f"{no}/{r.randint(1, 40)}, {street}, {r.choice(_IN_AREAS)}")
        z = city[1] + w.digits(3)
        cs = f"{city[0]}, {city[2]}"
        return _Addr(line, z, cs, f"{line}, {cs} {z}" if r.random() < 0.5 else f"{line}, {city[0]} - {z}, {city[2]}")
    if cc == "JP":
        line = f"{r.randint(1, 6)}-{r.randint(1, 30)}-{r.randint(1, 20)} {street}"
        if r.random() < 0.4:
            building = f"{r.choice(['Maison', 'Heights', 'Residence', 'Corpo'])} {r.choice(['Aoyama', 'Sakura', 'Midori'])}"
            line += f", {building} {r.randint(1, 9)}0{r.randint(1, 9)}"
        z = f"{city[1]}-{w.digits(4)}"
        return _Addr(line, z, city[0], f"{line}, {city[0]} {z}" if r.random() < 0.6 else f"〒{z} {city[0]}, {line}")
    if cc == "BR":
        line = f"{street}, {no}" + (f", apto {r.randint(11, 204)}" if r.random() < 0.5 else "") + f" - {r.choice(_BR_BAIRROS)}"
        z = f"{city[1]}{w.digits(4)}-{w.digits(3)}"
        cs = f"{city[0]} - {city[2]}"
        return _Addr(line, z, cs, f"{line}, {cs}, {z}" if r.random() < 0.5 else f"{line}, {cs}, CEP {z}")
    if cc == "AU":
        line = (f"Unit {r.randint(1, 20)}, " if r.random() < 0.4 else "") + f"{no} {street}"
        cs = f"{city[0]} {city[2]}"
        return _Addr(line, city[1], cs, f"{line}, {cs} {city[1]}")
    # CA
    line = f"{no * 7} {street}" + (f", Unit {r.randint(100, 2400)}" if r.random() < 0.3 else "")
    L = "ABCEGHJKLMNPRSTVXY"
    z = f"{city[1]}{r.randint(1, 9)}{r.choice(L)} {r.randint(0, 9)}{r.choice(L)}{r.randint(0, 9)}"
    cs = f"{city[0]} {city[2]}"
    return _Addr(line, z, cs, f"{line}, {cs} {z}" if r.random() < 0.5 else f"{line}, {cs}  {z}")


_PHONE_CC = {"DE": "49", "FR": "33", "NL": "31", "ES": "34", "IT": "39", "PL": "48", "IN": "91", "JP": "81", "BR": "55",
             "AU": "61", "CA": "1", "vi": "84", "zh": "86", "ko": "82", "ng": "234", "tr": "90", "ar": "971"}


def _phone(w: _World, cc: str) -> str:
    r, d = w.r, w.digits
    intl = r.random() < 0.5
    if cc == "DE":
        if r.random() < 0.5:
            return r.choice([f"+49 {r.choice(['151', '160', '171', '176'])} {d(7)}", f"0{r.choice(['152', '170'])}-{d(7)}",
                             f"+49 (0)17{r.randint(0, 9)} {d(3)} {d(4)}"])
        return f"+49 {r.choice(['30', '40', '89', '221'])} {d(7)}" if intl else f"0{r.choice(['30', '89', '761'])} {d(3)} {d(4)}"
    if cc == "FR":
        g = " ".join(d(2) for _ in range(4))
        if intl:
            return f"+33 {r.choice('1679')} {g}"
        return f"0{r.choice('1679')} {g}" if r.random() < 0.7 else f"0{r.choice('67')}.{g.replace(' ', '.')}"
    if cc == "NL":
        return f"+31 6 {d(8)}" if intl else r.choice([f"06-{d(8)}", f"020 {d(3)} {d(4)}", f"06 {d(2)} {d(2)} {d(2)} {d(2)}"])
    if cc == "ES":
        return f"+34 6{d(2)} {d(3)} {d(3)}" if intl else r.choice([f"6{d(2)} {d(3)} {d(3)}", f"7{d(2)} {d(2)} {d(2)} {d(2)}",
                                                                   f"91 {d(3)} {d(2)} {d(2)}"])
    if cc == "IT":
        return f"+39 3{d(2)} {d(3)} {d(4)}" if intl else r.choice([f"3{d(2)} {d(7)}", f"06 {d(4)} {d(4)}"])
    if cc == "PL":
        return f"+48 {r.choice('5678')}{d(2)} {d(3)} {d(3)}" if intl else f"{r.choice('5678')}{d(2)}-{d(3)}-{d(3)}"
    if cc == "IN":
        return f"+91 {r.choice('6789')}{d(4)} {d(5)}" if intl else r.choice([f"0{r.choice('6789')}{d(9)}", f"080-{d(8)}"])
    if cc == "JP":
        return f"+81 {r.choice(['90', '80', '70'])}-{d(4)}-{d(4)}" if intl else r.choice([f"090-{d(4)}-{d(4)}",
                                                                                          f"03-{d(4)}-{d(4)}"])
    if cc == "BR":
        if intl:
            return f"+55 {r.choice(['11', '21', '31'])} 9{d(4)}-{d(4)}"
        return f"({r.choice(['11', '41', '51'])}) 9{d(4)}-{d(4)}"
    if cc == "AU":
        return f"+61 4{d(2)} {d(3)} {d(3)}" if intl else r.choice([f"04{d(2)} {d(3)} {d(3)}", f"(02) {d(4)} {d(4)}"])
    if cc == "CA":
        a = r.choice(["416", "514", "604", "403", "902", "613"])
        return r.choice([f"+1 ({a}) {d(3)}-{d(4)}", f"{a}-{d(3)}-{d(4)}", f"({a}) {d(3)} {d(4)}", f"+1 {a} {d(3)} {d(4)}"])
    code = _PHONE_CC[cc]
    return f"+{code} {d(2)} {d(3)} {d(4)}" if r.random() < 0.5 else f"00{code} {d(3)} {d(3)} {d(3)}"


_IBAN_BBAN = {"DE": "18n", "FR": "10n11c2n", "NL": "4a10n", "ES": "20n", "IT": "1a10n12c", "PL": "24n", "BE": "12n",
              "AT": "16n", "PT": "21n", "IE": "4a14n", "CH": "5n12c", "GB": "4a14n"}


def _iban(w: _World, cc: str) -> str:
    r = w.r
    bban = ""
    for count, kind in re.findall(r"(\d+)([nac])", _IBAN_BBAN[cc]):
        pool = {"n": "0123456789", "a": "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "c": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"}[kind]
        bban += "".join(r.choice(pool) for _ in range(int(count)))
    check = 98 - _iban_numeric(bban + cc + "00") % 97
    compact = f"{cc}{check:02d}{bban}"
    w.check("iban", compact)
    if r.random() < 0.65:
        return " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))
    return compact


def _card(w: _World) -> str:
    r = w.r
    brand = r.choice(["visa", "visa", "mc", "mc2", "amex", "discover"])
    prefix, length = {"visa": ("4", 16), "mc": (str(r.randint(51, 55)), 16), "mc2": (str(r.randint(2221, 2720)), 16),
                      "amex": (r.choice(["34", "37"]), 15), "discover": ("6011", 16)}[brand]
    payload = prefix + w.digits(length - 1 - len(prefix))
    num = payload + _luhn_digit(payload)
    w.check("card", num)
    sep = r.choice([" ", " ", "-", ""])
    if length == 15:
        return sep.join([num[:4], num[4:10], num[10:]])
    return sep.join(num[i:i + 4] for i in range(0, 16, 4))


def _natid(w: _World, kind: str, p: _P | None = None) -> str:
    r, d = w.r, w.digits
    if kind == "steuer_id":
        digits = list("0123456789")
        r.shuffle(digits)
        nine = digits[:9]
        body = nine + [r.choice(nine)]
        r.shuffle(body)
        if body[0] == "0":
            i = next(i for i, c in enumerate(body) if c != "0")
            body[0], body[i] = body[i], body[0]
        ten = "".join(body)
        v = ten + _steuer_digit(ten)
        w.check(kind, v)
        return r.choice([v, f"{v[:2]} {v[2:5]} {v[5:8]} {v[8:]}"])
    if kind == "nir":
        dob = p.dob if p else dt.date(1980, 1, 1)
        sex = "2" if (p and p.female) else "1"
        dept = f"{r.choice([x for x in range(1, 96) if x != 20]):02d}"
        thirteen = f"{sex}{dob.year % 100:02d}{dob.month:02d}{dept}{r.randint(1, 990):03d}{r.randint(1, 999):03d}"
        v = thirteen + f"{97 - int(thirteen) % 97:02d}"
        w.check(kind, v)
        if r.random() < 0.6:
            return f"{v[0]} {v[1:3]} {v[3:5]} {v[5:7]} {v[7:10]} {v[10:13]} {v[13:]}"
        return v
    if kind == "dni":
        if r.random() < 0.75:
            num = d(8)
            v = num + _DNI_LETTERS[int(num) % 23]
        else:
            pre = r.choice("XYZ")
            num = d(7)
            v = pre + num + _DNI_LETTERS[int(str("XYZ".index(pre)) + num) % 23]
        w.check(kind, v)
        return r.choice([v, v, f"{v[:-1]}-{v[-1]}"])
    if kind == "bsn":
        while True:
            eight = str(r.randint(1, 9)) + d(7)
            last = sum(int(eight[i]) * (9 - i) for i in range(8)) % 11
            if last < 10:
                v = eight + str(last)
                break
        w.check(kind, v)
        return r.choice([v, f"{v[:4]}.{v[4:6]}.{v[6:]}", v])
    if kind == "aadhaar":
        eleven = str(r.randint(2, 9)) + d(10)
        v = eleven + _verhoeff_digit(eleven)
        w.check(kind, v)
        return r.choice([f"{v[:4]} {v[4:8]} {v[8:]}", v, f"{v[:4]}-{v[4:8]}-{v[8:]}"])
    if kind == "sin":
        eight = r.choice("1234567 9".replace(" ", "")) + d(7)
        v = eight + _luhn_digit(eight)
        w.check(kind, v)
        return r.choice([f"{v[:3]} {v[3:6]} {v[6:]}", f"{v[:3]}-{v[3:6]}-{v[6:]}", v])
    if kind == "ssn":
        area = r.choice([x for x in range(1, 900) if x != 666])
        v = f"{area:03d}-{r.randint(1, 99):02d}-{r.randint(1, 9999):04d}"
        w.check(kind, v)
        return v if r.random() < 0.8 else v.replace("-", "")
    if kind == "pesel":
        dob = p.dob if p else dt.date(1985, 5, 5)
        month = dob.month + (20 if dob.year >= 2000 else 0)
        serial = d(3) + str(r.choice([0, 2, 4, 6, 8]) if (p and p.female) else r.choice([1, 3, 5, 7, 9]))
        ten = f"{dob.year % 100:02d}{month:02d}{dob.day:02d}{serial}"
        wts = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3]
        v = ten + str((10 - sum(int(ten[i]) * wts[i] for i in range(10)) % 10) % 10)
        w.check(kind, v)
        return v
    if kind == "cpf":
        nine = d(9)
        v = nine + _cpf_digits(nine)
        w.check(kind, v)
        return r.choice([f"{v[:3]}.{v[3:6]}.{v[6:9]}-{v[9:]}", v])
    if kind == "tfn":
        wts = [1, 4, 3, 7, 5, 8, 6, 9, 10]
        while True:
            eight = d(8)
            s = sum(int(eight[i]) * wts[i] for i in range(8))
            last = next((x for x in range(10) if (s + x * 10) % 11 == 0), None)
            if last is not None:
                v = eight + str(last)
                break
        w.check(kind, v)
        return r.choice([f"{v[:3]} {v[3:6]} {v[6:]}", v])
    if kind == "mynumber":
        eleven = d(11)
        v = eleven + _mynumber_digit(eleven)
        w.check(kind, v)
        return r.choice([f"{v[:4]} {v[4:8]} {v[8:]}", v])
    if kind == "cf":
        def code(s: str, given: bool) -> str:
            s = re.sub(r"[^A-Z]", "", _ascii(s).upper())
            cons = [c for c in s if c not in "AEIOU"]
            vow = [c for c in s if c in "AEIOU"]
            if given and len(cons) >= 4:
                cons = [cons[0], cons[2], cons[3]]
            return ("".join(cons + vow) + "XXX")[:3]
        dob = p.dob if p else dt.date(1980, 1, 1)
        given = p.given if p else "Mario"
        sur = p.surname if p else "Rossi"
        day = dob.day + (40 if (p and p.female) else 0)
        fifteen = (f"{code(sur, False)}{code(given, True)}{dob.year % 100:02d}{'ABCDEHLMPRST'[dob.month - 1]}{day:02d}"
                   f"{r.choice('ABCDEFGHILM')}{d(3)}")
        v = fifteen + _cf_char(fifteen)
        w.check(kind, v)
        return v
    if kind == "nino":
        v = f"{r.choice('ABCEGHJKLMNPRSTWXYZ')}{r.choice('ABCEGHJKLMNPRSTWXYZ')} {d(2)} {d(2)} {d(2)} {r.choice('ABCD')}"
        w.check(kind, v)
        return v if r.random() < 0.5 else v.replace(" ", "")
    raise ValueError(kind)


_NATID_BY_COUNTRY = {"DE": "steuer_id", "FR": "nir", "ES": "dni", "NL": "bsn", "IN": "aadhaar", "CA": "sin", "PL": "pesel",
                     "BR": "cpf", "AU": "tfn", "JP": "mynumber", "IT": "cf"}
_NATID_LABEL = {
    "steuer_id": ["Steuer-ID", "Steueridentifikationsnummer", "tax ID (DE)", "IdNr"],
    "nir": ["numéro de sécurité sociale", "NIR", "n° INSEE", "French social security no."],
    "dni": ["DNI", "NIF", "documento de identidad", "NIE/DNI"], "bsn": ["BSN", "burgerservicenummer", "citizen service number"],
    "aadhaar": ["Aadhaar", "Aadhaar no.", "UID"], "sin": ["SIN", "Social Insurance Number", "NAS"],
    "ssn": ["SSN", "Social Security No.", "social security number"], "pesel": ["PESEL", "nr PESEL"],
    "cpf": ["CPF", "CPF nº"], "tfn": ["TFN", "tax file number"], "mynumber": ["My Number", "individual number (My Number)"],
    "cf": ["codice fiscale", "C.F.", "CF"], "nino": ["NI number", "National Insurance No."],
}


def _ipv4(r: random.Random) -> str:
    first = r.choice([31, 37, 46, 62, 77, 79, 81, 83, 85, 88, 91, 93, 95, 103, 109, 122, 141, 151, 177, 185, 189, 201, 213, 217])
    return f"{first}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"


def _ipv6(r: random.Random) -> str:
    prefix = r.choice([0x2a02, 0x2001, 0x2003, 0x2a01, 0x2804, 0x2401, 0x2600])
    value = (prefix << 112) | r.getrandbits(112)
    addr = ipaddress.IPv6Address(value)
    if r.random() < 0.5:
        value = (prefix << 112) | (r.getrandbits(48) << 64) | r.getrandbits(16)
        return ipaddress.IPv6Address(value).compressed
    return addr.exploded if r.random() < 0.3 else addr.compressed


# ---------------------------------------------------------------------------------------------
# People

_TITLES = ["Head of Customer Success", "Senior Data Engineer", "Procurement Manager", "HR Business Partner", "Office Manager",
           "Key Account Manager", "Payroll Specialist", "Claims Handler", "Staff Nurse", "Consultant Cardiologist",
           "Legal Counsel", "Site Reliability Engineer", "Compliance Analyst", "Operations Lead", "Product Owner",
           "Teamleiterin Buchhaltung", "Responsable RH", "Jefe de Ventas", "Kierownik Projektu", "Store Manager",
           "Relationship Manager", "Recruiter", "Facility Coordinator", "CFO", "Practice Manager"]
_ORG_A = ["Nordlicht", "Blauwal", "Sierra", "Kestrel", "Orbis", "Lumen", "Vistula", "Tagus", "Meridian", "Alder", "Corvid",
          "Halcyon", "Quokka", "Saffron", "Basalt", "Kiwa", "Tessera", "Ginkgo", "Ostrava", "Brightwater"]
_ORG_B = ["Logistik", "Analytics", "Health", "Versicherungen", "Software", "Foods", "Energía", "Dental", "Capital", "Textil",
          "Robotics", "Klinik", "Mobility", "Labs", "Pharma", "Bank", "Property", "Retail"]
_ORG_SUFFIX = {"DE": ["GmbH", "AG", "GmbH & Co. KG"], "FR": ["SAS", "SA", "SARL"], "NL": ["B.V.", "N.V."], "ES": ["S.L.", "S.A."],
               "IT": ["S.r.l.", "S.p.A."], "PL": ["sp. z o.o.", "S.A."], "IN": ["Pvt Ltd", "Ltd"], "JP": ["K.K.", "Co., Ltd."],
               "BR": ["Ltda.", "S.A."], "AU": ["Pty Ltd"], "CA": ["Inc.", "Ltée"]}
_PERSONAL_DOMAINS = ["gmail.com", "gmx.de", "web.de", "wp.pl", "orange.fr", "libero.it", "hotmail.com", "outlook.com",
                     "yahoo.co.jp", "naver.com", "qq.com", "uol.com.br", "proton.me", "icloud.com", "ziggo.nl", "telefonica.net",
                     "rediffmail.com", "bigpond.com", "videotron.ca", "yandex.com", "t-online.de", "o2.pl"]
_TLD = {"DE": "de", "FR": "fr", "NL": "nl", "ES": "es", "IT": "it", "PL": "pl", "IN": "in", "JP": "co.jp", "BR": "com.br",
        "AU": "com.au", "CA": "ca"}


class _Org(NamedTuple):
    name: str
    domain: str
    cc: str


def _org(w: _World, cc: str | None = None) -> _Org:
    r = w.r
    cc = cc or r.choice(_COUNTRIES)
    a, b = r.choice(_ORG_A), r.choice(_ORG_B)
    name = f"{a} {b} {r.choice(_ORG_SUFFIX[cc])}"
    domain = f"{_slug(a)}{r.choice(['', '-', ''])}{_slug(b)}.{r.choice([_TLD[cc], 'com', 'io', 'eu'])}".replace("-.", ".")
    return _Org(name, domain, cc)


class _P:
    """One person of a record; every attribute is drawn once, so repeated mentions agree."""

    def __init__(self, w: _World, culture: str | None = None, country: str | None = None, org: _Org | None = None):
        r = w.r
        self.w = w
        self.culture = culture or r.choice(_CULTURES)
        self.female = r.random() < 0.5
        self.given, self.surname, family, self.family_first = _make_name(w, self.culture, self.female)
        self.family = family or self.surname
        self.country = country or (_HOME[self.culture] if self.culture in _HOME and r.random() < 0.7 else r.choice(_COUNTRIES))
        self.dob = dt.date(1941, 1, 1) + dt.timedelta(days=r.randrange(365 * 65))
        self.org = org or _org(w, self.country)
        self._cache: dict[str, str] = {}

    def _once(self, key: str, make: Callable[[], str]) -> str:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def call(self) -> str:  # the name used in a greeting
        if self.culture == "vi":
            return self.given.split()[-1]
        return self.given.split()[0] if self.culture in ("ar", "pt", "in") else self.given

    @property
    def full(self) -> str:
        return f"{self.surname} {self.given}" if self.family_first else f"{self.given} {self.surname}"

    def styled(self, style: str | None = None) -> str:
        r = self.w.r
        style = style or r.choice(["full"] * 6 + ["comma", "upper_comma", "initial", "lower", "initials2"])
        if style == "comma":
            return f"{self.surname}, {self.given}"
        if style == "upper_comma":
            return f"{self.surname.upper()}, {self.given}"
        if style == "initial":
            return f"{self.given[0]}. {self.surname}"
        if style == "initials2":
            parts = self.given.replace("-", " ").split()
            middle = " " + self.w.r.choice("ABDEJKLMRS") + "." if len(parts) == 1 else ""
            return " ".join(p[0] + "." for p in parts) + middle + f" {self.surname}"
        if style == "lower":
            return self.full.lower()
        return self.full

    @property
    def honorific(self) -> str:
        r = self.w.r
        lang = _LANG.get(self.country, "en")
        pool = {"de": ["Frau", "Fr."] if self.female else ["Herr", "Hr."],
                "fr": ["Mme", "Madame"] if self.female else ["M.", "Monsieur"],
                "es": ["Sra.", "Dña."] if self.female else ["Sr.", "D."], "pl": ["Pani"] if self.female else ["Pan"],
                "it": ["Sig.ra", "Dott.ssa"] if self.female else ["Sig.", "Dott."],
                "nl": ["mevrouw", "mw."] if self.female else ["meneer", "dhr."],
                "pt": ["Sra."] if self.female else ["Sr."]}.get(lang, ["Ms", "Mrs."] if self.female else ["Mr", "Mr."])
        return r.choice(pool + ["Dr."])

    @property
    def email(self) -> str:
        def make() -> str:
            r = self.w.r
            g = _slug(self.given.split()[0])
            s = _slug(self.family.split()[-1] if self.family else self.surname)
            local = r.choice([f"{g}.{s}", f"{g[0]}{s}", f"{g}_{s}{self.dob.year % 100:02d}", f"{s}.{g[0]}",
                              f"{g}{r.randint(1, 999)}",
                              f"{g}.{s}{r.randint(1, 9)}", f"{s}{g[:2]}", f"{g}-{s}"])
            domain = self.org.domain if r.random() < 0.4 else r.choice(_PERSONAL_DOMAINS)
            return f"{local}@{domain}"
        return self._once("email", make)

    @property
    def work_email(self) -> str:
        return self._once("work_email",
                          lambda: f"{_slug(self.given.split()[0])}.{_slug(self.family.split()[-1])}@{self.org.domain}")

    @property
    def handle(self) -> str:
        def make() -> str:
            r = self.w.r
            g, s = _slug(self.given.split()[0]), _slug(self.family.split()[-1])
            return r.choice([f"{g[0]}{s}{r.randint(10, 99)}", f"{g}_{s[:3]}", f"{s}{g[0]}", f"{g}{self.dob.year}", f"{g}.{s}",
                             f"{r.choice(['night', 'blue', 'coffee', 'pixel', 'lazy'])}_{g}"])
        return self._once("handle", make)

    @property
    def phone(self) -> str:
        def make() -> str:
            cc = self.country
            if self.culture in _PHONE_CC and self.w.r.random() < 0.2:
                cc = self.culture
            return _phone(self.w, cc)
        return self._once("phone", make)

    @property
    def addr(self) -> _Addr:
        if "addr" not in self._cache:
            self._cache["addr"] = _address(self.w, self.country)  # type: ignore[assignment]
        return self._cache["addr"]  # type: ignore[return-value]

    @property
    def iban(self) -> str:
        cc = self.country if self.country in _IBAN_BBAN else self.w.r.choice(list(_IBAN_BBAN))
        return self._once("iban", lambda: _iban(self.w, cc))

    @property
    def card(self) -> str:
        return self._once("card", lambda: _card(self.w))

    @property
    def natid_kind(self) -> str:
        def make() -> str:
            if self.w.r.random() < 0.12:
                return self.w.r.choice(["ssn", "nino"])
            return _NATID_BY_COUNTRY[self.country]
        return self._once("natid_kind", make)

    @property
    def natid(self) -> str:
        return self._once("natid", lambda: _natid(self.w, self.natid_kind, self))

    @property
    def natid_label(self) -> str:
        return self.w.r.choice(_NATID_LABEL[self.natid_kind])

    @property
    def account(self) -> str:
        def make() -> str:
            r, d = self.w.r, self.w.digits
            return r.choice([d(10), f"{d(4)} {d(4)} {d(2)}", f"{d(3)}-{d(6)}-{d(1)}", d(12), f"{d(2)}-{d(7)}", d(8)])
        return self._once("account", make)

    @property
    def policy(self) -> str:
        def make() -> str:
            r, d = self.w.r, self.w.digits
            return r.choice([f"POL{d(9)}", f"{r.choice('ABKMXZ')}{d(9)}", f"{d(3)}-{d(3)}-{d(4)}", f"VN {d(4)} {d(4)}",
                             f"{r.choice(['AOK', 'TK', 'HUK'])}-{d(8)}"])
        return self._once("policy", make)

    @property
    def mrn(self) -> str:
        def make() -> str:
            r, d = self.w.r, self.w.digits
            return r.choice([d(8), f"{d(4)}-{d(4)}", f"H{d(7)}", f"PT-{d(7)}", f"{d(2)}{r.choice('ABCDEFGH')}{d(6)}",
                             f"MR{d(6)}", f"{d(3)} {d(3)} {d(3)}"])
        return self._once("mrn", make)

    @property
    def ip(self) -> str:
        return self._once("ip", lambda: _ipv4(self.w.r) if self.w.r.random() < 0.7 else _ipv6(self.w.r))

    @property
    def profile(self) -> str:
        def make() -> str:
            r = self.w.r
            g, s = _slug(self.given.split()[0]), _slug(self.family.split()[-1])
            h = self.handle.replace(".", "")
            return r.choice([
                f"https://www.linkedin.com/in/{g}-{s}-{r.getrandbits(24):06x}/", f"linkedin.com/in/{g}{s}",
                f"https://github.com/{h}",
                f"github.com/{g}-{s}", f"https://x.com/{h}", f"twitter.com/{g}_{s}", f"https://www.instagram.com/{g}.{s}/",
                f"instagram.com/{h}", f"https://www.facebook.com/{g}.{s}.{r.randint(1, 9)}", f"https://mastodon.social/@{h}",
                f"https://gitlab.com/{h}", f"https://www.xing.com/profile/{g.title()}_{s.title()}",
            ])
        return self._once("profile", make)

    @property
    def dob_str(self) -> str:
        return self._once("dob_str", lambda: _fmt_date(self.w.r, self.dob, _LANG.get(self.country, "en")))

    @property
    def title(self) -> str:
        return self._once("title", lambda: self.w.r.choice(_TITLES))

    @property
    def age(self) -> str:
        return str(2026 - self.dob.year - (1 if (self.dob.month, self.dob.day) > (12, 3) else 0))

    @property
    def nrp(self) -> str:
        return {"es": "Spanish", "de": "German", "pl": "Polish", "vi": "Vietnamese", "zh": "Chinese", "ko": "Korean",
                "ja": "Japanese", "ar": "Emirati", "in": "Indian", "ng": "Nigerian", "tr": "Turkish", "pt": "Brazilian",
                "fr": "French", "it": "Italian", "nl": "Dutch", "en": "Australian"}[self.culture]


# ---------------------------------------------------------------------------------------------
# Hard negatives and context slots

_RELATIVE = ["last Tuesday", "yesterday", "tomorrow morning", "next week", "in two weeks", "earlier today", "last month",
             "the day before yesterday", "this Friday", "next Monday", "a few days ago", "by the end of next month",
             "three weeks ago", "over the weekend", "later this afternoon", "in 10 days", "tonight", "last Thursday evening",
             "two days from now", "since Monday", "next quarter", "this morning"]
_PUBLIC = [("Emmanuel Macron", "French President"), ("Friedrich Merz", "German Chancellor"),
           ("Ursula von der Leyen", "Commission President"), ("Narendra Modi", "Indian Prime Minister"),
           ("Luiz Inácio Lula da Silva", "Brazilian President"), ("Anthony Albanese", "Australian Prime Minister"),
           ("Mark Carney", "Canadian Prime Minister"), ("Giorgia Meloni", "Italian Prime Minister"),
           ("Pedro Sánchez", "Spanish Prime Minister"), ("Donald Tusk", "Polish Prime Minister"),
           ("Tim Cook", "Apple chief executive"), ("Satya Nadella", "Microsoft chief executive"),
           ("Jensen Huang", "Nvidia chief executive"), ("Sundar Pichai", "Alphabet chief executive"),
           ("Christine Lagarde", "ECB President"), ("Recep Tayyip Erdoğan", "Turkish President"),
           ("Bola Tinubu", "Nigerian President"), ("Lisa Su", "AMD chief executive"), ("Mary Barra", "GM chief executive"),
           ("António Guterres", "UN Secretary-General"), ("Cyril Ramaphosa", "South African President"),
           ("Claudia Sheinbaum", "Mexican President")]
_PLACES = ["the Eiffel Tower", "the Brandenburg Gate", "the Sagrada Família", "the Rijksmuseum", "the Colosseum", "Wawel Castle",
           "the Taj Mahal", "Shibuya Crossing", "Christ the Redeemer", "the Sydney Opera House", "the CN Tower",
           "the Alhambra", "the Acropolis", "Neuschwanstein Castle", "the Louvre", "Fushimi Inari", "the Gateway of India",
           "the Golden Gate Bridge", "Big Ben", "the Hagia Sophia"]


def _neg_factory(w: _World) -> dict[str, Callable[[], object]]:
    r, d = w.r, w.digits

    def upc() -> Lab:
        body = d(11)
        s = 3 * sum(int(c) for c in body[0::2]) + sum(int(c) for c in body[1::2])
        v = body + str((10 - s % 10) % 10)
        w.check("upc", v)
        return N(v, "UPC")

    def ean() -> Lab:
        body = r.choice(["400", "500", "590", "871", "840", "789", "300", "890"]) + d(9)
        s = sum(int(c) for c in body[0::2]) + 3 * sum(int(c) for c in body[1::2])
        v = body + str((10 - s % 10) % 10)
        w.check("upc", v)
        return N(v, "EAN")

    def ts() -> Lab:
        t = dt.datetime(2026, 1, 1) + dt.timedelta(seconds=r.randrange(330 * 86400))
        return N(r.choice([t.strftime("%Y-%m-%dT%H:%M:%SZ"), t.strftime("%Y-%m-%d %H:%M:%S,") + d(3),
                           t.strftime("%Y-%m-%dT%H:%M:%S.") + d(3) + "+01:00", str(int(t.timestamp()) + 0),
                           t.strftime("%d/%b/%Y:%H:%M:%S +0000")]), "TIMESTAMP")

    def price() -> Lab:
        a = r.randint(1, 4999)
        c = r.randint(0, 99)
        return N(r.choice([f"€{a:,}.{c:02d}", f"{a:,},{c:02d} EUR".replace(",", ".", a >= 1000), f"${a}.{c:02d}", f"£{a}.{c:02d}",
                           f"R$ {a},{c:02d}", f"¥{a * 100:,}", f"₹{a * 10:,}", f"{a},{c:02d} €", f"CHF {a}.{c:02d}",
                           f"PLN {a},{c:02d}", f"A${a}.{c:02d}"]), "PRICE")

    def sha() -> Lab:
        full = f"{r.getrandbits(160):040x}"
        return N(r.choice([full, full[:7], full[:10], full[:12]]), "HASH")

    def date() -> Lab:
        t = dt.date(2025, 6, 1) + dt.timedelta(days=r.randrange(500))
        return G(_fmt_date(r, t, r.choice(["en", "en", "de", "fr"])), "DATE_TIME")

    def when() -> Lab:
        t = dt.datetime(2026, 1, 5, 8) + dt.timedelta(days=r.randrange(300), minutes=15 * r.randrange(40))
        return G(r.choice([t.strftime("%A %d %B at %H:%M"), t.strftime("%d.%m.%Y, %H:%M Uhr"), t.strftime("%b %d, %I:%M %p"),
                           t.strftime("%Y-%m-%d %H:%M"), t.strftime("%d/%m at %H.%M")]), "DATE_TIME")

    def pubfig() -> list:
        name, role = r.choice(_PUBLIC)
        return [role + " ", N(name, "PUBLIC_FIGURE")] if r.random() < 0.7 else [N(name, "PUBLIC_FIGURE")]

    def place() -> list:
        p = r.choice(_PLACES)
        if p.startswith("the "):
            return ["the ", N(p[4:], "FAMOUS_PLACE")]
        return [N(p, "FAMOUS_PLACE")]

    def company() -> Lab:
        return G(_org(w).name, "ORGANIZATION")

    def url() -> Lab:
        o = _org(w)
        return G(r.choice([f"https://www.{o.domain}", f"https://{o.domain}/support", f"www.{o.domain}",
                           f"https://status.{o.domain}", f"https://shop.{o.domain}/returns", f"https://docs.{o.domain}/api/v2"]),
                           "URL")

    def city() -> Lab:
        c = r.choice(_CITIES[r.choice(_COUNTRIES)])[0]
        return G(c, "LOCATION")

    return {
        "order": lambda: N(r.choice([f"#{d(9)}", f"ORD-2026-{d(6)}", f"{d(3)}-{d(7)}-{d(7)}", f"PO {45}{d(8)}", f"B{d(8)}",
                                     f"SO{d(7)}"]), "ORDER_NUMBER"),
        "ticket": lambda: N(r.choice([f"INC{d(7)}", f"PROV-{r.randint(10, 9999)}", f"#{d(5)}", f"SR 3-{d(11)}", f"TCK-{d(6)}",
                                      f"REQ{d(6)}"]), "TICKET_NUMBER"),
        "invoice": lambda: N(r.choice([f"INV-2026-{d(5)}", f"RE-2026-{d(4)}", f"FA 2026/{d(4)}", f"F-{d(8)}", f"2026-{d(4)}"]),
                             "INVOICE_NUMBER"),
        "sku": lambda: N(r.choice([f"SKU-{d(5)}-{r.choice(['BLK', 'WHT', 'RED', 'NVY'])}-{r.choice(['S', 'M', 'XL'])}",
                                   f"WH-{d(4)}XM{r.randint(2, 6)}", f"ART-{d(4)}-{d(3)}", f"{d(2)}-{d(4)}-{d(2)}",
                                   f"KX{d(4)}{r.choice('ABCDEF')}"]), "SKU"),
        "upc": upc, "ean": ean,
        "uuid": lambda: N(str(uuid.UUID(int=r.getrandbits(128), version=4)), "UUID"),
        "sha": sha,
        "sha256": lambda: N(f"{r.getrandbits(256):064x}", "HASH"),
        "semver": lambda: N(r.choice(["v", "", ""]) + f"{r.randint(0, 14)}.{r.randint(0, 30)}.{r.randint(0, 40)}"
                            + r.choice(["", "", "", "-rc.1", "-beta.3", "+build.51", "-alpha"]), "VERSION"),
        "ver4": lambda: N(r.choice([f"10.0.{r.choice([19045, 22631, 26100])}.{r.randint(1000, 5200)}",
                                    f"6.1.7601.{r.randint(17000, 26000)}",
                                    f"4.18.0.{r.randint(100, 600)}",
                                    f"{r.randint(1, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}.{r.randint(1, 99)}",
                                    f"{r.randint(100, 140)}.0.{r.randint(6000, 7000)}.{r.randint(10, 200)}"]), "IP_LIKE_VERSION"),
        "ts": ts, "price": price,
        "rel": lambda: N(r.choice(_RELATIVE), "RELATIVE_DATE"),
        "rec": lambda: N(r.choice([f"rec_{r.getrandbits(24):06x}"[:9], f"CASE-{d(6)}", f"cus_{r.getrandbits(64):016x}",
                                   f"obj-{d(4)}-aa",
                                   f"ID{d(7)}", f"row {d(5)}"]), "RECORD_ID"),
        "case": lambda: N(f"CASE-{d(6)}", "RECORD_ID"),
        "tracking": lambda: N(r.choice(["1Z" + "".join(r.choice("0123456789ABCDEFGHJKLMNPRSTVWXYZ") for _ in range(16)),
                                        f"JD{d(18)}", f"{d(4)} {d(4)} {d(4)}", f"RR{d(9)}DE"]), "TRACKING_NUMBER"),
        "err": lambda: N(r.choice([f"0x8007{d(4)}", f"E{d(4)}", f"ERR_{r.choice(['TIMEOUT', 'QUOTA', 'AUTH'])}_{d(3)}"]),
                         "ERROR_CODE"),
        "build": lambda: N(f"{d(5)}", "BUILD_NUMBER"),
        "lot": lambda: N(r.choice([f"{r.choice('ABFKLMX')}{r.choice('ABFKLMX')}{d(4)}", f"{d(6)}{r.choice('ABC')}"]),
                         "LOT_NUMBER"),
        "claim": lambda: N(r.choice([f"CLM-2026-{d(5)}", f"SCH-{d(8)}", f"{d(2)}/{d(6)}/2026"]), "CLAIM_NUMBER"),
        "txn": lambda: N(r.choice([f"TXN{d(12)}", f"{r.getrandbits(48):012X}", f"E2E-{d(10)}"]), "TRANSACTION_ID"),
        "reg": lambda: N(r.choice([f"HRB {d(6)} B", f"KvK {d(8)}", f"RCS Paris {d(3)} {d(3)} {d(3)}",
                                   f"CIN U{d(5)}KA2019PTC{d(6)}",
                                   f"ABN {d(2)} {d(3)} {d(3)} {d(3)}", f"KRS {d(10)}"]), "COMPANY_REG"),
        "bank_code": lambda: N(r.choice([f"BSB {d(3)}-{d(3)}", f"IFSC HDFC0{d(6)}", f"sort code {d(2)}-{d(2)}-{d(2)}",
                                         f"BIC {r.choice(['DEUTDEFF', 'BNPAFRPP', 'INGBNL2A', 'CAIXESBB', 'BPKOPLPW'])}"]),
                                         "BANK_CODE"),
        "port": lambda: N(f"port {r.choice([443, 8443, 5432, 6379, 9200, 3000])}", "PORT"),
        "date": date, "when": when, "pubfig": pubfig, "place": place, "company": company, "url": url, "city": city,
    }


_PERSON_SLOT = re.compile(r"^([abcz])_(\w+)$")


def _resolver(w: _World, people: dict[str, _P]) -> Callable[[str], object]:
    negs = _neg_factory(w)

    def person_piece(p: _P, attr: str) -> object:
        r = w.r
        if attr == "full":
            return G(p.full, "PERSON")
        if attr == "name":
            return G(p.styled(), "PERSON")
        if attr == "call":
            return G(p.call, "PERSON")
        if attr == "lower":
            return G(p.full.lower(), "PERSON")
        if attr == "formal":
            return [p.honorific + " ", G(p.family, "PERSON")]
        if attr == "mailbox":
            return [G(p.full, "PERSON"), " <", G(p.email, "EMAIL_ADDRESS"), ">"]
        if attr == "email":
            return G(p.email, "EMAIL_ADDRESS")
        if attr == "wemail":
            return G(p.work_email, "EMAIL_ADDRESS")
        if attr == "phone":
            return G(p.phone, "PHONE_NUMBER")
        if attr == "addr":
            return G(p.addr.full, "STREET_ADDRESS")
        if attr == "street":
            return G(p.addr.line, "STREET_ADDRESS")
        if attr == "zip":
            return G(p.addr.zip, "ZIP_CODE")
        if attr == "city":
            return G(p.addr.city, "LOCATION")
        if attr == "dob":
            return G(p.dob_str, "DATE_OF_BIRTH")
        if attr == "born":  # a whole phrase
            d = p.dob
            month = _MONTHS["en"][d.month - 1]
            return r.choice([["born on the ", G(f"{_ordinal(d.day)} of {month} {d.year}", "DATE_OF_BIRTH")],
                             ["born ", G(p.dob_str, "DATE_OF_BIRTH")],
                             ["DOB ", G(f"{d.day:02d}.{d.month:02d}.{d.year % 100:02d}", "DATE_OF_BIRTH")],
                             ["date of birth ", G(p.dob_str, "DATE_OF_BIRTH")], ["b. ", G(p.dob_str, "DATE_OF_BIRTH")],
                             ["(DOB: ", G(p.dob_str, "DATE_OF_BIRTH"), ")"]])
        if attr == "iban":
            return G(p.iban, "IBAN_CODE")
        if attr == "card":
            return G(p.card, "CREDIT_CARD")
        if attr == "natid":
            return G(p.natid, "NATIONAL_ID")
        if attr == "natidl":
            return [p.natid_label + " ", G(p.natid, "NATIONAL_ID")]
        if attr == "acct":
            return G(p.account, "ACCOUNT_NUMBER")
        if attr == "policy":
            return G(p.policy, "ACCOUNT_NUMBER")
        if attr == "mrn":
            return G(p.mrn, "MEDICAL_RECORD_NUMBER")
        if attr == "ip":
            return G(p.ip, "IP_ADDRESS")
        if attr == "profile":
            return G(p.profile, "PROFILE_URL")
        if attr == "title":
            return G(p.title, "TITLE")
        if attr == "org":
            return G(p.org.name, "ORGANIZATION")
        if attr == "age":
            return G(p.age, "AGE")
        if attr == "nrp":
            return G(p.nrp, "NRP")
        if attr == "handle":
            return p.handle
        if attr == "web":
            return G(f"https://www.{p.org.domain}", "URL")
        raise KeyError(attr)

    def resolve(name: str) -> object:
        m = _PERSON_SLOT.match(name)
        if m:
            key = m.group(1)
            if key not in people:
                people[key] = _P(w, org=people["a"].org if key != "a" and "a" in people and w.r.random() < 0.5 else None)
            return person_piece(people[key], m.group(2))
        return negs[name]()

    return resolve


def _typos(r: random.Random, s: str, rate: float = 0.08) -> str:
    words = s.split(" ")
    for i, word in enumerate(words):
        if len(word) > 3 and word.isalpha() and r.random() < rate:
            j = r.randrange(len(word) - 1)
            words[i] = word[:j] + word[j + 1] + word[j] + word[j + 2:] if r.random() < 0.6 else word[:j] + word[j + 1:]
    return " ".join(words)


def _tpl(doc: _Doc, res, template: str) -> None:
    doc.put(_pieces(template, res))


# ---------------------------------------------------------------------------------------------
# Families

_EMAIL_BODIES = [
    "Following up on {ticket}: the login from {a_ip} was indeed me, I was travelling {rel}.",
    "Please find attached the signed lease. My new address from 1 April will be {a_addr}.",
    "Could you update the payout account to {a_iban}? The old one at my previous bank is closed.",
    "Unrelated, but did you see {pubfig} at {place} {rel}?",
    "{c_full} from our Lyon office will join the call on {when}; direct line {c_phone}.",
    "The courier tried to deliver order {order} {rel}, but the label said {a_addr}, which is my old flat.",
    "For the background check we still need your date of birth and {a_natidl}. We have {b_dob} on file as DOB - is that right?",
    "I've cc'd {c_name} ({c_email}), who handles payroll now.",
    "Invoice {invoice} for {price} is overdue since {date}. Please transfer to IBAN {a_iban} quoting the invoice number.",
    "Quick one: is build {ver4} the one with the fix, or do we need {semver}?",
    "As discussed, I've added {c_name} to the shared drive. The GitHub profile is {c_profile} if you want to check the commits.",
    "The refund of {price} for {sku} went to the card ending in the last four digits, not to {a_card}, which expired.",
    "Can you send the onboarding pack to my private address, {a_email}, rather than the work one?",
    "Reminder: {c_formal} is expecting your call at {c_phone} before {when}.",
    "We met at the conference {rel}; my profile is {a_profile} in case you want to connect.",
    "Attached is the scan of my ID. {a_natidl}, issued in {a_city}.",
    "The access logs show {a_ip} hitting the API with key id {rec} around {ts}.",
    "Please confirm the appointment on {when} for {c_full}, born {c_dob}.",
    "I spoke to {c_formal} {rel}; we agreed to move the deadline to {date}.",
    "Our tax adviser needs {a_natidl} and the account {a_acct} for the return.",
    "The shipment {tracking} is stuck in customs; the consignee is listed as {c_full}, {c_addr}.",
    "Could you check why {sha} broke the nightly? It only fails on {ver4}.",
    "Happy to recommend {c_full} - we worked together at {c_org} for four years. Reachable on {c_phone}.",
    "I noticed two charges of {price} on {a_card}; the reference is {txn}.",
    "Our records show {b_full} as the emergency contact, phone {b_phone}.",
    "My landlord, {c_formal}, lives at {c_addr} if the insurer needs to write directly.",
    "New hire: {c_full}, {c_title}, starts on {date}. Personal e-mail {c_email}, mobile {c_phone}.",
    "The ticket {ticket} was closed by mistake; the customer {c_name} is still waiting.",
    "Please don't use my old number any more - the new one is {a_phone}.",
    "I've uploaded the contract for {c_full} (customer {rec}); IBAN {c_iban} and the mandate reference {rec}.",
    "Thanks for the quick reply {rel}. The parcel {tracking} arrived and SKU {sku} matches.",
    "Policy {a_policy} should cover the repair; the claim reference is {claim}.",
    "We spoke about the visit to {place} {rel} - {c_call} suggested we meet there on {when}.",
]
_GREETINGS = ["Hi {b_call},", "Dear {b_formal},", "Hallo {b_call},", "Bonjour {b_call},", "Hola {b_call}:", "Hey {b_call}!",
              "Good morning {b_call},", "{b_call} -", "Dear {b_full},", "Hi {b_call} and {c_call},", "Dzień dobry,", "Hi team,",
              "Ciao {b_call},", "Beste {b_call},", "Olá {b_call},"]
_CLOSINGS = ["Best regards,", "Kind regards,", "Cheers,", "Mit freundlichen Grüßen", "Cordialement,", "Saludos,", "Pozdrawiam,",
             "Thanks,", "Best,", "Many thanks,", "Groeten,", "Cordiali saluti,", "Atenciosamente,", "—"]
_REPLY_HEADERS = ["On {date_wrote}, {a_mailbox} wrote:", "Am {date_wrote} schrieb {a_mailbox}:",
                  "Le {date_wrote}, {a_mailbox} a écrit :",
                  "El {date_wrote}, {a_mailbox} escribió:", "-----Original Message-----\nFrom: {a_mailbox}\nSent: {date_wrote}\n"
                  "Subject: Re: {subject}", "{a_full} <{a_email}> schrieb am {date_wrote}:", "On {date_wrote} {a_full} wrote:"]
_SUBJECTS = ["Re: contract renewal", "Update bank details", "Your application", "Fwd: ID scan", "Re: invoice", "Appointment",
             "Re: access request", "Onboarding", "AW: Lieferung", "RE: urgent - payment", "Introduction", "Follow-up",
             "Re: parcel"]


def _sender_date(w: _World, lang: str = "en") -> Lab:
    r = w.r
    t = dt.datetime(2025, 9, 1, 7) + dt.timedelta(days=r.randrange(400), minutes=r.randrange(700))
    wd = _WEEKDAYS[t.weekday()]
    if lang == "de":
        return G(r.choice([f"{t:%d.%m.%Y} um {t:%H:%M}", f"{t.day}. {_MONTHS['de'][t.month - 1]} {t.year} um {t:%H:%M}"]),
                 "DATE_TIME")
    if lang == "fr":
        return G(f"{t.day} {_MONTHS['fr'][t.month - 1]} {t.year} à {t:%H:%M}", "DATE_TIME")
    if lang == "es":
        return G(f"{t.day} {_MONTHS['es'][t.month - 1][:3]} {t.year}, a las {t:%H:%M}", "DATE_TIME")
    return G(r.choice([f"{wd}, {t.day} {_MONTHS['en'][t.month - 1][:3]} {t.year} at {t:%H:%M}", f"{t:%d.%m.%Y} um {t:%H:%M}",
                       f"{t:%A, %B} {t.day}, {t.year} {t:%I:%M %p}", f"{t:%Y-%m-%d %H:%M}", f"{wd} {t:%d/%m/%Y %H:%M}"]),
                       "DATE_TIME")


def _signature(w: _World, res, who: str) -> list:
    r = w.r
    lines = [["\n", res(f"{who}_full") if r.random() < 0.8 else res(f"{who}_call")]]
    if r.random() < 0.75:
        lines.append(["\n", res(f"{who}_title"), r.choice([" | ", ", ", "\n"]), res(f"{who}_org")])
    phone_label = r.choice(["T: ", "Tel. ", "Mobile: ", "M ", "Phone: ", "☎ ", "Tel.: ", "Mob. "])
    if r.random() < 0.8:
        lines.append(["\n", phone_label, res(f"{who}_phone")])
    if r.random() < 0.6:
        lines.append(["\n", r.choice(["", "E: ", "Mail: "]), res(f"{who}_wemail")])
    if r.random() < 0.3:
        lines.append(["\n", res(f"{who}_addr")])
    if r.random() < 0.3:
        lines.append(["\n", res(f"{who}_web")])
    if r.random() < 0.2:
        lines.append(["\n", res(f"{who}_profile")])
    if r.random() < 0.2:
        lines.append(["\n", r.choice(["Registered office: ", "Sitz der Gesellschaft / ", "Company no. "]), res("reg")])
    if r.random() < 0.15:
        lines = [["\n", r.choice(["Sent from my iPhone", "Von meinem Android gesendet", "Envoyé de mon mobile"])]]
    return lines


def _email_message(w: _World, res, sender: str, recipient: str) -> list:
    r = w.r
    swap = {"a": sender, "b": recipient}

    def fix(t: str) -> str:  # write frames from a's point of view, rename for the actual sender
        return re.sub(r"\{([ab])_", lambda m: "{" + swap[m.group(1)] + "_", t)

    out: list = [_pieces(fix(r.choice(_GREETINGS)), res), "\n\n"]
    for i, body in enumerate(r.sample(_EMAIL_BODIES, r.randint(1, 3))):
        out += [_pieces(fix(body), res), "\n\n" if r.random() < 0.5 else " "]
    out += [r.choice(_CLOSINGS)]
    out += _signature(w, res, sender)
    return out


def _fam_email_thread(w: _World, doc: _Doc, res) -> None:
    r = w.r
    subject = r.choice(_SUBJECTS)
    if r.random() < 0.6:
        doc.put(["From: ", res("b_mailbox"), "\nTo: ", res("a_mailbox" if r.random() < 0.5 else "a_email")])
        if r.random() < 0.4:
            doc.put(["\nCc: ", res("c_email")])
        doc.put(["\nDate: ", _sender_date(w), f"\nSubject: {subject}\n\n"])
    doc.put(_email_message(w, res, "b", "a"))
    depth = r.choice([1, 1, 2])
    for level in range(depth):
        sender, recipient = ("a", "b") if level % 2 == 0 else ("b", "a")
        hdr = r.choice(_REPLY_HEADERS)
        header_pieces = _pieces(hdr.replace("{date_wrote}", "\x00").replace("{subject}", subject)
                                .replace("{a_", "{" + sender + "_"), res)
        lang = "de" if "schrieb" in hdr else "fr" if "écrit" in hdr else "es" if "escribió" in hdr else "en"
        header_pieces = [_sender_date(w, lang) if p == "\x00" else p for p in _split_nul(header_pieces)]
        doc.put(["\n\n"] + _quote(header_pieces, "> " * level))
        doc.put(["\n"] + _quote(_email_message(w, res, sender, recipient),
                                "> " * (level + 1) if r.random() < 0.85 else ">" * (level + 1)))


def _split_nul(pieces) -> list:
    out: list = []
    for p in _flatten(pieces):
        if isinstance(p, str) and "\x00" in p:
            parts = p.split("\x00")
            for i, part in enumerate(parts):
                if i:
                    out.append("\x00")
                out.append(part)
        else:
            out.append(p)
    return out


# CSV / JSON -----------------------------------------------------------------------------------

_COLS = {
    # key: (header variants, value function name)
    "id": (["id", "customer_id", "Kundennr", "ID", "recordId"], "rec"),
    "first": (["first_name", "firstName", "Vorname", "prénom", "nombre", "imię", "FIRST NAME"], "first"),
    "last": (["last_name", "lastName", "Nachname", "nom", "apellidos", "nazwisko", "SURNAME"], "last"),
    "full": (["name", "full_name", "Name", "client", "titular"], "full"),
    "email": (["email", "e-mail", "E-Mail", "courriel", "mail"], "email"),
    "phone": (["phone", "telefon", "Telefonnummer", "tel", "mobile", "téléphone"], "phone"),
    "dob": (["dob", "date_of_birth", "Geburtsdatum", "date_naissance", "fecha_nacimiento", "birthDate"], "dob"),
    "street": (["street", "Straße", "adresse", "calle", "address_line1"], "street"),
    "zip": (["zip", "PLZ", "code_postal", "cp", "postcode", "CEP"], "zip"),
    "city": (["city", "Ort", "ville", "ciudad", "miasto"], "city"),
    "address": (["address", "Anschrift", "full_address", "dirección"], "addr"),
    "iban": (["iban", "IBAN", "bank_iban"], "iban"),
    "card": (["card_number", "pan", "cc"], "card"),
    "natid": (["national_id", "tax_id", "Steuer-ID", "NIR", "DNI", "BSN", "ssn", "id_number"], "natid"),
    "acct": (["account_no", "Kontonummer", "account"], "acct"),
    "ip": (["last_ip", "ip", "signup_ip"], "ip"),
    "created": (["created_at", "updated", "synced_at", "erstellt_am"], "ts"),
    "order": (["last_order", "order_id"], "order"),
    "amount": (["amount", "total", "Betrag", "ltv"], "price"),
    "sku": (["sku", "product"], "sku"),
    "profile": (["linkedin", "profile_url", "github"], "profile"),
    "company": (["company", "employer", "Firma"], "org"),
    "title": (["job_title", "position", "Position"], "title"),
    "status": (["status", "state"], None),
    "uuid": (["uuid", "external_ref"], "uuid"),
}
_COL_SETS = [
    ["id", "first", "last", "email", "phone", "dob", "created"],
    ["full", "email", "street", "zip", "city", "iban", "status"],
    ["id", "full", "dob", "natid", "address", "phone"],
    ["uuid", "email", "ip", "created", "order", "amount"],
    ["first", "last", "company", "title", "email", "profile"],
    ["id", "full", "card", "amount", "sku", "created"],
    ["full", "acct", "iban", "natid", "status"],
    ["id", "last", "first", "street", "zip", "city", "phone", "email"],
]


def _cell_lab(w: _World, p: _P, res, kind: str | None) -> object:
    if kind is None:
        return w.r.choice(["active", "inactive", "pending", "closed", "verified", "1", "0"])
    if kind == "first":
        return G(p.given, "PERSON")
    if kind == "last":
        return G(p.surname, "PERSON")
    if kind in ("rec", "ts", "order", "price", "sku", "uuid"):
        return res(kind)
    attr = {"full": "name", "org": "org"}.get(kind, kind)
    return res_person(p, res, attr)


def res_person(p: _P, res, attr: str) -> object:
    # use the resolver's person rendering by temporarily binding the slot letter
    return res.__self_person__(p, attr)  # type: ignore[attr-defined]


def _plain_text(piece) -> str:
    return "".join(x.text if isinstance(x, Lab) else x for x in _flatten(piece))


def _fam_csv_export(w: _World, doc: _Doc, res) -> None:
    r = w.r
    cols = list(r.choice(_COL_SETS))
    if r.random() < 0.3:
        r.shuffle(cols)
    delim = r.choice([",", ",", ";", ";", "\t", "|"])
    quote_all = r.random() < 0.3
    if r.random() < 0.25:
        doc.put([r.choice(["# export ", "-- dump ", "Exported "]), res("ts"), r.choice([" by job ", " / batch "]), res("uuid"),
                 "\n"])
    headers = [r.choice(_COLS[c][0]) for c in cols]
    doc.put(delim.join(f'"{h}"' if quote_all else h for h in headers) + "\n")
    for _ in range(r.randint(2, 7)):
        p = _P(w)
        for j, c in enumerate(cols):
            if j:
                doc.put(delim)
            cell = _cell_lab(w, p, res, _COLS[c][1])
            text = _plain_text(cell)
            quoted = quote_all or delim in text or ('"' in text)
            doc.put(['"', cell, '"'] if quoted else cell)
        doc.put("\n")
    if r.random() < 0.3:
        doc.put([f"# {r.randint(2, 9)} rows, checksum ", res("sha256")])


_JSON_KEYS = {
    "camel": {"first": "firstName", "last": "lastName", "dob": "dob", "email": "email", "phone": "phoneNumber",
              "street": "street",
              "zip": "postalCode", "city": "city", "iban": "iban", "card": "cardNumber", "natid": "nationalId",
              "ip": "lastLoginIp",
              "profile": "profileUrl", "org": "employer", "title": "jobTitle", "acct": "accountNumber", "mrn": "mrn"},
    "snake": {"first": "first_name", "last": "last_name", "dob": "date_of_birth", "email": "email_address", "phone": "phone",
              "street": "address_line_1", "zip": "zip", "city": "city", "iban": "iban", "card": "pan", "natid": "tax_id",
              "ip": "ip",
              "profile": "social_url", "org": "company", "title": "title", "acct": "account_no", "mrn": "patient_mrn"},
    "de": {"first": "vorname", "last": "nachname", "dob": "geburtsdatum", "email": "email", "phone": "telefon",
           "street": "strasse",
           "zip": "plz", "city": "ort", "iban": "iban", "card": "kartennummer", "natid": "steuerId", "ip": "ip",
           "profile": "profil",
           "org": "arbeitgeber", "title": "position", "acct": "kontonummer", "mrn": "patientennummer"},
}


class _J:
    """A JSON writer that records spans: values are Lab, str, int, float, bool, None, list or dict."""

    def __init__(self, doc: _Doc, indent: int | None):
        self.doc = doc
        self.indent = indent

    def write(self, value, level: int = 0) -> None:
        d = self.doc
        nl = (lambda lv: "\n" + " " * (self.indent * lv)) if self.indent else (lambda lv: "")
        sep = ": " if self.indent else ":"
        if isinstance(value, dict):
            if not value:
                d.put("{}")
                return
            d.put("{")
            for i, (k, v) in enumerate(value.items()):
                d.put(("," if i else "") + nl(level + 1) + json.dumps(k, ensure_ascii=False) + sep)
                self.write(v, level + 1)
            d.put(nl(level) + "}")
        elif isinstance(value, list):
            d.put("[")
            for i, v in enumerate(value):
                d.put(("," if i else "") + nl(level + 1))
                self.write(v, level + 1)
            d.put(nl(level) + "]")
        elif isinstance(value, Lab):
            enc = json.dumps(value.text, ensure_ascii=False)
            assert enc == f'"{value.text}"', enc
            d.put(['"', value, '"'])
        else:
            d.put(json.dumps(value, ensure_ascii=False))


def _fam_json_export(w: _World, doc: _Doc, res) -> None:
    r = w.r
    style = r.choice(list(_JSON_KEYS))
    k = _JSON_KEYS[style]
    rp = res.__self_person__  # type: ignore[attr-defined]

    def person_obj(p: _P) -> dict:
        obj: dict = {"id": res("rec")} if r.random() < 0.7 else {"uuid": res("uuid")}
        if r.random() < 0.5:
            obj[k["first"]] = G(p.given, "PERSON")
            obj[k["last"]] = G(p.surname, "PERSON")
        else:
            obj["name"] = rp(p, "name")
        if r.random() < 0.7:
            obj[k["dob"]] = rp(p, "dob")
        contact = {k["email"]: rp(p, "email")}
        if r.random() < 0.8:
            contact[k["phone"]] = rp(p, "phone")
        obj["contact" if style != "de" else "kontakt"] = contact
        if r.random() < 0.6:
            obj["address" if style != "de" else "adresse"] = {k["street"]: rp(p, "street"), k["zip"]: rp(p, "zip"),
                                                              k["city"]: rp(p, "city"), "country": p.country}
        elif r.random() < 0.5:
            obj["address"] = rp(p, "addr")
        pay: dict = {}
        if r.random() < 0.6:
            pay[k["iban"]] = rp(p, "iban")
        if r.random() < 0.4:
            pay["card"] = {"number" if style != "snake" else "pan": rp(p, "card"),
                           "expiry": f"{r.randint(1, 12):02d}/{r.randint(27, 31)}"}
        if r.random() < 0.3:
            pay[k["acct"]] = rp(p, "acct")
        if pay:
            obj["payment" if style != "de" else "zahlung"] = pay
        if r.random() < 0.4:
            obj[k["natid"]] = rp(p, "natid")
        if r.random() < 0.35:
            obj[k["profile"]] = rp(p, "profile")
        if r.random() < 0.35:
            obj["employment"] = {k["org"]: rp(p, "org"), k["title"]: rp(p, "title")}
        if r.random() < 0.5:
            obj["orders"] = [{"orderId": res("order"), "sku": res("sku"), "total": res("price"), "createdAt": res("ts")}
                             for _ in range(r.randint(1, 3))]
        obj["meta"] = {"source": r.choice(["crm", "webshop", "app", "import"]), "schemaVersion": res("semver"),
                       "etag": res("sha")}
        if r.random() < 0.5:
            obj["meta"]["lastLogin"] = {"ip": rp(p, "ip"), "at": res("ts"), "client": res("ver4")}
        if r.random() < 0.3:
            obj["gdpr"] = {"consent": r.choice([True, False]), "consentedAt": res("ts")}
        return obj

    people = [_P(w) for _ in range(r.choice([1, 1, 1, 2, 3]))]
    if len(people) == 1 and r.random() < 0.6:
        value = {"customer" if style != "de" else "kunde": person_obj(people[0]), "exportedAt": res("ts"),
                 "requestId": res("uuid")}
    else:
        value = {"data": [person_obj(p) for p in people], "page": 1, "total": len(people), "next": None}
    _J(doc, r.choice([2, 2, 4, None])).write(value)


# Chat ------------------------------------------------------------------------------------------

_CHAT_USER = [
    "hi, i ordered {sku} {rel} and it still hasnt arrived, order {order}",
    "my name is {a_lower} and i live at {a_addr}",
    "its {a_lower}, like on the account",
    "you can call me on {a_phone} after 6",
    "email is {a_email} if thats easier",
    "the address should be {a_addr} not the old one",
    "my dob is {a_dob}",
    "i was {a_born} if you need it for verification",
    "here's my iban {a_iban} for the refund",
    "do you need my {a_natidl}?",
    "the card was {a_card} but i cancelled it",
    "my account number is {a_acct}",
    "lol i just typed my password in the wrong window, nvm",
    "the app says error {err} on version {semver}",
    "i'm on windows build {ver4} if that matters",
    "sorry, my wife {c_lower} usually handles this, her number is {c_phone}",
    "can you send the invoice to my husband {c_call}? {c_email}",
    "is {ticket} still open?",
    "my linkedin is {a_profile} if you want to verify who i am",
    "ok thx",
    "did u see {pubfig} at {place} lol",
    "the tracking {tracking} shows delivered but nothing here",
    "i paid {price}, not {price}",
    "@{b_handle} are you still there?",
    "pls hurry, i'm moving to {a_city} next week",
    "my ip is {a_ip} according to whatismyip",
    "SURNAME IS {a_name}",
    "this is {a_call} again from earlier",
    "{a_full}, customer since forever",
    "can u cancel order {order}? wrong size",
    "my flat number is missing on the label, it should say {a_street}",
]
_CHAT_AGENT = [
    "Hi {a_call}, thanks for reaching out! Could you share the order number?",
    "I can see order {order} here, it left our warehouse {rel}.",
    "For security, please confirm your date of birth and postcode.",
    "Thanks, I've updated the delivery address on {order}.",
    "Your case number is {ticket}; please keep it for reference.",
    "The refund of {price} will reach your account within 5 working days.",
    "Could you try updating to {semver}? The bug was fixed there.",
    "I've escalated this to my colleague {c_full}, who will e-mail you from {c_wemail}.",
    "Please never share full card numbers in chat, {a_call}. I've masked it on our side.",
    "Thanks {a_formal}, verification done.",
    "Our system shows {a_email} as your contact e-mail, is that still valid?",
    "The courier reference is {tracking}.",
    "Session {uuid} closed. Anything else I can help with?",
    "I see a login from {a_ip} at {ts}, was that you?",
    "One moment while I check with the warehouse in {city}.",
    "Our returns page is {url}.",
    "@{a_handle} I've sent you a DM with the label.",
    "Is {a_phone} the best number to reach you?",
    "Noted. Internal ref {rec}.",
    "Thanks for your patience!",
]


def _fam_chat_log(w: _World, doc: _Doc, res) -> None:
    r = w.r
    people = res.__people__  # type: ignore[attr-defined]
    a = people.setdefault("a", _P(w))
    b = people.setdefault("b", _P(w))
    style = r.choice(["irc", "brackets", "whatsapp", "slack", "plain"])
    t = dt.datetime(2026, 1, 1, 8) + dt.timedelta(days=r.randrange(320), minutes=r.randrange(600))
    user_lower = r.random() < 0.6
    user_lines = r.sample(_CHAT_USER, len(_CHAT_USER))
    agent_lines = r.sample(_CHAT_AGENT, len(_CHAT_AGENT))
    if style == "slack" and r.random() < 0.5:
        doc.put(["#support-", r.choice(["de", "emea", "apac", "vip"]), " | session ", res("uuid"), "\n"])
    for i in range(r.randint(4, 10)):
        is_user = i % 2 == 0 if r.random() < 0.8 else r.random() < 0.5
        p = a if is_user else b
        t += dt.timedelta(seconds=r.randint(5, 400))
        pool = user_lines if is_user else agent_lines
        line = pool.pop() if pool else "ok"
        pieces = _pieces(line, res)
        if is_user:
            pieces = [_typos(r, x) if isinstance(x, str)
                      else Lab(_typos(r, x.text, 0.2), x.type) if x.type == "STREET_ADDRESS" and r.random() < 0.4 else x
                      for x in _flatten(pieces)]
            if user_lower:
                pieces = [x.lower() if isinstance(x, str) else Lab(x.text.lower(), x.type, x.neg) for x in pieces]
        hm = t.strftime("%H:%M")
        if style == "irc":
            doc.put(["[", N(hm, "TIMESTAMP"), "] <", p.handle, "> ", pieces])
        elif style == "brackets":
            doc.put([N(t.strftime("%H:%M:%S"), "TIMESTAMP"), " @", p.handle, ": ", pieces])
        elif style == "whatsapp":
            name = G(p.full if r.random() < 0.7 else p.call, "PERSON") if is_user else G(p.call, "PERSON")
            doc.put(["[", N(t.strftime("%d/%m/%Y, %H:%M:%S"), "TIMESTAMP"), "] ", name, ": ", pieces])
        elif style == "slack":
            doc.put([G(p.full, "PERSON"), "  ", N(t.strftime("%I:%M %p").lstrip("0"), "TIMESTAMP"), "\n", pieces])
        else:
            doc.put([p.handle, " (", N(t.strftime("%Y-%m-%d %H:%M"), "TIMESTAMP"), "): ", pieces])
        doc.put("\n")


# OCR forms -------------------------------------------------------------------------------------

_FORM_TITLES = ["APPLICATION FOR ACCOUNT OPENING", "ANMELDUNG EINER WOHNUNG", "RENTAL APPLICATION FORM", "INSURANCE CLAIM FORM",
                "EMPLOYEE DETAILS / PERSONALBOGEN", "PATIENT REGISTRATION", "FORMULARIO DE SOLICITUD", "WNIOSEK O WYDANIE KARTY",
                "CHANGE OF ADDRESS NOTIFICATION", "MEMBERSHIP APPLICATION", "DIRECT DEBIT MANDATE / MANDAT SEPA"]


def _spaced(s: str) -> str:
    return " ".join(s.replace(" ", "  "))


def _ocr_break(r: random.Random, s: str) -> str:
    if len(s) > 12 and r.random() < 0.25:
        i = r.randrange(4, len(s) - 4)
        if s[i] != " " and s[i - 1] != " ":
            return s[:i] + r.choice(["-\n", "\n"]) + s[i:]
    return s


def _fam_ocr_form(w: _World, doc: _Doc, res) -> None:
    r = w.r
    p = res.__people__.setdefault("a", _P(w))  # type: ignore[attr-defined]
    upper = r.random() < 0.75
    U = (lambda s: s.upper()) if upper else (lambda s: s)
    gap = lambda: " " * r.choice([1, 2, 2, 3, 5])  # noqa: E731
    sep = r.choice([": ", ":", " . . . ", " | ", ":  ", " _ "])

    def label(s: str) -> str:
        s = U(s)
        if r.random() < 0.15:
            s = s.replace("O", "0", 1) if r.random() < 0.5 else s.replace("I", "1", 1)
        return s

    def field(lbl: str, value, newline: bool = True) -> None:
        doc.put([label(lbl), sep, value, "\n" if newline else gap()])

    doc.put([r.choice(_FORM_TITLES), "\n"])
    if r.random() < 0.6:
        doc.put([r.choice(["FORM ", "FORMULAR ", "REF. "]), r.choice(["A-12 REV. ", "W-7 REV. ", "KT-3 V"]), res("semver"),
                 gap(), "PAGE 1 OF ", str(r.randint(1, 3)), "\n"])
    doc.put(["-" * r.randint(10, 40), "\n"])
    sur = U(p.surname)
    giv = U(p.given)
    if r.random() < 0.2:
        sur = _spaced(sur)
    if r.random() < 0.1:
        giv = _spaced(giv)
    field(r.choice(["Surname", "Nachname", "Nom", "Apellidos", "Nazwisko", "Family name"]), G(sur, "PERSON"), newline=False)
    field(r.choice(["Given names", "Vorname(n)", "Prénoms", "Nombre", "Imiona", "First name"]), G(giv, "PERSON"))
    dob = p.dob
    dob_s = r.choice([f"{dob.day:02d} {dob.month:02d} {dob.year}", f"{dob.day:02d}/{dob.month:02d}/{dob.year}",
                      f"{dob.day:02d}.{dob.month:02d}.{dob.year % 100:02d}", U(p.dob_str), " ".join(f"{dob:%d%m%Y}")])
    field(r.choice(["Date of birth", "Geburtsdatum", "Date de naissance", "DOB", "Data urodzenia", "Fecha de nacimiento"]),
          G(dob_s, "DATE_OF_BIRTH"), newline=r.random() < 0.5)
    if r.random() < 0.5:
        field(r.choice(["Nationality", "Staatsangehörigkeit", "Nationalité"]), G(U(p.nrp), "NRP"), newline=False)
        doc.put([label("Sex"), sep, r.choice(["[X] M [ ] F", "[ ] M [X] F", "F", "M", "W"]), "\n"])
    if r.random() < 0.6:
        field(r.choice(["Address", "Anschrift", "Adresse", "Domicilio", "Adres zamieszkania"]), G(_ocr_break(r, U(p.addr.line)),
                                                                                                  "STREET_ADDRESS"))
        field(r.choice(["Postcode", "PLZ", "Code postal", "C.P.", "Kod pocztowy", "ZIP"]), G(U(p.addr.zip), "ZIP_CODE"),
              newline=False)
        field(r.choice(["City", "Ort", "Ville", "Localidad", "Miejscowość"]), G(U(p.addr.city), "LOCATION"))
    else:
        field(r.choice(["Residential address", "Wohnanschrift", "Home address"]), G(_ocr_break(r, U(p.addr.full)),
                                                                                    "STREET_ADDRESS"))
    field(r.choice(["Tel", "Telephone", "Telefon", "Tél.", "Mobile"]), G(p.phone, "PHONE_NUMBER"), newline=r.random() < 0.5)
    if r.random() < 0.7:
        field(r.choice(["E-mail", "EMAIL", "Courriel"]), G(U(p.email) if r.random() < 0.4 else p.email, "EMAIL_ADDRESS"))
    else:
        doc.put("\n")
    if r.random() < 0.7:
        field(U(p.natid_label), G(U(p.natid), "NATIONAL_ID"))
    if r.random() < 0.5:
        field(r.choice(["IBAN", "Account (IBAN)", "Compte IBAN"]), G(p.iban, "IBAN_CODE"))
    if r.random() < 0.3:
        field(r.choice(["Policy no.", "Versicherungsnr.", "Member ID"]), G(p.policy, "ACCOUNT_NUMBER"))
    if r.random() < 0.25:
        field(r.choice(["Patient no.", "MRN", "Hospital number"]), G(p.mrn, "MEDICAL_RECORD_NUMBER"))
    if r.random() < 0.4:
        field(r.choice(["Employer", "Arbeitgeber", "Employeur"]), G(U(p.org.name), "ORGANIZATION"), newline=False)
        field(r.choice(["Occupation", "Beruf", "Profession"]), G(U(p.title), "TITLE"))
    if r.random() < 0.4:
        field(r.choice(["Emergency contact", "Kontaktperson", "Next of kin"]),
              [G(U(res("c_full").text), "PERSON"), gap(), G(res("c_phone").text, "PHONE_NUMBER")])
    doc.put(["\n", label(r.choice(["Signature", "Unterschrift", "Signé"])), sep, r.choice(["______", "~~~ ~", "(signed)", "/s/ ",
                                                                                           ""]),
             gap(), label("Date"), sep, res("date"), "\n"])
    if r.random() < 0.5:
        doc.put([label("For office use only"), gap(), label("Ref"), sep, res("rec"), gap(), res("case"), "\n"])
    if r.random() < 0.3:
        doc.put(["SCAN ", res("uuid"), " ", res("ts"), " DPI 300"])


# Clinical / insurance ----------------------------------------------------------------------------

_CLIN_HEAD = [
    "Patient: {a_name} (MRN {a_mrn}), {a_born}",
    "PATIENT {a_name} | MRN: {a_mrn} | DOB: {a_dob}",
    "Name: {a_name}\nHospital no.: {a_mrn}\nDate of birth: {a_dob}",
    "Re: {a_formal}, {a_born}, patient ID {a_mrn}",
    "Insured person: {a_name}, member {a_policy}, {a_born}",
    "Pt. {a_name}, {a_age} y/o, MRN {a_mrn}",
]
_CLIN_BODY = [
    "Seen in clinic on {date} by {c_formal}.",
    "{a_age}-year-old {a_nrp} national presenting with chest pain since {rel}.",
    "Metformin 500 mg BID, lot {lot}, started {rel}.",
    "HbA1c 6.8% on {date}; eGFR 74.",
    "Referred to {c_full} ({c_title}) at {c_org}, fax {c_phone}.",
    "Next of kin: {b_full}, tel. {b_phone}.",
    "Home address on file: {a_addr}.",
    "Claim {claim} submitted under policy {a_policy}; amount {price}.",
    "Lab accession {rec}, specimen received {ts}.",
    "Encounter {case}, ward 4B, bed 12.",
    "Patient reachable at {a_phone} or {a_email}.",
    "Discharged {rel} with follow-up on {when}.",
    "Insurer requests {a_natidl} for reimbursement.",
    "Reimbursement to IBAN {a_iban}.",
    "Imaging study UID {uuid} uploaded to PACS.",
    "Telehealth session from IP {a_ip}, device firmware {semver}.",
    "Previous MRN {a_mrn} merged into the current record.",
    "Allergies: penicillin. BP 138/86, HR 72.",
    "GP: {c_formal}, {c_addr}.",
    "Dictated by {c_name}, transcribed {ts}.",
    "Mother ({b_name}) reports the patient was {a_born} at 32 weeks.",
    "Prescription {rec} sent to the pharmacy on {date}.",
    "Pre-authorisation {claim} approved for {price}.",
    "Interpreter requested ({a_nrp}).",
    "The patient asks that letters go to {a_addr} only.",
]


def _fam_clinical_note(w: _World, doc: _Doc, res) -> None:
    r = w.r
    _tpl(doc, res, r.choice(_CLIN_HEAD))
    doc.put(["\n", r.choice(["", "CLINICAL NOTE\n", "Discharge summary\n", "Arztbrief\n", "Claim assessment\n"])])
    sep = r.choice([" ", "\n", "\n- "])
    for i, body in enumerate(r.sample(_CLIN_BODY, r.randint(3, 7))):
        doc.put(sep if i else "")
        _tpl(doc, res, body)


# CV ----------------------------------------------------------------------------------------------

_CV_BULLETS = [
    "Migrated 40 services to Kubernetes {semver}, cutting deploy time by 60%.",
    "Led a team of 6 at {c_org}; reported to {c_full}.",
    "Built the billing pipeline behind {url}.",
    "Maintained the Windows client (build {ver4}).",
    "Reduced p95 latency from 840 ms to 210 ms.",
    "Negotiated supplier contracts worth {price} per year.",
    "Introduced on-call runbooks; MTTR down 35%.",
    "Shipped release {semver} two weeks early.",
    "Managed payroll for 300 staff across 4 countries.",
    "Open-source maintainer, see {a_profile}.",
    "Mentored 12 junior engineers.",
    "Awarded employee of the year {rel}.",
]


def _fam_resume(w: _World, doc: _Doc, res) -> None:
    r = w.r
    p = res.__people__.setdefault("a", _P(w))  # type: ignore[attr-defined]
    rp = res.__self_person__  # type: ignore[attr-defined]
    doc.put([G(p.full.upper() if r.random() < 0.4 else p.full, "PERSON"), "\n", rp(p, "title"), "\n"])
    contact = [rp(p, "email"), rp(p, "phone"), rp(p, "profile")]
    if r.random() < 0.5:
        contact.append(G(f"https://github.com/{p.handle.replace('.', '')}", "PROFILE_URL"))
    sep = r.choice([" | ", " · ", "\n", " • "])
    for i, c in enumerate(contact):
        doc.put([sep if i else "", c])
    doc.put("\n")
    if r.random() < 0.7:
        doc.put([r.choice(["Address: ", "Anschrift: ", "", "Adresse : "]), rp(p, "addr"), "\n"])
    if r.random() < 0.6:
        doc.put([r.choice(["Date of birth: ", "Geburtsdatum: ", "Born: ", "Date de naissance : ", "Fecha de nacimiento: "]),
                 rp(p, "dob"), r.choice([", ", " | Nationality: ", " · "]), rp(p, "nrp"), "\n"])
    doc.put(["\n", r.choice(["PROFILE", "Summary", "Über mich", "Profil"]), "\n"])
    doc.put([r.choice(["Experienced ", "Pragmatic ", "Bilingual ", ""]), "professional",
             " with ", str(r.randint(3, 20)), " years in ", r.choice(["logistics", "fintech", "healthcare", "retail", "SaaS"]),
             ", based in ", rp(p, "city"), ".\n\n"])
    doc.put([r.choice(["EXPERIENCE", "Berufserfahrung", "Expérience"]), "\n"])
    bullets = r.sample(_CV_BULLETS, len(_CV_BULLETS))
    for _ in range(r.randint(1, 3)):
        start = r.randint(2008, 2023)
        doc.put([res("company"), ", ", res("city"), " — ", G(f"{r.randint(1, 12):02d}/{start}", "DATE_TIME"), " – ",
                 G(r.choice(["present", f"{r.randint(1, 12):02d}/{min(start + r.randint(1, 5), 2026)}"]),
                   "DATE_TIME") if r.random() < 0.9
                 else "heute", "\n"])
        for bullet in [bullets.pop() for _ in range(r.randint(1, 3))]:
            doc.put("- ")
            _tpl(doc, res, bullet)
            doc.put("\n")
    if r.random() < 0.6:
        doc.put(["\n", r.choice(["REFERENCES", "Referenzen", "Références"]), "\n"])
        _tpl(doc, res, r.choice(["{b_full}, {b_title}, {b_org} - {b_wemail}, {b_phone}", "{b_formal} ({b_wemail})",
                                  "Available on request.", "{b_name}, {b_phone}"]))
        doc.put("\n")


# KYC / payroll -------------------------------------------------------------------------------------

_KYC = [
    "{case} opened {ts} by analyst {b_name}.",
    "Customer {a_full} ({a_born}, {a_nrp} national) presented {a_natidl}.",
    "Declared address: {a_addr}. Proof of address: utility bill dated {date}.",
    "Salary account {a_acct} at {a_org}; IBAN {a_iban}.",
    "Login from {a_ip} flagged: geolocation does not match {a_city}.",
    "Card {a_card} blocked after {price} spent at a merchant in {city}.",
    "Transaction {txn} of {price} reversed {rel}.",
    "Employee {a_full}, {a_title}, payroll ID {rec}; {a_natidl}.",
    "PEP screening: no match. Note: name similarity with {pubfig} dismissed, different date of birth.",
    "Beneficial owner: {c_full}, {c_born}, resident at {c_addr}.",
    "Phone verification sent to {a_phone}; code accepted.",
    "E-mail {a_email} confirmed; device fingerprint {sha}.",
    "Direct debit mandate {rec} signed for IBAN {a_iban}.",
    "Routing: {bank_code}, account {a_acct}.",
    "Customer states they were born on {a_dob} - matches ID.",
    "Risk score 0.37 (model {semver}); reviewed by {b_formal}.",
    "Request {uuid} retried 3 times; last error {err}.",
    "Spouse {c_name} added as joint holder; {c_natidl}.",
    "Source of funds: sale of property, contract {invoice}.",
    "Customer profile cross-checked against {a_profile}.",
    "Company {company} ({reg}) listed as employer.",
    "Next review {when}.",
    "Tax residency self-certification received; {a_natidl}.",
    "Outgoing transfer to {c_iban} ({c_full}) held for review.",
]


def _fam_kyc_case(w: _World, doc: _Doc, res) -> None:
    r = w.r
    doc.put([r.choice(["KYC REVIEW", "Onboarding check", "Payroll change request", "Fraud alert", "AML case note"]), "\n"])
    for i, body in enumerate([_KYC[0]] + r.sample(_KYC[1:], r.randint(3, 7))):
        doc.put(r.choice([" ", "\n", "\n* "]) if i else "")
        _tpl(doc, res, body)


# No-PII families ------------------------------------------------------------------------------------

_RELEASE_LINES = [
    "Fixed a crash when importing files larger than 2 GB ({ticket}).",
    "Bumped the minimum supported client to {semver}.",
    "Windows: tested on build {ver4}.",
    "Migration {uuid} adds an index on orders.created_at.",
    "Reverted {sha} which broke the nightly.",
    "Docker image digest sha256:{sha256}.",
    "Pricing page now shows {price} for the Team plan.",
    "Deprecated the v1 export endpoint; it will be removed {rel}.",
    "Barcode scanner now accepts UPC {upc} and EAN {ean} test codes.",
    "Thanks to everyone who reported {ticket} and {ticket}.",
    "Default port changed to {port}.",
    "Docs moved to {url}.",
    "Release date: {date}.",
    "Hotfix for error {err} on login.",
    "Performance: 18% fewer allocations in the parser.",
]
_LOG_LINES = [
    "{ts} INFO  worker[{build}] starting job {uuid}",
    "{ts} DEBUG cache hit key={sha}",
    "{ts} WARN  retrying request {uuid} after {err}",
    "Step 4/12 : RUN pip install app=={semver}",
    "---> Running in {sha}",
    "Successfully built {sha}",
    "{ts} INFO  listening on {port}",
    "{ts} ERROR upstream timed out (agent {ver4})",
    "Downloading wheel ({price} budget remaining) sha256={sha256}",
    "{ts} INFO  processed {build} records in 4.2s",
    "##[section]Finishing: build #{build}",
    "Checking out {sha} (refs/tags/{semver})",
]
_NEWS = [
    "{pubfig} visited {place} on Tuesday, where crowds gathered despite the rain.",
    "Shares of {company} fell 3% after {pubfig} announced new tariffs.",
    "{pubfig} and {pubfig} met in {city} {rel} to discuss energy prices.",
    "Tourist numbers at {place} rose 12% last year, officials in {city} said.",
    "{pubfig} told reporters the deal was worth {price} per unit.",
    "The summit, hosted near {place}, ended {rel} without a joint statement.",
    "Critics of {pubfig} said the reform came too late.",
    "In an interview, {pubfig} praised {company} for opening a plant in {city}.",
    "Restoration work on {place} is expected to finish {rel}.",
    "{pubfig} is due to address parliament on {date}.",
]


def _fam_release_notes(w: _World, doc: _Doc, res) -> None:
    r = w.r
    doc.put(["## ", res("semver"), " (", res("date"), ")\n\n"])
    for line in r.sample(_RELEASE_LINES, r.randint(3, 7)):
        doc.put("- ")
        _tpl(doc, res, line)
        doc.put("\n")


def _fam_build_log(w: _World, doc: _Doc, res) -> None:
    r = w.r
    for line in [r.choice(_LOG_LINES) for _ in range(r.randint(4, 10))]:
        _tpl(doc, res, line)
        doc.put("\n")


def _fam_inventory_export(w: _World, doc: _Doc, res) -> None:
    r = w.r
    delim = r.choice([";", ",", "\t"])
    doc.put(delim.join(["sku", "ean", "description", "qty", "unit_price", "bin", "lot", "updated_at"]) + "\n")
    items = ["USB-C cable 2m", "Desk lamp LED", "Notebook A5 dotted", "Coffee beans 1kg", "Running shoe", "Screwdriver set",
             "Phone case", "Yoga mat", "HDMI adapter", "Water bottle 750ml"]
    for _ in range(r.randint(3, 8)):
        doc.put([res("sku"), delim, res("ean") if r.random() < 0.6 else res("upc"), delim, r.choice(items), delim,
                 str(r.randint(0, 900)), delim, res("price"), delim,
                 f"{r.choice('ABCD')}-{r.randint(1, 30):02d}-{r.randint(1, 9):02d}",
                 delim, res("lot"), delim, res("ts"), "\n"])


def _fam_news(w: _World, doc: _Doc, res) -> None:
    r = w.r
    for line in r.sample(_NEWS, r.randint(2, 4)):
        _tpl(doc, res, line)
        doc.put(" ")


_FAMILY_FN = {
    "email_thread": _fam_email_thread, "csv_export": _fam_csv_export, "json_export": _fam_json_export, "chat_log": _fam_chat_log,
    "ocr_form": _fam_ocr_form, "clinical_note": _fam_clinical_note, "resume": _fam_resume, "kyc_case": _fam_kyc_case,
    "release_notes": _fam_release_notes, "build_log": _fam_build_log, "inventory_export": _fam_inventory_export,
    "news": _fam_news,
}


# ---------------------------------------------------------------------------------------------
# Assembly


def _make_fakers() -> dict[str, Faker]:
    return {loc: Faker(loc) for loc in _LOCALES}


def _build(n: int, seed: int) -> tuple[list, list]:
    plan_rng = random.Random(f"heldout-plan:{seed}")
    n_nopii = round(n * 0.10)
    plan = [NO_PII_FAMILIES[i % len(NO_PII_FAMILIES)] for i in range(n_nopii)]
    plan += [PII_FAMILIES[i % len(PII_FAMILIES)] for i in range(n - n_nopii)]
    plan_rng.shuffle(plan)
    fakers = _make_fakers()
    checks: list = []
    records = []
    for i, family in enumerate(plan):
        r = random.Random(f"heldout:{seed}:{i}")
        for f in fakers.values():
            f.seed_instance(r.randrange(2**31))
        w = _World(r, fakers, checks)
        people: dict[str, _P] = {}
        res = _resolver(w, people)
        # escape hatches used by families that render a given _P directly
        slot_people = people

        def render(p: _P, attr: str, _res=res, _people=slot_people) -> object:
            saved = _people.get("z")
            _people["z"] = p
            try:
                return _res_z(_res, attr)
            finally:
                if saved is None:
                    _people.pop("z", None)
                else:
                    _people["z"] = saved

        res.__self_person__ = render  # type: ignore[attr-defined]
        res.__people__ = people  # type: ignore[attr-defined]
        case = "as_is"
        if family in PII_FAMILIES:
            roll = r.random()
            case = "lower" if roll < 0.07 else "upper" if roll < 0.12 else "as_is"
        doc = _Doc(case)
        _FAMILY_FN[family](w, doc, res)
        text = doc.text()
        # strip trailing whitespace without disturbing offsets
        end = len(text.rstrip())
        records.append(GoldRecord(id=f"heldout-{seed}-{i:05d}", text=text[:end], spans=tuple(doc.spans), source=family,
                                  hard_negatives=tuple(doc.negs)))
    return records, checks


def _res_z(res, attr: str) -> object:
    return res(f"z_{attr}")


def build_heldout_corpus(n: int = 1000, seed: int = 20261203) -> list[GoldRecord]:
    """About n labelled records; the same arguments always give the same corpus, whatever the global random state."""
    return _build(n, seed)[0]


# ---------------------------------------------------------------------------------------------
# Self-check


def _self_check() -> None:
    import time

    t0 = time.time()
    records, checks = _build(1000, 20261203)
    elapsed = time.time() - t0
    again = build_heldout_corpus(1000, 20261203)
    errors: list[str] = []
    if records != again:
        errors.append("not deterministic")
    random.seed(1)
    first = build_heldout_corpus(50, 7)
    random.seed(99)
    if build_heldout_corpus(50, 7) != first:
        errors.append("depends on global random state")
    extra, extra_checks = _build(3000, 11)
    checks = checks + extra_checks
    checked_values = set()
    for kind, value in checks:
        if not VALIDATORS[kind](value):
            errors.append(f"checksum {kind} {value}")
        checked_values.add(re.sub(r"[\s.\-/]", "", value).upper())
    if len({rec.id for rec in records}) != len(records):
        errors.append("duplicate ids")
    for rec in records + extra:
        for s in rec.spans + rec.hard_negatives:
            if rec.text[s.start:s.end] != s.value:
                errors.append(f"{rec.id}: offset {s}")
            if not s.value or s.value != s.value.strip():
                errors.append(f"{rec.id}: untrimmed span {s!r}")
        for s in rec.spans:
            if s.type not in _ALL_TYPES:
                errors.append(f"{rec.id}: unknown type {s.type}")
            if s.type in ("NATIONAL_ID", "IBAN_CODE", "CREDIT_CARD"):
                norm = re.sub(r"[\s.\-/]", "", s.value).upper()
                if norm not in checked_values:
                    errors.append(f"{rec.id}: {s.type} {s.value} has no checksum record")
        for group in (rec.spans, rec.hard_negatives):
            ordered = sorted(group, key=lambda s: s.start)
            for x, y in zip(ordered, ordered[1:]):
                if y.start < x.end:
                    errors.append(f"{rec.id}: overlap {x} {y}")
        for hn in rec.hard_negatives:
            if hn.type in _ALL_TYPES:
                errors.append(f"{rec.id}: hard negative with a gold type {hn}")
            for s in rec.spans:
                if hn.start < s.end and s.start < hn.end:
                    errors.append(f"{rec.id}: hard negative {hn} overlaps {s}")
        if rec.source in NO_PII_FAMILIES and any(s.type in PII_TYPES for s in rec.spans):
            errors.append(f"{rec.id}: PII in a no-PII family")
    by_source = Counter(r.source for r in records)
    by_type = Counter(s.type for r in records for s in r.spans)
    by_neg = Counter(s.type for r in records for s in r.hard_negatives)
    no_pii = sum(1 for r in records if not any(s.type in PII_TYPES for s in r.spans))
    by_check = Counter(k for k, _ in checks)
    print(f"{len(records)} records built in {elapsed:.1f}s")
    print("per source:", dict(sorted(by_source.items())))
    print("PII types:", {k: v for k, v in sorted(by_type.items()) if k in PII_TYPES})
    print("context types:", {k: v for k, v in sorted(by_type.items()) if k not in PII_TYPES})
    print("hard negatives:", dict(sorted(by_neg.items())))
    print("checksummed values checked (4000 records):", dict(sorted(by_check.items())))
    print("records without PII:", no_pii)
    print("lower/upper-case records:", sum(1 for r in records if r.text == r.text.lower()),
          sum(1 for r in records if r.text == r.text.upper()))
    if errors:
        print(f"{len(errors)} errors, first 20:")
        for e in errors[:20]:
            print("  ", e)
        raise SystemExit(1)
    print("self-check passed")


if __name__ == "__main__":
    _self_check()
