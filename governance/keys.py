"""Django-side access to the vault: the master key and blob store of the configured data dir,
and the Ed25519 key that signs evidence packs.

Both keys are read from a file (`$…_FILE`, or the development file in `$PROVENANT_DATA_DIR/keys/`)
or from the variable itself. A key read from a file is reloaded when the file changes (its inode,
modification time or size), checked on every call with one `stat`: after a rotation
(`governance.key_rotation`, `governance.signing_keys`) every web and worker process that reads the
same file picks up the new keyset at its next use, without a restart. A process on another host
with its own copy of the file, or started with the key inline in the environment, keeps the key
it has until it is given the new one and restarted.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from django.conf import settings

from governance.vault import BlobStore, KeySource, MasterKey, key_source, load_master_key, master_key_source

_lock = threading.Lock()
_loaded: dict[tuple, tuple] = {}  # (what, source, allow_generate) -> (file stamp, key)


def data_dir() -> Path:
    return Path(settings.PROVENANT_DATA_DIR)


def keys_dir() -> Path:
    return data_dir() / "keys"


def _stamp(path: Path | None):
    """What changes when a key file is replaced (a rename gives a new inode) or rewritten."""
    if path is None:
        return "inline"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _cached(what: str, source: KeySource, allow_generate: bool, load):
    """The key `load()` reads, loaded again only when its file changed. The stamp is taken before
    reading, so a file replaced during the read is read again at the next call."""
    cache_key = (what, source.describe() if not source.inline else os.environ.get(source.variable), allow_generate)
    stamp = _stamp(source.path)
    with _lock:
        hit = _loaded.get(cache_key)
        if hit is not None and stamp is not None and hit[0] == stamp:
            return hit[1]
    value = load()
    if stamp is None:  # the dev file did not exist yet: load() generated it
        stamp = _stamp(source.path)
    with _lock:
        _loaded[cache_key] = (stamp, value)
    return value


def forget_loaded_keys() -> None:
    """Drop every cached key (the next use reads the files again)."""
    with _lock:
        _loaded.clear()


def master_key_file_source() -> KeySource:
    return master_key_source(keys_dir())


def master_key() -> MasterKey:
    allow_generate = not settings.PRODUCTION
    return _cached("master", master_key_file_source(), allow_generate,
                   lambda: load_master_key(keys_dir(), allow_generate=allow_generate))


def blob_store() -> BlobStore:
    return BlobStore(data_dir() / "blobs")


# --------------------------------------------------------------------------- the signing key


def signing_key_source() -> KeySource:
    return key_source("PROVENANT_SIGNING_KEY", keys_dir() / "provenant_signing_key")


def _load_signing_key(keys_dir: Path, allow_generate: bool):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from governance.secrets import read_secret

    def generate() -> str:
        return Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()

    try:
        pem = read_secret("PROVENANT_SIGNING_KEY", keys_dir=keys_dir, generate=generate, allow_generate=allow_generate)
    except FileExistsError:  # another process generated it first: use theirs
        pem = read_secret("PROVENANT_SIGNING_KEY", keys_dir=keys_dir, allow_generate=False)
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("PROVENANT_SIGNING_KEY must be an Ed25519 private key (PKCS#8 PEM).")
    return key


def signing_key():
    """The portal's Ed25519 key that signs evidence packs: `$PROVENANT_SIGNING_KEY` (PKCS#8 PEM),
    the file at `$PROVENANT_SIGNING_KEY_FILE`, or in development a key generated once into
    `$PROVENANT_DATA_DIR/keys/provenant_signing_key` (0600). Production refuses to generate one:
    a regulator trusts the published public key, so it must outlive any one host. Past keys, with
    the periods they were valid, are in `governance.models.SigningKey`."""
    allow_generate = not settings.PRODUCTION
    return _cached("signing", signing_key_source(), allow_generate, lambda: _load_signing_key(keys_dir(), allow_generate))


def public_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization

    return signing_key().public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def fingerprint_of(public_key) -> str:
    """SHA-256 (hex) of the raw 32-byte Ed25519 public key."""
    import hashlib

    from cryptography.hazmat.primitives import serialization

    return hashlib.sha256(public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).hexdigest()


def public_key_fingerprint() -> str:
    """SHA-256 (hex) of the raw 32-byte Ed25519 public key: what the pack and the key page print."""
    return fingerprint_of(signing_key().public_key())
