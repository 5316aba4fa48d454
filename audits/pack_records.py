"""When the portal recorded a signed pack, found by the SHA-256 of its zip: online verification
checks that a pack was signed while the key that signed it was current. Run evidence packs live
here; other signed packs (incident packs, in an app above this one) add their own lookup with
`register` from their AppConfig.ready, so this layer never imports theirs."""

from __future__ import annotations

from typing import Callable

from audits.models import EvidencePack

_LOOKUPS: dict[str, Callable] = {}


def register(label: str, lookup: Callable[[str], "object | None"]) -> None:
    """`lookup(zip_sha256)` returns when that pack was recorded, or None."""
    _LOOKUPS[label] = lookup


def recorded_at(zip_sha256: str):
    """The earliest time the portal recorded a pack with this SHA-256 (None: it built no such pack)."""
    found = [EvidencePack.objects.filter(sha256=zip_sha256).order_by("created_at").values_list("created_at", flat=True).first()]
    found += [lookup(zip_sha256) for lookup in _LOOKUPS.values()]
    return min((when for when in found if when is not None), default=None)
