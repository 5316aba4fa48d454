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
class AuditCanary:
    """A made-up record for the one-run audit of the ε claim (Steinke, Nasr and Jagielski 2023):
    trained on once, or not at all, by a secret coin flip. Which ones were is the audit's secret:
    it is written only to `audit_canaries.json` (mode 0600), never to the manifest."""

    prefix: str
    secret: str
    included: bool
    repetitions = 1  # planted once: the audit bounds ε for one record (or one subject), not for a group

    @property
    def text(self) -> str:
        return f"{self.prefix}{self.secret}"


# Unlike the exposure canaries' prefix, so an audit canary is never one of an exposure canary's
# candidates and the two measurements stay apart.
AUDIT_CANARY_PREFIX = "Audit reference "
# Rejection sampling draws distinct secrets quickly only while they are a small part of all the
# secrets the alphabet and length allow: at a tenth, fewer than 6% of draws are repeats.
SECRET_SPACE_MARGIN = 10


@dataclass(frozen=True)
class CanarySpec:
    count: int = 10
    repetitions: int = 1
    prefix_template: str = "My account recovery code is "
    alphabet: str = string.digits
    length: int = 8
    # One-run audit canaries, each trained on with probability ½. 64 lets the audit show ε up to
    # 2.7 at 95% confidence (δ ≤ 1e-5: a perfect attack, 48 guesses): enough to catch a run whose
    # claim of ε ≤ 2.5 is broken (no noise, a wrong accountant). The most it can show grows only
    # with the log of the canaries (256: 4.1, 1024: 5.5; ε = 8 needs some 12,000), and every
    # planted one is an extra record (or subject) in training, so more is a request's choice.
    audit_count: int = 64

    def problems(self) -> list[str]:
        """What is wrong with these settings, one clause each (empty: nothing)."""
        problems = []
        if self.count < 0:
            problems.append("the canary count must be 0 or more")
        if self.repetitions < 1:
            problems.append("each canary must be planted at least once (repetitions >= 1)")
        if self.length < 4:
            problems.append("canary secrets must be at least 4 characters long (length >= 4)")
        if self.audit_count < 0:
            problems.append("the audit canary count must be 0 or more (audit_count >= 0)")
        if not problems:
            needed = self.count + self.audit_count
            symbols = len(set(self.alphabet))
            possible = symbols ** self.length
            if needed and possible < SECRET_SPACE_MARGIN * needed:
                problems.append(
                    f"an alphabet of {symbols} distinct character{'' if symbols == 1 else 's'} makes only {possible} "
                    f"different secrets of {self.length} characters, too few for {needed} distinct canaries "
                    f"(count + audit_count; at least {SECRET_SPACE_MARGIN * needed} are needed): use more characters "
                    "or longer secrets")
        return problems


def _refuse_bad(spec: CanarySpec) -> None:
    problems = spec.problems()
    if problems:
        raise ValueError(f"Canary settings: {'; '.join(problems)}.")


def _distinct_secrets(spec: CanarySpec, count: int, taken: set[str]) -> list[str]:
    """`count` secrets from the OS CSPRNG, none in `taken` (which grows with them). Ends quickly:
    `problems` refuses an alphabet and length that allow too few secrets."""
    out = []
    while len(out) < count:
        secret = "".join(secrets.choice(spec.alphabet) for _ in range(spec.length))
        if secret not in taken:
            taken.add(secret)
            out.append(secret)
    return out


def make_canaries(spec: CanarySpec) -> list[Canary]:
    """Secrets from the OS CSPRNG, distinct from each other; never derived from a seed, so the
    run manifest can be public without revealing them."""
    _refuse_bad(spec)
    return [Canary(spec.prefix_template, secret, spec.repetitions) for secret in _distinct_secrets(spec, spec.count, set())]


def make_audit_canaries(spec: CanarySpec, avoid: set[str] = frozenset()) -> list[AuditCanary]:
    """`spec.audit_count` audit canaries: secrets drawn like the exposure canaries' (distinct from
    each other and from `avoid`, the exposure secrets), each with an inclusion bit from the OS
    CSPRNG. The one-run audit's bound holds only if the bits are independent fair coins that
    nobody can predict: never derived from the run's public seed."""
    _refuse_bad(spec)
    return [AuditCanary(AUDIT_CANARY_PREFIX, secret, bool(secrets.randbits(1)))
            for secret in _distinct_secrets(spec, spec.audit_count, set(avoid))]


def insert_canaries(records: list[T], canaries: Sequence[Canary | AuditCanary], seed: int,
                    as_record: Callable[[int, Canary | AuditCanary], T] | None = None) -> list[T]:
    """The training records with each canary added `repetitions` times at random places.
    `as_record(index, canary)` builds the inserted item (default: the canary's text)."""
    out = list(records)
    rng = random.Random(seed)
    for index, canary in enumerate(canaries):
        for _ in range(canary.repetitions):
            out.insert(rng.randrange(len(out) + 1), as_record(index, canary) if as_record else canary.text)
    return out
