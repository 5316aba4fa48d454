"""Facts about a model directory: architecture, parameter count, SHA-256 of its weight files."""

from __future__ import annotations

import hashlib
from pathlib import Path

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def weight_hashes(directory: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(Path(directory).iterdir()) if p.suffix in WEIGHT_SUFFIXES}


def describe_model(directory: Path) -> dict:
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory)
    return {"architecture": config.model_type, "parameter_count": sum(p.numel() for p in model.parameters()),
            "weight_hashes": weight_hashes(directory)}
