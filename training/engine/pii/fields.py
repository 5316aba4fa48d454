"""Personal data named by its field: a JSON key, a CSV column, a form's label.

In an export, the value's type is written next to it: `"dob": "1987-04-03"`, a `geburtsdatum`
column, `SURNAME: KOWALSKI`. A date is a date of birth because of its key, a nine-digit number a
national ID because of its column. Presidio's own answer for tables is presidio-structured, which
analyses whole columns; records here are text that mixes prose and exports, so this recognizer
reads the field names inside the text. The key vocabulary covers English and the main European
languages; keys are compared folded (case, accents, separators: "First Name", "first_name" and
"firstName" are one key).
"""

from __future__ import annotations

import re
import unicodedata
from typing import List

from presidio_analyzer import AnalysisExplanation, EntityRecognizer, RecognizerResult

_KEYS = {
    "PERSON": """name fullname firstname lastname surname surnames givenname givennames forename forenames middlename
        familyname customername contactname clientname patientname employeename holdername accountholder cardholder
        insuredname policyholder beneficiary nextofkin emergencycontact guardian vorname nachname familienname
        nom prenom nomdefamille apellido apellidos nombre nombrecompleto cognome nome sobrenome naam voornaam
        achternaam imie nazwisko imieinazwisko ad soyad""",
    "DATE_OF_BIRTH": """dob dateofbirth birthdate birthday born geburtsdatum geburtstag datedenaissance naissance
        fechadenacimiento fnac datadinascita datadenascimento dataurodzenia geboortedatum dogumtarihi""",
    "NATIONAL_ID": """ssn socialsecuritynumber socialsecurity nationalid nationalidnumber nationalinsurancenumber nino
        ninumber taxid taxnumber tin steuerid steueridentifikationsnummer idnr nir numerodesecuritesociale
        numerosecu insee dni nie nif nss bsn burgerservicenummer aadhaar aadhaarnumber pesel cpf tfn sin
        socialinsurancenumber mynumber kojinbango codicefiscale cf passport passportnumber passportno idnumber
        idcard idcardnumber personalid personnummer personalnumber tckimlikno""",
    "PHONE_NUMBER": """phone phonenumber phoneno tel telephone telefon telefonnummer telefono telefone mobile mobilephone
        mobilenumber cell cellphone fax handy portable gsm contactnumber landline""",
    "STREET_ADDRESS": """address streetaddress street addressline addressline1 addressline2 homeaddress postaladdress
        mailingaddress residentialaddress billingaddress shippingaddress adresse anschrift strasse direccion domicilio
        indirizzo endereco morada adres ulica""",
    "ACCOUNT_NUMBER": """accountnumber accountno accountid account customerid customerno customernumber clientid
        clientnumber memberid membernumber membershipnumber policynumber policyno policyid subscriberid loyaltyid
        loyaltynumber kundennummer kundenid numerodeclient numeroclient contractnumber insurancenumber""",
    "MEDICAL_RECORD_NUMBER": "mrn medicalrecordnumber medicalrecordno patientid patientnumber hospitalnumber",
    "IP_ADDRESS": "ip ipaddress clientip remoteip remoteaddr sourceip",
    "CREDIT_CARD": "cardnumber creditcard creditcardnumber ccnumber pan",
    "IBAN_CODE": "iban ibancode",
    "PROFILE_URL": "linkedin linkedinurl twitter github profile profileurl instagram facebook",
}
KEY_TYPES = {key: entity for entity, keys in _KEYS.items() for key in keys.split()}
# Keys that end like a personal one and are not: "filename", "macaddress", "order_number".
_NOT_PERSONAL = set("""username hostname filename productname companyname organisationname organizationname orgname
    servername displayname modelname brandname itemname projectname teamname macaddress emailaddress webaddress
    ordernumber orderid orderno invoicenumber invoiceno ticketnumber ticketid trackingnumber sku version build hash
    uuid requestid transactionid sessionid serialnumber lotnumber batchnumber ean upc gtin""".split())
_NEEDS_DIGIT = {"DATE_OF_BIRTH", "NATIONAL_ID", "PHONE_NUMBER", "ACCOUNT_NUMBER", "MEDICAL_RECORD_NUMBER", "IP_ADDRESS",
                "CREDIT_CARD", "IBAN_CODE"}
_EMPTY = {"", "null", "none", "n/a", "na", "-", "--", "unknown", "true", "false", "[]", "{}"}

_JSON_PAIR = re.compile(r'"(?P<key>[^"\n]{1,48})"\s*:\s*(?:"(?P<string>(?:[^"\\\n]|\\.){1,200})"|(?P<number>-?\d[\d.]{0,30}))')
# "Label: value", several per line when separated by two spaces, a bar or a semicolon.
_LABELLED = re.compile(r"(?P<label>(?<![\w@.])[^\W\d_][^\W\d_ .'/()-]*(?:[ .'/()-]{1,2}[^\W_][\w'()]*){0,4}?)[ \t]*[:=][ \t]*"
                       r"(?P<value>[^\s:=|;][^\n|;]*?)(?=[ \t]{2,}[^\W\d_][\w .'/()-]{0,40}?[ \t]*[:=]|[ \t]*(?:[|;]|\n|$))")


def fold_key(key: str) -> str:
    """"First Name", "first_name", "firstName" and "Prénom" as one spelling each."""
    folded = unicodedata.normalize("NFKD", key.casefold())
    return "".join(c for c in folded if c.isalnum() and not unicodedata.combining(c))


def entity_for_key(key: str) -> str | None:
    folded = fold_key(key)
    if folded in _NOT_PERSONAL:
        return None
    if folded in KEY_TYPES:
        return KEY_TYPES[folded]
    # "customer_first_name", "patient_dob", "billing_street": a known key at the end (five letters
    # or more, so a bare "name" or "cell" inside another word does not count).
    for length in range(min(len(folded), 30), 4, -1):
        tail = folded[-length:]
        if tail in _NOT_PERSONAL:
            return None
        if tail in KEY_TYPES:
            return KEY_TYPES[tail]
    return None


def _plausible(entity: str, value: str, first_names: set[str], last_names: set[str], exact_key: bool) -> bool:
    if value.strip().casefold() in _EMPTY:
        return False
    if entity in _NEEDS_DIGIT:
        return sum(c.isdigit() for c in value) >= (4 if entity in ("IP_ADDRESS", "DATE_OF_BIRTH") else 6)
    if entity == "PERSON":
        words = re.findall(r"[^\W\d_][^\W\d_'’.-]*", value)
        if not words or len(words) > 6 or any(c.isdigit() for c in value) or "@" in value:
            return False
        # A bare "name" column also names products and companies: the value must hold a known name.
        return exact_key or any(w.casefold() in first_names or w.casefold() in last_names for w in words)
    if entity == "STREET_ADDRESS":
        return any(c.isdigit() for c in value) and len(value) >= 6
    return True


_DATE_AT_START = re.compile(r"(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{1,2}(?:st|nd|rd|th)?\.?\s+(?:of\s+)?"
                            r"[^\W\d_]{3,9}\.?,?\s+\d{4}|[^\W\d_]{3,9}\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4})")


def _prose_value_end(text: str, label: str, start: int, end: int) -> int:
    """Where a labelled value ends in running text ("DOB: 1984-03-12, phone …"): a date of birth
    is the date at its start; a number ends at the first comma, semicolon or bracket, or before a
    word; a name or an address runs to the end of its field. 0: no value."""
    entity = entity_for_key(label)
    value = text[start:end]
    if entity == "DATE_OF_BIRTH":
        date = _DATE_AT_START.match(value)
        if date:
            return start + date.end()
        # A shape the date pattern does not know ("1987.04.03", "03 APR 87"): up to the first comma,
        # semicolon or bracket; the label says it is a birth date.
        cut = re.search(r",\s|;|\s\(", value)
        return start + (cut.start() if cut else len(value))
    if entity in _NEEDS_DIGIT:
        cut = re.search(r",\s|;|\s\(|\s[^\W\d_]{3,}", value)
        return start + (cut.start() if cut else len(value))
    return end


def _delimiter_of(line: str) -> str | None:
    counts = {d: line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] >= 2 else None


def _split_with_offsets(line: str, delimiter: str) -> list[tuple[int, int]]:
    """Field spans of one CSV line, quotes honoured (no escaped newlines: a record is one line)."""
    fields, start, quoted = [], 0, False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == delimiter and not quoted:
            fields.append((start, i))
            start = i + 1
    fields.append((start, len(line)))
    return fields


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in ' \t"\'':
        start += 1
    while end > start and text[end - 1] in ' \t"\'\r':
        end -= 1
    return start, end


class StructuredFieldRecognizer(EntityRecognizer):
    """Values whose JSON key, CSV column or form label names a personal-data type."""

    SCORE = 0.85

    def __init__(self, first_names: set[str] = frozenset(), last_names: set[str] = frozenset()):
        self.first_names, self.last_names = first_names, last_names
        super().__init__(supported_entities=list(_KEYS), name="StructuredFieldRecognizer")

    def load(self) -> None:
        pass

    def analyze(self, text: str, entities: List[str], nlp_artifacts=None) -> List[RecognizerResult]:
        found: dict[tuple[int, int], str] = {}
        for match in _JSON_PAIR.finditer(text):
            group = "string" if match.group("string") is not None else "number"
            self._add(found, text, match.group("key"), match.start(group), match.end(group))
        self._csv(text, found)
        for match in _LABELLED.finditer(text):
            if text[max(0, match.start() - 1):match.start()] == '"':
                continue  # a JSON key, done above
            start, end = match.start("value"), _prose_value_end(text, match.group("label"), match.start("value"), match.end("value"))
            if end:
                self._add(found, text, match.group("label"), start, end)
        return [self._result(entity, start, end) for (start, end), entity in found.items() if entity in entities]

    def _add(self, found: dict, text: str, key: str, start: int, end: int) -> None:
        entity = entity_for_key(key)
        if entity is None:
            return
        start, end = _trimmed(text, start, end)
        if end <= start or any(s < end and start < e for s, e in found):
            return
        if _plausible(entity, text[start:end], self.first_names, self.last_names, fold_key(key) != "name"):
            found[(start, end)] = entity

    def _csv(self, text: str, found: dict) -> None:
        """A header line whose fields are all short words, then the rows under it with as many fields."""
        lines = [(m.start(), m.group()) for m in re.finditer(r"[^\n]+", text)]
        i = 0
        while i < len(lines):
            offset, line = lines[i]
            delimiter = _delimiter_of(line)
            header = [line[s:e].strip(' "\'') for s, e in _split_with_offsets(line, delimiter)] if delimiter else []
            if len(header) < 3 or not all(re.fullmatch(r"[^\W\d][\w .()/#-]{0,39}", h or "-") for h in header) \
                    or not any(entity_for_key(h) for h in header):
                i += 1
                continue
            columns = [entity_for_key(h) for h in header]
            i += 1
            while i < len(lines):
                row_offset, row = lines[i]
                cells = _split_with_offsets(row, delimiter)
                if len(cells) != len(header):
                    break
                for (s, e), key, entity in zip(cells, header, columns):
                    if entity:
                        self._add(found, text, key, row_offset + s, row_offset + e)
                i += 1

    def _result(self, entity: str, start: int, end: int) -> RecognizerResult:
        explanation = AnalysisExplanation(recognizer=self.name, original_score=self.SCORE)
        return RecognizerResult(entity, start, end, self.SCORE, analysis_explanation=explanation,
                                recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                                                      RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id})
