"""Envelope encryption for data at rest, on Google Tink (no Django import here).

Each protected object (a dataset, a signed DPA) gets its own streaming data key
(AES256-GCM-HKDF, 1 MB segments), which is stored only wrapped by the master key
(AES256-GCM) with the object's identity as associated data. Destroying the wrapped data key
makes the ciphertext unrecoverable even if the blob survives in a backup: crypto-shredding.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import BinaryIO, Iterator

import tink
from tink import aead, secret_key_access, streaming_aead

aead.register()
streaming_aead.register()

_DATA_KEY_TEMPLATE = streaming_aead.streaming_aead_key_templates.AES256_GCM_HKDF_1MB
_MASTER_KEY_TEMPLATE = aead.aead_key_templates.AES256_GCM


class KeyUnavailable(Exception):
    """The data key is gone (shredded) or does not belong to this object."""


class WrongMasterKey(KeyUnavailable):
    """A stored key exists but this process's master key cannot open it: the process runs with
    another master key than the one that wrapped it (or the stored bytes were altered)."""


class BlobDamaged(tink.TinkError):
    """Ciphertext that fails authentication while it is read: changed, cut short or swapped on
    disk. A TinkError still, for callers that catch Tink's own."""


# The one explanation of a master-key mismatch, for logs and for the pages that show a failure.
MASTER_KEY_MISMATCH = ("this process's master key is not the one the data was encrypted under: every web and worker "
                       "process needs the same master key (PROVENANT_MASTER_KEY or PROVENANT_MASTER_KEY_FILE)")


class MasterKey:
    """The key that wraps every data key. Loaded from a Tink JSON keyset."""

    def __init__(self, handle: tink.KeysetHandle):
        self._aead = handle.primitive(aead.Aead)

    @classmethod
    def from_json(cls, keyset_json: str) -> "MasterKey":
        return cls(tink.json_proto_keyset_format.parse(keyset_json, secret_key_access.TOKEN))

    @staticmethod
    def generate_json() -> str:
        handle = tink.new_keyset_handle(_MASTER_KEY_TEMPLATE)
        return tink.json_proto_keyset_format.serialize(handle, secret_key_access.TOKEN)

    def new_data_key(self, context: str) -> tuple["DataKey", bytes]:
        """A fresh data key for the object named by `context`, and its wrapped form to store."""
        handle = tink.new_keyset_handle(_DATA_KEY_TEMPLATE)
        wrapped = tink.proto_keyset_format.serialize_encrypted(handle, self._aead, context.encode())
        return DataKey(handle, context), wrapped

    def seal(self, plaintext: bytes, context: str) -> bytes:
        """Encrypt a small secret (a pseudonymisation key, a review snippet) for `context` only."""
        return self._aead.encrypt(plaintext, context.encode())

    def open(self, sealed: bytes | None, context: str) -> bytes:
        if not sealed:
            raise KeyUnavailable(f"Nothing sealed is stored for {context}.")
        try:
            return self._aead.decrypt(bytes(sealed), context.encode())
        except tink.TinkError as exc:
            raise WrongMasterKey(f"Cannot open the sealed value for {context}: {MASTER_KEY_MISMATCH}, "
                                 f"or the sealed value was altered ({exc}).") from exc

    def unwrap(self, wrapped: bytes | None, context: str) -> "DataKey":
        if not wrapped:
            raise KeyUnavailable(f"No data key is stored for {context}: it was shredded.")
        try:
            handle = tink.proto_keyset_format.parse_encrypted(bytes(wrapped), self._aead, context.encode())
        except tink.TinkError as exc:
            raise WrongMasterKey(f"The data key for {context} cannot be unwrapped: {MASTER_KEY_MISMATCH}, "
                                 f"or the stored key was altered ({exc}).") from exc
        return DataKey(handle, context)


class DataKey:
    def __init__(self, handle: tink.KeysetHandle, context: str):
        self._primitive = handle.primitive(streaming_aead.StreamingAead)
        self._associated_data = context.encode()

    @contextlib.contextmanager
    def encrypting(self, destination: BinaryIO) -> Iterator[BinaryIO]:
        with self._primitive.new_encrypting_stream(destination, self._associated_data) as stream:
            yield stream

    @contextlib.contextmanager
    def decrypting(self, source: BinaryIO) -> Iterator[BinaryIO]:
        """Tink authenticates each segment as it is read, so damage shows up as an error raised by a
        read inside this block: it leaves the block as BlobDamaged, which says what happened."""
        try:
            with self._primitive.new_decrypting_stream(source, self._associated_data) as stream:
                yield stream
        except BlobDamaged:
            raise
        except tink.TinkError as exc:
            raise BlobDamaged(f"The encrypted file of {self._associated_data.decode()} is damaged: it failed authentication "
                              f"({exc}), so its bytes were changed or cut short on disk. Restore it from a backup or "
                              "upload the data again.") from exc


def load_master_key(keys_dir: Path, *, allow_generate: bool) -> MasterKey:
    """`$PROVENANT_MASTER_KEY` or `$PROVENANT_MASTER_KEY_FILE`, else a dev key in `keys_dir`."""
    if os.environ.get("PROVENANT_MASTER_KEY"):
        return MasterKey.from_json(os.environ["PROVENANT_MASTER_KEY"])
    if os.environ.get("PROVENANT_MASTER_KEY_FILE"):
        return MasterKey.from_json(Path(os.environ["PROVENANT_MASTER_KEY_FILE"]).read_text())
    path = keys_dir / "master-keyset.json"
    if not path.exists():
        if not allow_generate:
            raise KeyUnavailable(
                "No master key: set PROVENANT_MASTER_KEY_FILE to a Tink AES256-GCM JSON keyset."
            )
        from governance.secrets import write_private_file

        try:
            write_private_file(path, MasterKey.generate_json())
        except FileExistsError:  # another process generated it first
            pass
    return MasterKey.from_json(path.read_text())


class BlobStore:
    """Ciphertext files under one folder, named by a UUID, written atomically."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path_for(self, blob_id: str) -> Path:
        return self.root / blob_id[:2] / f"{blob_id}.tink"

    @contextlib.contextmanager
    def writing(self, blob_id: str) -> Iterator[BinaryIO]:
        """Yield a file to write ciphertext into; it appears under its name only on success."""
        final = self.path_for(blob_id)
        final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = final.with_suffix(".partial")
        try:
            with open(partial, "wb") as handle:
                yield handle  # Tink's encrypting stream closes it when it is done
            fd = os.open(partial, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(partial, final)
        finally:
            partial.unlink(missing_ok=True)

    def open(self, blob_id: str) -> BinaryIO:
        return open(self.path_for(blob_id), "rb")

    def delete(self, blob_id: str) -> None:
        self.path_for(blob_id).unlink(missing_ok=True)


def iter_plaintext(stream: BinaryIO, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := stream.read(chunk_size):
        yield chunk


def text_lines(binary_stream: BinaryIO) -> io.TextIOWrapper:
    return io.TextIOWrapper(binary_stream, encoding="utf-8", newline="")
