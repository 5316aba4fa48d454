"""Preparing a run's data: a private scratch directory, the train/holdout split, and canaries.

No Django here. Plaintext lives only inside `job_scratch`, which removes it in `finally`;
`sweep_stale_scratch` removes what a killed worker left behind, at the next worker start.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence, TypeVar

T = TypeVar("T")


@contextlib.contextmanager
def job_scratch(root: Path, job_id: str, on_purge: Callable[[dict], None] | None = None) -> Iterator[Path]:
    """A directory only this user can enter (0700), removed with everything in it on exit,
    whether the job succeeds, fails or is cancelled. `on_purge` hears what was removed."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = root / job_id
    path.mkdir(mode=0o700)
    os.chmod(path, 0o700)  # the umask must not widen it
    try:
        yield path
    finally:
        report = scratch_contents(path)
        shutil.rmtree(path, ignore_errors=True)
        report["removed"] = not path.exists()
        if on_purge:
            on_purge(report)


def scratch_contents(path: Path) -> dict:
    files = [p for p in Path(path).rglob("*") if p.is_file()]
    return {"path": str(path), "files": len(files), "bytes": sum(p.stat().st_size for p in files)}


def sweep_stale_scratch(root: Path, live_job_ids: set[str] = frozenset()) -> list[str]:
    """Remove scratch directories of jobs that are not running (left by a killed worker)."""
    root = Path(root)
    if not root.exists():
        return []
    removed = []
    for entry in root.iterdir():
        if entry.is_dir() and entry.name not in live_job_ids:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    return sorted(removed)


def split_train_holdout(items: Sequence[T], holdout_fraction: float, seed: int,
                        subjects: Sequence[str] | None = None) -> tuple[list[T], list[T]]:
    """A random split: members and non-members must come from the same distribution, or the
    membership audits measure the split instead of the model (Duan et al. 2024). With `subjects`
    (one per item), whole subjects go to one side: under subject-level DP the non-members must
    be people the model never saw."""
    if not 0 <= holdout_fraction < 1:
        raise ValueError("The holdout fraction must be in [0, 1).")
    if subjects is None:
        units = list(range(len(items)))
        unit_of = units
    else:
        units = list(dict.fromkeys(subjects))
        unit_of = subjects
    order = list(range(len(units)))
    random.Random(seed).shuffle(order)
    held = {units[i] for i in order[:round(len(units) * holdout_fraction)]}
    train = [item for item, unit in zip(items, unit_of) if unit not in held]
    holdout = [item for item, unit in zip(items, unit_of) if unit in held]
    return train, holdout


@dataclass(frozen=True)
class Canary:
    """A made-up secret planted in the training data to measure memorisation."""

    prefix: str
    secret: str
    repetitions: int

    @property
    def text(self) -> str:
        return f"{self.prefix}{self.secret}"


@dataclass(frozen=True)
class CanarySpec:
    count: int = 10
    repetitions: int = 1
    prefix_template: str = "My account recovery code is "
    alphabet: str = string.digits
    length: int = 8


def make_canaries(spec: CanarySpec) -> list[Canary]:
    """Secrets from the OS CSPRNG, distinct from each other; never derived from a seed, so the
    run manifest can be public without revealing them."""
    if spec.count < 0 or spec.repetitions < 1 or spec.length < 4:
        raise ValueError("Canaries need a count >= 0, repetitions >= 1 and secrets of at least 4 characters.")
    seen, canaries = set(), []
    while len(canaries) < spec.count:
        secret = "".join(secrets.choice(spec.alphabet) for _ in range(spec.length))
        if secret not in seen:
            seen.add(secret)
            canaries.append(Canary(spec.prefix_template, secret, spec.repetitions))
    return canaries


def insert_canaries(records: list[T], canaries: list[Canary], seed: int,
                    as_record: Callable[[int, Canary], T] | None = None) -> list[T]:
    """The training records with each canary added `repetitions` times at random places.
    `as_record(index, canary)` builds the inserted item (default: the canary's text)."""
    out = list(records)
    rng = random.Random(seed)
    for index, canary in enumerate(canaries):
        for _ in range(canary.repetitions):
            out.insert(rng.randrange(len(out) + 1), as_record(index, canary) if as_record else canary.text)
    return out
