"""Streaming checks for uploaded datasets: plain Python, no Django, no plaintext on disk.

An upload passes through `EncryptingIngest` chunk by chunk (size limit, binary and UTF-8
checks, SHA-256 of the plaintext, encryption straight into the blob store), then its records
are validated by `count_records` reading the decrypted stream. Memory stays flat whatever the
file size; every refusal says what is wrong and where.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import sys
from dataclasses import dataclass
from typing import BinaryIO, Iterator

JSONL, CSV, TEXT = "jsonl", "csv", "text"
FORMATS = (JSONL, CSV, TEXT)

# A CSV field may hold a whole transcript; the stdlib default of 128 KiB is too small.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class IngestError(ValueError):
    """A refusal with a message for the person who uploaded the file."""


@dataclass(frozen=True)
class IngestResult:
    sha256: str
    size_bytes: int


class EncryptingIngest:
    """Feed plaintext bytes; they are checked, hashed and written to `sink` (an encrypting stream)."""

    def __init__(self, sink: BinaryIO, *, max_bytes: int, filename: str = "the file"):
        self._sink = sink
        self._max_bytes = max_bytes
        self._filename = filename
        self._sha256 = hashlib.sha256()
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._size = 0
        self._lines_before = 0  # newlines seen in earlier chunks, for error positions

    def feed(self, chunk: bytes) -> None:
        if self._size + len(chunk) > self._max_bytes:
            raise IngestError(
                f"{self._filename} is larger than the upload limit of {_human(self._max_bytes)}. "
                "Split it into smaller datasets or ask an administrator to raise "
                "PROVENANT_MAX_DATASET_BYTES."
            )
        nul = chunk.find(b"\x00")
        if nul >= 0:
            raise IngestError(
                f"{self._filename} looks binary: it contains a NUL byte at line "
                f"{self._line_at(chunk, nul)} (byte offset {self._size + nul}). "
                "Upload UTF-8 text: JSONL, CSV or one record per line."
            )
        try:
            self._decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            raise IngestError(
                f"{self._filename} is not valid UTF-8: undecodable byte at line "
                f"{self._line_at(chunk, exc.start)} (byte offset {self._size + exc.start}). "
                "Save it as UTF-8 and upload it again."
            ) from None
        self._sha256.update(chunk)
        self._sink.write(chunk)
        self._size += len(chunk)
        self._lines_before += chunk.count(b"\n")

    def finish(self) -> IngestResult:
        try:
            self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise IngestError(
                f"{self._filename} is not valid UTF-8: it ends in the middle of a character. "
                "Save it as UTF-8 and upload it again."
            ) from None
        if self._size == 0:
            raise IngestError(f"{self._filename} is empty. Upload a file with at least one record.")
        return IngestResult(sha256=self._sha256.hexdigest(), size_bytes=self._size)

    def _line_at(self, chunk: bytes, offset: int) -> int:
        return self._lines_before + chunk.count(b"\n", 0, offset) + 1


def iter_records(text: Iterator[str], fmt: str, *, text_field: str = "text", csv_column: str = "") -> Iterator[tuple[int, str]]:
    """Yield (line number, record text) from a decoded stream, raising IngestError on bad input."""
    if fmt == JSONL:
        yield from _jsonl_records(text, text_field)
    elif fmt == CSV:
        yield from _csv_records(text, csv_column)
    elif fmt == TEXT:
        for number, line in enumerate(text, start=1):
            stripped = line.rstrip("\r\n")
            if stripped.strip():
                yield number, stripped
    else:
        raise IngestError(f"Unknown format {fmt!r}: choose one of {', '.join(FORMATS)}.")


def iter_field_values(text: Iterator[str], fmt: str, field: str) -> Iterator[tuple[int, str]]:
    """Yield (line number, value of `field`) for each record, in the order and with the line
    numbers of `iter_records`: a JSONL field (text or number) or a CSV column."""
    if fmt == CSV:
        yield from _csv_records(text, field)
        return
    if fmt != JSONL:
        raise IngestError(f"A {fmt} file has no fields: only JSONL and CSV records can name “{field}”.")
    for number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        value = _json_line(number, line)  # iter_records has validated the file at upload
        field_value = value.get(field) if isinstance(value, dict) else None
        if isinstance(field_value, bool) or not isinstance(field_value, (str, int)) or str(field_value).strip() == "":
            raise IngestError(f"Line {number} has no “{field}” value (text or a whole number); every record needs one.")
        yield number, str(field_value)


def count_records(text: Iterator[str], fmt: str, *, text_field: str = "text", csv_column: str = "") -> int:
    count = sum(1 for _ in iter_records(text, fmt, text_field=text_field, csv_column=csv_column))
    if count == 0:
        raise IngestError("The file holds no records: every line is blank.")
    return count


def _jsonl_records(text: Iterator[str], text_field: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        value = _json_line(number, line)
        if not isinstance(value, dict):
            raise IngestError(f"Line {number} is a JSON {type(value).__name__}, not an object with a \"{text_field}\" field.")
        if text_field not in value:
            raise IngestError(f"Line {number} has no \"{text_field}\" field. Fields found: {', '.join(sorted(value)) or 'none'}.")
        field = value[text_field]
        if not isinstance(field, str):
            raise IngestError(f"Line {number}: the \"{text_field}\" field is a {type(field).__name__}, not text.")
        try:
            field.encode("utf-8")
        except UnicodeEncodeError as exc:  # a "\ud800" escape: no tokenizer or file can take it
            raise IngestError(
                f"Line {number}: the \"{text_field}\" field holds a lone surrogate (\\u{ord(field[exc.start]):04x}), "
                "which is not a character. Write each character whole (a complete surrogate pair, or the character itself)."
            ) from None
        yield number, field


def _json_line(number: int, line: str):
    """One JSONL line, decoded, or a refusal that names the line."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise IngestError(f"Line {number} is not valid JSON: {exc.msg} (column {exc.colno}).") from None
    except RecursionError:  # thousands of nested brackets exhaust the decoder's recursion limit
        raise IngestError(f"Line {number} is nested too deeply to read: a record is one object of text fields.") from None
    except ValueError:  # an integer longer than Python converts (sys.get_int_max_str_digits)
        raise IngestError(
            f"Line {number} holds a number of more than {sys.get_int_max_str_digits()} digits, too long to read. "
            "Write it as text (in quotes) or remove it."
        ) from None


def _csv_records(text: Iterator[str], column: str) -> Iterator[tuple[int, str]]:
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        raise IngestError("The CSV file has no header row.") from None
    except csv.Error as exc:
        raise IngestError(f"Line 1 is not valid CSV: {exc}.") from None
    header = [name.strip() for name in header]
    if column not in header:
        raise IngestError(f"The CSV header has no column \"{column}\". Columns found: {', '.join(header)}.")
    index = header.index(column)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise IngestError(f"Line {reader.line_num} is not valid CSV: {exc}.") from None
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise IngestError(f"Line {reader.line_num} has {len(row)} fields; the header has {len(header)}.")
        yield reader.line_num, row[index]


def _human(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
