"""Tuning-side hard negatives: records with no personal data, full of what looks like it.

Release notes, build and request logs, inventory and order exports, news paragraphs about public
figures. Every look-alike is labelled with its kind (GoldRecord.hard_negatives), so the benchmark
can say which kinds the redactor flags. These are the records the recognizers may be tuned on;
the held-out set (bench/pii_heldout.py) has its own, written separately.

    python -m bench.pii_hard_negatives   # self-check and counts
"""

from __future__ import annotations

import random
import string
import uuid

from bench.pii_corpus import GoldRecord, GoldSpan

_PUBLIC_FIGURES = ("Emmanuel Macron", "Olaf Scholz", "Joe Biden", "Rishi Sunak", "Giorgia Meloni", "Pedro Sánchez",
                   "Ursula von der Leyen", "Christine Lagarde", "Satya Nadella", "Tim Cook", "Sundar Pichai", "Jensen Huang",
                   "Elon Musk", "Mark Zuckerberg", "Taylor Swift", "Lionel Messi", "Narendra Modi", "Justin Trudeau",
                   "Jacinda Ardern", "Antonio Guterres")
_ROLES = ("President", "Chancellor", "Prime Minister", "chief executive", "CEO", "European Commission President",
          "ECB President", "the singer", "the footballer", "Secretary-General")
_PLACES = ("the Eiffel Tower", "Times Square", "the Brandenburg Gate", "Buckingham Palace", "the Colosseum", "Wall Street",
           "Silicon Valley", "the Sagrada Família", "Capitol Hill", "the Louvre")
_RELATIVE = ("last Tuesday", "yesterday", "two weeks ago", "earlier this morning", "next quarter", "by end of day", "in Q3")
_PRODUCTS = ("USB-C hub", "ergonomic chair", "noise-cancelling headset", "27-inch display", "mechanical keyboard",
             "laptop stand", "webcam", "docking station")


class _Text:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.negatives: list[GoldSpan] = []
        self.length = 0

    def add(self, *pieces) -> None:
        for piece in pieces:
            if isinstance(piece, tuple):
                kind, value = piece
                self.negatives.append(GoldSpan(self.length, self.length + len(value), kind, value))
                piece = value
            self.parts.append(piece)
            self.length += len(piece)


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _upc(rng: random.Random) -> str:
    digits = [rng.randrange(10) for _ in range(11)]
    check = (10 - (3 * sum(digits[0::2]) + sum(digits[1::2])) % 10) % 10
    return "".join(map(str, digits + [check]))


def _pieces(rng: random.Random) -> dict:
    return {
        "UUID": lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "RECORD_ID": lambda: rng.choice([f"{rng.randrange(10**8, 10**9):09d}", f"rec_{_hex(rng, 6)}",
                                         f"CASE-{rng.randrange(10**6):06d}", f"{rng.randrange(10**6, 10**7)}"]),
        "VERSION": lambda: rng.choice([f"{rng.randrange(1, 20)}.{rng.randrange(10)}.{rng.randrange(100)}.{rng.randrange(1000)}",
                                       f"{rng.randrange(1, 12)}.{rng.randrange(30)}.{rng.randrange(10)}",
                                       f"10.0.{rng.randrange(17000, 23000)}.{rng.randrange(100, 4000)}"]),
        "UPC": lambda: _upc(rng),
        "ORDER_NUMBER": lambda: rng.choice([f"{rng.randrange(100, 999)}-{rng.randrange(10**6, 10**7)}-{rng.randrange(10**6, 10**7)}",
                                            f"#{rng.randrange(10**7, 10**8)}", f"SO-{rng.randrange(10**5, 10**6)}",
                                            f"{rng.randrange(10**7, 10**9)}"]),
        "SKU": lambda: f"{rng.choice(string.ascii_uppercase)}{rng.choice(string.ascii_uppercase)}-{rng.randrange(100, 9999)}-"
                       f"{rng.choice(['BLK', 'WHT', 'S', 'M', 'XL', '01'])}",
        "HASH": lambda: _hex(rng, rng.choice([7, 40, 64])),
        "TIMESTAMP": lambda: f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:"
                             f"{rng.randrange(60):02d}:{rng.randrange(60):02d}Z",
        "PRICE": lambda: rng.choice([f"€{rng.randrange(5, 900)}.{rng.randrange(100):02d}", f"${rng.randrange(5, 900)}.99",
                                     f"{rng.randrange(5, 900)},{rng.randrange(100):02d} EUR"]),
        "RELATIVE_DATE": lambda: rng.choice(_RELATIVE),
        "PUBLIC_FIGURE": lambda: rng.choice(_PUBLIC_FIGURES),
        "FAMOUS_PLACE": lambda: rng.choice(_PLACES),
    }


def _release_notes(rng, p, t: _Text) -> None:
    t.add("Release ", ("VERSION", p["VERSION"]()), " (", ("TIMESTAMP", p["TIMESTAMP"]()), ")\n",
          "- Fixes the importer crash reported in ", ("RECORD_ID", p["RECORD_ID"]()), ".\n",
          "- Upgrades the agent from ", ("VERSION", p["VERSION"]()), " to ", ("VERSION", p["VERSION"]()), ".\n",
          "- Build ", ("HASH", p["HASH"]()), " was signed ", ("RELATIVE_DATE", p["RELATIVE_DATE"]()), ".\n")


def _request_log(rng, p, t: _Text) -> None:
    for _ in range(rng.randrange(3, 6)):
        t.add(("TIMESTAMP", p["TIMESTAMP"]()), " INFO request_id=", ("UUID", p["UUID"]()), " job=",
              ("RECORD_ID", p["RECORD_ID"]()), f" status={rng.choice([200, 201, 404, 500])} duration_ms={rng.randrange(3, 900)}\n")


def _inventory(rng, p, t: _Text) -> None:
    t.add("sku,upc,description,price,updated\n")
    for _ in range(rng.randrange(3, 6)):
        t.add(("SKU", p["SKU"]()), ",", ("UPC", p["UPC"]()), f",{rng.choice(_PRODUCTS)},", ("PRICE", p["PRICE"]()), ",",
              ("TIMESTAMP", p["TIMESTAMP"]()), "\n")


def _order_status(rng, p, t: _Text) -> None:
    t.add("Order ", ("ORDER_NUMBER", p["ORDER_NUMBER"]()), f" ({rng.choice(_PRODUCTS)}, ", ("PRICE", p["PRICE"]()),
          ") left the warehouse ", ("RELATIVE_DATE", p["RELATIVE_DATE"]()), ". Tracking reference ",
          ("RECORD_ID", p["RECORD_ID"]()), "; replacement part ", ("SKU", p["SKU"]()), ", barcode ", ("UPC", p["UPC"]()), ".\n")


def _news(rng, p, t: _Text) -> None:
    t.add(f"{rng.choice(_ROLES)} ", ("PUBLIC_FIGURE", p["PUBLIC_FIGURE"]()), " spoke near ", ("FAMOUS_PLACE", p["FAMOUS_PLACE"]()),
          " ", ("RELATIVE_DATE", p["RELATIVE_DATE"]()), ", a day after ", ("PUBLIC_FIGURE", p["PUBLIC_FIGURE"]()),
          " announced the plan. Markets on ", ("FAMOUS_PLACE", p["FAMOUS_PLACE"]()), " barely moved.\n")


def _ticket(rng, p, t: _Text) -> None:
    t.add("Ticket ", ("RECORD_ID", p["RECORD_ID"]()), ": the client on build ", ("VERSION", p["VERSION"]()),
          " fails to sync object ", ("UUID", p["UUID"]()), ". Reproduced on commit ", ("HASH", p["HASH"]()),
          ". Customer-facing order ", ("ORDER_NUMBER", p["ORDER_NUMBER"]()), " is unaffected.\n")


_FAMILIES = (_release_notes, _request_log, _inventory, _order_status, _news, _ticket)


def build_hard_negative_records(n: int = 240, seed: int = 20261203) -> list[GoldRecord]:
    rng = random.Random(f"hard-negatives/{seed}")
    pieces = _pieces(rng)
    records = []
    for i in range(n):
        text = _Text()
        _FAMILIES[i % len(_FAMILIES)](rng, pieces, text)
        records.append(GoldRecord(id=f"hardneg-{i:04d}", text="".join(text.parts), spans=(), source="hard-negatives",
                                  hard_negatives=tuple(text.negatives)))
    return records


if __name__ == "__main__":
    from collections import Counter

    corpus = build_hard_negative_records()
    for record in corpus:
        for span in record.hard_negatives:
            assert record.text[span.start:span.end] == span.value, (record.id, span)
    assert build_hard_negative_records() == corpus
    print(len(corpus), "records;", dict(Counter(s.type for r in corpus for s in r.hard_negatives)))
