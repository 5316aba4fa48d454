"""Django-side access to the vault: the master key and blob store of the configured data dir."""

from functools import lru_cache
from pathlib import Path

from django.conf import settings

from governance.vault import BlobStore, MasterKey, load_master_key


def data_dir() -> Path:
    return Path(settings.PROVENANT_DATA_DIR)


@lru_cache(maxsize=4)
def _master_key_for(keys_dir: Path, allow_generate: bool) -> MasterKey:
    return load_master_key(keys_dir, allow_generate=allow_generate)


def master_key() -> MasterKey:
    return _master_key_for(data_dir() / "keys", not settings.PRODUCTION)


def blob_store() -> BlobStore:
    return BlobStore(data_dir() / "blobs")


# --------------------------------------------------------------------------- the signing key


@lru_cache(maxsize=4)
def _signing_key_for(keys_dir: Path, allow_generate: bool):
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
    a regulator trusts the published public key, so it must outlive any one host."""
    return _signing_key_for(data_dir() / "keys", not settings.PRODUCTION)


def public_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization

    return signing_key().public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def public_key_fingerprint() -> str:
    """SHA-256 (hex) of the raw 32-byte Ed25519 public key: what the pack and the key page print."""
    import hashlib

    from cryptography.hazmat.primitives import serialization

    raw = signing_key().public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()
