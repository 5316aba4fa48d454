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

Exit status: 0 valid, 1 invalid, 2 unreadable input (not a zip, no such file, a bad key).
This module must not import Django: a regulator runs it without the portal.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = "manifest.json"
SIGNATURE = "signature.sig"
RESULTS = "results.json"
PUBLIC_KEY = "public_key.pem"
FORMAT = "provenant-evidence-pack/1"
MAX_UNCOMPRESSED_BYTES = 4 * 1024**3  # a pack is tens of MB at most; anything far larger is a zip bomb


class PackUnreadable(Exception):
    """The input is not something verification can start on (not a zip, a bad key)."""


@dataclass
class Result:
    valid: bool
    problems: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # name -> "ok" or the problem, for display
    manifest: dict = field(default_factory=dict)


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


def _hash_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: list[int]) -> str:
    digest = hashlib.sha256()
    with archive.open(info) as member:
        while chunk := member.read(1 << 20):
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise PackUnreadable(f"The pack expands to more than {MAX_UNCOMPRESSED_BYTES // 1024**3} GiB: refused.")
            digest.update(chunk)
    return digest.hexdigest()


def _read_small(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int = 64 * 1024**2) -> bytes:
    if info.file_size > limit:
        raise PackUnreadable(f"{info.filename} is implausibly large ({info.file_size} bytes).")
    return archive.read(info)


def _shown(name: str) -> str:
    """A name as the problem list prints it: control characters (a NUL, a newline) escaped."""
    return name if name.isprintable() else repr(name)


def _unsafe_name(name: str) -> str:
    """Why an entry's name is not a plain relative path, or "" when it is."""
    if "\0" in name or not name.isprintable():
        return "it holds a control character"
    if name.startswith(("/", "\\")) or (name[:1].isalpha() and name[1:2] == ":"):
        return "an absolute path"
    if "\\" in name:
        return "a backslash, a folder separator elsewhere"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "an empty, '.' or '..' path component"
    return ""


def _bytes_outside_entries(archive: zipfile.ZipFile) -> list[str]:
    """The entries' local records must tile the zip from its first byte to the central directory,
    and the end record must close the file with no comment: bytes anywhere else (a prefix, a
    local entry the central directory omits, a trailer) are content that escapes the manifest."""
    raw = archive.fp
    found = []
    position = 0
    for info in sorted(archive.infolist(), key=lambda i: i.header_offset):
        if info.header_offset != position:
            what = "before the first entry" if position == 0 else "between two entries"
            found.append(f"{abs(info.header_offset - position)} bytes {what} belong to no listed entry (at offset {position})")
        raw.seek(info.header_offset)
        header = raw.read(zipfile.sizeFileHeader)
        if len(header) != zipfile.sizeFileHeader or header[:4] != zipfile.stringFileHeader:
            found.append(f"{_shown(info.orig_filename)} has no local header where the central directory points")
            return found
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        position = info.header_offset + zipfile.sizeFileHeader + name_length + extra_length + info.compress_size
        if info.flag_bits & 0x08:  # a data descriptor follows the data: optional signature, CRC, two sizes of 4 or 8 bytes
            raw.seek(position)
            signed = raw.read(4) == b"PK\x07\x08"
            following = min([i.header_offset for i in archive.infolist() if i.header_offset > info.header_offset],
                            default=archive.start_dir)
            sizes = [4 * signed + 4 + 2 * width for width in (4, 8)]
            position += next((size for size in sizes if position + size == following), sizes[0])
    if position != archive.start_dir:
        found.append(f"{abs(archive.start_dir - position)} bytes before the central directory belong to no listed entry")
    if archive.comment:
        found.append(f"the zip carries a comment of {len(archive.comment)} bytes, which no manifest covers")
    raw.seek(0, 2)
    end = raw.tell()
    raw.seek(max(end - zipfile.sizeEndCentDir, 0))
    if raw.read(4) != zipfile.stringEndArchive:
        found.append("bytes follow the zip's end record")
    return found


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

    # Entries go by their name as stored (orig_filename): zipfile cuts a name at a NUL byte, other tools may not.
    members: dict[str, zipfile.ZipInfo] = {}
    seen: set[str] = set()
    for info in archive.infolist():
        name = info.orig_filename
        if name in seen:
            problem(_shown(name), "appears twice in the zip; a reader could be shown either copy")
        seen.add(name)
        if info.is_dir():
            problem(_shown(name), "is a directory entry; a pack holds only the files its manifest lists")
        elif (unsafe := _unsafe_name(name)):
            problem(_shown(name), f"is not a plain file name ({unsafe}); an unzip tool could write it elsewhere")
        else:
            members[name] = info
    for text in _bytes_outside_entries(archive):
        problem("(zip)", text)

    # 1. The signature over the manifest's exact bytes.
    manifest: dict = {}
    manifest_bytes = signature = None
    for name in (MANIFEST, SIGNATURE):
        if name not in members:
            problem(name, "missing from the pack")
    try:
        if MANIFEST in members:
            manifest_bytes = _read_small(archive, members[MANIFEST])
        if SIGNATURE in members:
            text = _read_small(archive, members[SIGNATURE], 4096).decode("ascii").strip()
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
            problem(_shown(name), "listed in the manifest but missing from the pack")
            continue
        try:
            actual = _hash_member(archive, members[name], budget)
        except zipfile.BadZipFile as exc:
            problem(name, f"damaged inside the zip ({exc})")
            continue
        if actual != expected:
            problem(name, f"its SHA-256 is {actual}, the manifest says {_shown(str(expected))}: the file was changed")
        else:
            status.setdefault(name, "ok")
    for name in sorted(set(members) - set(listed) - {MANIFEST, SIGNATURE}):
        problem(_shown(name), "is in the pack but not listed in the manifest")

    # 3. The copy of the key inside the pack should be the key you trust.
    if PUBLIC_KEY in members and status.get(PUBLIC_KEY) == "ok":
        try:
            packed = load_public_key(_read_small(archive, members[PUBLIC_KEY], 64 * 1024))
            if fingerprint(packed) != fingerprint(key):
                problem(PUBLIC_KEY, f"is another key (fingerprint {fingerprint(packed)}) than the one given ({fingerprint(key)})")
        except PackUnreadable as exc:
            problem(PUBLIC_KEY, str(exc))

    # 4. The audit-trail excerpt: each event's hash over its own fields.
    if RESULTS in members and status.get(RESULTS) == "ok":
        for text in _check_events(_read_small(archive, members[RESULTS], 512 * 1024**2)):
            problem(RESULTS, text)

    return Result(valid=not problems, problems=problems, files=status, manifest=manifest)


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
    parser.add_argument("--public-key", type=Path, required=True,
                        help="the portal's public key (PEM), as published on its key page; not the copy inside the pack")
    args = parser.parse_args(argv)
    try:
        result = verify_pack(args.pack, args.public_key.read_bytes())
    except OSError as exc:
        print(f"UNREADABLE: {exc}", file=sys.stderr)
        return 2
    except PackUnreadable as exc:
        print(f"UNREADABLE: {exc}", file=sys.stderr)
        return 2
    if result.valid:
        files = result.manifest.get("files", {})
        print(f"VALID: {args.pack} — signature verifies with key {fingerprint(load_public_key(args.public_key.read_bytes()))}; "
              f"{len(files)} files match the manifest (run {result.manifest.get('run')}, created {result.manifest.get('created')}).")
        return 0
    print(f"INVALID: {args.pack}")
    for text in result.problems:
        print(f"  - {text}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
