"""Master key rotation: a new version of the Tink keyset becomes primary, every wrapped data key
and every sealed value in the database is re-wrapped under it, and the old versions are disabled.

What is protected by the master key is declared by the app that stores it, from its `apps.py`
`ready()`, in the registry below (a lower layer never imports a higher one, so governance cannot
list the fields of training or audits itself):

    key_rotation.register_wrapped_key(Dataset, "wrapped_key", context=lambda row: Dataset.key_context(row.blob_id),
                                      context_fields=("blob_id",))
    key_rotation.register_sealed_value(PseudonymKey, "sealed", context=..., context_fields=("scope",))

Rotation refuses to start while a BinaryField that is neither registered nor declared unprotected
(`register_unprotected_binary_field`) holds a value: disabling the old version could make it
unreadable for good.

The order of the steps is what keeps every value readable at every moment:

1. The new keyset (old versions + the new primary) is built in memory. Nothing is written yet.
2. One database transaction re-wraps every row (locked, compared-and-swapped, so a dataset shredded
   meanwhile stays shredded) and writes the trail event `masterkey.rotated`; its last step, before
   the commit, replaces the keyset file with the one holding both versions. A row that cannot be
   opened (damaged, or under a key this keyset lacks) rolls everything back, with an error naming
   the row, and the keyset file is left as it was.
3. After the commit, rows written meanwhile by a process still on the old keyset are re-wrapped
   too (`late_rows`), then the file is replaced once more with the old versions DISABLED: Tink no
   longer decrypts with them.

Between steps 2 and 3 the keyset holds both versions, ENABLED: every process can read the data
whichever version wrapped it. `governance.keys` reloads the keyset in every web and worker process
that reads the same file when the file changes, so they follow without a restart; a process on
another host with its own copy of the file must be given the new file and restarted, and a process
started with the key inline in `$PROVENANT_MASTER_KEY` cannot be rotated at all (the portal cannot
rewrite an environment variable: use `$PROVENANT_MASTER_KEY_FILE`). An upload that had its data key
wrapped before the rotation and commits after step 3 would be under a disabled version: rotate in
a quiet period; `manage.py rotate_master_key --check` lists such rows.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from django.apps import apps
from django.db import connection, models, transaction

from governance.keys import master_key_file_source
from governance.trail import record_event
from governance.vault import KeyUnavailable, MasterKey, replace_private_file, writable_problem

MIN_REASON = 10
BATCH = 200
MASTER_KEY_OBJECT = "governance.masterkey"  # the trail's object type: the master key has no row of its own

INLINE_REFUSAL = ("The master key is read from the environment variable PROVENANT_MASTER_KEY itself, which the portal "
                  "cannot rewrite, so it cannot rotate it. Store the keyset in a file only this service's user can read "
                  "(mode 0600), set PROVENANT_MASTER_KEY_FILE to its path, unset PROVENANT_MASTER_KEY, restart every "
                  "web and worker process, then rotate again.")


# --------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class ProtectedField:
    """A column holding something only the master key opens: a data key wrapped by it (`wrapped`),
    or a small value sealed by it directly. `context(row)` is the associated data it was bound to."""

    model: type[models.Model]
    field: str
    wrapped: bool
    context: Callable[[models.Model], str]
    context_fields: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.model._meta.label}.{self.field}"

    @property
    def kind(self) -> str:
        return "wrapped data key" if self.wrapped else "sealed value"


_PROTECTED: dict[str, ProtectedField] = {}
_UNPROTECTED: dict[str, str] = {}


def _model(model) -> type[models.Model]:
    return apps.get_model(model) if isinstance(model, str) else model


def _register(entry: ProtectedField) -> None:
    entry.model._meta.get_field(entry.field)  # a misspelt field fails at start-up, not during a rotation
    for name in entry.context_fields:
        entry.model._meta.get_field(name)
    _PROTECTED[entry.label] = entry


def register_wrapped_key(model, field_name: str, *, context: Callable, context_fields: tuple[str, ...] = ()) -> None:
    """Declare a column of data keys wrapped by `MasterKey.new_data_key(context(row))`."""
    _register(ProtectedField(_model(model), field_name, True, context, tuple(context_fields)))


def register_sealed_value(model, field_name: str, *, context: Callable, context_fields: tuple[str, ...] = ()) -> None:
    """Declare a column of values sealed by `MasterKey.seal(plaintext, context(row))`."""
    _register(ProtectedField(_model(model), field_name, False, context, tuple(context_fields)))


def register_unprotected_binary_field(model, field_name: str, why: str) -> None:
    """Declare a BinaryField that the master key does not protect (a hash, a public value)."""
    model = _model(model)
    model._meta.get_field(field_name)
    _UNPROTECTED[f"{model._meta.label}.{field_name}"] = why


def protected_fields() -> list[ProtectedField]:
    return [_PROTECTED[label] for label in sorted(_PROTECTED)]


def unregistered_binary_fields(*, holding_values: bool = False) -> list[str]:
    """Every BinaryField of an installed model that the registry does not know about (with
    `holding_values`, only those where some row holds a value: what a rotation could lose)."""
    found = []
    for model in apps.get_models():
        for model_field in model._meta.concrete_fields:
            if isinstance(model_field, models.BinaryField):
                label = f"{model._meta.label}.{model_field.name}"
                if label in _PROTECTED or label in _UNPROTECTED:
                    continue
                if holding_values and not model._base_manager.filter(**{f"{model_field.name}__isnull": False}).exclude(
                        **{model_field.name: b""}).exists():
                    continue
                found.append(label)
    return sorted(found)


# --------------------------------------------------------------------------- refusals and results


class KeyRotationNotAllowed(PermissionError):
    pass


class KeyRotationRefused(ValueError):
    """Rotation cannot start: the sentence says why and what to do. Nothing was changed."""


class KeyRotationFailed(RuntimeError):
    """A stored value could not be re-wrapped; the transaction was rolled back, nothing changed."""


class KeyRotationIncomplete(RuntimeError):
    """The re-wrap committed but a later step failed: every value is readable (the keyset still
    holds the old versions, enabled); the sentence says what to do."""


def check_rotate_keys(actor) -> None:
    """Key rotation belongs to the administrator (keys are theirs) and to the privacy officer,
    who leads the response to a breach and must be able to contain it without waiting for one.
    Neither sees any key material: rotation only replaces keys."""
    if actor is None or not getattr(actor, "is_authenticated", False) or not actor.has_perm("governance.rotate_keys"):
        raise KeyRotationNotAllowed("Only an administrator or the privacy officer rotates the portal's keys.")


def clean_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON:
        raise KeyRotationRefused(f"Say why the key is rotated, in at least {MIN_REASON} characters (an incident, a "
                                 "scheduled rotation, a departure): the reason is kept in the audit trail.")
    return reason


@contextlib.contextmanager
def exclusive_rotation(key_path: Path) -> Iterator[None]:
    """One rotation of a key file at a time on this host (a lock file beside it)."""
    target = Path(os.path.realpath(key_path))
    lock_path = target.parent / f".{target.name}.rotation-lock"
    fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise KeyRotationRefused(f"Another rotation of {key_path} is in progress: wait for it to finish.") from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


def refuse_inside_transaction(what: str) -> None:
    if connection.in_atomic_block:
        raise KeyRotationRefused(f"{what} commits its own transactions and writes the key file after the commit: call it "
                                 "outside transaction.atomic (a view without ATOMIC_REQUESTS, a command, a task).")


@dataclass(frozen=True)
class MasterKeyRotation:
    """What a master key rotation did, for a page or a command to show (no key material)."""

    old_key_ids: tuple[int, ...]
    new_key_id: int
    rewrapped: dict[str, int] = field(default_factory=dict)  # field label -> rows re-wrapped
    left_empty: dict[str, int] = field(default_factory=dict)  # field label -> rows without a key (shredded, deleted)
    late_rows: int = 0
    keyset: str = ""
    event_sequence: int = 0

    @property
    def total(self) -> int:
        return sum(self.rewrapped.values()) + self.late_rows

    def summary(self) -> str:
        old = ", ".join(str(k) for k in self.old_key_ids) or "none"
        return (f"Master key version {self.new_key_id} is primary; {self.total} stored keys and sealed values were "
                f"re-wrapped under it; version(s) {old} are disabled.")


# --------------------------------------------------------------------------- the rotation


def _pks_with_value(entry: ProtectedField) -> list:
    return list(entry.model._base_manager.filter(**{f"{entry.field}__isnull": False}).order_by("pk").values_list("pk", flat=True))


def _rewrap_rows(entry: ProtectedField, keyset: MasterKey, pks: list, *, only_not_under_primary: bool,
                 advance: Callable[[int], None]) -> tuple[int, int]:
    """Re-wrap the rows `pks` of one field under `keyset`'s primary; (rows re-wrapped, rows empty)."""
    manager = entry.model._base_manager
    rewrapped = empty = 0
    for start in range(0, len(pks), BATCH):
        batch = pks[start:start + BATCH]
        rows = manager.select_for_update().filter(pk__in=batch).only("pk", entry.field, *entry.context_fields).order_by("pk")
        for row in rows:
            stored = getattr(row, entry.field)
            if not stored:
                empty += 1
                continue
            stored = bytes(stored)
            if only_not_under_primary and keyset.under_primary(stored, wrapped=entry.wrapped):
                continue
            context = entry.context(row)
            try:
                fresh = keyset.rewrap(stored, context) if entry.wrapped else keyset.reseal(stored, context)
            except KeyUnavailable as exc:
                raise KeyRotationFailed(
                    f"{entry.model._meta.verbose_name.capitalize()} {row.pk} ({entry.label}, context “{context}”): its "
                    f"{entry.kind} cannot be opened with the current master key, so it cannot be re-wrapped ({exc}).") from exc
            # Compare-and-swap: a row changed meanwhile (a dataset shredded) keeps its new value.
            rewrapped += manager.filter(pk=row.pk, **{entry.field: stored}).update(**{entry.field: fresh})
        advance(len(batch))
    return rewrapped, empty


def rows_not_under_primary(keyset: MasterKey | None = None) -> dict[str, list]:
    """Field label -> primary keys of rows whose value is not under the keyset's primary version
    (with the file's keyset after a rotation: the rows a stale process wrote, now unreadable)."""
    from governance.keys import master_key

    keyset = keyset or master_key()
    found = {}
    for entry in protected_fields():
        rows = entry.model._base_manager.filter(**{f"{entry.field}__isnull": False}).values_list("pk", entry.field).iterator(2000)
        stale = [pk for pk, stored in rows if stored and not keyset.under_primary(bytes(stored), wrapped=entry.wrapped)]
        if stale:
            found[entry.label] = stale
    return found


def preflight_master_key_rotation() -> Path:
    """The keyset file to rotate; KeyRotationRefused when rotation cannot start, saying why."""
    source = master_key_file_source()
    if source.inline:
        raise KeyRotationRefused(INLINE_REFUSAL)
    problem = writable_problem(source.path)
    if problem:
        raise KeyRotationRefused(f"The master keyset cannot be rotated in place: {problem}. Make the file's folder writable "
                                 "by the portal's user for the rotation, or rotate it offline and restart every process.")
    unknown = unregistered_binary_fields(holding_values=True)
    if unknown:
        raise KeyRotationRefused(
            f"These binary columns hold values but are not registered with governance.key_rotation: {', '.join(unknown)}. "
            "A value sealed or wrapped by the master key there would become unreadable once the old version is disabled, "
            "so nothing was changed. Register each "
            "(register_wrapped_key or register_sealed_value, or register_unprotected_binary_field if the master key does "
            "not protect it) in its app's ready(), then rotate.")
    return source.path


def rotate_master_key(actor, reason: str, *, progress: Callable[[int, int], None] | None = None) -> MasterKeyRotation:
    """Rotate the master key (see the module's docstring for the order of the steps). `progress`
    is called with (rows done, rows in all) as the re-wrap goes. Every web and worker process that
    reads the same keyset file reloads it by itself; any other must be given the new file and
    restarted. Refused inside a transaction: it commits its own."""
    check_rotate_keys(actor)
    reason = clean_reason(reason)
    refuse_inside_transaction("Rotating the master key")
    path = preflight_master_key_rotation()
    entries = protected_fields()
    with exclusive_rotation(path):
        current = MasterKey.from_json(path.read_text())  # the file, not this process's cached copy
        both = current.with_new_primary()
        old_ids, new_id = tuple(current.enabled_key_ids()), both.primary_key_id
        pks = {entry.label: _pks_with_value(entry) for entry in entries}
        total, done = sum(len(v) for v in pks.values()), [0]

        def advance(n: int) -> None:
            done[0] += n
            if progress:
                progress(done[0], total)

        if progress:
            progress(0, total)
        rewrapped, empty = {}, {}
        try:
            with transaction.atomic():
                for entry in entries:
                    rewrapped[entry.label], blank = _rewrap_rows(entry, both, pks[entry.label], only_not_under_primary=False,
                                                                 advance=advance)
                    empty[entry.label] = entry.model._base_manager.filter(**{f"{entry.field}__isnull": True}).count() + blank
                event = _record_rotation(actor, reason, path, old_ids, new_id, rewrapped, empty)
                # Last, so that any failure above leaves the file as it was. Both versions are enabled in
                # it: the rows read whether this transaction commits or not.
                try:
                    replace_private_file(path, both.to_json())
                except OSError as exc:
                    raise KeyRotationFailed(f"Writing the new keyset beside {path} failed ({exc}).") from exc
        except KeyRotationFailed as exc:
            raise KeyRotationFailed(f"{exc} Nothing was changed: the transaction was rolled back and the keyset file is as it "
                                    "was. Restore that row's value from a backup (or shred the object if it is lost), then "
                                    "rotate again.") from exc.__cause__
        try:
            late = _rewrap_late_rows(actor, both, entries, new_id)
        except KeyRotationFailed as exc:
            raise KeyRotationIncomplete(
                f"Every stored key is re-wrapped under master key version {new_id} (committed), but a value written during "
                f"the rotation could not be: {exc} The old version(s) stay enabled, so every other value is readable; "
                "repair that row and rotate again.") from exc.__cause__
        try:
            replace_private_file(path, both.with_only_primary_enabled().to_json())
        except OSError as exc:
            raise KeyRotationIncomplete(
                f"Every stored key is re-wrapped under master key version {new_id} (committed), but the old version(s) "
                f"{', '.join(map(str, old_ids))} could not be disabled, because writing {path} failed ({exc}). Every value "
                "is readable. Fix the file's folder and rotate again, which disables them.") from exc
    return MasterKeyRotation(old_key_ids=old_ids, new_key_id=new_id, rewrapped=rewrapped, left_empty=empty, late_rows=late,
                             keyset=str(path), event_sequence=event.sequence)


def _record_rotation(actor, reason, path, old_ids, new_id, rewrapped, empty):
    count = sum(rewrapped.values())
    return record_event(
        actor, "masterkey.rotated", MASTER_KEY_OBJECT,
        f"{actor} rotated the master key: version {new_id} is primary, {count} stored keys and sealed values re-wrapped "
        f"under it, version(s) {', '.join(map(str, old_ids))} disabled",
        {"reason": reason, "old_key_ids": list(old_ids), "new_key_id": new_id, "rewrapped": rewrapped, "left_empty": empty,
         "keyset_file": str(path)})


def _rewrap_late_rows(actor, keyset: MasterKey, entries: list[ProtectedField], new_id: int) -> int:
    """Rows written between the snapshot and the commit by a process that still had the old keyset."""
    late = {}
    with transaction.atomic():
        for entry in entries:
            count, _ = _rewrap_rows(entry, keyset, _pks_with_value(entry), only_not_under_primary=True, advance=lambda n: None)
            if count:
                late[entry.label] = count
        if late:
            record_event(actor, "masterkey.late_rows_rewrapped", MASTER_KEY_OBJECT,
                         f"{sum(late.values())} values written during the rotation re-wrapped under master key version {new_id}",
                         {"new_key_id": new_id, "rewrapped": late})
    return sum(late.values())
