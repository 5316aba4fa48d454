"""Envelope encryption for data at rest, on Google Tink (no Django import here).

Each protected object (a dataset, a signed DPA) gets its own streaming data key
(AES256-GCM-HKDF, 1 MB segments), which is stored only wrapped by the master key
(AES256-GCM) with the object's identity as associated data. Destroying the wrapped data key
makes the ciphertext unrecoverable even if the blob survives in a backup: crypto-shredding.

The master key is a Tink keyset that may hold several versions: the primary one encrypts, every
ENABLED one decrypts, a DISABLED one decrypts nothing. Rotation (`governance.key_rotation`) adds a
version as primary, re-wraps every stored value under it, then disables the old versions; the
keyset operations it needs are here (`with_new_primary`, `with_only_primary_enabled`, `rewrap`,
`reseal`, `replace_private_file`). Python Tink has no KeysetManager, so they edit the keyset proto
(`tink_pb2.Keyset`) and let Tink parse and validate the result.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import tink
from tink import aead, secret_key_access, streaming_aead
from tink.core import crypto_format
from tink.proto import tink_pb2

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
    """The key that wraps every data key. Loaded from a Tink JSON keyset, which may hold several
    versions (see the module's docstring)."""

    def __init__(self, handle: tink.KeysetHandle):
        self._handle = handle
        self._aead = handle.primitive(aead.Aead)

    @classmethod
    def from_json(cls, keyset_json: str) -> "MasterKey":
        return cls(tink.json_proto_keyset_format.parse(keyset_json, secret_key_access.TOKEN))

    @staticmethod
    def generate_json() -> str:
        handle = tink.new_keyset_handle(_MASTER_KEY_TEMPLATE)
        return tink.json_proto_keyset_format.serialize(handle, secret_key_access.TOKEN)

    def to_json(self) -> str:
        return tink.json_proto_keyset_format.serialize(self._handle, secret_key_access.TOKEN)

    # ----------------------------------------------------------------- versions (no key material)

    @property
    def primary_key_id(self) -> int:
        return self._handle.keyset_info().primary_key_id

    def key_versions(self) -> dict[int, str]:
        """Each version's Tink key id and status ("ENABLED", "DISABLED", "DESTROYED")."""
        return {info.key_id: tink_pb2.KeyStatusType.Name(info.status) for info in self._handle.keyset_info().key_info}

    def enabled_key_ids(self) -> list[int]:
        return [key_id for key_id, status in self.key_versions().items() if status == "ENABLED"]

    def _primary_prefix(self) -> bytes:
        info = self._handle.keyset_info()
        primary = next(k for k in info.key_info if k.key_id == info.primary_key_id)
        return crypto_format.output_prefix(primary)  # reads only the key id and prefix type

    def under_primary(self, stored: bytes | None, *, wrapped: bool) -> bool:
        """Whether a stored value (a wrapped data key, or a sealed value) is encrypted under the
        primary version, read from the Tink output prefix every ciphertext starts with. A value
        that cannot be parsed counts as not under it (re-wrapping it will say what is wrong)."""
        if not stored:
            return False
        ciphertext = bytes(stored)
        if wrapped:
            try:
                ciphertext = tink_pb2.EncryptedKeyset.FromString(ciphertext).encrypted_keyset
            except Exception:  # protobuf's DecodeError: not an encrypted keyset at all
                return False
        prefix = self._primary_prefix()
        return bool(prefix) and ciphertext.startswith(prefix)

    def _keyset_proto(self) -> tink_pb2.Keyset:
        return tink_pb2.Keyset.FromString(tink.proto_keyset_format.serialize(self._handle, secret_key_access.TOKEN))

    @staticmethod
    def _from_proto(keyset: tink_pb2.Keyset) -> "MasterKey":
        # parse() validates: one ENABLED primary, every key well formed.
        return MasterKey(tink.proto_keyset_format.parse(keyset.SerializeToString(), secret_key_access.TOKEN))

    def with_new_primary(self) -> "MasterKey":
        """This keyset plus a fresh AES256-GCM version, made primary; every old version stays as it
        is (ENABLED ones still decrypt), so both read the data until it is re-wrapped."""
        keyset = self._keyset_proto()
        taken = {key.key_id for key in keyset.key}
        while True:  # Tink draws the id at random; a clash with an old version is unlikely but possible
            fresh = tink_pb2.Keyset.FromString(tink.proto_keyset_format.serialize(
                tink.new_keyset_handle(_MASTER_KEY_TEMPLATE), secret_key_access.TOKEN)).key[0]
            if fresh.key_id not in taken:
                break
        keyset.key.append(fresh)
        keyset.primary_key_id = fresh.key_id
        return self._from_proto(keyset)

    def with_only_primary_enabled(self) -> "MasterKey":
        """This keyset with every ENABLED version but the primary set to DISABLED: still in the
        file (an operator could re-enable one to recover a value written under it by a process
        that had not reloaded), but Tink will not decrypt with it."""
        keyset = self._keyset_proto()
        for key in keyset.key:
            if key.key_id != keyset.primary_key_id and key.status == tink_pb2.ENABLED:
                key.status = tink_pb2.DISABLED
        return self._from_proto(keyset)

    # ----------------------------------------------------------------- wrapping and sealing

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

    def _unwrap_handle(self, wrapped: bytes | None, context: str) -> tink.KeysetHandle:
        if not wrapped:
            raise KeyUnavailable(f"No data key is stored for {context}: it was shredded.")
        try:
            return tink.proto_keyset_format.parse_encrypted(bytes(wrapped), self._aead, context.encode())
        except tink.TinkError as exc:
            raise WrongMasterKey(f"The data key for {context} cannot be unwrapped: {MASTER_KEY_MISMATCH}, "
                                 f"or the stored key was altered ({exc}).") from exc

    def unwrap(self, wrapped: bytes | None, context: str) -> "DataKey":
        return DataKey(self._unwrap_handle(wrapped, context), context)

    def rewrap(self, wrapped: bytes | None, context: str) -> bytes:
        """The same data key, wrapped again under the primary version (any ENABLED one may open it)."""
        handle = self._unwrap_handle(wrapped, context)
        return tink.proto_keyset_format.serialize_encrypted(handle, self._aead, context.encode())

    def reseal(self, sealed: bytes | None, context: str) -> bytes:
        """The same sealed value, encrypted again under the primary version."""
        return self.seal(self.open(sealed, context), context)


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


@dataclass(frozen=True)
class KeySource:
    """Where a key is read from: the variable itself (`inline`), the file its `_FILE` variable
    names, or the development file in the keys folder. Only a file can be rotated in place."""

    variable: str
    inline: bool
    path: Path | None

    def describe(self) -> str:
        if self.inline:
            return f"${self.variable} (inline)"
        return str(self.path)


def key_source(variable: str, dev_path: Path) -> KeySource:
    if os.environ.get(variable):
        return KeySource(variable, True, None)
    if os.environ.get(f"{variable}_FILE"):
        return KeySource(variable, False, Path(os.environ[f"{variable}_FILE"]))
    return KeySource(variable, False, dev_path)


def master_key_source(keys_dir: Path) -> KeySource:
    return key_source("PROVENANT_MASTER_KEY", keys_dir / "master-keyset.json")


def load_master_key(keys_dir: Path, *, allow_generate: bool) -> MasterKey:
    """`$PROVENANT_MASTER_KEY` or `$PROVENANT_MASTER_KEY_FILE`, else a dev key in `keys_dir`."""
    source = master_key_source(keys_dir)
    if source.inline:
        return MasterKey.from_json(os.environ["PROVENANT_MASTER_KEY"])
    path = source.path
    if not path.exists() and path == keys_dir / "master-keyset.json":
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


def replace_private_file(path: Path, text: str) -> None:
    """Replace a key file atomically: write a new file (mode 0600 from its creation) beside it,
    fsync it, rename it over the old one, fsync the folder. A reader sees the old file or the new
    one, never half of either. A symlinked path has its target replaced, so the link stays."""
    target = Path(os.path.realpath(path))
    folder = target.parent
    partial = folder / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    folder_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(folder_fd)
    finally:
        os.close(folder_fd)


def writable_problem(path: Path) -> str:
    """Why this process cannot replace the key file at `path` ("" when it can)."""
    target = Path(os.path.realpath(path))
    if not target.exists():
        return f"{path} does not exist"
    if not os.access(target.parent, os.W_OK | os.X_OK):
        return (f"the folder {target.parent} is not writable by this process (a read-only secret mount?), so the new "
                "key cannot be written beside the old one and renamed over it")
    return ""


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
