"""The evidence-pack signing key's history and its rotation.

`SigningKey` rows keep every public key the portal has signed with and the period it was current.
The key in use is shown (`key_history`) and used for verification even before it is stored: the
first rotation stores it (`record_current_key`), so an existing installation needs no migration
step and reading a page writes nothing. Rotation generates a new Ed25519 key, closes the old key's period, opens the new
one's and writes the trail event in one transaction whose last step replaces the key file
(`$PROVENANT_SIGNING_KEY_FILE`, or the development file) atomically. `governance.keys` reloads the
file in every process that reads it; a process on another host with its own copy must be given the
new file and restarted, or the packs it signs after the rotation will not verify (signed by a
retired key). A key given inline in `$PROVENANT_SIGNING_KEY` cannot be rotated by the portal.

Old packs keep verifying: online verification (`audits.verify.verify_pack_with_keys`, used by the
verification page and `manage.py verify_pack`) picks the key a pack names from this history and
checks that the portal recorded the pack while that key was current; offline, a regulator verifies
with the public key published for the period (every key is on the key page, and in its keyring file).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from governance.key_rotation import KeyRotationRefused, check_rotate_keys, clean_reason, exclusive_rotation
from governance.keys import fingerprint_of, public_key_fingerprint, public_key_pem, signing_key_source
from governance.models import AuditEvent, SigningKey
from governance.trail import record_event
from governance.vault import replace_private_file, writable_problem

INLINE_REFUSAL = ("The signing key is read from the environment variable PROVENANT_SIGNING_KEY itself, which the portal "
                  "cannot rewrite, so it cannot rotate it. Store the key in a file only this service's user can read "
                  "(mode 0600), set PROVENANT_SIGNING_KEY_FILE to its path, unset PROVENANT_SIGNING_KEY, restart every "
                  "web and worker process, then rotate again.")
REPLACED_OUTSIDE = ("Replaced outside the portal: the key file changed without a rotation, so this period ends when the "
                    "portal first saw the new key.")


def _key_file_mtime() -> dt.datetime | None:
    source = signing_key_source()
    try:
        return dt.datetime.fromtimestamp(source.path.stat().st_mtime, tz=dt.timezone.utc) if source.path else None
    except OSError:
        return None


def _history_with_current_key() -> tuple[list[SigningKey], list[SigningKey]]:
    """(every key, newest first, the one in use included; the rows to save to record it).

    The key in use is entered in the stored history by the next rotation (reading a page writes
    nothing); until then it is shown as it will be stored. The first key of an installation is
    taken to be valid from the portal's first audit event (it signed every pack so far). A key
    that appears without a rotation (the key file replaced by hand) closes the open period at the
    moment the file was written."""
    rows = list(SigningKey.objects.select_related("created_by", "retired_by"))
    fingerprint = public_key_fingerprint()
    if any(row.fingerprint == fingerprint for row in rows):
        return rows, []
    now = timezone.now()
    changed = []
    if not rows:
        first_event = AuditEvent.objects.order_by("sequence").values_list("occurred_at", flat=True).first()
        valid_from = min(first_event, now) if first_event else now
    else:
        valid_from = max(max(row.valid_from for row in rows), min(_key_file_mtime() or now, now))
        for row in rows:
            if row.valid_until is None:
                row.valid_until, row.retired_reason = max(valid_from, row.valid_from), REPLACED_OUTSIDE
                changed.append(row)
    current = SigningKey(fingerprint=fingerprint, public_key_pem=public_key_pem(), valid_from=valid_from)
    return [current, *rows], [*changed, current]


def key_history() -> list[SigningKey]:
    """Every signing key, newest first, the one in use included (unsaved, pk None, until the next
    rotation stores it). Reads only."""
    return _history_with_current_key()[0]


def record_current_key() -> SigningKey:
    """Store the key in use in the history if it is not there yet, with its trail event. Inside the
    caller's transaction (the rotation's)."""
    list(SigningKey.objects.select_for_update().filter(valid_until__isnull=True))  # lock the open period
    _, to_save = _history_with_current_key()
    for row in to_save:
        row.save()
    if to_save:
        current = to_save[-1]
        closed = [row.fingerprint for row in to_save[:-1]]
        why = ("a key that appeared without a rotation (the key file was replaced by hand)" if closed
               else "the key in use before the portal kept a history")
        record_event(None, "signingkey.recorded", current, f"Signing key {current.fingerprint[:16]}… entered in the key history: {why}",
                     {"fingerprint": current.fingerprint, "valid_from": current.valid_from.isoformat(), "closed": closed})
    return SigningKey.objects.get(fingerprint=public_key_fingerprint())


@dataclass(frozen=True)
class SigningKeyRotation:
    """What a signing key rotation did, for a page or a command to show (public values only)."""

    old_fingerprint: str
    new_fingerprint: str
    rotated_at: dt.datetime
    key_file: str
    event_sequence: int

    def summary(self) -> str:
        return (f"Evidence packs are now signed with key {self.new_fingerprint}; key {self.old_fingerprint} was retired at "
                f"{self.rotated_at:%Y-%m-%d %H:%M:%S} UTC and still verifies the packs it signed before then.")


def rotate_signing_key(actor, reason: str) -> SigningKeyRotation:
    """Generate a new Ed25519 signing key and make it current; the old one is retired, kept in the
    history with its period, so the packs it signed still verify. Every web and worker process that
    reads the same key file picks up the new key by itself; any other must be given it and restarted.

    Better called outside a transaction. Inside a caller's (an incident's) it works, the key file
    being replaced just before this function's block ends; if the caller's transaction then rolls
    back, the history shows the new key as one that appeared without a rotation, from the moment
    its file was written, and the packs of both keys verify, except in one case: the history was
    still empty, so the old key's period is lost online (its PEM still verifies its packs offline)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    check_rotate_keys(actor)
    reason = clean_reason(reason)
    source = signing_key_source()
    if source.inline:
        raise KeyRotationRefused(INLINE_REFUSAL)
    public_key_fingerprint()  # generates the development key if there is none yet
    problem = writable_problem(source.path)
    if problem:
        raise KeyRotationRefused(f"The signing key cannot be rotated in place: {problem}. Make the file's folder writable "
                                 "by the portal's user for the rotation, or replace the key by hand and restart every process.")
    new_key = Ed25519PrivateKey.generate()
    new_pem_private = new_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()).decode()
    new_pem_public = new_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    new_fingerprint = fingerprint_of(new_key.public_key())
    with exclusive_rotation(source.path), transaction.atomic():
        old = record_current_key()
        if old.valid_until is not None:  # a process that had not reloaded after another rotation
            raise KeyRotationRefused(f"This process signs with key {old.fingerprint[:16]}…, which the history says was retired "
                                     f"on {old.valid_until:%Y-%m-%d %H:%M} UTC: look at the key page before rotating again.")
        now = timezone.now()
        old.valid_until, old.retired_reason, old.retired_by = now, reason, actor
        old.save(update_fields=["valid_until", "retired_reason", "retired_by"])
        new = SigningKey.objects.create(fingerprint=new_fingerprint, public_key_pem=new_pem_public, valid_from=now,
                                        created_by=actor)
        event = record_event(actor, "signingkey.rotated", new,
                             f"{actor} rotated the evidence-pack signing key: {old.fingerprint[:16]}… retired, "
                             f"{new_fingerprint[:16]}… current",
                             {"reason": reason, "old_fingerprint": old.fingerprint, "new_fingerprint": new_fingerprint,
                              "rotated_at": now.isoformat(), "key_file": str(source.path)})
        # Last, so that any failure above leaves the file as it was.
        replace_private_file(source.path, new_pem_private)
    return SigningKeyRotation(old_fingerprint=old.fingerprint, new_fingerprint=new_fingerprint, rotated_at=now,
                              key_file=str(source.path), event_sequence=event.sequence)
