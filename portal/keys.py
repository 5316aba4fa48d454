"""Django-side access to the vault: the master key and blob store of the configured data dir."""

from functools import lru_cache
from pathlib import Path

from django.conf import settings

from portal.vault import BlobStore, MasterKey, load_master_key


def data_dir() -> Path:
    return Path(settings.PROVENANT_DATA_DIR)


@lru_cache(maxsize=4)
def _master_key_for(keys_dir: Path, allow_generate: bool) -> MasterKey:
    return load_master_key(keys_dir, allow_generate=allow_generate)


def master_key() -> MasterKey:
    return _master_key_for(data_dir() / "keys", not settings.PRODUCTION)


def blob_store() -> BlobStore:
    return BlobStore(data_dir() / "blobs")
