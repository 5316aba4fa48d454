"""Verify a Provenant evidence pack offline, with the standard library and `cryptography` only.

    python -m audits.verify PACK.zip --public-key KEY.pem

A pack is a zip of:

    report.pdf      the evidence report (WeasyPrint)
    results.json    the same facts, machine-readable (sorted keys, UTF-8)
    public_key.pem  the portal's Ed25519 public key (SubjectPublicKeyInfo PEM), for reference
    README.txt      how to verify
    manifest.json   canonical JSON (sorted keys, no spaces, UTF-8):
                    {"files": {name: sha256 hex, ...}, "created": ..., "run": ..., "portal": {...}, ...}
    signature.sig   the Ed25519 signature over the exact bytes of manifest.json, as 128 hex
                    characters (64 bytes) followed by a newline

The pack is valid when the signature verifies with the public key *you* trust (the one published
on the portal's key page, not the copy inside the pack), every file the manifest lists is present
with that SHA-256, and nothing else is in the zip: no other entry (a directory entry, a second copy
of a name, an absolute or `..` path all count), and no bytes outside the entries (before the
first, between two, or a zip comment), where another unzip tool could find what this one skips.
Each problem names the file or entry at fault.

results.json also carries the audit-trail excerpt with every hashed field of each event; each
event's SHA-256 is recomputed here, so an excerpt edited before signing would show too.

After a rotation of the portal's signing key, packs signed before it verify with the key that
was current then. Give every key you hold and the one the pack names is used:

    python -m audits.verify PACK.zip --public-key OLD.pem --public-key NEW.pem
    python -m audits.verify PACK.zip --keyring provenant-signing-keys.json

The keyring (downloaded from the key page) also says when each key was valid: a pack whose newest
input ("created" in the manifest) is later than its key's retirement was signed after the key
stopped being valid, and is invalid. The portal's own check (`verify_pack_with_keys` with
`recorded_at`) knows more: when it recorded the pack, so a pack signed by a retired key is valid
only if the portal recorded it while that key was current.

Exit status: 0 valid, 1 invalid, 2 unreadable input (not a zip, no such file, a bad key).
This module must not import Django: a regulator runs it without the portal.

The zip-structure checks (entries, names, bytes outside the entries, the size budget) are in
`audits.verify_zip`; here are the signature, the manifest's hashes, the keys and their periods,
the events' hashes and the command line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from audits.verify_zip import (  # importers take PackUnreadable from here too
    MAX_UNCOMPRESSED_BYTES, PackUnreadable, hash_member, read_small, shown, zip_entries,
)

MANIFEST = "manifest.json"
SIGNATURE = "signature.sig"
RESULTS = "results.json"
PUBLIC_KEY = "public_key.pem"
FORMAT = "provenant-evidence-pack/1"
KEYRING_FORMAT = "provenant-signing-keys/1"
# How far past its key's retirement a pack's times may be and still count as signed in the key's
# period: a pack is recorded seconds after it is signed (the PDF renders first), and the times of
# its inputs come from worker hosts whose clocks may be minutes apart from the web host's.
PERIOD_SLACK = dt.timedelta(minutes=10)


@dataclass
class Result:
    valid: bool
    problems: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # name -> "ok" or the problem, for display
    manifest: dict = field(default_factory=dict)
    key_fingerprint: str = ""  # the key the signature was checked with
    key_note: str = ""  # that key's period, when known ("current since …", "retired on …")


@dataclass(frozen=True)
class TrustedKey:
    """A public key you trust and, when known, the period it was the portal's signing key (the
    portal passes its SigningKey rows, which have the same attributes)."""

    fingerprint: str
    public_key_pem: str
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None
    retired_reason: str = ""


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def load_public_key(pem: bytes | str):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if isinstance(pem, str):
        pem = pem.encode()
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise PackUnreadable(f"The public key is not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise PackUnreadable("The public key is not an Ed25519 key.")
    return key


def fingerprint(public_key) -> str:
    """SHA-256 (hex) of the raw 32-byte Ed25519 public key."""
    from cryptography.hazmat.primitives import serialization

    return hashlib.sha256(public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).hexdigest()


def verify_pack(path, public_key_pem: bytes | str) -> Result:
    """Check a pack against the public key you trust. Raises PackUnreadable when it cannot start."""
    key = load_public_key(public_key_pem)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise PackUnreadable(f"{path}: not a readable zip file ({exc}).") from None
    with archive:
        return _verify_archive(archive, key)


def _verify_archive(archive: zipfile.ZipFile, key) -> Result:
    from cryptography.exceptions import InvalidSignature

    problems: list[str] = []
    status: dict[str, str] = {}

    def problem(name: str, text: str) -> None:
        problems.append(f"{name}: {text}")
        status.setdefault(name, text)

    members, structure = zip_entries(archive)
    for name, text in structure:
        problem(name, text)

    # 1. The signature over the manifest's exact bytes.
    manifest: dict = {}
    manifest_bytes = signature = None
    for name in (MANIFEST, SIGNATURE):
        if name not in members:
            problem(name, "missing from the pack")
    try:
        if MANIFEST in members:
            manifest_bytes = read_small(archive, members[MANIFEST])
        if SIGNATURE in members:
            text = read_small(archive, members[SIGNATURE], 4096).decode("ascii").strip()
            signature = bytes.fromhex(text)
            if len(signature) != 64:
                raise ValueError(f"{len(signature)} bytes, not 64")
    except zipfile.BadZipFile as exc:
        problem(MANIFEST if manifest_bytes is None else SIGNATURE, f"damaged inside the zip ({exc})")
    except (UnicodeDecodeError, ValueError) as exc:
        problem(SIGNATURE, f"is not an Ed25519 signature in hex ({exc})")
        signature = None
    if manifest_bytes is not None and signature is not None:
        try:
            key.verify(signature, manifest_bytes)
            status[SIGNATURE] = "ok"
        except InvalidSignature:
            problems.append(f"{SIGNATURE} does not verify {MANIFEST} with the public key given "
                            f"(fingerprint {fingerprint(key)}): {MANIFEST} or {SIGNATURE} was changed, or another key signed them")
            status.setdefault(MANIFEST, "the signature does not verify it")
            status.setdefault(SIGNATURE, "does not verify the manifest")
    if manifest_bytes is not None:
        try:
            manifest = json.loads(manifest_bytes.decode("utf-8"))
            if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
                raise ValueError("no “files” table")
            if canonical_json(manifest).encode() != manifest_bytes:
                problem(MANIFEST, "is not in canonical form (sorted keys, no spaces)")
        except (UnicodeDecodeError, ValueError) as exc:
            problem(MANIFEST, f"is not a readable manifest ({exc})")
            manifest = {}
        except RecursionError:  # thousands of nested brackets: no manifest is shaped like that
            problem(MANIFEST, "is not a readable manifest (nested too deeply to read)")
            manifest = {}
        else:
            status.setdefault(MANIFEST, "ok")

    # 2. Every listed file, with its SHA-256; nothing unlisted.
    listed = manifest.get("files", {}) if isinstance(manifest.get("files"), dict) else {}
    budget = [MAX_UNCOMPRESSED_BYTES]
    for name, expected in sorted(listed.items()):
        if name in (MANIFEST, SIGNATURE):
            problem(name, "the manifest lists itself or the signature, which it cannot")
            continue
        if name not in members:
            problem(shown(name), "listed in the manifest but missing from the pack")
            continue
        try:
            actual = hash_member(archive, members[name], budget)
        except zipfile.BadZipFile as exc:
            problem(name, f"damaged inside the zip ({exc})")
            continue
        if actual != expected:
            problem(name, f"its SHA-256 is {actual}, the manifest says {shown(str(expected))}: the file was changed")
        else:
            status.setdefault(name, "ok")
    for name in sorted(set(members) - set(listed) - {MANIFEST, SIGNATURE}):
        problem(shown(name), "is in the pack but not listed in the manifest")

    # 3. The copy of the key inside the pack should be the key you trust.
    if PUBLIC_KEY in members and status.get(PUBLIC_KEY) == "ok":
        try:
            packed = load_public_key(read_small(archive, members[PUBLIC_KEY], 64 * 1024))
            if fingerprint(packed) != fingerprint(key):
                problem(PUBLIC_KEY, f"is another key (fingerprint {fingerprint(packed)}) than the one given ({fingerprint(key)})")
        except PackUnreadable as exc:
            problem(PUBLIC_KEY, str(exc))

    # 4. The audit-trail excerpt: each event's hash over its own fields.
    if RESULTS in members and status.get(RESULTS) == "ok":
        for text in _check_events(read_small(archive, members[RESULTS], 512 * 1024**2)):
            problem(RESULTS, text)

    return Result(valid=not problems, problems=problems, files=status, manifest=manifest)


# --------------------------------------------------------------------------- several keys, with their periods


def _when(value) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value
    stamp = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z") if value else None


def _shown_time(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def keyring_json(keys) -> str:
    """The keyring file the portal's key page offers: every key with its period."""
    return json.dumps({"format": KEYRING_FORMAT, "keys": [
        {"fingerprint": k.fingerprint, "public_key_pem": k.public_key_pem, "valid_from": _iso(k.valid_from),
         "valid_until": _iso(k.valid_until), "retired_reason": k.retired_reason or ""} for k in keys]}, indent=2, sort_keys=True) + "\n"


def read_keyring(data: bytes | str) -> list[TrustedKey]:
    """The keys of a keyring file; each public key must match its fingerprint."""
    try:
        parsed = json.loads(data)
        if not isinstance(parsed, dict) or parsed.get("format") != KEYRING_FORMAT or not isinstance(parsed.get("keys"), list):
            raise ValueError(f"not a {KEYRING_FORMAT} file")
        keys = [TrustedKey(fingerprint=str(k["fingerprint"]), public_key_pem=str(k["public_key_pem"]),
                           valid_from=_when(k.get("valid_from")), valid_until=_when(k.get("valid_until")),
                           retired_reason=str(k.get("retired_reason") or "")) for k in parsed["keys"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PackUnreadable(f"The keyring is not readable ({exc}).") from None
    for key in keys:
        if fingerprint(load_public_key(key.public_key_pem)) != key.fingerprint:
            raise PackUnreadable(f"The keyring's key {key.fingerprint} is not the public key stored with it.")
    if not keys:
        raise PackUnreadable("The keyring holds no key.")
    return keys


def _declared_fingerprint(archive: zipfile.ZipFile) -> str | None:
    """The key the pack says signed it: the manifest's signature.public_key_sha256, else the
    fingerprint of the public_key.pem inside. Only chooses the key; the signature decides."""
    names = {info.orig_filename: info for info in archive.infolist()}
    try:
        if MANIFEST in names:
            manifest = json.loads(read_small(archive, names[MANIFEST]).decode("utf-8"))
            declared = (manifest.get("signature") or {}).get("public_key_sha256") if isinstance(manifest, dict) else None
            if isinstance(declared, str) and len(declared) == 64:
                return declared.lower()
        if PUBLIC_KEY in names:
            return fingerprint(load_public_key(read_small(archive, names[PUBLIC_KEY], 64 * 1024)))
    except (PackUnreadable, zipfile.BadZipFile, UnicodeDecodeError, ValueError, AttributeError, RecursionError):
        return None
    return None


def _sha256_of(source) -> str:
    digest = hashlib.sha256()
    if hasattr(source, "read"):
        source.seek(0)
        while chunk := source.read(1 << 20):
            digest.update(chunk)
        source.seek(0)
    else:
        with open(source, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _period_problems(key, manifest: dict, recorded: dt.datetime | None, online: bool) -> list[str]:
    """Why the pack was not signed while `key` was current ([] when it was, or nothing says)."""
    valid_from, valid_until = _when(getattr(key, "valid_from", None)), _when(getattr(key, "valid_until", None))
    short = key.fingerprint[:16] + "…"
    if recorded is not None:
        if valid_from and recorded < valid_from:
            return [f"the portal recorded this pack at {_shown_time(recorded)}, before key {short} became its signing key "
                    f"({_shown_time(valid_from)})"]
        if valid_until and recorded > valid_until + PERIOD_SLACK:
            return [f"the portal recorded this pack at {_shown_time(recorded)}, after key {short} was retired "
                    f"({_shown_time(valid_until)}): a process still held the old key"]
        return []
    if valid_until is None:
        return []
    if online:  # the portal's own check: a retired key is trusted only for the packs recorded in its time
        return [f"key {short} was retired on {_shown_time(valid_until)} and the portal holds no record of this pack: a pack "
                "signed by a retired key is valid only if the portal recorded it while that key was current"]
    try:
        created = _when(manifest.get("created"))
    except (TypeError, ValueError):
        created = None
    if created and created > valid_until + PERIOD_SLACK:
        return [f"its newest input dates from {_shown_time(created)}, after key {short} was retired "
                f"({_shown_time(valid_until)}), so it was signed after the key stopped being valid"]
    return []


def verify_pack_with_keys(path, keys, *, recorded_at=None) -> Result:
    """Check a pack against the key it names among `keys` (objects with fingerprint, public_key_pem
    and, optionally, valid_from, valid_until, retired_reason), then that it was signed while that key
    was current. `recorded_at(sha256_of_zip)` (the portal's records) gives when the pack was built,
    or None; without it, the manifest's "created" bounds the signing time from below. With a single
    key and no period, this is `verify_pack`."""
    keys = list(keys)
    if not keys:
        raise PackUnreadable("No public key to verify with.")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise PackUnreadable(f"{path}: not a readable zip file ({exc}).") from None
    with archive:
        declared = _declared_fingerprint(archive)
        key = next((k for k in keys if k.fingerprint == declared), None)
        if key is None and len(keys) == 1:
            key = keys[0]  # the signature check says whether it is the right one
        if key is None:
            text = (f"the pack names signing key {declared}, which is none of the {len(keys)} keys given" if declared else
                    f"the pack names no signing key (no manifest signature entry, no public_key.pem), and {len(keys)} keys were given")
            return Result(valid=False, problems=[f"{SIGNATURE}: {text}"], files={SIGNATURE: "signed by an unknown key"})
        result = _verify_archive(archive, load_public_key(key.public_key_pem))
    result.key_fingerprint = key.fingerprint
    recorded = None
    if recorded_at is not None:
        recorded = recorded_at(_sha256_of(path))
    problems = _period_problems(key, result.manifest, recorded, online=recorded_at is not None)
    for text in problems:
        result.problems.append(f"{SIGNATURE}: signed outside its key's period: {text}")
        result.files[SIGNATURE] = "signed outside its key's period"
    result.valid = not result.problems
    valid_from, valid_until = _when(getattr(key, "valid_from", None)), _when(getattr(key, "valid_until", None))
    if valid_until:
        reason = getattr(key, "retired_reason", "")
        result.key_note = (f"retired on {_shown_time(valid_until)}" + (f" ({reason})" if reason else "")
                           + (f", current from {_shown_time(valid_from)}" if valid_from else ""))
    elif valid_from:
        result.key_note = f"the current key, since {_shown_time(valid_from)}"
    return result


EVENT_FIELDS = ("sequence", "occurred_at", "actor_id", "actor_username", "action", "object_type", "object_id", "summary",
                "payload", "prev_hash")


def event_hash(event: dict) -> str:
    """The portal's AuditEvent hash: SHA-256 over the canonical JSON of its fields."""
    return hashlib.sha256(canonical_json({k: event[k] for k in EVENT_FIELDS}).encode("utf-8")).hexdigest()


def _check_events(results_bytes: bytes) -> list[str]:
    try:
        results = json.loads(results_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return [f"is not readable JSON ({exc})"]
    except RecursionError:
        return ["is not readable JSON (nested too deeply to read)"]
    trail = results.get("audit_trail") if isinstance(results, dict) else None
    events = trail.get("events", []) if isinstance(trail, dict) else []
    if not isinstance(events, list):
        return ["its audit-trail excerpt is not a list of events"]
    found = []
    for event in events:
        # A sequence is a whole number; a hostile excerpt may put anything there, so show only that.
        number = event.get("sequence") if isinstance(event, dict) and type(event.get("sequence")) is int else "?"
        try:
            if event_hash(event) != event.get("hash"):
                found.append(f"audit event #{number} does not match its own hash")
        except UnicodeEncodeError:
            found.append(f"audit event #{number} holds a lone surrogate, which is not text: it was not written by the portal")
        except (KeyError, TypeError, AttributeError, ValueError):
            found.append(f"audit event #{number} lacks a hashed field")
        except RecursionError:
            found.append(f"audit event #{number} is nested too deeply to hash")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audits.verify", description="Verify a Provenant evidence pack offline.")
    parser.add_argument("pack", type=Path, help="the pack (zip)")
    trusted = parser.add_mutually_exclusive_group(required=True)
    trusted.add_argument("--public-key", type=Path, action="append",
                         help="the portal's public key (PEM), as published on its key page; not the copy inside the pack. "
                              "Repeat it with every key you hold: the one the pack names is used")
    trusted.add_argument("--keyring", type=Path,
                         help="the portal's keyring (JSON from its key page): every key with the period it was valid")
    args = parser.parse_args(argv)
    try:
        if args.keyring:
            result = verify_pack_with_keys(args.pack, read_keyring(args.keyring.read_bytes()))
        elif len(args.public_key) == 1:
            result = verify_pack(args.pack, args.public_key[0].read_bytes())
            result.key_fingerprint = fingerprint(load_public_key(args.public_key[0].read_bytes()))
        else:
            keys = []
            for key_path in args.public_key:
                pem = key_path.read_text()
                keys.append(TrustedKey(fingerprint=fingerprint(load_public_key(pem)), public_key_pem=pem))
            result = verify_pack_with_keys(args.pack, keys)
    except OSError as exc:
        print(f"UNREADABLE: {exc}", file=sys.stderr)
        return 2
    except PackUnreadable as exc:
        print(f"UNREADABLE: {exc}", file=sys.stderr)
        return 2
    if result.valid:
        files = result.manifest.get("files", {})
        note = f" ({result.key_note})" if result.key_note else ""
        print(f"VALID: {args.pack} — signature verifies with key {result.key_fingerprint}{note}; "
              f"{len(files)} files match the manifest (run {result.manifest.get('run')}, created {result.manifest.get('created')}).")
        return 0
    print(f"INVALID: {args.pack}")
    for text in result.problems:
        print(f"  - {text}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
