"""Secrets come from the environment or from files named by `*_FILE` variables, never the repo.

In development a missing secret is generated once into `$PROVENANT_DATA_DIR/keys/` with mode
0600; in production a missing secret is a configuration error, because a generated key on a
web host that nobody backed up is data loss waiting to happen.
"""

import os
import secrets
from pathlib import Path


class MissingSecret(RuntimeError):
    pass


def read_secret(name: str, *, keys_dir: Path, generate=None, allow_generate: bool = True) -> str:
    """Return the secret `name` from `$NAME`, the file at `$NAME_FILE`, or a generated dev file."""
    if os.environ.get(name):
        return os.environ[name]
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        return Path(file_path).read_text().strip()
    stored = keys_dir / name.lower()
    if stored.exists():
        return stored.read_text().strip()
    if not allow_generate:
        raise MissingSecret(f"{name} is not set: provide ${name} or ${name}_FILE.")
    value = generate() if generate else secrets.token_urlsafe(50)
    write_private_file(stored, value)
    return value


def write_private_file(path: Path, text: str) -> None:
    """Create `path` with mode 0600 from the start, so the secret is never world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
