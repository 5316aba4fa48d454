"""Labelled PII corpus for the redaction benchmark (bench/redaction.py).

Two kinds of records:

* presidio-evaluator's sentence templates: short, mostly single sentences, US-centric. They are
  what Presidio itself is usually evaluated on, so they keep the comparison honest.
* four families of our own longer documents (support tickets, contracts, clinical notes, CRM
  exports) with European names, addresses and phone formats, mixed casing, checksum-valid card
  numbers, IBANs and national IDs, and hard negatives that look like PII but are not (order
  numbers, SKUs, prices, timestamps, company registration numbers, doses, lab values, visit dates):
  those are deliberately left unlabelled, so redacting them costs precision.

Gold spans of our own families are recorded while the text is concatenated, never recovered by
searching the finished text, so a value that occurs twice or inside another value cannot be
mislabelled.

All spans are kept so that errors can be analysed per type, but only PII_TYPES count in the
headline recall. Organisations, places, postcodes on their own, ages, job titles and company
websites get their own, non-counted types: the scorer neither rewards nor punishes redacting them.

    python bench/pii_corpus.py      # self-check: offsets, overlaps, checksums, determinism, counts
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import ipaddress
import random
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from faker import Faker
from faker.providers.date_time import Provider as DateTimeProvider

PII_TYPES = frozenset({
    "PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "STREET_ADDRESS", "CREDIT_CARD", "IBAN_CODE",
    "NATIONAL_ID", "IP_ADDRESS", "ACCOUNT_NUMBER", "DATE_OF_BIRTH", "MEDICAL_RECORD_NUMBER",
    "PROFILE_URL",
})
# Labelled where they occur naturally, but not personal data in the headline sense.
_CONTEXT_TYPES = frozenset({"ORGANIZATION", "LOCATION", "ZIP_CODE", "AGE", "TITLE", "URL", "DATE_TIME", "NRP"})
_ALL_TYPES = PII_TYPES | _CONTEXT_TYPES


@dataclass(frozen=True)
class GoldSpan:
    start: int
    end: int
    type: str
    value: str  # == text[start:end]


@dataclass(frozen=True)
class GoldRecord:
    id: str
    text: str
    spans: tuple[GoldSpan, ...]
    source: str  # "presidio-evaluator", "support", "contract", "clinical" or "crm"
    # Pieces that look like personal data and are not (order numbers, UUIDs, versions, public
    # figures in the news...): each a GoldSpan whose type names the kind. Redacting one is a false alarm.
    hard_negatives: tuple[GoldSpan, ...] = ()


def build_corpus(n_evaluator: int = 600, n_per_template_family: int = 150, seed: int = 20261122) -> list[GoldRecord]:
    """The same arguments always give the same corpus, independent of any global random state."""
    corpus = _evaluator_records(n_evaluator, seed)
    fakers = _make_fakers()
    for source, templates in _FAMILIES.items():
        # Each family has its own seed stream, so resizing one family leaves the others unchanged.
        gen = _Gen(f"{seed}/{source}", fakers)
        for i in range(n_per_template_family):
            builder = _Builder()
            templates[i % len(templates)](gen, builder)
            text, spans = builder.build()
            corpus.append(GoldRecord(id=f"{source}-{i:04d}", text=text, spans=spans, source=source))
    return corpus


# --------------------------------------------------------------------------------------------
# Part 1: presidio-evaluator's generator
# --------------------------------------------------------------------------------------------

_EVALUATOR_TYPES = {
    "PERSON": "PERSON", "STREET_ADDRESS": "STREET_ADDRESS", "PHONE_NUMBER": "PHONE_NUMBER",
    "CREDIT_CARD": "CREDIT_CARD", "EMAIL_ADDRESS": "EMAIL_ADDRESS", "IP_ADDRESS": "IP_ADDRESS",
    "US_SSN": "NATIONAL_ID", "IBAN_CODE": "IBAN_CODE", "US_DRIVER_LICENSE": "NATIONAL_ID",
    "ZIP_CODE": "ZIP_CODE", "GPE": "LOCATION", "ORGANIZATION": "ORGANIZATION", "DATE_TIME": "DATE_TIME",
    "AGE": "AGE", "TITLE": "TITLE", "NRP": "NRP", "DOMAIN_NAME": "URL",
}
# The evaluator's templates escape newlines (and, once, a comma) and the escapes reach full_text verbatim.
_EVALUATOR_ESCAPES = {"\\n": "\n", "\\,": ","}


def _evaluator_records(n: int, seed: int) -> list[GoldRecord]:
    records: list[GoldRecord] = []
    with _global_random_restored():
        # Imported here, not at the top: presidio-evaluator pulls in transformers, which is slow and
        # chatty, and importing it already draws from the global random generator.
        from presidio_evaluator.data_generator import PresidioSentenceFaker
        from presidio_evaluator.data_generator.faker_extensions import HospitalProvider
        from presidio_evaluator.data_generator.presidio_sentence_faker import presidio_additional_entity_providers

        # HospitalProvider queries WikiData when constructed (a 10 s timeout offline, a moving list
        # online); no template uses it.
        providers = [p for p in presidio_additional_entity_providers if p is not HospitalProvider]
        providers.append(_PinnedDateTimeProvider)
        # It draws from the global generators while loading its table of people, before seeding them.
        _seed_global_random(seed)
        with _silenced():
            faker = PresidioSentenceFaker("en_US", lower_case_ratio=0.05, entity_providers=providers, random_seed=seed)
            # Unusable samples are dropped, so top up until there are n.
            while len(records) < n:
                for sample in faker.generate_new_fake_sentences(n - len(records)):
                    cleaned = _clean_evaluator_sample(sample)
                    if cleaned is not None:
                        text, spans = cleaned
                        records.append(GoldRecord(f"presidio-evaluator-{len(records):04d}", text, spans, "presidio-evaluator"))
    return records


class _PinnedDateTimeProvider(DateTimeProvider):
    """Faker draws {{date_time}}, {{year}} and {{day_of_week}} between 1970 and now, so the
    evaluator's dates would differ from run to run; draw them up to a fixed moment instead."""

    def date_time(self, tzinfo=None, end_datetime=None):
        return super().date_time(tzinfo=tzinfo, end_datetime=end_datetime or dt.datetime(2026, 1, 1))


# presidio-evaluator draws from module-level generators: random's, numpy's and the one Faker
# instances share until they are seeded individually.

def _seed_global_random(seed: int) -> None:
    import numpy as np
    from faker.generator import random as faker_shared_random

    random.seed(seed)
    np.random.seed(seed)
    faker_shared_random.seed(seed)


@contextlib.contextmanager
def _global_random_restored() -> Iterator[None]:
    """Leave callers' global random state as it was, whatever the evaluator draws."""
    import numpy as np
    from faker.generator import random as faker_shared_random

    saved = random.getstate(), np.random.get_state(), faker_shared_random.getstate()
    try:
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        faker_shared_random.setstate(saved[2])


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    # The generator prints its configuration and a progress bar on every call.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def _clean_evaluator_sample(sample) -> tuple[str, tuple[GoldSpan, ...]] | None:
    """Repair the generator's quirks, or None when a sample cannot be trusted."""
    text = sample.full_text
    raw = [(s.start_position, s.end_position, s.entity_type, str(s.entity_value)) for s in sample.spans]
    # lower_case_ratio lowercases the span values but, by a bug, not full_text (it sets `.fake`).
    # Lowercase the text too: that is the case-robustness test the ratio is meant to add.
    if any(text[a:b] != v for a, b, _, v in raw):
        lowered = text.lower()
        if len(lowered) == len(text) and all(lowered[a:b] == v for a, b, _, v in raw):
            text = lowered
    text, offsets = _unescape(text)
    spans = []
    for a, b, entity_type, value in raw:
        value = _unescape(value)[0]
        start, end = offsets[a], offsets[b]
        if text[start:end] != value:
            return None
        # Missing fields of its table of people come out as the literal word "nan" in the text.
        if value.strip().lower() == "nan":
            return None
        if not value.strip():
            continue
        # A few values carry a trailing space; gold spans are tight.
        start += len(value) - len(value.lstrip())
        end -= len(value) - len(value.rstrip())
        spans.append(GoldSpan(start, end, _EVALUATOR_TYPES[entity_type], text[start:end]))
    return text, tuple(sorted(spans, key=lambda s: s.start))


def _unescape(text: str) -> tuple[str, list[int]]:
    """The text with escapes replaced, and the new offset of every old offset (len(text) + 1 of them)."""
    out: list[str] = []
    offsets: list[int] = []
    length = i = 0
    while i < len(text):
        replacement = _EVALUATOR_ESCAPES.get(text[i:i + 2])
        if replacement is None:
            offsets.append(length)
            out.append(text[i])
            length += 1
            i += 1
        else:
            offsets += [length, length + len(replacement)]
            out.append(replacement)
            length += len(replacement)
            i += 2
    offsets.append(length)
    return "".join(out), offsets


# --------------------------------------------------------------------------------------------
# Part 2: our own template families. First the building blocks.
# --------------------------------------------------------------------------------------------

_Piece = str | tuple[str, str]  # plain text, or (entity type, value) for a labelled span


class _Builder:
    """Accumulates a record left to right, recording each labelled piece's offsets as it is appended."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._spans: list[GoldSpan] = []
        self._length = 0

    def add(self, *pieces: _Piece) -> None:
        for piece in pieces:
            if isinstance(piece, tuple):
                entity_type, value = piece
                if entity_type not in _ALL_TYPES or not value or value != value.strip():
                    raise ValueError(f"bad span {piece!r}")
                self._spans.append(GoldSpan(self._length, self._length + len(value), entity_type, value))
                piece = value
            elif not isinstance(piece, str):
                raise TypeError(f"not a piece: {piece!r}")
            self._parts.append(piece)
            self._length += len(piece)

    def line(self, *pieces: _Piece) -> None:
        self.add(*pieces, "\n")

    def build(self) -> tuple[str, tuple[GoldSpan, ...]]:
        return "".join(self._parts), tuple(self._spans)


@dataclass(frozen=True)
class _City:
    name: str
    postcode_prefix: str  # GB: outward codes, space-separated
    area_code: str        # trunk prefix omitted, except Italy where the 0 is dialled internationally too
    region: str = ""      # US state


@dataclass(frozen=True)
class _Country:
    code: str
    locale: str
    names: tuple[str, ...]  # how the country is written in an address or a sentence
    weight: float           # share of people drawn from it
    cities: tuple[_City, ...]
    streets: tuple[str, ...]
    email_domains: tuple[str, ...]
    legal_forms: tuple[str, ...]
    tld: str
    currency: str


_COUNTRIES = {c.code: c for c in (
    _Country("US", "en_US", ("USA", "United States", "U.S."), 0.28, (
        _City("New York", "100", "212", "NY"), _City("Brooklyn", "112", "718", "NY"),
        _City("San Francisco", "941", "415", "CA"), _City("Los Angeles", "900", "213", "CA"),
        _City("Chicago", "606", "312", "IL"), _City("Austin", "787", "512", "TX"),
        _City("Houston", "770", "713", "TX"), _City("Seattle", "981", "206", "WA"),
        _City("Boston", "021", "617", "MA"), _City("Denver", "802", "303", "CO"),
        _City("Atlanta", "303", "404", "GA"), _City("Miami", "331", "305", "FL"),
        _City("Portland", "972", "503", "OR"), _City("Philadelphia", "191", "215", "PA"),
        _City("Minneapolis", "554", "612", "MN"), _City("Nashville", "372", "615", "TN"),
    ), ("Main Street", "Oak Avenue", "Maple Drive", "Elm Street", "Sunset Boulevard", "Market Street",
        "Pine Street", "Washington Avenue", "Lakeview Drive", "Cedar Lane", "Park Avenue", "Mission Street"),
        ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "hotmail.com", "aol.com", "comcast.net"),
        ("Inc.", "LLC", "Corp.", "Inc"), "com", "$"),
    _Country("GB", "en_GB", ("United Kingdom", "UK", "U.K."), 0.2, (
        _City("London", "SW1A NW1 E1 N7 SE15 W2 EC1V", "20"), _City("Manchester", "M1 M14 M20", "161"),
        _City("Birmingham", "B1 B15 B29", "121"), _City("Leeds", "LS1 LS6", "113"),
        _City("Glasgow", "G1 G12", "141"), _City("Edinburgh", "EH1 EH3 EH9", "131"),
        _City("Bristol", "BS1 BS8", "117"), _City("Liverpool", "L1 L17", "151"),
        _City("Cardiff", "CF10 CF24", "29"), _City("Cambridge", "CB1 CB2", "1223"),
        _City("Brighton", "BN1 BN2", "1273"), _City("Sheffield", "S1 S10", "114"),
    ), ("Baker Street", "High Street", "Church Road", "Station Road", "Victoria Road", "Oxford Road",
        "Mill Lane", "Queen's Road", "Kings Road", "Albert Street", "The Crescent", "Park Lane"),
        ("gmail.com", "btinternet.com", "outlook.com", "yahoo.co.uk", "hotmail.co.uk", "sky.com"),
        ("Ltd", "Limited", "PLC", "LLP"), "co.uk", "£"),
    _Country("DE", "de_DE", ("Germany", "Deutschland"), 0.12, (
        _City("Berlin", "10", "30"), _City("Hamburg", "20", "40"), _City("München", "80", "89"),
        _City("Köln", "50", "221"), _City("Frankfurt am Main", "60", "69"), _City("Stuttgart", "70", "711"),
        _City("Düsseldorf", "40", "211"), _City("Leipzig", "04", "341"), _City("Dresden", "01", "351"),
        _City("Hannover", "30", "511"), _City("Nürnberg", "90", "911"), _City("Bremen", "28", "421"),
    ), ("Hauptstraße", "Bahnhofstraße", "Gartenstraße", "Schulstraße", "Lindenallee", "Bergstraße",
        "Friedrichstraße", "Kastanienallee", "Am Markt", "Goethestraße", "Schillerstraße", "Dorfstraße"),
        ("gmx.de", "web.de", "t-online.de", "gmail.com", "posteo.de", "freenet.de"),
        ("GmbH", "AG", "GmbH & Co. KG", "SE"), "de", "€"),
    _Country("FR", "fr_FR", ("France",), 0.12, (
        _City("Paris", "75", "1"), _City("Lyon", "69", "4"), _City("Marseille", "13", "4"),
        _City("Toulouse", "31", "5"), _City("Nice", "06", "4"), _City("Nantes", "44", "2"),
        _City("Strasbourg", "67", "3"), _City("Montpellier", "34", "4"), _City("Bordeaux", "33", "5"),
        _City("Lille", "59", "3"), _City("Rennes", "35", "2"),
    ), ("rue de Rivoli", "avenue des Champs-Élysées", "rue de la République", "boulevard Saint-Germain",
        "rue Victor Hugo", "place Bellecour", "rue du Faubourg Saint-Honoré", "avenue Jean Jaurès",
        "rue Nationale", "quai de la Tournelle", "rue des Lilas", "allée des Tilleuls"),
        ("orange.fr", "free.fr", "laposte.net", "gmail.com", "hotmail.fr", "sfr.fr", "wanadoo.fr"),
        ("SAS", "SA", "SARL"), "fr", "€"),
    _Country("ES", "es_ES", ("Spain", "España"), 0.1, (
        _City("Madrid", "28", "91"), _City("Barcelona", "08", "93"), _City("Valencia", "46", "96"),
        _City("Sevilla", "41", "95"), _City("Zaragoza", "50", "976"), _City("Málaga", "29", "95"),
        _City("Bilbao", "48", "94"), _City("Palma", "07", "971"), _City("Murcia", "30", "968"),
        _City("Alicante", "03", "965"),
    ), ("Calle Mayor", "Gran Vía", "Calle de Alcalá", "Paseo de Gracia", "Avenida de la Constitución",
        "Calle Real", "Calle de Serrano", "Rambla de Catalunya", "Calle San Vicente", "Avenida del Puerto"),
        ("gmail.com", "hotmail.es", "yahoo.es", "telefonica.net", "outlook.es"),
        ("S.L.", "S.A.", "SL"), "es", "€"),
    _Country("IT", "it_IT", ("Italy", "Italia"), 0.09, (
        _City("Roma", "00", "06"), _City("Milano", "20", "02"), _City("Napoli", "80", "081"),
        _City("Torino", "10", "011"), _City("Bologna", "40", "051"), _City("Firenze", "50", "055"),
        _City("Genova", "16", "010"), _City("Venezia", "30", "041"), _City("Palermo", "90", "091"),
        _City("Verona", "37", "045"),
    ), ("Via Roma", "Via Garibaldi", "Corso Vittorio Emanuele II", "Via Dante", "Via Mazzini",
        "Viale Europa", "Via Nazionale", "Via Verdi", "Corso Buenos Aires", "Via della Repubblica"),
        ("gmail.com", "libero.it", "virgilio.it", "alice.it", "tiscali.it", "hotmail.it"),
        ("S.r.l.", "S.p.A.", "Srl"), "it", "€"),
    _Country("NL", "nl_NL", ("Netherlands", "The Netherlands", "Nederland"), 0.09, (
        _City("Amsterdam", "10", "20"), _City("Rotterdam", "30", "10"), _City("Den Haag", "25", "70"),
        _City("Utrecht", "35", "30"), _City("Eindhoven", "56", "40"), _City("Groningen", "97", "50"),
        _City("Haarlem", "20", "23"), _City("Leiden", "23", "71"), _City("Nijmegen", "65", "24"),
        _City("Tilburg", "50", "13"),
    ), ("Kerkstraat", "Dorpsstraat", "Prinsengracht", "Keizersgracht", "Stationsweg", "Molenstraat",
        "Nieuwstraat", "Herengracht", "Julianalaan", "Marktplein"),
        ("gmail.com", "ziggo.nl", "kpnmail.nl", "hotmail.nl", "xs4all.nl", "outlook.com"),
        ("B.V.", "N.V.", "BV"), "nl", "€"),
)}
_IBAN_COUNTRIES = ("GB", "DE", "FR", "NL", "ES")
_ID_COUNTRIES = ("US", "GB", "ES", "NL", "FR")  # those with a national ID we generate with its checksum

# (bank code as it appears in the IBAN, BIC, bank name)
_BANKS = {
    "GB": (("BARC", "BARCGB22", "Barclays Bank UK PLC"), ("NWBK", "NWBKGB2L", "National Westminster Bank"),
           ("LOYD", "LOYDGB2L", "Lloyds Bank"), ("HBUK", "HBUKGB4B", "HSBC UK Bank plc")),
    "DE": (("10070000", "DEUTDEBBXXX", "Deutsche Bank"), ("37040044", "COBADEFFXXX", "Commerzbank"),
           ("50010517", "INGDDEFFXXX", "ING-DiBa"), ("20050550", "HASPDEHHXXX", "Hamburger Sparkasse")),
    "FR": (("30004", "BNPAFRPPXXX", "BNP Paribas"), ("30003", "SOGEFRPPXXX", "Société Générale"),
           ("20041", "PSSTFRPPXXX", "La Banque Postale"), ("10278", "CMCIFR2AXXX", "Crédit Mutuel")),
    "NL": (("ABNA", "ABNANL2A", "ABN AMRO"), ("INGB", "INGBNL2A", "ING Bank"),
           ("RABO", "RABONL2U", "Rabobank"), ("TRIO", "TRIONL2U", "Triodos Bank")),
    "ES": (("2100", "CAIXESBBXXX", "CaixaBank"), ("0049", "BSCHESMMXXX", "Banco Santander"),
           ("0182", "BBVAESMMXXX", "BBVA"), ("0081", "BSABESBBXXX", "Banco Sabadell")),
}

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
# Relative dates point at no particular day, so they are never labelled.
_PAST_DAYS = ("a few months ago", "yesterday", "last week", "two days ago", "this morning", "last Monday", "earlier today",
              "three weeks ago", "over the weekend", "the day before yesterday", "a couple of weeks ago")
_FUTURE_DAYS = ("next Tuesday", "by Friday", "at the end of the month", "in about two weeks", "sometime next week",
                "tomorrow", "on Monday", "after the holidays")
_PRODUCTS = ("wireless earbuds", "standing desk", "espresso machine", "running shoes", "27-inch monitor",
             "air purifier", "phone case", "winter jacket", "robot vacuum", "smartwatch", "office chair",
             "blender", "hiking backpack", "electric toothbrush", "mechanical keyboard")
_EXEC_TITLES = ("Chief Executive Officer", "Chief Financial Officer", "General Counsel", "Managing Director",
                "Head of Legal", "Data Protection Officer", "Director of Operations", "Company Secretary",
                "Chief Technology Officer", "VP Procurement", "Head of Information Security", "Legal Counsel",
                "Chief Operating Officer", "Procurement Manager")
_CRM_TITLES = ("Marketing Manager", "Head of Procurement", "IT Director", "Operations Lead", "Founder",
               "Finance Controller", "Office Manager", "Senior Buyer", "CTO", "Product Owner", "HR Business Partner")
_NETWORK_NAMES = {"linkedin": "LinkedIn", "twitter": "Twitter", "github": "GitHub", "facebook": "Facebook",
                  "instagram": "Instagram"}
_BRAND_HEADS = ("Bright", "North", "Blue", "Silver", "Green", "Iron", "Clear", "Swift", "Nova", "Alder", "Harbor",
                "Summit", "Cedar", "Vertex", "Lumen", "Oak", "Pioneer", "Meridian", "Atlas", "Kestrel")
_BRAND_TAILS = ("wave", "field", "stone", "bridge", "path", "point", "line", "works", "gate", "leaf", "peak",
                "light", "dale", "mark", "well")
_SECTORS = ("Analytics", "Logistics", "Software", "Consulting", "Health", "Retail", "Media", "Systems",
            "Energy", "Foods", "Capital", "Labs", "Engineering", "Data")


def _make_fakers() -> dict[str, Faker]:
    # Built once per corpus (construction is the slow part); each family reseeds them.
    return {code: Faker(country.locale) for code, country in _COUNTRIES.items()}


def _ascii(text: str) -> str:
    """Lowercase ASCII letters and digits only, as people spell names in email addresses and handles."""
    text = text.lower().translate(str.maketrans({"ß": "ss", "ø": "o", "æ": "ae", "ł": "l", "đ": "d", "œ": "oe"}))
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if ch.isascii() and ch.isalnum())


def _luhn_check_digit(payload: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(payload)):
        digit = int(ch)
        if i % 2 == 0:  # doubled once the check digit is appended to the right
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return str(-total % 10)


def _luhn_valid(number: str) -> bool:
    digits = "".join(ch for ch in number if ch.isdigit())
    return _luhn_check_digit(digits[:-1]) == digits[-1]


def _iban_numeric(text: str) -> int:
    return int("".join(str(int(ch, 36)) for ch in text))


def _iban_valid(iban: str) -> bool:
    compact = iban.replace(" ", "")
    return _iban_numeric(compact[4:] + compact[:4]) % 97 == 1


def _groups(text: str, sizes: Sequence[int], sep: str) -> str:
    out, i = [], 0
    for size in sizes:
        out.append(text[i:i + size])
        i += size
    if i < len(text):
        out.append(text[i:])
    return sep.join(part for part in out if part)


def _long_date(d: dt.date) -> str:
    return f"{d.day} {_MONTHS[d.month - 1]} {d.year}"


@dataclass(frozen=True)
class _Person:
    first: str
    last: str
    female: bool
    country: _Country

    @property
    def full(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def formal(self) -> str:  # as CRM and clinical systems sort people
        return f"{self.last}, {self.first}"

    @property
    def initialled(self) -> str:
        return f"{self.first[0]}. {self.last}"

    @property
    def honorific(self) -> str:
        return "Ms" if self.female else "Mr"


@dataclass(frozen=True)
class _Address:
    street_line: str  # "221B Baker Street", "Flat 3, 27 Mill Lane", "Hauptstraße 5", "12 rue de Rivoli"
    postcode: str
    city: str
    region: str
    country: _Country

    @property
    def locality(self) -> str:
        if self.country.code == "US":
            return f"{self.city}, {self.region} {self.postcode}"
        if self.country.code == "GB":
            return f"{self.city} {self.postcode}"
        return f"{self.postcode} {self.city}"

    def render(self, multiline: bool = False) -> str:
        return ("\n" if multiline else ", ").join((self.street_line, self.locality))


@dataclass(frozen=True)
class _Company:
    name: str
    domain: str
    country: _Country


class _Clock:
    """Monotonic timestamps for transcripts and logs."""

    def __init__(self, rng: random.Random, start: dt.datetime) -> None:
        self._rng = rng
        self.now = start

    def tick(self, max_seconds: int = 240) -> dt.datetime:
        self.now += dt.timedelta(seconds=self._rng.randint(5, max_seconds))
        return self.now


class _Gen:
    """Values for the templates: one seeded random.Random, plus the per-locale Fakers reseeded from it."""

    def __init__(self, seed: str, fakers: dict[str, Faker]) -> None:
        self.rng = random.Random(seed)
        self._fakers = fakers
        for faker in fakers.values():
            faker.seed_instance(self.rng.getrandbits(64))

    # -- plumbing ---------------------------------------------------------------------------
    def pick(self, options: Sequence):
        return self.rng.choice(options)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def digits(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789") for _ in range(n))

    def letters(self, n: int, alphabet: str = "ABCDEFGHJKLMNPRSTUVWXYZ") -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def country(self, among: Sequence[str] | None = None) -> _Country:
        codes = list(among or _COUNTRIES)
        return _COUNTRIES[self.rng.choices(codes, weights=[_COUNTRIES[c].weight for c in codes])[0]]

    def country_name(self, country: _Country) -> str:
        return self.pick(country.names)

    # -- dates ------------------------------------------------------------------------------
    # Never Faker's date providers: they count from today, which would change the corpus daily.
    def date(self, first_year: int, last_year: int) -> dt.date:
        start = dt.date(first_year, 1, 1)
        return start + dt.timedelta(days=self.rng.randrange((dt.date(last_year, 12, 31) - start).days))

    def moment(self) -> dt.datetime:
        day = self.date(2021, 2026)
        return dt.datetime(day.year, day.month, day.day, self.rng.randint(7, 21), self.rng.randint(0, 59),
                           self.rng.randint(0, 59))

    def date_text(self, d: dt.date, country: _Country | None = None) -> str:
        """A date as people write it; numeric day/month order follows the country."""
        numeric = (f"{d:%m/%d/%Y}" if country and country.code == "US" else
                   f"{d:%d.%m.%Y}" if country and country.code == "DE" else f"{d:%d/%m/%Y}")
        return self.pick((f"{d:%Y-%m-%d}", numeric, _long_date(d), f"{_MONTHS[d.month - 1]} {d.day}, {d.year}",
                          f"{d.day:02d}-{_MONTHS[d.month - 1][:3]}-{d.year}"))

    def past_day(self) -> str:
        return self.pick(_PAST_DAYS)

    def future_day(self) -> str:
        return self.pick(_FUTURE_DAYS)

    # -- people -----------------------------------------------------------------------------
    def person(self, country: _Country | None = None) -> _Person:
        country = country or self.country()
        faker = self._fakers[country.code]
        female = self.chance(0.5)
        first = faker.first_name_female() if female else faker.first_name_male()
        last = faker.last_name()
        if country.code == "ES" and self.chance(0.5):  # Spaniards often give both surnames
            last = f"{last} {faker.last_name()}"
        return _Person(first, last, female, country)

    def email(self, person: _Person, domain: str | None = None) -> str:
        first, last = _ascii(person.first) or "user", _ascii(person.last) or "mail"
        if domain:  # corporate conventions are regular
            local = self.pick((f"{first}.{last}", f"{first[0]}.{last}", f"{first[0]}{last}", f"{first}"))
        else:
            local = self.pick((f"{first}.{last}", f"{first[0]}.{last}", f"{first}{last}", f"{first}_{last}",
                               f"{first}.{last}{self.rng.randint(1, 99)}", f"{first}{self.rng.randint(60, 99)}",
                               f"{last}.{first}", f"{first[0]}{last}{self.digits(2)}",
                               self._fakers[person.country.code].user_name()))
        return f"{local}@{domain or self.pick(person.country.email_domains)}"

    def handle(self, person: _Person) -> str:
        first, last = _ascii(person.first) or "user", _ascii(person.last) or "x"
        return self.pick((f"{first}{last}"[:15], f"{first}_{last[0]}", f"{first[0]}{last}{self.digits(2)}"[:15],
                          f"{first}.{last}", f"{last}{first[:3]}", f"the{first}{last[:4]}"))

    def profile_url(self, person: _Person, network: str | None = None) -> str:
        network = network or self.pick(("linkedin", "twitter", "github", "facebook", "instagram"))
        first, last = _ascii(person.first) or "user", _ascii(person.last) or "x"
        if network == "linkedin":
            slug = self.pick((f"{first}-{last}", f"{first}-{last}-{self.rng.getrandbits(24):06x}", f"{first}{last}",
                              f"{first[0]}{last}{self.digits(2)}"))
            host = self.pick(("https://www.linkedin.com", "https://linkedin.com", "linkedin.com",
                              f"https://{person.country.code.lower()}.linkedin.com"))
            return f"{host}/in/{slug}" + self.pick(("", "", "/"))
        handle = self.handle(person)
        return {
            "twitter": self.pick((f"https://twitter.com/{handle}", f"https://x.com/{handle}", f"twitter.com/{handle}")),
            "github": f"https://github.com/{handle.replace('.', '-')}",
            "facebook": f"https://www.facebook.com/{first}.{last}{self.pick(('', '.' + self.digits(2)))}",
            "instagram": f"https://www.instagram.com/{handle}/",
        }[network]

    # -- places -----------------------------------------------------------------------------
    def city(self, country: _Country) -> _City:
        return self.pick(country.cities)

    def postcode(self, country: _Country, city: _City) -> str:
        p = city.postcode_prefix
        code = country.code
        if code == "US":
            return p + self.digits(2) + self.pick(("", "", "", f"-{self.digits(4)}"))
        if code == "GB":
            return f"{self.pick(p.split())} {self.rng.randint(1, 9)}{self.letters(2, 'ABDEFGHJLNPQRSTUWXYZ')}"
        if code == "FR":
            arrondissements = {"Paris": 20, "Lyon": 9, "Marseille": 16}
            if city.name in arrondissements:
                return f"{p}0{self.rng.randint(1, arrondissements[city.name]):02d}"
            return f"{p}{self.pick(('000', '100', '200', '300'))}"
        if code == "IT":
            return f"{p}1{self.digits(2)}"
        if code == "NL":
            return f"{p}{self.rng.randint(10, 99)} {self.pick(('AB', 'BK', 'CJ', 'GC', 'HR', 'KL', 'MN', 'PT', 'VW', 'XZ'))}"
        return f"{p}{self.rng.randint(1, 999):03d}"  # DE, ES

    def street_name(self, country: _Country) -> str:
        # Real common street names read naturally; Faker's add variety (fictional in the US and UK).
        if self.chance(0.6):
            return self.pick(country.streets)
        return self._fakers[country.code].street_name()

    def address(self, country: _Country | None = None) -> _Address:
        country = country or self.country()
        city = self.city(country)
        street, n = self.street_name(country), self.rng.randint(1, 180)
        code = country.code
        if code == "US":
            line = f"{self.rng.randint(10, 9899)} {street}" + self.pick(
                ("", "", f", Apt {self.rng.randint(1, 30)}{self.pick('ABCD')}", f", Suite {self.rng.randint(100, 950)}",
                 f" #{self.rng.randint(2, 40)}", f", Unit {self.rng.randint(1, 60)}"))
        elif code == "GB":
            line = self.pick(("", "", f"Flat {self.rng.randint(1, 12)}, ")) + f"{n}{self.pick(('', '', 'A', 'B'))} {street}"
        elif code == "FR":
            # French order is "12 rue de Rivoli"; Belgian/Swiss-style "Rue de Rivoli 12" also circulates.
            line = self.pick((f"{n} {street}", f"{n}, {street}", f"{n} bis {street}",
                              f"{street[0].upper()}{street[1:]} {n}"))
        elif code == "ES":
            line = f"{street}{self.pick((' ', ', '))}{n}" + self.pick(
                ("", f", {self.rng.randint(1, 9)}º {self.pick('ABCD')}", f", {self.rng.randint(1, 9)}º{self.rng.randint(1, 4)}ª"))
        elif code == "IT":
            line = f"{street}{self.pick((' ', ', '))}{n}" + self.pick(("", "", f"/{self.pick('ABC')}", f", int. {self.rng.randint(1, 20)}"))
        elif code == "NL":
            line = f"{street} {n}" + self.pick(("", "", self.pick("abc"), "-hs", f"-{self.rng.randint(1, 3)}"))
        else:  # DE
            line = f"{street} {n}" + self.pick(("", "", "", "a", "b"))
        return _Address(line, self.postcode(country, city), city.name, city.region, country)

    # -- organisations ----------------------------------------------------------------------
    def company(self, country: _Country | None = None) -> _Company:
        country = country or self.country()
        faker = self._fakers[country.code]
        style = self.rng.random()
        if style < 0.4:
            core = f"{self.pick(_BRAND_HEADS)}{self.pick(_BRAND_TAILS)} {self.pick(_SECTORS)}"
        elif style < 0.7:
            core = f"{faker.last_name()} {self.pick(_SECTORS)}"
        else:
            core = f"{faker.last_name()} & {faker.last_name()}"
        words = [_ascii(w) for w in core.replace("&", " ").split()]
        domain = "".join(words[:2]) if self.chance(0.6) else "-".join(words[:2])
        return _Company(f"{core} {self.pick(country.legal_forms)}", f"{domain}.{country.tld}", country)

    def shop(self) -> str:
        return self.pick((f"{self.pick(_BRAND_HEADS)}{self.pick(_BRAND_TAILS)}",
                          f"{self.pick(_BRAND_HEADS)} {self.pick(('Home', 'Outfitters', 'Electronics', 'Direct', 'Store', 'Living'))}"))

    def company_number(self, country: _Country) -> str:
        """Registration numbers: public identifiers of companies, not personal data."""
        return {
            "US": lambda: f"EIN {self.digits(2)}-{self.digits(7)}",
            "GB": lambda: f"company number {self.pick(('0' + self.digits(7), 'SC' + self.digits(6), 'OC' + self.digits(6)))}",
            "DE": lambda: f"HRB {self.rng.randint(10000, 299999)}{self.pick(('', ' B'))}",
            "FR": lambda: f"SIREN {self.digits(3)} {self.digits(3)} {self.digits(3)}",
            "ES": lambda: f"CIF {self.pick('AB')}{self.digits(8)}",
            "IT": lambda: f"REA {self.pick(('MI', 'RM', 'TO', 'NA'))}-{self.digits(7)}",
            "NL": lambda: f"KvK {self.digits(8)}",
        }[country.code]()

    def vat_number(self, country: _Country) -> str:
        return {
            "US": lambda: f"Tax ID {self.digits(2)}-{self.digits(7)}",
            "GB": lambda: f"GB {self.digits(3)} {self.digits(4)} {self.digits(2)}",
            "DE": lambda: f"DE{self.digits(9)}",
            "FR": lambda: f"FR{self.digits(2)} {self.digits(9)}",
            "ES": lambda: f"ES{self.pick('AB')}{self.digits(8)}",
            "IT": lambda: f"IT{self.digits(11)}",
            "NL": lambda: f"NL{self.digits(9)}B0{self.rng.randint(1, 9)}",
        }[country.code]()

    # -- phone numbers ----------------------------------------------------------------------
    def phone(self, country: _Country | None = None, mobile: bool | None = None) -> str:
        country = country or self.country()
        mobile = self.chance(0.5) if mobile is None else mobile
        area = self.city(country).area_code
        formats = {"US": self._phone_us, "GB": self._phone_gb, "DE": self._phone_de, "FR": self._phone_fr,
                   "ES": self._phone_es, "IT": self._phone_it, "NL": self._phone_nl}
        return formats[country.code](area, mobile)

    def _phone_us(self, area: str, mobile: bool) -> str:
        if self.chance(0.2):  # the 555-01xx range reserved for fiction, as in many real test sets
            e, n = "555", f"01{self.digits(2)}"
        else:
            e, n = f"{self.rng.randint(2, 9)}{self.rng.randint(0, 9)}{self.rng.randint(2, 9)}", self.digits(4)
        a = area
        return self.pick((f"({a}) {e}-{n}", f"{a}-{e}-{n}", f"{a}.{e}.{n}", f"+1 {a} {e} {n}", f"+1 ({a}) {e}-{n}",
                          f"+1-{a}-{e}-{n}", f"1-{a}-{e}-{n}", f"{a}{e}{n}"))

    def _phone_gb(self, area: str, mobile: bool) -> str:
        if mobile:
            code, rest = f"7{self.pick(('700', '400', '911', '825', '123', '981'))}", self.digits(6)
        else:
            code = area
            rest = self.digits(10 - len(area))
            rest = _groups(rest, (4, 4) if len(area) == 2 else (3, 4) if len(area) == 3 else (6,), " ")
        return self.pick((f"0{code} {rest}", f"+44 {code} {rest}", f"+44 (0){code} {rest}",
                          f"+44{code}{rest.replace(' ', '')}"))

    def _phone_de(self, area: str, mobile: bool) -> str:
        if mobile:
            code, rest = self.pick(("151", "152", "160", "170", "171", "172", "176", "177", "179")), self.digits(self.rng.randint(7, 8))
        else:
            code, rest = area, self.digits(self.rng.randint(6, 8))
        spaced = _groups(rest, (4,), " ") if self.chance(0.4) else rest
        return self.pick((f"+49 {code} {spaced}", f"0{code} {spaced}", f"+49 (0){code} {spaced}", f"0{code}/{rest}",
                          f"0{code}-{rest}", f"+49-{code}-{rest}", f"+49{code}{rest}"))

    def _phone_fr(self, area: str, mobile: bool) -> str:
        lead = self.pick("67") if mobile else area
        pairs = [self.digits(2) for _ in range(4)]
        return self.pick((f"0{lead} {' '.join(pairs)}", f"0{lead}{''.join(pairs)}", f"0{lead}.{'.'.join(pairs)}",
                          f"+33 {lead} {' '.join(pairs)}", f"+33 (0){lead} {' '.join(pairs)}", f"+33{lead}{''.join(pairs)}"))

    def _phone_es(self, area: str, mobile: bool) -> str:
        if mobile:
            number = self.pick(("6", f"7{self.pick('1234')}"))
            number += self.digits(9 - len(number))
        else:
            number = area + self.digits(9 - len(area))
        return self.pick((f"+34 {_groups(number, (3, 3, 3), ' ')}", f"{_groups(number, (3, 2, 2, 2), ' ')}", number,
                          f"+34 {_groups(number, (3, 2, 2, 2), ' ')}", f"+34-{_groups(number, (3, 3, 3), '-')}"))

    def _phone_it(self, area: str, mobile: bool) -> str:
        if mobile:
            number = f"3{self.pick(('20', '33', '35', '38', '40', '47', '49', '66', '89'))}{self.digits(7)}"
            spaced = _groups(number, (3, 3, 4), " ")
        else:
            number = area + self.digits(10 - len(area))
            spaced = f"{area} {_groups(number[len(area):], (4,), ' ')}"
        return self.pick((spaced, f"+39 {spaced}", f"+39 {number}", number, f"0039 {spaced}"))

    def _phone_nl(self, area: str, mobile: bool) -> str:
        code, rest = ("6", self.digits(8)) if mobile else (area, self.digits(7))
        return self.pick((f"+31 {code} {_groups(rest, (3, 4) if len(rest) == 7 else (4, 4), ' ')}", f"0{code}-{rest}",
                          f"0{code} {rest}", f"+31 (0){code} {rest}", f"+31{code}{rest}", f"0{code}-{_groups(rest, (3,), ' ')}"))

    # -- payment and bank data --------------------------------------------------------------
    def card(self) -> tuple[str, str]:
        """(brand, number): Luhn-valid, including 2-series Mastercard and 19-digit Visa."""
        brand, prefix, length = self.rng.choices((
            ("Visa", "4", 16), ("Visa", "4", 19),
            ("Mastercard", str(self.rng.randint(51, 55)), 16), ("Mastercard", str(self.rng.randint(2221, 2720)), 16),
            ("Amex", self.pick(("34", "37")), 15), ("Discover", self.pick(("6011", "65")), 16),
        ), weights=(30, 12, 20, 20, 12, 6))[0]
        payload = prefix + self.digits(length - len(prefix) - 1)
        number = payload + _luhn_check_digit(payload)
        sizes = (4, 6, 5) if length == 15 else (4, 4, 4, 4, 3)
        return brand, _groups(number, sizes, self.rng.choices(("", " ", "-"), weights=(3, 5, 2))[0])

    def card_tail(self) -> str:
        # "ending in 4242" identifies nothing on its own and is a classic false positive.
        return self.digits(4)

    def iban(self, country: _Country) -> tuple[str, str, str]:
        """(IBAN, BIC, bank name) with valid mod-97 check digits and, where the country has one, a valid national check."""
        bank_code, bic, bank_name = self.pick(_BANKS[country.code])
        code = country.code
        if code == "GB":
            bban = bank_code + self.digits(6) + self.digits(8)
        elif code == "DE":
            bban = bank_code + self.digits(10)
        elif code == "FR":
            branch, account = self.digits(5), self.digits(11)
            rib_key = 97 - (89 * int(bank_code) + 15 * int(branch) + 3 * int(account)) % 97
            bban = f"{bank_code}{branch}{account}{rib_key:02d}"
        elif code == "NL":
            bban = bank_code + self._elfproef_account()
        else:  # ES: entity, branch, two control digits, account
            branch, account = self.digits(4), self.digits(10)
            bban = f"{bank_code}{branch}{_ccc_digit('00' + bank_code + branch)}{_ccc_digit(account)}{account}"
        check = 98 - _iban_numeric(bban + code + "00") % 97
        compact = f"{code}{check:02d}{bban}"
        return (compact if self.chance(0.3) else _groups(compact, (4,) * 8, " ")), bic, bank_name

    def _elfproef_account(self) -> str:
        while True:  # Dutch account numbers pass the 11-test
            body = self.digits(9)
            last = -sum(int(d) * w for d, w in zip(body, range(10, 1, -1))) % 11
            if last < 10:
                return body + str(last)

    def account_number(self) -> str:
        return self.pick((f"{self.digits(4)}-{self.digits(4)}-{self.digits(2)}", f"C-{self.rng.randint(10000, 99999)}",
                          f"CUST-{self.digits(6)}", f"AC{self.digits(8)}", f"{self.rng.randint(1, 9)}{self.digits(9)}",
                          f"ACC-{self.letters(3)}-{self.digits(6)}", f"{self.letters(2)}{self.digits(7)}",
                          f"{self.digits(3)}-{self.digits(6)}"))

    # -- national and medical identifiers ---------------------------------------------------
    def national_id(self, country: _Country) -> tuple[str, str]:
        """(what it is called, the number), for countries in _ID_COUNTRIES."""
        code = country.code
        if code == "US":
            area = 666
            while area == 666:  # valid areas are 001-899 except 666
                area = self.rng.randint(1, 899)
            number = f"{area:03d}-{self.rng.randint(1, 99):02d}-{self.rng.randint(1, 9999):04d}"
            return self.pick(("SSN", "Social Security No.")), number if self.chance(0.85) else number.replace("-", " ")
        if code == "GB":
            first = self.pick("ABCEGHJKLMNOPRSTWXYZ")
            second = self.pick([c for c in "ABCEGHJKLMNPRSTWXYZ" if first + c not in ("GB", "NK", "TN", "ZZ", "BG", "KN", "NT")])
            d = self.digits(6)
            suffix = self.pick("ABCD")
            number = self.pick((f"{first}{second} {d[:2]} {d[2:4]} {d[4:]} {suffix}", f"{first}{second}{d}{suffix}"))
            return self.pick(("NI number", "National Insurance No.", "NINO")), number
        if code == "ES":
            n = self.rng.randint(10_000_000, 99_999_999)
            letter = "TRWAGMYFPDXBNJZSQVHLCKE"[n % 23]
            return "DNI", self.pick((f"{n}{letter}", f"{n}-{letter}"))
        if code == "NL":
            while True:
                body = str(self.rng.randint(1, 9)) + self.digits(7)
                last = sum(int(d) * w for d, w in zip(body, range(9, 1, -1))) % 11
                if last < 10:
                    return "BSN", body + str(last)
        # FR: NIR (social security number): sex, year and month of birth, département, commune, order, key.
        sex, born = self.pick("12"), self.date(1950, 2003)
        body = f"{sex}{born:%y}{born:%m}{self.pick(('75', '69', '13', '33', '59', '44'))}{self.digits(3)}{self.digits(3)}"
        key = 97 - int(body) % 97
        return self.pick(("n° de sécurité sociale", "NIR")), f"{body[0]} {body[1:3]} {body[3:5]} {body[5:7]} {body[7:10]} {body[10:]} {key:02d}"

    def nhs_number(self) -> str:
        while True:
            body = str(self.rng.randint(4, 6)) + self.digits(8)
            check = 11 - sum(int(d) * w for d, w in zip(body, range(10, 1, -1))) % 11
            if check != 10:
                number = body + str(check % 11)
                return f"{number[:3]} {number[3:6]} {number[6:]}"

    def mrn(self) -> str:
        return self.pick((f"{self.digits(8)}", f"00{self.digits(6)}", f"{self.rng.randint(1, 9)}{self.digits(6)}",
                          f"RX{self.digits(6)}", f"H{self.digits(7)}", f"{self.digits(3)}-{self.digits(3)}-{self.digits(3)}"))

    # -- network identifiers ----------------------------------------------------------------
    def ipv4(self) -> str:
        while True:  # a customer's public address, never a private or reserved one
            address = ipaddress.IPv4Address(self.rng.getrandbits(32))
            if address.is_global and not address.is_multicast:
                return str(address)

    def ipv6(self) -> str:
        while True:  # under prefixes ISPs hand out; privacy-style or short static host parts
            network = [self.pick((0x2001, 0x2a02, 0x2a01, 0x2600, 0x2a00, 0x2003, 0x2604))] + [self.rng.getrandbits(16) for _ in range(3)]
            host = [self.rng.getrandbits(16) for _ in range(4)] if self.chance(0.6) else [0, 0, 0, self.rng.getrandbits(16)]
            address = ipaddress.IPv6Address(":".join(f"{h:x}" for h in network + host))
            if address.is_global:
                return address.compressed

    # -- hard negatives: look like identifiers, are not personal data ------------------------
    def order_number(self) -> str:
        return self.pick((f"ORD-{self.digits(6)}", f"#{self.rng.randint(1000000, 9999999)}",
                          f"{self.digits(3)}-{self.digits(7)}-{self.digits(7)}", f"SO{self.digits(8)}",
                          f"W{self.digits(9)}", f"ORD-{self.rng.randint(2021, 2026)}-{self.digits(5)}"))

    def ticket_id(self) -> str:
        return self.pick((f"TCK-{self.rng.randint(2021, 2026)}-{self.digits(5)}", f"#{self.rng.randint(10000, 999999)}",
                          f"INC{self.digits(7)}", f"CS-{self.digits(6)}", f"SR {self.digits(8)}", f"HD-{self.digits(5)}"))

    def sku(self) -> str:
        return self.pick((f"{self.letters(2)}-{self.digits(4)}-{self.pick(('BLK', 'WHT', 'GRY', 'NAV', 'RED'))}",
                          f"{self.digits(8)}", f"{self.digits(2)}-{self.digits(4)}-{self.digits(2)}",
                          f"{self.letters(3)}{self.digits(5)}{self.pick(('S', 'M', 'L', 'XL'))}"))

    def price(self, country: _Country, low: float = 9, high: float = 900) -> str:
        amount = self.rng.uniform(low, high)
        if country.currency == "$":
            return f"${amount:,.2f}"
        if country.currency == "£":
            return f"£{amount:,.2f}"
        european = f"{amount:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")
        return self.pick((f"€{european}", f"{european} €", f"EUR {amount:,.2f}"))

    def tracking_number(self) -> str:
        return self.pick((f"1Z{self.letters(3)}{self.digits(3)}{self.digits(10)}",
                          f"{self.letters(2)}{self.digits(9)}GB", f"{self.digits(10)}", f"JJD{self.digits(18)}"))

    def invoice_number(self) -> str:
        return self.pick((f"INV-{self.rng.randint(2021, 2026)}-{self.digits(5)}", f"F{self.digits(8)}",
                          f"{self.rng.randint(2021, 2026)}/{self.digits(4)}"))

    def version(self) -> str:
        return f"{self.rng.randint(1, 17)}.{self.rng.randint(0, 30)}.{self.rng.randint(0, 12)}"


def _ccc_digit(digits: str) -> str:
    """One of the two control digits of a Spanish bank account (código cuenta cliente)."""
    d = 11 - sum(int(ch) * w for ch, w in zip(digits, (1, 2, 4, 8, 5, 10, 9, 7, 3, 6))) % 11
    return str({11: 0, 10: 1}.get(d, d))


# --------------------------------------------------------------------------------------------
# Family "support": chats, ticket emails, tech logs, billing and shipping notes.
# Hard negatives: order/ticket/tracking numbers, SKUs, prices, timestamps, masked cards, versions.
# --------------------------------------------------------------------------------------------

def _support_chat(g: _Gen, b: _Builder) -> None:
    country = g.country()
    customer, agent = g.person(country), g.person(g.country()).first
    clock = _Clock(g.rng, g.moment())
    order = g.order_number()
    b.line("Chat transcript - ", ("ORGANIZATION", g.shop()), " Help Centre")
    b.line(f"Session {g.ticket_id()} · started {clock.now:%Y-%m-%d %H:%M} UTC · channel: web")
    b.line()
    who = g.pick((["Customer"], ["Visitor"], [("PERSON", customer.first)]))
    b.line(f"[{clock.tick():%H:%M}] ", ("PERSON", agent), ": Hi, thanks for reaching out! How can I help today?")
    intro = g.pick((
        ["hi this is ", ("PERSON", customer.full.lower()), ", "],
        ["Hello, my name is ", ("PERSON", customer.full), ". "],
        ["hey its ", ("PERSON", customer.first.lower()), " again, "],
        ["Hi! ", ("PERSON", customer.full), " here - "],
        ["good morning, ", ("PERSON", customer.full.lower()), " speaking. "],
    ))
    issue = g.pick((
        f"my order {order} still hasn't arrived, tracking hasn't moved since {g.past_day()}",
        f"the {g.pick(_PRODUCTS)} I bought {g.past_day()} (order {order}) stopped working",
        f"I was charged twice for order {order}, {g.price(country)} each time",
        f"I need to change the delivery address on order {order} before it ships",
    ))
    b.line(f"[{clock.tick():%H:%M}] ", *who, ": ", *intro, issue)
    b.line(f"[{clock.tick():%H:%M}] ", ("PERSON", agent), ": Sorry about that! Could you confirm the email address on the order?")
    email = g.email(customer)
    b.line(f"[{clock.tick():%H:%M}] ", *who, ": ", g.pick(("its ", "sure, ", "", "it should be ")), ("EMAIL_ADDRESS", email))
    address = g.address(country)
    b.line(f"[{clock.tick():%H:%M}] ", ("PERSON", agent), ": Thanks. I can see it was sent to ",
           ("STREET_ADDRESS", address.render()), " - is that still correct?")
    phone = g.phone(country)
    b.line(f"[{clock.tick():%H:%M}] ", *who, ": ", g.pick(("yes thats right", "Yes", "yep", "correct")), ". ",
           g.pick(("you can also call me on ", "if it's easier my number is ", "or text me at ")), ("PHONE_NUMBER", phone))
    if g.chance(0.35):
        brand, card = g.card()
        b.line(f"[{clock.tick():%H:%M}] ", *who, ": ", g.pick(("if the refund fails just use my other card ", f"my {brand.lower()} is ",
                                                          "card number ")), ("CREDIT_CARD", card))
        b.line(f"[{clock.tick():%H:%M}] ", ("PERSON", agent), ": Please don't share full card numbers in chat - "
               f"I've masked it (card ending {''.join(filter(str.isdigit, card))[-4:]}).")
    b.line(f"[{clock.tick():%H:%M}] ", ("PERSON", agent), ": ", g.pick((
        f"I've opened ticket {g.ticket_id()} and requested a replacement; you'll hear from us "
        f"{g.pick(('by next Tuesday', 'within 48 hours', 'by Friday'))}.",
        f"I've refunded {g.price(country)} to your original payment method; allow 3-5 working days.",
        f"Our courier will contact you {g.pick(('tomorrow', 'next week', 'on Monday'))}. Reference {g.tracking_number()}.",
    )))
    b.line(f"[{clock.tick():%H:%M}] ", *who, ": ", g.pick(("thanks!!", "Great, thank you.", "ok cheers", "perfect thx")))


def _support_email_ticket(g: _Gen, b: _Builder) -> None:
    country = g.country()
    customer = g.person(country)
    received = g.moment()
    caps = g.chance(0.6)
    b.line(f"Ticket {g.ticket_id()} | Priority: {g.pick(('High', 'Normal', 'Urgent'))} | Channel: Email | Received: {received:%d/%m/%Y %H:%M}")
    b.line("CUSTOMER: " if caps else "Customer: ", ("PERSON", customer.full.upper() if caps else customer.full))
    b.line("From: ", ("EMAIL_ADDRESS", g.email(customer)))
    if g.chance(0.7):
        b.line(g.pick(("Account: customer ID ", "Account number: ", "Acct #: ")), ("ACCOUNT_NUMBER", g.account_number()))
    order = g.order_number()
    b.line(f"Subject: {g.pick(('Charged twice for', 'Refund not received for', 'Wrong item in', 'Damaged parcel -'))} order {order}")
    b.line()
    b.line(g.pick(("Hello,", "Hi there,", "Dear support team,", "To whom it may concern,")))
    b.line()
    brand, card = g.card()
    b.add(g.pick((f"I placed order {order} {g.past_day()} and paid {g.price(country)} with my {brand} ",
                  f"On {received:%B} {received.day} I bought a {g.pick(_PRODUCTS)} (SKU {g.sku()}) for {g.price(country)} using my {brand} card ")),
          ("CREDIT_CARD", card), ". ")
    b.line(g.pick((
        "The amount was taken twice and your chatbot keeps closing the conversation.",
        f"The parcel arrived damaged and I was promised a refund {g.past_day()}, but nothing has come through.",
        "I received the wrong colour and the return label does not work.",
    )))
    b.line()
    b.line(g.pick((
        "Please call me back, I'm available most afternoons.",
        "I would appreciate a reply within the week, otherwise I will dispute the charge with my bank.",
        "Can someone please look into this? It's the second time I've written.",
    )))
    b.line()
    b.line(g.pick(("Regards,", "Thanks,", "Best wishes,", "Kind regards,")))
    signature = customer.full.upper() if caps else customer.full
    b.line(("PERSON", signature))
    if g.chance(0.5):
        b.line(("STREET_ADDRESS", g.address(country).render(multiline=True)))
    b.line(g.pick(("", "Tel: ", "Mobile: ", "m. ")), ("PHONE_NUMBER", g.phone(country)))


def _support_tech_log(g: _Gen, b: _Builder) -> None:
    country = g.country()
    customer = g.person(country)
    email = g.email(customer)
    clock = _Clock(g.rng, g.moment())
    app = g.version()
    b.line(f"--- Support session log exported {clock.now:%Y-%m-%d %H:%M:%S} (ticket {g.ticket_id()}) ---")
    b.line("user=", ("EMAIL_ADDRESS", email), " account=", ("ACCOUNT_NUMBER", g.account_number()), f" plan={g.pick(('free', 'pro', 'business'))}")
    ip_home = g.ipv4() if g.chance(0.7) else g.ipv6()
    for _ in range(g.rng.randint(1, 3)):
        b.line(f"{clock.tick():%Y-%m-%dT%H:%M:%SZ} WARN  auth.login_failed user=", ("EMAIL_ADDRESS", email),
               " src_ip=", ("IP_ADDRESS", ip_home), f" reason={g.pick(('BAD_PASSWORD', 'MFA_TIMEOUT', 'LOCKED'))}")
    b.line(f"{clock.tick():%Y-%m-%dT%H:%M:%SZ} INFO  auth.mfa_sms_sent to=", ("PHONE_NUMBER", g.phone(country, mobile=True)))
    ip_travel = g.ipv4()
    b.line(f"{clock.tick():%Y-%m-%dT%H:%M:%SZ} INFO  auth.login_ok src_ip=", ("IP_ADDRESS", ip_travel),
           f" client={g.pick(('iOS', 'Android', 'macOS', 'Windows'))}/{g.version()} app=v{app}")
    b.line(f"{clock.tick():%Y-%m-%dT%H:%M:%SZ} ERROR sync.upload code={g.pick(('0x80070005', 'E_QUOTA', 'HTTP 413', 'ETIMEDOUT'))} "
           f"req_id={g.rng.getrandbits(64):016x} bytes={g.rng.randint(10_000, 90_000_000)}")
    b.line()
    b.add("Agent note: ", g.pick(("spoke with ", "called ", "customer is ")), ("PERSON", customer.full), ". ")
    b.line(*g.pick((
        [f"Says it wasn't {'her' if customer.female else 'him'} trying to log in {g.past_day()}."],
        ["Confirmed they were travelling in ", ("LOCATION", g.city(g.country()).name), f" {g.past_day()}, so the new IP is expected."],
        [f"Reset MFA, cleared sessions, advised to update the app to v{g.version()}."],
    )))
    b.line(g.pick(("Escalated to tier 2.", f"Closing; follow-up {g.future_day()} if the sync error recurs.", "No further action needed.")))


def _support_billing_call(g: _Gen, b: _Builder) -> None:
    country = g.country()
    customer = g.person(country)
    agent = g.person(g.country())
    call = g.moment()
    b.line(f"CALL NOTES - Billing | {call:%a %d %b %Y, %H:%M} | case {g.ticket_id()}")
    b.line("Agent: ", ("PERSON", agent.full), f" (ext. {g.rng.randint(200, 899)})")
    b.line("Caller: ", g.pick((("TITLE", customer.honorific + "."), ("TITLE", customer.honorific))), " ", ("PERSON", customer.full),
           ", ", g.pick(("customer ID ", "account number ", "acct ")), ("ACCOUNT_NUMBER", g.account_number()))
    b.line(f"Verified: postcode and last 4 of card on file (ending {g.card_tail()}).")
    b.line()
    brand, card = g.card()
    b.add(f"Caller reports the card ending {g.card_tail()} was declined for the {g.price(country, 5, 60)} monthly renewal {g.past_day()}. "
          f"Wants to switch to a new {brand}: ", ("CREDIT_CARD", card),
          f", exp {g.rng.randint(1, 12):02d}/{g.rng.randint(26, 31)}. CVV not recorded per policy. ")
    b.line(g.pick((
        f"Retried invoice {g.invoice_number()} ({g.price(country, 20, 400)}) - approved.",
        f"Payment retried twice, soft decline again; asked caller to contact their bank. Invoice {g.invoice_number()} stays open.",
        f"Applied goodwill credit of {g.price(country, 5, 30)} for the inconvenience.",
    )))
    if g.chance(0.5):
        b.line("Callback number given: ", ("PHONE_NUMBER", g.phone(country)), f" ({g.pick(('after 5pm', 'mornings only', 'any time'))}).")
    b.line(f"Next review: {g.future_day()}. Tags: billing, card-update, {g.pick(('retention', 'churn-risk', 'vip'))}")


def _support_address_change(g: _Gen, b: _Builder) -> None:
    country = g.country()
    customer = g.person(country)
    old, new = g.address(country), g.address(country if g.chance(0.7) else g.country())
    order = g.order_number()
    b.line(f"Request type: Delivery address change    Order: {order}    Ticket: {g.ticket_id()}")
    b.line("Customer name: ", ("PERSON", customer.full))
    b.line("Contact email: ", ("EMAIL_ADDRESS", g.email(customer)))
    b.line()
    b.line("Current shipping address:")
    b.line(("STREET_ADDRESS", old.render(multiline=True)))
    b.line(("LOCATION", g.country_name(old.country)))
    b.line()
    b.line("New shipping address:")
    b.line(("STREET_ADDRESS", new.render(multiline=g.chance(0.5))))
    b.line(("LOCATION", g.country_name(new.country)))
    b.line()
    b.line("Items:")
    for _ in range(g.rng.randint(1, 3)):
        b.line(f"  {g.rng.randint(1, 3)} x {g.pick(_PRODUCTS)}   SKU {g.sku()}   {g.price(country)}")
    b.line()
    b.line(g.pick((
        f"Customer note: \"moved {g.past_day()}, please don't send it to the old flat!\"",
        f"Customer note: \"I'll be staying at my parents' {g.future_day()} - the neighbour can sign for it.\"",
        "Customer note: \"please leave with reception if nobody answers\"",
    )))
    b.line(g.pick((
        f"Status: updated before dispatch. Carrier label regenerated, tracking {g.tracking_number()}.",
        f"Status: parcel already in transit ({g.tracking_number()}); redirect requested with carrier, fee {g.price(country, 3, 12)}.",
    )))


def _support_callback_form(g: _Gen, b: _Builder) -> None:
    country = g.country()
    customer = g.person(country)
    submitted = g.moment()
    b.line(f"CALLBACK REQUEST #{g.rng.randint(100000, 999999)} submitted {submitted:%Y-%m-%d %H:%M}")
    b.line()
    b.line("Name ............ ", ("PERSON", customer.full if g.chance(0.7) else customer.full.lower()))
    b.line("Phone (primary) . ", ("PHONE_NUMBER", g.phone(country, mobile=True)))
    if g.chance(0.7):
        b.line("Phone (work) .... ", ("PHONE_NUMBER", g.phone(country, mobile=False)))
    b.line("Email ........... ", ("EMAIL_ADDRESS", g.email(customer)))
    b.line(f"Preferred time .. {g.pick(('next Tuesday after 3pm', 'weekday mornings', 'tomorrow lunchtime', 'any time before 6pm', 'Saturday'))}")
    b.line(f"Topic ........... {g.pick(('Warranty claim', 'Installation booking', 'Cancel subscription', 'Complaint', 'Upgrade'))}")
    b.line(f"Related order ... {g.order_number()}")
    b.line()
    b.line("Message:")
    b.line(*g.pick((
        [f"I bought the {g.pick(_PRODUCTS)} {g.past_day()} and it makes a grinding noise. Please call the mobile, not the office line."],
        [f"Tried calling your hotline three times {g.past_day()}, waited 40+ minutes each time. My wife ", ("PERSON", g.person(country).first),
         " may pick up if I'm out."],
        [f"Need to book an engineer for {g.pick(('Monday', 'next week', 'the 14th'))}. Site address is ",
         ("STREET_ADDRESS", g.address(country).render()), ", buzzer doesn't work so ring ahead."],
        ["Please cancel my subscription at the end of the month and confirm in writing. Quote reference ",
         f"{g.ticket_id()} from my last call."],
    )))


def _support_refund_form(g: _Gen, b: _Builder) -> None:
    country = g.country()
    customer = g.person(country)
    b.line(f"REFUND REQUEST - {g.shop()} Returns Department")
    b.line(f"Reference: RMA-{g.digits(6)}    Original order: {g.order_number()}    Date: {g.date_text(g.date(2022, 2026), country)}")
    b.line()
    b.line("Account holder: ", ("PERSON", customer.full.upper() if g.chance(0.3) else customer.full))
    b.line("Customer number: ", ("ACCOUNT_NUMBER", g.account_number()))
    b.line("Billing address: ", ("STREET_ADDRESS", g.address(country).render()))
    if country.code in _IBAN_COUNTRIES and g.chance(0.7):
        iban, bic, bank = g.iban(country)
        b.line("Refund method: bank transfer to ", ("ORGANIZATION", bank))
        b.line("IBAN: ", ("IBAN_CODE", iban))
        b.line(f"BIC: {bic}")
    else:
        brand, card = g.card()
        b.line(f"Refund method: original card ({brand}) ", ("CREDIT_CARD", card))
    b.line(f"Amount to refund: {g.price(country)} (item returned {g.past_day()}, restocking fee waived)")
    b.line()
    b.line(g.pick((
        "Reason: item arrived with a cracked screen; photos attached to the ticket.",
        f"Reason: duplicate charge, see statement line dated {g.date_text(g.date(2022, 2026), country)}.",
        "Reason: order cancelled before dispatch, card refund failed because the card has since been replaced.",
    )))
    contact: list[_Piece] = ["Please confirm by email to ", ("EMAIL_ADDRESS", g.email(customer))]
    if g.chance(0.4):
        contact += [" or call ", ("PHONE_NUMBER", g.phone(country))]
    b.line(*contact, ".")


def _support_account_recovery(g: _Gen, b: _Builder) -> None:
    country = g.country()
    customer = g.person(country)
    dob = g.date(1945, 2004)
    b.line(f"Account recovery case {g.ticket_id()} - identity verification")
    b.line()
    b.line("Claimed identity: ", ("PERSON", customer.full))
    b.line("Date of birth given: ", ("DATE_OF_BIRTH", g.date_text(dob, country)))
    b.line("Customer ID: ", ("ACCOUNT_NUMBER", g.account_number()))
    b.line("Registered email: ", ("EMAIL_ADDRESS", g.email(customer)), " (no longer accessible, per customer)")
    b.line("New email requested: ", ("EMAIL_ADDRESS", g.email(customer)))
    b.line("Phone on file: ", ("PHONE_NUMBER", g.phone(country)))
    b.line()
    b.line("Recent sign-ins:")
    clock = _Clock(g.rng, g.moment())
    for _ in range(g.rng.randint(2, 4)):
        ip = g.ipv6() if g.chance(0.3) else g.ipv4()
        b.line(f"  {clock.tick(86400):%Y-%m-%d %H:%M}  ", ("IP_ADDRESS", ip),
               f"  {g.pick(('Chrome', 'Safari', 'Firefox', 'Edge'))} {g.rng.randint(100, 130)}  "
               f"{g.pick(('success', 'success', 'failed password', 'MFA passed'))}")
    b.line()
    b.line(g.pick((
        "Outcome: DOB and phone match records; recovery link sent to the new address. Old sessions revoked.",
        "Outcome: DOB does not match; asked for a photo ID upload before we proceed.",
        f"Outcome: pending - customer will call back {g.future_day()} from the number on file.",
    )))


def _support_escalation(g: _Gen, b: _Builder) -> None:
    country = g.country()
    customer = g.person(country)
    agent, lead = g.person(g.country()), g.person(g.country())
    b.line("ESCALATION HANDOFF - ", ("PERSON", customer.full.upper()))
    b.line("From: ", ("PERSON", agent.full), " (Tier 1)    To: ", ("PERSON", lead.full), " (Team Lead)")
    b.line(f"Opened {g.past_day()} | ticket {g.ticket_id()} | order {g.order_number()} | value {g.price(country, 200, 3000)}")
    b.line()
    b.add("Summary: ", ("PERSON", customer.first), g.pick((
        f" has contacted us {g.rng.randint(3, 7)} times about a {g.pick(_PRODUCTS)} that never arrived. ",
        f" was promised a replacement {g.past_day()} and it has not shipped. ",
        f" disputes a {g.price(country)} charge and is threatening a chargeback. ",
    )))
    b.line(g.pick(("Very frustrated but polite.", "Has mentioned posting a review.", "Asked for a manager twice.")))
    b.line("Best contact: ", ("PHONE_NUMBER", g.phone(country)), " or ", ("EMAIL_ADDRESS", g.email(customer)), ".")
    if g.chance(0.6):
        b.line("Delivery address (confirmed twice): ", ("STREET_ADDRESS", g.address(country).render()), ".")
    b.line()
    b.line(g.pick((
        f"Recommendation: full refund plus {g.price(country, 10, 50)} voucher; needs TL approval above {g.price(country, 100, 150)}.",
        f"Recommendation: courier investigation ({g.tracking_number()}) then reship with express delivery.",
        "Recommendation: call the customer today; do not send another template email.",
    )))
    b.line("- ", ("PERSON", agent.first))


# --------------------------------------------------------------------------------------------
# Family "contract": DPA and commercial contract excerpts.
# Hard negatives: registration and VAT numbers, BICs, effective dates, fees, invoice references.
# --------------------------------------------------------------------------------------------

def _party(g: _Gen, b: _Builder, company: _Company, role: str) -> None:
    c = company.country
    b.add(("ORGANIZATION", company.name), g.pick((
        f", a company registered under {g.company_number(c)}, ",
        f" ({g.company_number(c)}), ",
        ", ",
    )), g.pick(("whose registered office is at ", "having its principal place of business at ", "with offices at ")),
        ("STREET_ADDRESS", g.address(c).render()), ", ", ("LOCATION", g.country_name(c)), f" (the \"{role}\")")


def _contract_dpa_parties(g: _Gen, b: _Builder) -> None:
    controller, processor = g.company(), g.company()
    b.line(g.pick(("DATA PROCESSING AGREEMENT", "DATA PROCESSING ADDENDUM", "AGREEMENT ON COMMISSIONED DATA PROCESSING")))
    b.line()
    start = g.date(2019, 2026)
    b.line(f"This Data Processing Agreement (\"DPA\") is entered into as of {g.date_text(start)} (the \"Effective Date\") by and between:")
    b.line()
    b.add("(1) ")
    _party(g, b, controller, "Controller")
    b.line("; and")
    b.line()
    b.add("(2) ")
    _party(g, b, processor, "Processor")
    b.line(".")
    b.line()
    b.line(g.pick((
        "The Processor processes Personal Data on behalf of the Controller in connection with the Master Services "
        f"Agreement dated {g.date_text(g.date(2017, 2025))}.",
        "This DPA forms part of the Agreement and reflects the parties' obligations under Article 28 GDPR.",
    )))
    b.add("The Controller's data protection officer is ", ("PERSON", g.person(controller.country).full))
    b.line(g.pick((".", " (reachable via the notices address in clause 14).")))


def _contract_signatures(g: _Gen, b: _Builder) -> None:
    b.line("IN WITNESS WHEREOF the parties have executed this Agreement by their duly authorised representatives.")
    for _ in range(2):
        company = g.company()
        signatory = g.person(company.country)
        caps = g.chance(0.4)
        b.line()
        b.line("For and on behalf of ", ("ORGANIZATION", company.name.upper() if caps else company.name))
        b.line("Signature: ______________________")
        name = [("TITLE", "Dr."), " "] if g.chance(0.15) else []
        b.line("Name: ", *name, ("PERSON", signatory.full.upper() if caps else signatory.full))
        b.line("Title: ", ("TITLE", g.pick(_EXEC_TITLES)))
        b.line(f"Date: {g.date_text(g.date(2019, 2026), company.country)}")
        if g.chance(0.3):
            b.line("Email: ", ("EMAIL_ADDRESS", g.email(signatory, company.domain)))
    if g.chance(0.5):
        witness = g.person()
        b.line()
        b.line("Witnessed by: ", ("PERSON", witness.full), ", ", ("TITLE", g.pick(("Solicitor", "Paralegal", "Notary", "Office Manager"))))
        b.line("Address: ", ("STREET_ADDRESS", g.address(witness.country).render()))


def _contract_payment(g: _Gen, b: _Builder) -> None:
    country = g.country(_IBAN_COUNTRIES)
    supplier = g.company(country)
    iban, bic, bank = g.iban(country)
    fee = g.price(country, 5_000, 250_000)
    clause = g.rng.randint(3, 9)
    b.line(f"{clause}. FEES AND PAYMENT")
    b.line(f"{clause}.1 The Customer shall pay the Fees set out in Schedule {g.rng.randint(1, 4)} ({fee} per annum, exclusive of VAT) "
           f"within {g.pick(('thirty (30)', 'fourteen (14)', 'sixty (60)'))} days of the date of each invoice.")
    b.line(f"{clause}.2 All payments shall be made by bank transfer to the following account:")
    holder = (("ORGANIZATION", supplier.name),) if g.chance(0.7) else (("PERSON", g.person(country).full),)
    b.line("    Account holder: ", *holder)
    b.line("    Bank: ", ("ORGANIZATION", bank))
    b.line("    IBAN: ", ("IBAN_CODE", iban))
    b.line(f"    BIC/SWIFT: {bic}")
    b.line(f"    Payment reference: {g.invoice_number()}")
    b.line(f"{clause}.3 Late payments bear interest at {g.pick(('8', '4', '5'))} percentage points above the base rate. "
           f"The Supplier's VAT number is {g.vat_number(country)}.")
    clerk = g.person(country)
    b.line(f"{clause}.4 Queries on invoices shall be addressed to ", ("PERSON", clerk.full),
           ", Accounts Receivable, at ", ("EMAIL_ADDRESS", g.email(clerk, supplier.domain)), ".")


def _contract_notices(g: _Gen, b: _Builder) -> None:
    clause = g.rng.randint(11, 19)
    b.line(f"{clause}. NOTICES")
    b.line(f"{clause}.1 Any notice under this Agreement shall be in writing and delivered by hand, by pre-paid registered post "
           "or by email to the addresses below (or such other address as a party may notify):")
    for letter, role in (("a", "Customer"), ("b", "Supplier")):
        company = g.company()
        contact = g.person(company.country)
        b.add(f"({letter}) if to the {role}: ", ("ORGANIZATION", company.name), ", ",
              ("STREET_ADDRESS", g.address(company.country).render()), ", for the attention of ")
        b.add(*([("TITLE", "Dr."), " "] if g.chance(0.15) else []), ("PERSON", contact.full), " (", ("TITLE", g.pick(_EXEC_TITLES)), "), email: ",
              ("EMAIL_ADDRESS", g.email(contact, company.domain)))
        if g.chance(0.5):
            b.add(", telephone ", ("PHONE_NUMBER", g.phone(company.country, mobile=False)))
        b.line(";" if letter == "a" else ".")
    b.line(f"{clause}.2 A notice sent by email is deemed received at 9.00 am on the next Business Day after transmission.")


def _contract_employment(g: _Gen, b: _Builder) -> None:
    country = g.country(("GB", "ES", "NL", "FR"))
    employer, employee = g.company(country), g.person(country)
    id_name, id_number = g.national_id(country)
    iban = g.iban(country)[0]
    b.line("CONTRACT OF EMPLOYMENT - STATEMENT OF MAIN TERMS")
    b.line()
    b.line("1. Employer: ", ("ORGANIZATION", employer.name), ", ", ("STREET_ADDRESS", g.address(country).render()))
    b.line("2. Employee: ", ("TITLE", employee.honorific), " ", ("PERSON", employee.full), ", of ", ("STREET_ADDRESS", g.address(country).render()))
    b.line("   Date of birth: ", ("DATE_OF_BIRTH", g.date_text(g.date(1960, 2003), country)), f"    {id_name}: ", ("NATIONAL_ID", id_number))
    b.line("3. Job title: ", ("TITLE", g.pick(("Senior Data Engineer", "Account Executive", "Warehouse Supervisor", "HR Coordinator",
                                               "Product Designer", "Registered Nurse", "Customer Success Manager"))),
           f", reporting to the {g.pick(('Head of Engineering', 'Sales Director', 'Operations Manager'))}.")
    b.line(f"4. Start date: {g.date_text(g.date(2020, 2026), country)}. Continuous employment begins on that date; "
           f"probation of {g.pick(('three', 'six'))} months.")
    b.line(f"5. Salary: {g.price(country, 28_000, 120_000)} gross per annum, paid monthly in arrears into the Employee's account ",
           ("IBAN_CODE", iban), ".")
    b.line(f"6. Hours: {g.pick(('37.5', '40', '35'))} hours per week; {g.pick(('25', '28', '30'))} days' holiday plus public holidays.")
    b.line("7. Emergency contact: ", ("PERSON", g.person(country).full), ", ", ("PHONE_NUMBER", g.phone(country, mobile=True)), ".")


def _contract_subprocessors(g: _Gen, b: _Builder) -> None:
    b.line(f"ANNEX {g.pick(('III', '3', 'C'))} - LIST OF SUB-PROCESSORS")
    b.line(f"As at {g.date_text(g.date(2021, 2026))} the Controller has authorised the following sub-processors:")
    b.line()
    purposes = ["infrastructure hosting (EU region)", "customer support ticketing", "transactional email delivery",
                "payment processing", "error monitoring", "data warehouse and analytics"]
    g.rng.shuffle(purposes)
    for i in range(g.rng.randint(1, 4)):
        company = g.company()
        contact = g.person(company.country)
        b.line(f"{i + 1}. Name: ", ("ORGANIZATION", company.name))
        b.line("   Address: ", ("STREET_ADDRESS", g.address(company.country).render()), ", ", ("LOCATION", g.country_name(company.country)))
        b.line("   Contact: ", ("PERSON", contact.full), ", ", ("TITLE", g.pick(("Privacy Lead", "Data Protection Officer", "Legal Counsel"))),
               ", ", ("EMAIL_ADDRESS", g.email(contact, company.domain)))
        b.line(f"   Processing: {purposes[i]}; transfer mechanism: {g.pick(('none (EEA)', 'SCCs Module 3', 'adequacy decision'))}")


def _contract_consultancy(g: _Gen, b: _Builder) -> None:
    client = g.company()
    country = g.country(_IBAN_COUNTRIES)
    consultant = g.person(country)
    iban, bic, _ = g.iban(country)
    b.line("CONSULTANCY AGREEMENT")
    b.line()
    b.add(f"This Agreement is made on {g.date_text(g.date(2020, 2026))} between ")
    _party(g, b, client, "Client")
    b.add(", and ", ("TITLE", consultant.honorific + "."), " ", ("PERSON", consultant.full),
          ", an independent consultant residing at ", ("STREET_ADDRESS", g.address(country).render()), " (the \"Consultant\").")
    b.line()
    b.line()
    b.line(f"1. Services. The Consultant shall provide {g.pick(('data migration', 'security review', 'UX research', 'interim finance'))} "
           f"services as described in Statement of Work {g.rng.randint(1, 9)}, for an initial term of {g.rng.randint(3, 12)} months.")
    b.line(f"2. Fees. {g.price(country, 450, 1400)} per day, invoiced monthly and payable to ", ("IBAN_CODE", iban), f" (BIC {bic}).")
    b.line("3. Contact. The Consultant may be reached at ", ("EMAIL_ADDRESS", g.email(consultant)), " or ",
           ("PHONE_NUMBER", g.phone(country, mobile=True)), ".")
    b.line("4. Confidentiality. The Consultant shall not disclose Confidential Information during the term or for "
           f"{g.pick(('two', 'three', 'five'))} years thereafter.")


def _contract_lease(g: _Gen, b: _Builder) -> None:
    country = g.country(_IBAN_COUNTRIES)
    landlord, tenant = g.person(country), g.person(country)
    b.line(g.pick(("ASSURED SHORTHOLD TENANCY AGREEMENT", "RESIDENTIAL LEASE AGREEMENT", "TENANCY AGREEMENT")))
    b.line()
    b.line("Landlord: ", ("TITLE", landlord.honorific), " ", ("PERSON", landlord.full), " of ", ("STREET_ADDRESS", g.address(country).render()))
    b.line("Tenant: ", ("TITLE", tenant.honorific), " ", ("PERSON", tenant.full), g.pick((", currently of ", ", whose address for service is ")),
           ("STREET_ADDRESS", g.address(country).render()))
    b.line("Property: ", ("STREET_ADDRESS", g.address(country).render()), " (the \"Property\"), including the fixtures listed in the inventory.")
    b.line(f"Term: {g.pick(('12', '6', '24'))} months commencing on {g.date_text(g.date(2021, 2026), country)}.")
    b.line(f"Rent: {g.price(country, 650, 3200)} per calendar month, payable in advance on the {g.rng.randint(1, 28)}th day of each month "
           "by standing order to the Landlord's account ", ("IBAN_CODE", g.iban(country)[0]), ".")
    b.line(f"Deposit: {g.price(country, 700, 4500)}, protected under scheme certificate {g.letters(3)}-{g.digits(6)}.")
    b.line("Tenant's contact details: ", ("PHONE_NUMBER", g.phone(country, mobile=True)), ", ", ("EMAIL_ADDRESS", g.email(tenant)))


def _contract_assignment_notice(g: _Gen, b: _Builder) -> None:
    assignor, assignee = g.company(), g.company()
    recipient = g.person()
    contact = g.person(assignee.country)
    b.line(g.pick(("NOTICE OF ASSIGNMENT", "NOTICE OF NOVATION", "NOTICE OF CHANGE OF CONTROL")))
    b.line()
    b.line("To: ", ("TITLE", recipient.honorific), " ", ("PERSON", recipient.full), ", ", ("TITLE", g.pick(_EXEC_TITLES)))
    b.line("Address: ", ("STREET_ADDRESS", g.address(recipient.country).render(multiline=True)))
    b.line(f"Date: {g.date_text(g.date(2021, 2026))}")
    b.line()
    b.line("Dear ", ("TITLE", recipient.honorific), " ", ("PERSON", recipient.last), ",")
    b.line()
    b.line(f"Re: Master Services Agreement dated {g.date_text(g.date(2015, 2023))} (the \"Agreement\")")
    b.line()
    b.line(f"We give notice that with effect from {g.date_text(g.date(2022, 2026))}, ", ("ORGANIZATION", assignor.name),
           " assigns all of its rights and obligations under the Agreement to ", ("ORGANIZATION", assignee.name),
           f" ({g.company_number(assignee.country)}).")
    b.line("From that date please address all correspondence and invoices to ", ("PERSON", contact.full), ", ",
           ("EMAIL_ADDRESS", g.email(contact, assignee.domain)), ", ", ("PHONE_NUMBER", g.phone(assignee.country, mobile=False)), ".")
    b.line()
    b.line("Yours sincerely,")
    b.line()
    b.line(("PERSON", g.person(assignor.country).full.upper()))
    b.line(("TITLE", g.pick(_EXEC_TITLES)), ", ", ("ORGANIZATION", assignor.name))


# --------------------------------------------------------------------------------------------
# Family "clinical": notes, letters and reports.
# Hard negatives: visit and report dates, doses, lab values, vitals, ICD-10 codes, bed numbers.
# --------------------------------------------------------------------------------------------

# (diagnosis, ICD-10 code, presenting complaint, first-line treatment)
_DIAGNOSES = (
    ("Type 2 diabetes mellitus", "E11.9", "polyuria and fatigue", "Metformin 500 mg twice daily"),
    ("Essential hypertension", "I10", "headaches", "Ramipril 5 mg once daily"),
    ("Community-acquired pneumonia", "J18.9", "productive cough and fever", "Amoxicillin 500 mg three times daily for 5 days"),
    ("Atrial fibrillation", "I48.91", "palpitations", "Apixaban 5 mg twice daily and Bisoprolol 2.5 mg once daily"),
    ("Asthma, moderate persistent", "J45.40", "wheeze at night", "Beclometasone 200 micrograms twice daily"),
    ("Hypothyroidism", "E03.9", "weight gain and low mood", "Levothyroxine 50 micrograms once daily"),
    ("Acute cholecystitis", "K81.0", "right upper quadrant pain", "Co-amoxiclav 625 mg three times daily"),
    ("Urinary tract infection", "N39.0", "dysuria and frequency", "Nitrofurantoin 100 mg twice daily for 3 days"),
    ("Migraine without aura", "G43.009", "recurrent unilateral headache", "Sumatriptan 50 mg at onset"),
    ("Osteoarthritis of knee", "M17.9", "knee pain on stairs", "Naproxen 250 mg twice daily with food"),
    ("Chronic kidney disease stage 3", "N18.3", "ankle swelling", "Furosemide 40 mg in the morning"),
    ("Iron deficiency anaemia", "D50.9", "breathlessness on exertion", "Ferrous sulfate 200 mg once daily"),
)
_MEDICATIONS = (
    "Metformin 500 mg twice daily", "Lisinopril 10 mg once daily", "Atorvastatin 40 mg at night",
    "Amoxicillin 500 mg three times daily for 5 days", "Levothyroxine 75 micrograms once daily",
    "Omeprazole 20 mg once daily", "Salbutamol 100 micrograms 2 puffs as required", "Apixaban 5 mg twice daily",
    "Sertraline 50 mg once daily", "Ramipril 5 mg once daily", "Bisoprolol 2.5 mg once daily",
    "Paracetamol 1 g every 6 hours as required (max 4 g/24 h)", "Furosemide 40 mg in the morning",
    "Insulin glargine 18 units at bedtime", "Ferrous sulfate 200 mg once daily",
)
_CLINICIAN_ROLES = ("Consultant Cardiologist", "General Practitioner", "Specialty Registrar", "Consultant Physician",
                    "Nurse Practitioner", "Consultant Radiologist", "Emergency Physician", "Endocrinologist")


def _age(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _hospital(g: _Gen, country: _Country) -> str:
    city = g.city(country).name
    return g.pick({
        "US": (f"{city} General Hospital", f"St. Luke's Medical Center {city}", f"{city} Community Health Center"),
        "GB": (f"Royal {city} Infirmary", f"{city} General Hospital", f"{city} Road Surgery"),
        "DE": (f"Klinikum {city}", f"Universitätsklinikum {city}", f"Praxis am Markt {city}"),
        "FR": (f"CHU de {city}", f"Hôpital Saint-Louis {city}", f"Clinique du Parc {city}"),
        "ES": (f"Hospital Universitario de {city}", f"Centro de Salud {city} Centro"),
        "IT": (f"Ospedale Maggiore di {city}", f"Policlinico di {city}"),
        "NL": (f"{city} Medisch Centrum", f"Ziekenhuis {city}"),
    }[country.code])


def _labs(g: _Gen) -> list[str]:
    labs = [f"HbA1c {g.rng.uniform(5.2, 9.8):.1f} %", f"eGFR {g.rng.randint(35, 110)} mL/min/1.73m2",
            f"Creatinine {g.rng.randint(55, 170)} µmol/L", f"Hb {g.rng.randint(95, 165)} g/L",
            f"WBC {g.rng.uniform(3.5, 18):.1f} x10^9/L", f"CRP {g.rng.randint(1, 180)} mg/L",
            f"Na {g.rng.randint(128, 146)} mmol/L", f"K {g.rng.uniform(3.1, 5.6):.1f} mmol/L",
            f"TSH {g.rng.uniform(0.2, 8.5):.2f} mU/L", f"LDL {g.rng.uniform(1.4, 5.2):.1f} mmol/L"]
    return g.rng.sample(labs, g.rng.randint(3, 6))


def _vitals(g: _Gen) -> str:
    return (f"BP {g.rng.randint(100, 175)}/{g.rng.randint(60, 105)}, HR {g.rng.randint(52, 118)}, "
            f"T {g.rng.uniform(36.1, 39.4):.1f} °C, RR {g.rng.randint(12, 26)}, SpO2 {g.rng.randint(91, 100)}% on room air")


def _clinician(g: _Gen, country: _Country) -> list[_Piece]:
    doctor = g.person(country if g.chance(0.7) else None)
    return [("TITLE", g.pick(("Dr.", "Dr"))), " ", ("PERSON", doctor.full if g.chance(0.7) else doctor.initialled)]


def _mrn_label(g: _Gen) -> str:
    return g.pick(("MRN ", "MRN: ", "Hospital No.: ", "Medical record no. ", "Patient ID: ", "Unit no. "))


def _clinical_progress_note(g: _Gen, b: _Builder) -> None:
    country = g.country()
    patient = g.person(country)
    dob, visit = g.date(1935, 2005), g.date(2021, 2026)
    diagnosis, icd, complaint, treatment = g.pick(_DIAGNOSES)
    b.line("PROGRESS NOTE - ", ("ORGANIZATION", _hospital(g, country)))
    b.line("Patient: ", ("PERSON", patient.formal if g.chance(0.5) else patient.full.upper()),
           "    ", _mrn_label(g), ("MEDICAL_RECORD_NUMBER", g.mrn()),
           "    DOB: ", ("DATE_OF_BIRTH", f"{dob:%Y-%m-%d}" if g.chance(0.6) else g.date_text(dob, country)))
    b.line(f"Visit: {visit:%Y-%m-%d}    Clinician: ", *_clinician(g, country))
    b.line()
    b.line("S: ", ("AGE", str(_age(dob, visit))),
           f"-year-old {'woman' if patient.female else 'man'} with {g.rng.randint(2, 14)} days of {complaint}. "
           f"{g.pick(('No recent travel.', 'Symptoms worse at night.', 'Tried OTC analgesia without relief.', 'Lives alone, independent.'))}")
    b.line(f"O: {_vitals(g)}. {g.pick(('Chest clear.', 'Mild tenderness on palpation.', 'No focal neurology.', 'Heart sounds normal.'))}")
    b.line(f"   Labs: {', '.join(_labs(g))}.")
    b.line(f"A: {diagnosis} ({icd}).")
    b.line(f"P: Start {treatment}. Review in {g.pick(('1 week', '2 weeks', '4 weeks', '3 months'))}; "
           f"safety-netting advice given. {g.pick(('Repeat bloods before review.', 'Referral to dietitian.', 'Patient agrees with plan.'))}")


def _clinical_discharge_summary(g: _Gen, b: _Builder) -> None:
    country = g.country()
    patient = g.person(country)
    dob = g.date(1930, 2000)
    admitted = g.date(2021, 2026)
    discharged = admitted + dt.timedelta(days=g.rng.randint(1, 12))
    diagnosis, icd, _, treatment = g.pick(_DIAGNOSES)
    b.line("DISCHARGE SUMMARY")
    b.line(("ORGANIZATION", _hospital(g, country)), f" - Ward {g.rng.randint(1, 30)}{g.pick('ABC')}")
    b.line()
    b.line("Name: ", ("PERSON", patient.full), "   Date of birth: ", ("DATE_OF_BIRTH", g.date_text(dob, country)),
           "   ", _mrn_label(g), ("MEDICAL_RECORD_NUMBER", g.mrn()))
    b.line("Address: ", ("STREET_ADDRESS", g.address(country).render()))
    b.line("Tel: ", ("PHONE_NUMBER", g.phone(country)))
    b.line(f"Admitted: {admitted:%d/%m/%Y}   Discharged: {discharged:%d/%m/%Y}   Consultant: ", *_clinician(g, country))
    b.line()
    b.line(f"Diagnosis: {diagnosis} ({icd})")
    b.line(f"Course: Admitted via ED; treated with IV fluids and {treatment.split(' ')[0].lower()}. "
           f"{g.pick(('Improved steadily.', 'One episode of hypotension on day 2, resolved.', 'Mobilising independently at discharge.'))}")
    b.line("Medications on discharge:")
    for med in [treatment, *g.rng.sample(_MEDICATIONS, g.rng.randint(1, 3))]:
        b.line(f"  - {med}")
    b.add("Follow-up: GP ")
    b.add(*_clinician(g, country), " at ", ("ORGANIZATION", _hospital(g, country)), f" within {g.pick(('7', '10', '14'))} days. ")
    b.line("Next of kin: ", ("PERSON", g.person(country).full), g.pick((" (daughter), ", " (husband), ", " (wife), ", " (son), ")),
           ("PHONE_NUMBER", g.phone(country, mobile=True)), ".")


def _clinical_referral_letter(g: _Gen, b: _Builder) -> None:
    country = g.country()
    patient = g.person(country)
    dob = g.date(1940, 2010)
    specialist = g.person(country)
    b.line(("ORGANIZATION", _hospital(g, country)))
    b.line(g.date_text(g.date(2021, 2026), country))
    b.line()
    b.line("Dear ", ("TITLE", "Dr"), " ", ("PERSON", specialist.last), ",")
    b.line()
    # In England the NHS number, a national identifier, heads clinical letters.
    id_line: list[_Piece] = (["NHS No. ", ("NATIONAL_ID", g.nhs_number())] if country.code == "GB"
                            else [_mrn_label(g), ("MEDICAL_RECORD_NUMBER", g.mrn())])
    b.line("Re: ", ("TITLE", patient.honorific), " ", ("PERSON", patient.full), ", DOB ", ("DATE_OF_BIRTH", g.date_text(dob, country)),
           ", ", *id_line)
    b.line("    ", ("STREET_ADDRESS", g.address(country).render()), " - tel ", ("PHONE_NUMBER", g.phone(country)))
    b.line()
    diagnosis, icd, complaint, _ = g.pick(_DIAGNOSES)
    b.line(f"Thank you for seeing this {_age(dob, dt.date(2026, 1, 1))}-year-old {'lady' if patient.female else 'gentleman'} "
           f"with {complaint} over the past {g.pick(('three weeks', 'six months', 'year'))}. "
           f"I suspect {diagnosis.lower()} ({icd}). {g.pick(('ECG attached.', 'Recent bloods below.', 'Ultrasound requested.'))}")
    b.line(f"Current medication: {'; '.join(g.rng.sample(_MEDICATIONS, 2))}. Allergies: {g.pick(('none known', 'penicillin (rash)', 'latex'))}.")
    b.line(f"Recent results: {', '.join(_labs(g))}.")
    b.line()
    b.line("Yours sincerely,")
    b.line(*_clinician(g, country))
    b.line(("TITLE", g.pick(_CLINICIAN_ROLES)))


def _clinical_lab_report(g: _Gen, b: _Builder) -> None:
    country = g.country()
    patient = g.person(country)
    dob = g.date(1935, 2015)
    collected = g.moment()
    b.line(f"LABORATORY REPORT    Accession: {g.letters(2)}{g.digits(8)}    Page 1 of 1")
    b.line("Patient: ", ("PERSON", patient.formal.upper()), "   Sex: ", "F" if patient.female else "M",
           "   Born: ", ("DATE_OF_BIRTH", f"{dob:%d.%m.%Y}" if g.chance(0.5) else g.date_text(dob, country)))
    b.line(_mrn_label(g), ("MEDICAL_RECORD_NUMBER", g.mrn()), "   Requested by: ", *_clinician(g, country))
    b.line(f"Collected: {collected:%Y-%m-%d %H:%M}   Reported: {collected + dt.timedelta(hours=g.rng.randint(2, 30)):%Y-%m-%d %H:%M}")
    b.line()
    b.line(f"{'Test':<10}{'Result':<28}Reference range")
    ranges = {"HbA1c": "4.0-6.0 %", "eGFR": ">90", "Creatinine": "59-104", "Hb": "120-170", "WBC": "4.0-11.0",
              "CRP": "<5", "Na": "135-145", "K": "3.5-5.3", "TSH": "0.3-4.2", "LDL": "<3.0"}
    for lab in _labs(g):
        name, result = lab.split(" ", 1)
        b.line(f"{name:<10}{result:<28}{ranges[name]}")
    b.line()
    b.line(g.pick(("Comment: haemolysed sample, potassium may be falsely raised.", "Comment: results phoned to ward.",
                   f"Comment: please repeat in {g.pick(('2 weeks', '3 months'))}.", "Authorised electronically.")))


def _clinical_ed_triage(g: _Gen, b: _Builder) -> None:
    country = g.country()
    patient = g.person(country)
    arrival = g.moment()
    dob = g.date(1935, 2008)
    complaint = g.pick(_DIAGNOSES)[2]
    b.line(f"EMERGENCY DEPARTMENT - TRIAGE    Arrival {arrival:%d/%m/%Y %H:%M}    Mode: {g.pick(('ambulance', 'walk-in', 'GP referral'))}")
    b.line("Pt: ", ("PERSON", patient.full.upper() if g.chance(0.4) else patient.full), ", ",
           ("AGE", str(_age(dob, arrival.date()))), g.pick(("F", "yo F")) if patient.female else g.pick(("M", "yo M")),
           "   ", _mrn_label(g), ("MEDICAL_RECORD_NUMBER", g.mrn()))
    b.line(f"Presenting complaint: {complaint}, onset {g.pick(('this morning', '2 days ago', 'last night', 'a few hours ago'))}.")
    b.line(f"Obs: {_vitals(g)}. Pain {g.rng.randint(2, 9)}/10. Triage category {g.rng.randint(2, 4)}.")
    b.line(f"PMH: {g.pick(_DIAGNOSES)[0]}. Meds: {g.pick(_MEDICATIONS)}.")
    b.line("Accompanied by ", ("PERSON", g.person(country).full), g.pick((" (partner)", " (neighbour)", " (mother)", " (carer)")),
           ", contact ", ("PHONE_NUMBER", g.phone(country, mobile=True)), ".")
    b.line("Home address: ", ("STREET_ADDRESS", g.address(country).render()))
    b.line(f"Plan: {g.pick(('bloods, ECG, analgesia', 'CXR and sputum culture', 'urine dip, bloods', 'CT head if no improvement'))}; "
           f"bed {g.rng.randint(1, 24)}{g.pick('ABC')}. Seen by ", *_clinician(g, country),
           f" at {arrival + dt.timedelta(minutes=g.rng.randint(10, 180)):%H:%M}.")


def _clinical_telehealth(g: _Gen, b: _Builder) -> None:
    country = g.country()
    patient = g.person(country)
    dob = g.date(1940, 2004)
    call = g.moment()
    diagnosis, icd, complaint, treatment = g.pick(_DIAGNOSES)
    b.line(f"TELEPHONE CONSULTATION {call:%d %b %Y %H:%M} ({g.rng.randint(6, 25)} min)")
    b.add("Called ", ("PERSON", patient.full), " on ", ("PHONE_NUMBER", g.phone(country)), "; identity confirmed with ")
    b.line(*g.pick((["date of birth ", ("DATE_OF_BIRTH", g.date_text(dob, country))],
                   ["DOB ", ("DATE_OF_BIRTH", f"{dob:%m/%d/%Y}" if country.code == "US" else f"{dob:%d/%m/%Y}")],
                   ["their date of birth (", ("DATE_OF_BIRTH", _long_date(dob)), ")"])), " and first line of address.")
    b.line(_mrn_label(g), ("MEDICAL_RECORD_NUMBER", g.mrn()))
    b.line()
    b.line(f"History: {complaint}, {g.pick(('gradually worsening', 'intermittent', 'improving slowly'))} over "
           f"{g.pick(('a few days', 'two weeks', 'a month'))}. {g.pick(('No red flags.', 'Denies chest pain.', 'Sleeping poorly.'))}")
    b.line(f"Assessment: likely {diagnosis.lower()} ({icd}).")
    b.line(f"Plan: {treatment} sent to {g.pick(('usual pharmacy', 'the pharmacy on file'))}; "
           f"face-to-face review {g.pick(('next week', 'if no better in 48 h', 'in 2 weeks'))}.")
    if g.chance(0.5):
        b.line("Patient asked that results be emailed to ", ("EMAIL_ADDRESS", g.email(patient)), "; consent recorded.")
    b.line("Clinician: ", *_clinician(g, country))


def _clinical_radiology(g: _Gen, b: _Builder) -> None:
    country = g.country()
    patient = g.person(country)
    dob = g.date(1935, 2010)
    study = g.pick(("CT CHEST WITH CONTRAST", "MRI LUMBAR SPINE", "XR CHEST PA", "US ABDOMEN", "CT HEAD NON-CONTRAST"))
    b.line(f"RADIOLOGY REPORT - {study}")
    b.line("Patient: ", ("PERSON", patient.formal), "   DOB: ", ("DATE_OF_BIRTH", g.date_text(dob, country)),
           "   ", _mrn_label(g), ("MEDICAL_RECORD_NUMBER", g.mrn()))
    b.line("Referrer: ", *_clinician(g, country), f"    Exam date: {g.date_text(g.date(2021, 2026), country)}    Acc#: {g.digits(9)}")
    b.line()
    suspected = g.pick(_DIAGNOSES)
    b.line(f"Clinical indication: {suspected[2]}; ? {suspected[0].lower()}.")
    dose = f" DLP {g.rng.randint(80, 900)} mGy·cm." if study.startswith("CT") else ""
    b.line(f"Technique: {g.pick(('Standard protocol.', 'Images reviewed on PACS.', 'Comparison with prior study.'))}{dose}")
    finding = g.pick(("No acute abnormality.", f"{g.rng.randint(3, 14)} mm nodule in the right upper lobe.",
                      "Mild degenerative change at L4/5.", "Gallbladder wall thickening with pericholecystic fluid."))
    b.line(f"Findings: {finding} {g.pick(('No lymphadenopathy.', 'No effusion.', 'Bones unremarkable.'))}")
    impression = g.pick(("Normal study.", "Findings as above; suggest follow-up imaging in 3 months.",
                         "Appearances consistent with clinical suspicion."))
    b.line(f"Impression: {impression}")
    b.line("Reported by: ", *_clinician(g, country), ", ", ("TITLE", "Consultant Radiologist"))


def _clinical_nursing_handoff(g: _Gen, b: _Builder) -> None:
    country = g.country()
    patient = g.person(country)
    dob = g.date(1930, 1990)
    b.line(f"SBAR HANDOVER - Bay {g.rng.randint(1, 6)}, Bed {g.rng.randint(1, 8)} - {g.pick(('night', 'day', 'late'))} shift")
    b.line("S: ", ("PERSON", patient.full), " (", ("AGE", str(_age(dob, dt.date(2026, 1, 1)))), "), ", _mrn_label(g),
           ("MEDICAL_RECORD_NUMBER", g.mrn()),
           f", day {g.rng.randint(1, 9)} post {g.pick(('hip replacement', 'bowel resection', 'cholecystectomy', 'CABG'))}.")
    history = g.rng.sample(_DIAGNOSES, 2)
    b.line(f"B: PMH {history[0][0].lower()}, {history[1][0].lower()}. On {history[0][3]}.")
    b.line(f"A: {_vitals(g)}. NEWS2 {g.rng.randint(0, 7)}. Drain output {g.rng.randint(20, 300)} mL. Mobilised with physio.")
    b.line(f"R: {g.pick(('Repeat obs 4-hourly.', 'Chase Hb result.', 'Needs IV antibiotics at 22:00.', 'Bloods in the morning.'))} "
           "Daughter ", ("PERSON", g.person(country).first), " is next of kin (", ("PHONE_NUMBER", g.phone(country, mobile=True)),
           ") and wants a call if anything changes.")
    b.line("Handed over by ", ("PERSON", g.person(g.country()).full), ", RN to ", ("PERSON", g.person(g.country()).full), ", RN.")


def _clinical_appointment_letter(g: _Gen, b: _Builder) -> None:
    country = g.country()
    patient = g.person(country)
    clinic = _hospital(g, country)
    when = g.moment().replace(minute=g.pick((0, 15, 30, 45)), hour=g.rng.randint(8, 16))
    if when.weekday() >= 5:  # outpatient clinics run on weekdays
        when += dt.timedelta(days=7 - when.weekday())
    b.line(("ORGANIZATION", clinic), " - Outpatient Appointments")
    b.line()
    b.line(("TITLE", patient.honorific), " ", ("PERSON", patient.full))
    b.line(("STREET_ADDRESS", g.address(country).render(multiline=True)))
    b.line()
    b.line(f"Our ref: {g.letters(3)}/{g.digits(5)}    ", _mrn_label(g), ("MEDICAL_RECORD_NUMBER", g.mrn()))
    if g.chance(0.5):
        b.line("Date of birth: ", ("DATE_OF_BIRTH", g.date_text(g.date(1935, 2010), country)))
    b.line()
    b.line("Dear ", ("TITLE", patient.honorific), " ", ("PERSON", patient.last), ",")
    b.line()
    b.line(f"An appointment has been arranged for you in the {g.pick(('Cardiology', 'Diabetes', 'Respiratory', 'Orthopaedic'))} clinic "
           f"on {when:%A} {_long_date(when.date())} at {when:%H:%M} with ", *_clinician(g, country), ".")
    b.line(f"Please arrive 15 minutes early and bring a list of your current medicines. Parking costs {g.price(country, 2, 8)} per visit.")
    b.line("If you cannot attend, please call ", ("PHONE_NUMBER", g.phone(country, mobile=False)),
           g.pick((" or reply to this letter.", " at least 48 hours beforehand.")), " We will text reminders to ",
           ("PHONE_NUMBER", g.phone(country, mobile=True)), ".")


# --------------------------------------------------------------------------------------------
# Family "crm": CRM exports flattened to text.
# Hard negatives: customer-since years, lifetime values, deal sizes, lead scores, record IDs.
# --------------------------------------------------------------------------------------------

def _crm_contact_fields(g: _Gen, person: _Person, company: _Company | None) -> list[list[_Piece]]:
    """One contact's fields, each a list of pieces."""
    fields: list[list[_Piece]] = [["Name: ", ("PERSON", person.full if g.chance(0.8) else person.formal)]]
    if company:
        fields.append(["Company: ", ("ORGANIZATION", company.name)])
        fields.append(["Title: ", ("TITLE", g.pick(_CRM_TITLES))])
    fields.append(["Email: ", ("EMAIL_ADDRESS", g.email(person, company.domain if company and g.chance(0.6) else None))])
    fields.append(["Phone: ", ("PHONE_NUMBER", g.phone(person.country))])
    fields.append(["Address: ", ("STREET_ADDRESS", g.address(person.country).render())])
    fields.append(["LinkedIn: ", ("PROFILE_URL", g.profile_url(person, "linkedin"))])
    if g.chance(0.6):
        fields.append([g.pick(("Twitter: ", "X: ")), ("PROFILE_URL", g.profile_url(person, "twitter"))])
    fields.append([f"Customer since: {g.rng.randint(2009, 2025)}"])
    fields.append([f"Lifetime value: {g.price(person.country, 200, 90_000)}"])
    return fields


def _crm_semicolon_export(g: _Gen, b: _Builder) -> None:
    b.line(f"# export contacts segment=\"{g.pick(('EMEA renewals', 'Q3 webinar leads', 'VIP customers', 'Dormant accounts'))}\" "
           f"generated {g.moment():%Y-%m-%d %H:%M}")
    for _ in range(g.rng.randint(1, 4)):
        person = g.person()
        company = g.company(person.country) if g.chance(0.6) else None
        fields = _crm_contact_fields(g, person, company)
        if g.chance(0.35) and person.country.code in _ID_COUNTRIES:
            name, number = g.national_id(person.country)
            fields.insert(3, [f"{name}: ", ("NATIONAL_ID", number)])
        for i, field in enumerate(fields):
            b.add(*field, "; " if i < len(fields) - 1 else "\n")


def _crm_pipe_table(g: _Gen, b: _Builder) -> None:
    b.line("id | full_name | email | phone | city | account_no | last_login_ip | score")
    for _ in range(g.rng.randint(2, 8)):
        person = g.person()
        ip = g.ipv6() if g.chance(0.25) else g.ipv4()
        b.line(f"{g.rng.randint(100000, 999999)} | ", ("PERSON", person.full), " | ", ("EMAIL_ADDRESS", g.email(person)), " | ",
               ("PHONE_NUMBER", g.phone(person.country)), " | ", ("LOCATION", g.city(person.country).name), " | ",
               ("ACCOUNT_NUMBER", g.account_number()), " | ", ("IP_ADDRESS", ip), f" | {g.rng.randint(1, 100)}")


def _crm_contact_card(g: _Gen, b: _Builder) -> None:
    person = g.person()
    company = g.company(person.country)
    address = g.address(person.country)
    b.line("CONTACT RECORD")
    b.line("=" * 40)
    b.line(("PERSON", person.full.upper() if g.chance(0.3) else person.full))
    b.line(("TITLE", g.pick(_CRM_TITLES)), " at ", ("ORGANIZATION", company.name))
    b.line("Work: ", ("EMAIL_ADDRESS", g.email(person, company.domain)), "  |  ", ("PHONE_NUMBER", g.phone(person.country, mobile=False)))
    b.line("Mobile: ", ("PHONE_NUMBER", g.phone(person.country, mobile=True)))
    b.line("Street: ", ("STREET_ADDRESS", address.street_line))
    b.line("City: ", ("LOCATION", address.city), "   Postcode: ", ("ZIP_CODE", address.postcode),
           "   Country: ", ("LOCATION", g.country_name(address.country)))
    b.line("Website: ", ("URL", f"https://www.{company.domain}"))
    for network in g.rng.sample(("linkedin", "twitter", "github", "facebook", "instagram"), g.rng.randint(1, 3)):
        b.line(f"{_NETWORK_NAMES[network]}: ", ("PROFILE_URL", g.profile_url(person, network)))
    b.line("Account no.: ", ("ACCOUNT_NUMBER", g.account_number()), f"   Owner: {g.pick(('EMEA Sales', 'Inside Sales', 'Key Accounts'))}")
    b.line(f"Customer since: {g.rng.randint(2010, 2025)}   Lifetime value: {g.price(person.country, 500, 120_000)}   "
           f"NPS: {g.rng.randint(0, 10)}")


def _crm_activity_timeline(g: _Gen, b: _Builder) -> None:
    person = g.person()
    rep = g.person(g.country())
    company = g.company(person.country)
    clock = _Clock(g.rng, g.moment())
    b.line("Activity timeline - ", ("PERSON", person.full), " (", ("ORGANIZATION", company.name), ")")
    b.line(f"Opportunity OPP-{g.digits(6)} · stage {g.pick(('Discovery', 'Proposal', 'Negotiation', 'Closed Won'))} · "
           f"amount {g.price(person.country, 5_000, 400_000)}")
    b.line()
    entries: list[list[_Piece]] = [
        ["Call logged by ", ("PERSON", rep.full), ": spoke with ", ("PERSON", person.first), " for 25 min, wants pricing for "
         f"{g.rng.randint(10, 500)} seats. Follow up {g.future_day()}."],
        ["Email sent to ", ("EMAIL_ADDRESS", g.email(person, company.domain)), ": proposal v", g.version(), " attached."],
        ["Meeting booked at their office, ", ("STREET_ADDRESS", g.address(person.country).render()), "."],
        ["Note: ", ("PERSON", person.first), " prefers WhatsApp on ", ("PHONE_NUMBER", g.phone(person.country, mobile=True)), "."],
        ["LinkedIn connection accepted: ", ("PROFILE_URL", g.profile_url(person, "linkedin"))],
        ["Web visit from ", ("IP_ADDRESS", g.ipv4()), ": pricing page (3 views), case study download."],
        ["Champion changed: new contact ", ("PERSON", g.person(person.country).full), ", ", ("TITLE", g.pick(_CRM_TITLES)), "."],
    ]
    for entry in g.rng.sample(entries, g.rng.randint(3, 7)):
        b.line(f"{clock.tick(86400 * 4):%Y-%m-%d %H:%M}  ", *entry)


def _crm_merge_report(g: _Gen, b: _Builder) -> None:
    person = g.person()
    b.line(f"DUPLICATE MERGE REPORT    job {g.rng.getrandbits(32):08x}    rule: fuzzy name + phone")
    b.line()
    email_a, email_b = g.email(person), g.email(person)
    phone = g.phone(person.country)
    ids = g.account_number(), g.account_number()
    b.line("Survivor  ", ("ACCOUNT_NUMBER", ids[0]), ": ", ("PERSON", person.full), " <", ("EMAIL_ADDRESS", email_a), ">, ", ("PHONE_NUMBER", phone))
    b.line("Merged    ", ("ACCOUNT_NUMBER", ids[1]), ": ", ("PERSON", person.full.lower() if g.chance(0.5) else person.initialled), " <",
           ("EMAIL_ADDRESS", email_b), ">, ", ("PHONE_NUMBER", g.phone(person.country)))
    b.line()
    b.line("Field decisions:")
    b.line("  address  -> kept ", ("STREET_ADDRESS", g.address(person.country).render()), " (newer)")
    b.line("  twitter  -> kept ", ("PROFILE_URL", g.profile_url(person, "twitter")))
    b.line(f"  orders   -> {g.rng.randint(2, 40)} re-parented; lifetime value now {g.price(person.country, 100, 20_000)}")
    b.line(f"  consent  -> marketing opt-in from {g.date_text(g.date(2018, 2025), person.country)} retained")
    if g.chance(0.5) and person.country.code in _ID_COUNTRIES:
        name, number = g.national_id(person.country)
        b.line(f"  {name:<8} -> kept ", ("NATIONAL_ID", number), " (verified)")
    b.line(f"Confidence {g.rng.uniform(0.81, 0.99):.2f}; reviewed by ", ("PERSON", g.person(g.country()).full), ".")


def _crm_webinar_import(g: _Gen, b: _Builder) -> None:
    b.line(f"Lead import: \"{g.pick(('GDPR in practice', 'Scaling data teams', 'AI for finance', 'Zero trust 101'))}\" webinar, "
           f"{g.date_text(g.date(2022, 2026))}")
    b.line("first_name,last_name,email,company,job_title,country,registered_from_ip,attended")
    for _ in range(g.rng.randint(2, 8)):
        person = g.person()
        company = g.company(person.country)
        b.line(("PERSON", person.first), ",", ("PERSON", person.last), ",", ("EMAIL_ADDRESS", g.email(person, company.domain)), ",\"",
               ("ORGANIZATION", company.name), "\",", ("TITLE", g.pick(_CRM_TITLES)), ",", ("LOCATION", person.country.code), ",",
               ("IP_ADDRESS", g.ipv6() if g.chance(0.2) else g.ipv4()), f",{g.pick(('yes', 'no'))}")


def _crm_login_audit(g: _Gen, b: _Builder) -> None:
    person = g.person()
    clock = _Clock(g.rng, g.moment())
    b.line("Customer portal - security audit")
    b.line("Customer: ", ("PERSON", person.full), "   Account: ", ("ACCOUNT_NUMBER", g.account_number()),
           "   Email: ", ("EMAIL_ADDRESS", g.email(person)))
    b.line(f"Tier: {g.pick(('Gold', 'Silver', 'Platinum'))}   Customer since: {g.rng.randint(2012, 2025)}   "
           f"Lifetime value: {g.price(person.country, 300, 50_000)}")
    b.line()
    b.line("Last logins:")
    for _ in range(g.rng.randint(3, 5)):
        ip = g.ipv6() if g.chance(0.35) else g.ipv4()
        b.line(f"  {clock.tick(86400 * 3):%Y-%m-%d %H:%M:%S}  ", ("IP_ADDRESS", ip),
               f"  {g.pick(('web', 'ios', 'android'))}  {g.pick(('ok', 'ok', 'ok', 'mfa', 'fail'))}")
    b.line()
    b.line(*g.pick((
        ["Flag: new device from ", ("LOCATION", g.city(g.country()).name), "; SMS code sent to ",
         ("PHONE_NUMBER", g.phone(person.country, mobile=True)), "."],
        ["No anomalies. Recovery phone ", ("PHONE_NUMBER", g.phone(person.country, mobile=True)), " verified."],
        [f"Password changed {g.past_day()}; sessions revoked by ", ("PERSON", g.person(g.country()).full), " (support)."],
    )))


def _crm_dsar_export(g: _Gen, b: _Builder) -> None:
    country = g.country(_ID_COUNTRIES)
    person = g.person(country)
    id_name, id_number = g.national_id(country)
    b.line(f"DATA SUBJECT ACCESS REQUEST - export of CRM data    Request ref DSAR-{g.rng.randint(2021, 2026)}-{g.digits(4)}")
    b.line(f"Received {g.date_text(g.date(2021, 2026), country)}; statutory deadline one month.")
    b.line()
    b.line("Identity")
    b.line("  Name: ", ("PERSON", person.full))
    b.line("  Date of birth: ", ("DATE_OF_BIRTH", g.date_text(g.date(1950, 2005), country)))
    b.line(f"  {id_name}: ", ("NATIONAL_ID", id_number), " (used for identity verification only)")
    b.line("Contact data")
    b.line("  Email: ", ("EMAIL_ADDRESS", g.email(person)))
    b.line("  Phone: ", ("PHONE_NUMBER", g.phone(country)))
    b.line("  Postal: ", ("STREET_ADDRESS", g.address(country).render()))
    b.line("Online identifiers")
    b.line("  Profiles: ", ("PROFILE_URL", g.profile_url(person, "linkedin")), ", ", ("PROFILE_URL", g.profile_url(person)))
    b.line("  Last login IP: ", ("IP_ADDRESS", g.ipv4()), "   Previous: ", ("IP_ADDRESS", g.ipv6()))
    b.line("Commercial data")
    b.line("  Customer account: ", ("ACCOUNT_NUMBER", g.account_number()),
           f"; {g.rng.randint(1, 60)} orders; lifetime value {g.price(country, 50, 30_000)}")


def _crm_renewal_summary(g: _Gen, b: _Builder) -> None:
    company = g.company()
    champion = g.person(company.country)
    owner = g.person(g.country())
    b.line("ACCOUNT RENEWAL SUMMARY - ", ("ORGANIZATION", company.name))
    b.line("Account ID: ", ("ACCOUNT_NUMBER", g.account_number()), f"   Renewal date: {g.date_text(g.date(2024, 2027), company.country)}   "
           f"ARR: {g.price(company.country, 8_000, 600_000)}")
    b.line("Account owner: ", ("PERSON", owner.full), "   Health: ", g.pick(("green", "amber", "red")))
    b.line()
    b.line("Key contacts:")
    for role in g.rng.sample(("Economic buyer", "Champion", "Technical lead", "Procurement"), 2):
        contact = champion if role == "Champion" else g.person(company.country)
        b.line(f"  {role}: ", ("PERSON", contact.full), ", ", ("TITLE", g.pick(_CRM_TITLES)), ", ",
               ("EMAIL_ADDRESS", g.email(contact, company.domain)), ", ", ("PHONE_NUMBER", g.phone(company.country)))
    b.line()
    b.line(f"Usage: {g.rng.randint(20, 98)}% of {g.rng.randint(10, 800)} seats active; {g.rng.randint(0, 12)} open tickets; "
           f"last QBR {g.past_day()}.")
    b.line(g.pick((
        "Risk: budget freeze announced; champion is leaving at the end of the quarter.",
        "Expansion: interested in the analytics add-on; send pricing before the QBR.",
        f"Note: invoices need a PO number ({g.invoice_number()}); billing contact unchanged.",
    )))


_FAMILIES: dict[str, tuple[Callable[[_Gen, _Builder], None], ...]] = {
    "support": (_support_chat, _support_email_ticket, _support_tech_log, _support_billing_call, _support_address_change,
                _support_callback_form, _support_refund_form, _support_account_recovery, _support_escalation),
    "contract": (_contract_dpa_parties, _contract_signatures, _contract_payment, _contract_notices, _contract_employment,
                 _contract_subprocessors, _contract_consultancy, _contract_lease, _contract_assignment_notice),
    "clinical": (_clinical_progress_note, _clinical_discharge_summary, _clinical_referral_letter, _clinical_lab_report,
                 _clinical_ed_triage, _clinical_telehealth, _clinical_radiology, _clinical_nursing_handoff,
                 _clinical_appointment_letter),
    "crm": (_crm_semicolon_export, _crm_pipe_table, _crm_contact_card, _crm_activity_timeline, _crm_merge_report,
            _crm_webinar_import, _crm_login_audit, _crm_dsar_export, _crm_renewal_summary),
}


# --------------------------------------------------------------------------------------------
# Self-check
# --------------------------------------------------------------------------------------------

if __name__ == "__main__":
    import time
    from collections import Counter

    started = time.perf_counter()
    corpus = build_corpus()
    elapsed = time.perf_counter() - started
    for record in corpus:
        previous_end = 0
        for span in sorted(record.spans, key=lambda s: s.start):
            assert record.text[span.start:span.end] == span.value, (record.id, span)
            assert span.start >= previous_end, f"overlapping spans in {record.id}: {span}"
            previous_end = span.end
            assert span.type in _ALL_TYPES, (record.id, span)
            if record.source != "presidio-evaluator":
                assert span.type != "CREDIT_CARD" or _luhn_valid(span.value), (record.id, span)
                assert span.type != "IBAN_CODE" or _iban_valid(span.value), (record.id, span)
        if record.source != "presidio-evaluator":
            assert 200 <= len(record.text) <= 1500, (record.id, len(record.text))
    assert build_corpus() == corpus, "same seed, different corpus"
    assert build_corpus(seed=1) != corpus

    print(f"{len(corpus)} records built in {elapsed:.1f} s; offsets, overlaps, checksums, lengths and determinism OK\n")
    by_source = Counter(r.source for r in corpus)
    lengths = {s: sorted(len(r.text) for r in corpus if r.source == s) for s in by_source}
    for source, n in by_source.items():
        spans = sum(len(r.spans) for r in corpus if r.source == source)
        headline = sum(1 for r in corpus if r.source == source for s in r.spans if s.type in PII_TYPES)
        print(f"{source:<20}{n:>5} records  {spans:>5} spans  {headline:>5} headline  "
              f"length {lengths[source][0]}-{lengths[source][-1]} (median {lengths[source][n // 2]})")
    print()
    by_type = Counter((s.type, r.source) for r in corpus for s in r.spans)
    sources = list(by_source)
    print(f"{'type':<24}" + "".join(f"{s[:10]:>11}" for s in sources) + f"{'total':>8}")
    for entity in sorted({t for t, _ in by_type}, key=lambda t: (t not in PII_TYPES, t)):
        row = [by_type[(entity, s)] for s in sources]
        print(f"{entity + (' *' if entity in PII_TYPES else ''):<24}" + "".join(f"{n:>11}" for n in row) + f"{sum(row):>8}")
    print("\n* counts in the headline recall")
