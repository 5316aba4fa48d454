"""What the embedded model server (serving.engine.model_server) serves, from the database: a
deployment's name resolves to its run's base model, its adapter decrypted into a private scratch
directory (removed as soon as the weights are loaded, and the whole root at exit), its unsealed
watermark key and its output cap. Runs in the Django-aware process `manage.py run_model_server`.

The scratch root is `$PROVENANT_DATA_DIR/serving-scratch/<pid>`, not the runs' scratch: the
worker's start-up sweep removes any run scratch it does not know, and a directory named after a
process that is gone is swept here at the next start instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.db import connection

from serving.models import Deployment, DeploymentState
from training.models import ArtifactKind


def scratch_root() -> Path:
    return Path(settings.PROVENANT_DATA_DIR) / "serving-scratch"


def sweep_stale_scratch() -> list[str]:
    """Remove the scratch of model servers that are no longer running (killed before their exit)."""
    root = scratch_root()
    removed = []
    if root.exists():
        for entry in root.iterdir():
            alive = entry.name.isdigit() and _pid_alive(int(entry.name))
            if entry.is_dir() and not alive:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _done_with_database() -> None:
    """The model server answers each request in a thread of its own, each with its own database
    connection: close it when done rather than leave one open per request served. (Inside a
    transaction — a test — the connection is the caller's and stays.)"""
    if not connection.in_atomic_block:
        connection.close()


class DeploymentResolver:
    """`resolve(name)` for the model server; `close()` removes this process's scratch root."""

    def __init__(self):
        self.root = scratch_root() / str(os.getpid())
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)

    def names(self) -> list[str]:
        try:
            return list(Deployment.objects.filter(state=DeploymentState.ACTIVE).order_by("name").values_list("name", flat=True))
        finally:
            _done_with_database()

    def __call__(self, name: str):
        try:
            return self._spec(name)
        finally:
            _done_with_database()

    def _spec(self, name: str):
        from serving.actions import watermark_key_of
        from serving.engine.model_server import ModelSpec
        from serving.engine.watermark import WatermarkKey

        deployment = Deployment.objects.select_related("run__base_model").filter(name=name, state=DeploymentState.ACTIVE).first()
        if deployment is None:
            return None
        adapter_dir = Path(tempfile.mkdtemp(prefix=f"{deployment.pk}-", dir=self.root))
        try:
            for artifact in deployment.run.artifacts.filter(kind=ArtifactKind.ADAPTER, deleted_at__isnull=True):
                target = adapter_dir / artifact.name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(artifact.read_bytes())
            key = watermark_key_of(deployment)
        except BaseException:
            shutil.rmtree(adapter_dir, ignore_errors=True)
            raise
        return ModelSpec(base_dir=Path(deployment.run.base_model.location), adapter_dir=adapter_dir,
                         watermark_key=WatermarkKey(key) if key else None, max_new_tokens_cap=deployment.max_output_tokens,
                         cleanup=lambda: shutil.rmtree(adapter_dir, ignore_errors=True))

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
