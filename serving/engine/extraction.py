"""What the extraction detectors need of a prompt, without its text. Plain Python (no Django).

The gateway calls `prompt_signature(prompt, probe_key)` for every prompt and stores the result in
`QueryRecord.prompt_signature`; `serving.monitoring.inspect_query` reads it. The signature holds:

- `words`: how many normalised words the prompt has;
- `minhash`: a MinHash (datasketch, 64 permutations, "affine32") of the prompt's word 3-grams
  under a key of the deployment, for near-duplicate bursts. Keyed, so a short prompt cannot be
  recovered by hashing guesses without the portal's secret;
- `probe`: "checked" when the run has a probe index (training.engine.probes), "unavailable" for a
  run trained before probe indexes existed. When checked, `canary_prefix_hits` and `opening_hits`
  list the index digests that some window of the prompt reproduced. Only digests already in the
  index are kept: the digests of the prompt's other windows are computed, looked up and dropped,
  so the log holds nothing about a prompt that matched nothing but its MinHash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
from datasketch import MinHash

from training.engine.probes import FORMAT, normalised_words, window_digest

MINHASH_PERMUTATIONS = 64
MINHASH_SCHEME = "affine32"
SHINGLE_WORDS = 3


class ProbeIndexUnreadable(ValueError):
    """The stored probe index is not one this code can read."""


@dataclass(frozen=True)
class ProbeIndex:
    key: bytes
    window_sizes: tuple[int, ...]
    openings: frozenset[str]
    canary_prefixes: frozenset[str]

    @classmethod
    def from_bytes(cls, data: bytes) -> "ProbeIndex":
        try:
            raw = json.loads(data.decode("utf-8"))
            if raw.get("format") != FORMAT:
                raise ProbeIndexUnreadable(f"not a probe index of format {FORMAT} (found {raw.get('format')!r})")
            return cls(key=bytes.fromhex(raw["key"]), window_sizes=tuple(sorted(int(n) for n in raw["window_sizes"])),
                       openings=frozenset(raw["openings"]), canary_prefixes=frozenset(raw["canary_prefixes"]))
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            if isinstance(exc, ProbeIndexUnreadable):
                raise
            raise ProbeIndexUnreadable(f"the probe index is damaged ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class ProbeKey:
    """What `prompt_signature` needs for one deployment: the MinHash key (per deployment) and the
    run's probe index, or None when the run has none."""

    minhash_key: bytes
    index: ProbeIndex | None


def _keyed_hash32(key: bytes):
    def hash32(data: bytes) -> int:
        return int.from_bytes(hashlib.blake2b(data, key=key[:64], digest_size=4).digest(), "little")

    return hash32


def minhash_values(words: list[str], key: bytes) -> list[int]:
    """MinHash of the word 3-grams (a prompt of fewer words: its words), keyed."""
    shingles = {" ".join(words[i:i + SHINGLE_WORDS]) for i in range(max(1, len(words) - SHINGLE_WORDS + 1))} if words else set()
    sketch = MinHash(num_perm=MINHASH_PERMUTATIONS, hashfunc=_keyed_hash32(key), scheme=MINHASH_SCHEME)
    sketch.update_batch([s.encode("utf-8") for s in sorted(shingles)])
    return [int(v) for v in sketch.hashvalues]


def prompt_signature(prompt: str, probe_key: ProbeKey) -> dict:
    """The signature of one prompt (for a chat request: the messages' contents joined by newlines)."""
    words = normalised_words(prompt)
    signature = {"words": len(words), "minhash": minhash_values(words, probe_key.minhash_key)}
    index = probe_key.index
    if index is None:
        signature["probe"] = "unavailable"
        return signature
    canary_hits, opening_hits = set(), set()
    for size in index.window_sizes:
        for start in range(0, len(words) - size + 1):
            digest = window_digest(index.key, words[start:start + size])
            if digest in index.canary_prefixes:
                canary_hits.add(digest)
            if digest in index.openings:
                opening_hits.add(digest)
    signature.update(probe="checked", canary_prefix_hits=sorted(canary_hits), opening_hits=sorted(opening_hits))
    return signature


def similar_count(minhash: list[int], others: list[list[int]], threshold: float) -> int:
    """How many of `others` have an estimated Jaccard similarity of at least `threshold` with
    `minhash` (the share of equal MinHash values estimates it)."""
    if not minhash or not others:
        return 0
    rows = [o for o in others if o and len(o) == len(minhash)]
    if not rows:
        return 0
    similarity = (np.asarray(rows, dtype=np.uint64) == np.asarray(minhash, dtype=np.uint64)).mean(axis=1)
    return int((similarity >= threshold).sum())
