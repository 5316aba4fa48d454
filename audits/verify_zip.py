"""The zip-structure side of verifying an evidence pack (`audits.verify` checks the signature, the
manifest's hashes and the events, and holds the pack's format): which entries a zip has, by their
stored names, and what is wrong with its structure — a name twice, a directory entry, a name that
is not a plain relative path, bytes outside the entries — and reading members within a size budget.
Like `audits.verify`, standard library only: a regulator runs it without Django.
"""

from __future__ import annotations

import hashlib
import struct
import zipfile

MAX_UNCOMPRESSED_BYTES = 4 * 1024**3  # a pack is tens of MB at most; anything far larger is a zip bomb


class PackUnreadable(Exception):
    """The input is not something verification can start on (not a zip, a bad key)."""


def hash_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: list[int]) -> str:
    digest = hashlib.sha256()
    with archive.open(info) as member:
        while chunk := member.read(1 << 20):
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise PackUnreadable(f"The pack expands to more than {MAX_UNCOMPRESSED_BYTES // 1024**3} GiB: refused.")
            digest.update(chunk)
    return digest.hexdigest()


def read_small(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int = 64 * 1024**2) -> bytes:
    if info.file_size > limit:
        raise PackUnreadable(f"{info.filename} is implausibly large ({info.file_size} bytes).")
    return archive.read(info)


def shown(name: str) -> str:
    """A name as the problem list prints it: control characters (a NUL, a newline) escaped."""
    return name if name.isprintable() else repr(name)


def unsafe_name(name: str) -> str:
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


def bytes_outside_entries(archive: zipfile.ZipFile) -> list[str]:
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
            found.append(f"{shown(info.orig_filename)} has no local header where the central directory points")
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


def zip_entries(archive: zipfile.ZipFile) -> tuple[dict[str, zipfile.ZipInfo], list[tuple[str, str]]]:
    """The zip's file entries by name, and what is wrong with its structure as (name shown, problem)
    pairs, in the order found."""
    found: list[tuple[str, str]] = []
    # Entries go by their name as stored (orig_filename): zipfile cuts a name at a NUL byte, other tools may not.
    members: dict[str, zipfile.ZipInfo] = {}
    seen: set[str] = set()
    for info in archive.infolist():
        name = info.orig_filename
        if name in seen:
            found.append((shown(name), "appears twice in the zip; a reader could be shown either copy"))
        seen.add(name)
        if info.is_dir():
            found.append((shown(name), "is a directory entry; a pack holds only the files its manifest lists"))
        elif (unsafe := unsafe_name(name)):
            found.append((shown(name), f"is not a plain file name ({unsafe}); an unzip tool could write it elsewhere"))
        else:
            members[name] = info
    for text in bytes_outside_entries(archive):
        found.append(("(zip)", text))
    return members, found
