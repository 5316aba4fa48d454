"""Recognizers for what vanilla Presidio misses or gets wrong (measured in bench/redaction.py).

Each is a Presidio recognizer, so the analyzer's context enhancement, thresholds and result
format apply unchanged. Validation (Luhn, mod-97, phonenumbers, ipaddress) keeps precision up on
the hard negatives of support and log text: order numbers, SKUs, versions, prices, timestamps.
"""

from __future__ import annotations

import ipaddress
import re
from typing import List, Optional

import phonenumbers
from presidio_analyzer import AnalysisExplanation, EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult


def _result(recognizer: EntityRecognizer, entity: str, start: int, end: int, score: float) -> RecognizerResult:
    """A result with the explanation Presidio's context enhancer expects to find."""
    explanation = AnalysisExplanation(recognizer=recognizer.name, original_score=score)
    return RecognizerResult(entity, start, end, score, analysis_explanation=explanation,
                            recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: recognizer.name,
                                                  RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: recognizer.id})

# ---------------------------------------------------------------------------- payment cards

# Issuer prefixes (IIN ranges) and the lengths each issues; a Luhn-valid number outside them
# is more likely a tracking or order number than a card.
_CARD_ISSUERS = [
    (("4",), (13, 16, 19)),  # Visa
    (tuple(str(p) for p in range(51, 56)) + tuple(str(p) for p in range(2221, 2721)), (16,)),  # Mastercard incl. 2-series
    (("34", "37"), (15,)),  # Amex
    (("6011", "65") + tuple(str(p) for p in range(644, 650)), (16, 17, 18, 19)),  # Discover
    (tuple(str(p) for p in range(3528, 3590)), (16, 17, 18, 19)),  # JCB
    (("1800", "2131"), (15,)),  # JCB, older 15-digit ranges
    (("36", "38", "39") + tuple(str(p) for p in range(300, 306)), (14, 15, 16, 19)),  # Diners
    (("62",), (16, 17, 18, 19)),  # UnionPay
    (("50",) + tuple(str(p) for p in range(56, 70)), tuple(range(12, 20))),  # Maestro
]


def luhn_valid(digits: str) -> bool:
    total, double = 0, False
    for ch in reversed(digits):
        d = ord(ch) - 48
        if double:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        double = not double
    return total % 10 == 0


def card_issuer_plausible(digits: str) -> bool:
    return any(digits.startswith(prefixes) and len(digits) in lengths for prefixes, lengths in _CARD_ISSUERS)


class PaymentCardRecognizer(PatternRecognizer):
    """13–19 digit cards, 2-series Mastercard and 19-digit Visa included, Luhn-checked."""

    PATTERNS = [Pattern("card", r"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-])", 0.3)]
    CONTEXT = ["card", "credit", "debit", "visa", "mastercard", "amex", "cc", "payment", "charged", "pan"]

    def __init__(self):
        super().__init__(supported_entity="CREDIT_CARD", patterns=self.PATTERNS, context=self.CONTEXT,
                         name="PaymentCardRecognizer")

    def validate_result(self, pattern_text: str) -> Optional[bool]:
        digits = re.sub(r"[ -]", "", pattern_text)
        separators = set(re.findall(r"[ -]", pattern_text))
        if len(separators) > 1:  # "4111 1111-1111 1111" is not how anyone writes a card
            return False
        return luhn_valid(digits) and card_issuer_plausible(digits)

    def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)
        # Right after "card" ("my card 3523…", "card no 0604…"), a Luhn-valid number is a card even
        # from an issuer range the table does not list.
        seen = {(x.start, x.end) for x in results}
        for match in self._AFTER_CARD.finditer(text):
            digits = re.sub(r"[ -]", "", match.group("number"))
            if (match.start("number"), match.end("number")) not in seen and 12 <= len(digits) <= 19 and luhn_valid(digits):
                results.append(_result(self, "CREDIT_CARD", match.start("number"), match.end("number"), 0.6))
        return results

    _AFTER_CARD = re.compile(r"(?i)\b(?:card|visa|mastercard|amex|debit|credit)\b(?:\s+(?:no\.?|number|nr\.?|ending|#))?[:\s#]{1,3}"
                             r"(?P<number>\d(?:[ -]?\d){11,18})(?![\w-])")


# ---------------------------------------------------------------------------- phone numbers

_PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "BE", "CH", "AT", "IE", "PT", "SE", "NO", "DK", "FI",
                  "PL", "CZ", "IN", "AU", "CA", "BR", "MX", "JP", "SG", "ZA", "IL", "NZ")
# A candidate: optional +, (, then digits with the separators people type. Letters or a dash
# glued to either end (ORD-123456, SKU-1234-567) rule a candidate out before parsing.
_PHONE_CANDIDATE = re.compile(r"(?<![\w./:-])(?:\+|00)?\(?\d[\d \t().-]{5,18}\d(?![\w/:]|[.-]\d)")
_DATE_LIKE = re.compile(r"^\d{1,4}[-./]\d{1,2}[-./]\d{1,4}$|^\d{4}-\d{2}-\d{2}")
_TIME_LIKE = re.compile(r"\d{1,2}:\d{2}")


class InternationalPhoneRecognizer(EntityRecognizer):
    """Phone numbers of many countries, validated by libphonenumber (the `phonenumbers` package).

    Presidio's own recognizer scans the whole text once per region; finding candidates with one
    regex and parsing only those is both broader (28 regions) and faster.
    """

    # Not "number": "order number 58812943" is the commonest false alarm it would boost.
    CONTEXT = ["phone", "call", "tel", "telephone", "mobile", "cell", "reach", "contact", "fax", "whatsapp", "ring", "text"]
    # A bare digit run (no +, no separators) is a phone only where the text says so; elsewhere it
    # is a record, order, job or barcode number.
    _CUE_BEFORE = re.compile(r"(?i)(?<![^\W_])(?:phone|ph|tel|telephone|mobile|mob|cell|call|callback|fax|whatsapp|ring|text|"
                             r"sms|dial|contact|reach|number is|landline|handy|telefon|téléphone|portable|móvil|movil|"
                             r"telefono|m\.|t\.)(?![^\W_])")
    _REFERENCE_BEFORE = re.compile(r"(?i)(?:order|invoice|inv|ticket|case|sku|upc|ean|gtin|barcode|ref|reference|tracking|"
                                   r"lot|batch|id|job|record|build|commit|version|serial|part|item|transaction|txn|claim|"
                                   r"shipment|parcel|booking|po|so|rma)\W{0,3}(?:no\.?|nr\.?|number|#)?\W{0,3}#?$")

    BARE_DIGITS_SCORE = 0.4

    def __init__(self, regions=_PHONE_REGIONS):
        self.regions = regions
        super().__init__(supported_entities=["PHONE_NUMBER"], name="InternationalPhoneRecognizer", context=self.CONTEXT)

    def load(self) -> None:
        pass

    def analyze(self, text: str, entities: List[str], nlp_artifacts=None) -> List[RecognizerResult]:
        results = []
        for match in _PHONE_CANDIDATE.finditer(text):
            candidate = match.group().rstrip(" .-(")
            digits = re.sub(r"\D", "", candidate)
            if not 7 <= len(digits) <= 15 or _DATE_LIKE.match(candidate.strip()) or _TIME_LIKE.search(candidate):
                continue
            if re.fullmatch(r"\d+\.\d+", candidate):  # a decimal number, a price
                continue
            # "16.6.38.298" is a version: dotted phone numbers never have a one-digit group.
            if "." in candidate and any(len(g) == 1 for g in re.split(r"[. ]+", candidate.strip("+ ()"))):
                continue
            start = match.start() + (len(match.group()) - len(match.group().lstrip()))
            before = text[max(0, start - 40):start]
            international = candidate.startswith("+")
            if not international and self._REFERENCE_BEFORE.search(before):
                continue
            if candidate.isdigit() and not self._CUE_BEFORE.search(before):
                continue
            score = self._score(candidate)
            if score:
                results.append(_result(self, "PHONE_NUMBER", start, start + len(candidate.strip()), score))
        return results

    def _score(self, candidate: str) -> float:
        # "+" or the international prefix 00 followed by a country code (which never starts with 0).
        international = candidate.startswith("+") or (candidate.startswith("00") and candidate[2:3] not in ("", "0"))
        regions = (None,) if candidate.startswith("+") else self.regions
        for region in regions:
            try:
                number = phonenumbers.parse(candidate if region or not candidate.startswith("00") else "+" + candidate[2:], region)
            except phonenumbers.NumberParseException:
                continue
            formatted = international or bool(re.search(r"[\s().-]", candidate.strip()))
            if phonenumbers.is_valid_number(number):
                # A bare digit run could be anything; separators or a + make it look dialled.
                return 0.75 if formatted else self.BARE_DIGITS_SCORE
            if international and phonenumbers.is_possible_number(number):
                # "+33 4 00 62 96 69": dialled with a country code, the right length for that
                # country, in a range libphonenumber does not list as assigned (yet).
                return 0.6
        return 0.0


# ---------------------------------------------------------------------------- street addresses

def _street_words() -> tuple[list[str], list[str]]:
    """Street-type words: USPS suffixes (Divide, Harbors, Corners, …) as Faker lists them, and the
    continental prefixes (Calle, Vial, Rua, Viale, …) of Faker's European locales."""
    import importlib

    suffixes = {"street", "st", "avenue", "ave", "road", "rd", "boulevard", "blvd", "lane", "ln", "drive", "dr", "court",
                "ct", "way", "place", "pl", "terrace", "square", "sq", "crescent", "close", "parkway", "highway", "row",
                "walk", "gardens", "grove", "mews", "hill", "broadway"}
    prefixes = {"rue", "avenue", "av", "boulevard", "bd", "place", "chemin", "allée", "allee", "impasse", "quai", "via", "viale",
                "piazza", "piazzale", "corso", "largo", "vicolo", "calle", "avenida", "avda", "plaza", "paseo", "camino",
                "carrer", "rua", "praça", "travessa", "ulica", "ul", "gran vía", "gran via"}
    for locale in ("en_US", "en_GB", "en_AU", "en_CA"):
        provider = importlib.import_module(f"faker.providers.address.{locale}").Provider
        suffixes.update(w.lower() for w in getattr(provider, "street_suffixes", ()))
    # Suffixes that are everyday words after a number too ("250 units of part", "3 key points").
    suffixes -= {"part", "point", "points", "key", "run", "course", "center", "centre", "club", "common", "commons",
                 "lock", "locks", "mall", "mission", "radial", "rest", "spur", "trace", "track", "union", "unions"}
    for locale in ("es_ES", "fr_FR", "pt_PT", "pt_BR", "it_IT"):
        provider = importlib.import_module(f"faker.providers.address.{locale}").Provider
        words = list(getattr(provider, "street_prefixes", ())) + ([] if locale != "it_IT" else list(provider.street_suffixes))
        prefixes.update(w.lower().rstrip(".") for w in words if w != "Street")
    return sorted(suffixes, key=len, reverse=True), sorted(prefixes, key=len, reverse=True)


_SUFFIXES, _PREFIXES = _street_words()


def _countries() -> list[str]:
    from faker.providers.address.en_US import Provider

    return sorted({c for c in Provider.countries if "(" not in c}, key=len, reverse=True)


_COUNTRY = "(?:" + "|".join(re.escape(c) for c in _countries()) + ")"
_STREET_SUFFIX = "(?:" + "|".join(re.escape(w) for w in _SUFFIXES) + ")"
# One-letter abbreviations ("C/ Mayor", "R. de Rivoli") only with their mark: a bare "C" is a
# product ("USB-C hub, 44,03 EUR"), not a street.
_EU_STREET_WORD = "(?:" + "|".join(re.escape(w) if len(w) > 1 else re.escape(w) + r"(?:/|\.)" for w in _PREFIXES) + ")"
_UNIT = r"(?:\s*,?\s*(?:apt|apartment|suite|ste|unit|flat|floor|fl|room|rm|int|#)\.?\s*#?[\w-]{1,6}|\s*,?\s*\d{1,2}º\s*\d?ª?\s*[A-Z]?\b)?"
_HOUSE_NUMBER = r"\d{1,5}[a-z]?(?:-\d{1,4}|-[a-z]{1,3})?(?:\s+(?:bis|ter))?"
_WORD = r"[A-Za-zÀ-ÖØ-öø-ÿ'’.-]+"
_PARTICLES = r"(?:(?:de|du|des|la|le|les|del|della|dei|di|da|do|dos|das|van|von|der|den)[ \t]+|d'|l')*"
# The street's name: capitalised words (case-sensitive even inside a case-insensitive pattern),
# or a single word when the whole text is typed in lower case.
_STREET_NAME = r"(?-i:[A-ZÀ-Ö][\w'’-]+(?:[ \t]+[A-ZÀ-Ö][\w'’-]+){0,3}|[a-zà-ÿ][\w'’-]+)"
_DE_COMPOUND = (r"[A-ZÄÖÜ][a-zäöüß]+(?:-[A-ZÄÖÜ][a-zäöüß]+)*-?(?i:straße|strasse|str\.|weg|platz|allee|gasse|ring|damm|ufer|chaussee|steig|pfad|markt|"
                r"gracht|straat|laan|plein|singel|dreef|steeg|kade|dijk|boulevard|baan|hof|pad|vej|vænget|gade|gatan|vägen|ská|ova|ní)")
# What follows a street in a full address: the town, and a UK, US or continental post code.
_TOWN = r"[A-ZÀ-Ö][A-Za-zÀ-ÖØ-öø-ÿ'’.-]+(?:[ \t]+(?:am|an|de|del|sur|upon|on)?[ \t]*[A-ZÀ-Ö][A-Za-zÀ-ÖØ-öø-ÿ'’.-]+){0,2}"
_POSTCODE = r"(?:[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}|[A-Z]{2}\s+\d{5}(?:-\d{4})?|\d{4,5}(?:-\d{3,4})?|\d{4}\s?[A-Z]{2})"
_TAIL = rf"(?-i:(?:,?\s+{_POSTCODE}\s+{_TOWN}|(?:,\s*|[ \t]*\n[ \t]*){_TOWN}(?:,?\s+{_POSTCODE})?))?"


class StreetAddressRecognizer(PatternRecognizer):
    """Street addresses in US/UK order (221B Baker Street) and continental order (Rue de Rivoli 12,
    Hauptstraße 5, 10115 Berlin), with units and post codes attached. Vanilla Presidio has none."""

    PATTERNS = [
        Pattern("number first", rf"(?i)(?:\b(?:flat|apt|apartment|unit|suite)[ \t]+\w{{1,5}},[ \t]*)?\b{_HOUSE_NUMBER},?[ \t]+"
                                rf"(?:{_WORD}[ \t]+){{1,4}}{_STREET_SUFFIX}\b\.?{_UNIT}{_TAIL}", 0.6),
        Pattern("continental", rf"(?i)\b{_EU_STREET_WORD}\.?[ \t]+(?:{_WORD},?[ \t]+){{0,4}}?{_HOUSE_NUMBER}\b{_UNIT}{_TAIL}", 0.6),
        Pattern("number then continental", rf"(?i)\b{_HOUSE_NUMBER},?[ \t]+{_EU_STREET_WORD}\.?[ \t]+{_PARTICLES}{_STREET_NAME}{_TAIL}", 0.6),
        Pattern("compound", rf"\b{_DE_COMPOUND}[ \t]+{_HOUSE_NUMBER}\b{_UNIT}{_TAIL}", 0.65),
        # "5956 Nesvegi 71", "528 Síp utca 16": a building number, a street name, a house number.
        # Below the threshold on its own ("Sent 3 Reminders 2 days"): it counts only next to a
        # context word such as "address" or "lives".
        Pattern("numbered street", r"\b\d{1,5}[ \t]+(?!(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|mon|tue|wed|thu|fri|sat|sun)[a-z]*\b)(?-i:[A-ZÀ-ÖΑ-Ω][\w'’-]+)(?:[ \t]+[\w'’.-]+){0,2}[ \t]+\d{1,5}[a-z]?\b", 0.3),
        # "Finland 59693", "Tunisia 19591": the post code that closes an address, next to its country.
        Pattern("country post code", rf"\b{_COUNTRY}[ \t]+\d{{4,5}}\b", 0.45),
        Pattern("po box", r"(?i)\b(?:p\.?\s?o\.?\s?box|postfach|boîte postale|bp)\s+\d{1,6}\b", 0.6),
        Pattern("military", r"(?i)\b(?:psc|unit|cmr)\s+\d{3,5},?\s+box\s+\d{1,5}(?:,?\s+(?:apo|fpo|dpo)\s+a[aep]\s+\d{5})?", 0.7),
        Pattern("unit", r"(?i)\b(?:apt|apartment|suite|ste|unit|flat)\.?\s+#?\d{1,5}[a-z]?\b", 0.45),
    ]
    CONTEXT = ["address", "live", "lives", "living", "street", "ship", "shipping", "deliver", "delivery", "mail", "home", "residence", "located", "moved"]

    def __init__(self):
        super().__init__(supported_entity="STREET_ADDRESS", patterns=self.PATTERNS, context=self.CONTEXT,
                         name="StreetAddressRecognizer")

    def invalidate_result(self, pattern_text: str) -> Optional[bool]:
        # "3 items on the way", "2 days ago": a number before a common word is not an address.
        return bool(re.fullmatch(r"(?i)\d+\s+(?:days?|weeks?|months?|years?|hours?|items?|times?)\b.*", pattern_text))


# ---------------------------------------------------------------------------- accounts, IDs, dates of birth


class ContextualIdentifierRecognizer(EntityRecognizer):
    """An identifier that only means something next to its label: "account number 4471-2291-03",
    "customer ID C-99812", "MRN 00482913", "DOB: 1984-03-12". Returns the value, not the label."""

    def __init__(self, entity: str, label_regex: str, value_regex: str, score: float = 0.8, name: str | None = None):
        self.entity = entity
        filler = r"(?:\s*(?:number|no\.?|num|nr\.?|id|ref|reference|account|given|confirmed|is|was|on|:|#|=|-|\())*"
        self._regex = re.compile(rf"(?i)\b(?:{label_regex}){filler}\s*(?P<value>{value_regex})")
        self.score = score
        super().__init__(supported_entities=[entity], name=name or f"{entity.title()}ContextRecognizer")

    def load(self) -> None:
        pass

    def analyze(self, text: str, entities: List[str], nlp_artifacts=None) -> List[RecognizerResult]:
        return [
            _result(self, self.entity, m.start("value"), m.end("value"), self.score)
            for m in self._regex.finditer(text)
            if any(ch.isdigit() for ch in m.group("value"))
        ]


_DATE = (r"(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{1,2}[-\s][A-Za-z]{3,9}[-\s]\d{2,4}|\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?[A-Za-z]{3,9}\.?,?\s+\d{4}"
         r"|[A-Za-z]{3,9}\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4})")


def account_number_recognizer() -> ContextualIdentifierRecognizer:
    return ContextualIdentifierRecognizer(
        "ACCOUNT_NUMBER",
        r"account|acct|a/c|customer|client|member(?:ship)?|policy|subscriber|loyalty|billing",
        r"(?:[A-Z]{1,4}-){0,2}[A-Z]{0,4}\d[\dA-Z]*(?:[- ]\d[\dA-Z]*){0,4}", 0.75, "AccountNumberRecognizer")


def medical_record_recognizer() -> ContextualIdentifierRecognizer:
    return ContextualIdentifierRecognizer(
        "MEDICAL_RECORD_NUMBER", r"mrn|medical record|patient id|patient number|hospital number|hospital no\.?|unit no\.?|unit number|nhs",
        r"[A-Z]{0,3}-?\d[\d-]{4,14}\d", 0.8, "MedicalRecordRecognizer")


def date_of_birth_recognizer() -> ContextualIdentifierRecognizer:
    return ContextualIdentifierRecognizer(
        "DATE_OF_BIRTH", r"date of birth|birth ?date|birthday|born(?: on)?|d\.?o\.?b\.?|b\.|geboren|né\(?e?\)? le|fecha de nacimiento",
        _DATE, 0.85, "DateOfBirthRecognizer")


class NationalIdRecognizer(PatternRecognizer):
    """US SSNs (with the area rules that rule out 000, 666 and 9xx) and UK National Insurance numbers."""

    PATTERNS = [
        Pattern("ssn dashed", r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b", 0.6),
        Pattern("ssn spaced", r"\b(?!000|666|9\d\d)\d{3} (?!00)\d{2} (?!0000)\d{4}\b", 0.35),
        Pattern("uk nino", r"(?i)\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b", 0.6),
    ]
    PATTERNS += [
        Pattern("es dni", r"\b[XYZ]?\d{7,8}-?[A-HJ-NP-TV-Z]\b", 0.5),
        Pattern("fr nir", r"\b[12][ .]?\d{2}[ .]?(?:0[1-9]|1[0-2]|[2-9]\d)[ .]?(?:\d{2}|2[AB])[ .]?\d{3}[ .]?\d{3}[ .]?\d{2}\b", 0.5),
        Pattern("nl bsn", r"(?i)(?<=bsn)[:\s#-]*\d{9}\b", 0.7),
    ]
    CONTEXT = ["ssn", "social security", "national insurance", "ni number", "nino", "national id", "tax id", "id number",
               "identity", "dni", "nie", "nif", "sécurité sociale", "securite sociale", "insee", "bsn"]

    def __init__(self):
        super().__init__(supported_entity="NATIONAL_ID", patterns=self.PATTERNS, context=self.CONTEXT, name="NationalIdRecognizer")

    def validate_result(self, pattern_text: str) -> Optional[bool]:
        compact = re.sub(r"[\s.-]", "", pattern_text).upper()
        if re.fullmatch(r"[XYZ]?\d{7,8}[A-Z]", compact):  # DNI/NIE: the letter is a mod-23 check
            number = int(str("XYZ".index(compact[0])) + compact[1:-1] if compact[0] in "XYZ" else compact[:-1])
            return "TRWAGMYFPDXBNJZSQVHLCKE"[number % 23] == compact[-1]
        if re.fullmatch(r"[12]\d{4}(?:\d{2}|2[AB])\d{8}", compact):  # NIR: 97 - (number mod 97) is the key
            body = compact[:13].replace("2A", "19").replace("2B", "18")
            return 97 - int(body) % 97 == int(compact[13:])
        return None


class ProfileUrlRecognizer(PatternRecognizer):
    """Links to a person's profile on the networks people list in CRM records and signatures."""

    PATTERNS = [Pattern("profile", r"(?i)\b(?:https?://)?(?:www\.|[a-z]{2}\.)?(?:linkedin\.com/(?:in|pub)/|twitter\.com/|x\.com/|"
                                   r"facebook\.com/|fb\.com/|instagram\.com/|github\.com/|gitlab\.com/|t\.me/|tiktok\.com/@|"
                                   r"medium\.com/@|youtube\.com/(?:@|c/|user/)|mastodon\.social/@)[\w.%-]+/?", 0.85)]

    def __init__(self):
        super().__init__(supported_entity="PROFILE_URL", patterns=self.PATTERNS, name="ProfileUrlRecognizer")


class StrictIpRecognizer(PatternRecognizer):
    """IPv4 and IPv6 addresses that `ipaddress` accepts, not version strings ("version 1.2.3.4")."""

    PATTERNS = [
        Pattern("ipv4", r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]*\d)", 0.6),
        Pattern("ipv6", r"(?i)(?<![\w:])(?:[0-9a-f]{1,4}:){2,7}(?::|[0-9a-f]{1,4})(?:[0-9a-f:]*)(?![\w:])", 0.6),
    ]
    CONTEXT = ["ip", "address", "login", "logged", "from", "host", "client", "remote", "source"]
    _VERSION_BEFORE = re.compile(r"(?i)(?:version|ver\.?|v|release|build|firmware|rev\.?)\s*$")
    # "upgrades the agent from 10.0.21332.957 to 4.12.0.7": a dotted quad among software words is a
    # version unless an address word sits right before it.
    _SOFTWARE_WORDS = re.compile(r"(?i)\b(?:version|release|build|firmware|agent|upgrade[sd]?|update[sd]?|patch(?:ed)?|driver|"
                                 r"kernel|package|sdk|installed|rolled back|downgrade[sd]?)\b")
    _ADDRESS_CUE = re.compile(r"(?i)\b(?:ip|address|addr|host|server|remote|src|dst|from ip|client ip|login|logged in)\W{0,4}$")

    def __init__(self):
        super().__init__(supported_entity="IP_ADDRESS", patterns=self.PATTERNS, context=self.CONTEXT, name="StrictIpRecognizer")

    def validate_result(self, pattern_text: str) -> Optional[bool]:
        try:
            address = ipaddress.ip_address(pattern_text)
        except ValueError:
            return False
        return not (address.version == 6 and pattern_text.count(":") < 3)

    def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)
        return [r for r in results if not self._VERSION_BEFORE.search(text[max(0, r.start - 12):r.start])
                and not (self._SOFTWARE_WORDS.search(text[max(0, r.start - 48):r.start])
                         and not self._ADDRESS_CUE.search(text[max(0, r.start - 15):r.start]))]


# ---------------------------------------------------------------------------- names in any case

_NAME_CONTEXT = re.compile(
    r"(?i)\b(?P<cue>my name is|my name's|name is|this is|i am|i'm|im|it's|call me|dear|hi|hello|hey|thanks|thank you|"
    r"regards,?|cheers,?|sincerely,?|best,?|mr\.?|mrs\.?|ms\.?|mx\.?|miss|dr\.?|prof\.?|customer|patient|caller|client|"
    r"(?:customer |patient |full |account holder |contact )?name|contact|attn\.?|attention of|signed by|signatory|speaking with|"
    r"spoke to|spoke with|ask for|assigned to)\s*[:,-]?\s+"
    r"(?P<name>[A-Za-zÀ-ÖØ-öø-ÿ'’-]{2,}(?:\s+(?:[A-Z]\.?\s+)?[A-Za-zÀ-ÖØ-öø-ÿ'’-]{2,}){0,2})"
)
# Cues after which a capitalised word is a name even if no list knows it ("Dear Dr Opmans").
_STRONG_CUES = re.compile(r"(?i)^(?:mr|mrs|ms|mx|miss|dr|prof|dear|attn|attention of|signed by|signatory|"
                          r"(?:customer |patient |full |account holder |contact )?name|contact)\.?$")
# A chat line's speaker: "[11:06] Édith: Yes."
_SPEAKER = re.compile(r"\[\d{1,2}:\d{2}(?::\d{2})?\]\s*(?P<name>[A-ZÀ-Ö][\w'’-]+(?:\s[A-ZÀ-Ö][\w'’-]+)?):")
_NOT_SPEAKERS = {"customer", "agent", "user", "bot", "system", "assistant", "support", "note", "caller", "operator", "client"}


class CasedNameRecognizer(EntityRecognizer):
    """Names the NER model misses because they are typed in lower case or ALL CAPS.

    A word after a cue ("my name is", "Dear", "Customer:") is a name when it is a known first
    name or surname from the gazetteer (Faker's name lists, many locales), and so are the one or
    two known-name words after it. The gazetteer alone never fires: "will", "may", "mark" are
    words too.
    """

    def __init__(self, first_names: set[str], last_names: set[str]):
        self.first_names, self.last_names = first_names, last_names
        super().__init__(supported_entities=["PERSON"], name="CasedNameRecognizer")

    def load(self) -> None:
        pass

    def analyze(self, text: str, entities: List[str], nlp_artifacts=None) -> List[RecognizerResult]:
        results = []
        for match in _NAME_CONTEXT.finditer(text):
            strong = bool(_STRONG_CUES.match(match.group("cue").strip(" ,:")))
            words = list(re.finditer(r"\S+", match.group("name")))
            if not words or not self._is_name(words[0].group(), strong):
                continue
            end_word = words[0]
            for word in words[1:]:
                if self._is_name(word.group(), strong) or re.fullmatch(r"[A-Z]\.?", word.group()):
                    end_word = word
                else:
                    break
            base = match.start("name")
            results.append(_result(self, "PERSON", base + words[0].start(), base + end_word.end(), 0.7 if strong else 0.6))
        for match in _SPEAKER.finditer(text):
            if match.group("name").lower() not in _NOT_SPEAKERS:
                results.append(_result(self, "PERSON", match.start("name"), match.end("name"), 0.65))
        results.extend(self._first_name_pairs(text))
        return results

    def _is_name(self, word: str, strong: bool) -> bool:
        bare = word.lower().strip("'’-.,")
        if bare in self.first_names or bare in self.last_names:
            return True
        return strong and word[:1].isupper() and bare not in _NOT_NAMES and len(bare) > 1

    def _first_name_pairs(self, text: str) -> List[RecognizerResult]:
        """"Sarah May", "Iwan Kroker": a known first name followed by a capitalised word that is
        not a street, company or place word."""
        results = []
        for match in re.finditer(r"\b(?P<first>[A-ZÀ-Ö][a-zà-ÿ'’-]+)(?:[ \t]+|,)(?P<last>[A-ZÀ-Ö][a-zà-ÿ'’-]+(?:[- ][A-ZÀ-Ö][a-zà-ÿ'’-]+)?)\b", text):
            first, last = match.group("first").lower(), match.group("last").lower()
            if first in self.first_names and last.split()[0] not in _NOT_NAMES and last not in _NOT_NAMES:
                results.append(_result(self, "PERSON", match.start(), match.end(), 0.5))
        return results


# Capitalised words that follow names or titles but are not names.
_NOT_NAMES = {"street", "road", "avenue", "lane", "drive", "court", "hospital", "clinic", "bank", "group", "ltd", "inc", "llc",
              "plc", "gmbh", "corp", "company", "university", "school", "college", "park", "hotel", "foods", "capital", "media",
              "systems", "solutions", "health", "partners", "holdings", "logistics", "consulting", "services", "the", "team",
              "support", "customer", "department", "office", "city", "county", "state", "north", "south", "east", "west",
              "new", "saint", "st", "san", "santa", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
              "january", "february", "march", "april", "june", "july", "august", "september", "october", "november", "december",
              "thanks", "thank", "regards", "please", "sir", "madam", "colleague", "colleagues", "all", "team,"} | set(_SUFFIXES)


def load_name_gazetteer(locales=("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_PT", "pl_PL",
                                 "sv_SE", "da_DK", "no_NO", "cs_CZ", "fi_FI", "tr_TR", "hu_HU")) -> tuple[set[str], set[str]]:
    """First names and surnames from Faker's locale providers (offline, in the package)."""
    import importlib

    first, last = set(), set()
    for locale in locales:
        try:
            provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        except ImportError:
            continue
        for attr in ("first_names", "first_names_male", "first_names_female"):
            first.update(n.lower() for n in _names(getattr(provider, attr, ())))
        last.update(n.lower() for n in _names(getattr(provider, "last_names", ())))
    # Short or very common English words that also appear in name lists.
    stop = {"an", "in", "on", "so", "by", "do", "go", "my", "me", "we", "be", "he", "it", "is", "to", "of", "and", "the",
            "will", "may", "june", "april", "august", "mark", "bill", "rose", "grant", "hope", "joy", "faith", "art",
            "long", "young", "little", "king", "white", "black", "brown", "green", "gray", "grey", "love", "hi", "thanks",
            "thank", "just", "see", "here", "there", "back", "call", "soon", "again", "sure", "have", "had", "not",
            "please", "about", "order", "customer", "support", "team", "agent", "help", "regards", "best", "new", "all"}
    return first - stop, last - stop


def _names(values):
    if isinstance(values, dict):  # some providers weight names: {name: weight}
        return values.keys()
    return values
