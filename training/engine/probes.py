"""The probe index of a run: keyed digests of the openings of its records and of its canaries'
prefixes, so the gateway can tell a prompt that reproduces one without any text being stored.

A *window* is a run of consecutive normalised words (NFKC, case-folded, `\\w+` tokens, so
punctuation, spacing and case do not matter). The index holds, under an HMAC-SHA256 key of this
run only:

- `openings`: the digest of the first `OPENING_WORDS` words of every record prepared for the run
  (a record shorter than that: all its words, if at least `MIN_PROBE_WORDS`);
- `canary_prefixes`: the digest of the last `OPENING_WORDS` words of each canary's prefix (the
  part before the secret; a shorter prefix: all its words), the words a probe leading into the
  secret must end with.

The gateway side (`serving.engine.extraction`) digests every window of a prompt of each size the
index holds and looks the digests up. Plain Python: the training pipeline writes the index, the
serving engine reads it; neither stores a word of text.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import unicodedata
from pathlib import Path

FORMAT = "provenant-probe-index/1"
OPENING_WORDS = 8
MIN_PROBE_WORDS = 5  # fewer words match too much ordinary text to mean anything
DIGEST_BYTES = 16

_WORD = re.compile(r"\w+", re.UNICODE)


def normalised_words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text or "").casefold())


def window_digest(key: bytes, words: list[str] | tuple[str, ...]) -> str:
    """HMAC-SHA256 of the words joined by single spaces, truncated to 128 bits, hex."""
    return hmac.new(key, " ".join(words).encode("utf-8"), hashlib.sha256).digest()[:DIGEST_BYTES].hex()


class ProbeIndexBuilder:
    """Collects the digests during a run's preparation; `save` writes the JSON the pipeline
    encrypts as the run's `probe_index` artifact (the key inside it, as the PII index keeps its own)."""

    def __init__(self, key: bytes | None = None, opening_words: int = OPENING_WORDS):
        self.key = key or os.urandom(32)
        self.opening_words = opening_words
        self.openings: set[str] = set()
        self.canary_prefixes: set[str] = set()
        self.window_sizes: set[int] = set()
        self.too_short = 0

    def _add(self, words: list[str], into: set[str]) -> bool:
        if len(words) < MIN_PROBE_WORDS:
            self.too_short += 1
            return False
        into.add(window_digest(self.key, words))
        self.window_sizes.add(len(words))
        return True

    def add_record(self, text: str) -> bool:
        return self._add(normalised_words(text)[:self.opening_words], self.openings)

    def add_canary_prefix(self, prefix: str) -> bool:
        return self._add(normalised_words(prefix)[-self.opening_words:], self.canary_prefixes)

    def as_dict(self) -> dict:
        return {"format": FORMAT, "key": self.key.hex(), "opening_words": self.opening_words, "min_words": MIN_PROBE_WORDS,
                "window_sizes": sorted(self.window_sizes), "openings": sorted(self.openings),
                "canary_prefixes": sorted(self.canary_prefixes), "too_short": self.too_short}

    def save(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self.as_dict(), handle, sort_keys=True)
