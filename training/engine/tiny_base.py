"""A tiny GPT-2-style base model and tokenizer, built offline from a seed (no model hub).

Fast tests and benchmarks need a real causal LM; downloading one is not possible on training
hosts without egress. This trains a byte-level BPE tokenizer on a generated corpus and a small
GPT-2 on the same corpus, then saves both in Hugging Face format, loadable with
`AutoModelForCausalLM.from_pretrained` like any local model directory.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable

_SUBJECTS = ["my order", "the invoice", "the delivery", "my account", "the refund", "the subscription", "the parcel",
             "the payment", "my password", "the warranty", "the replacement", "the booking"]
_PROBLEMS = ["has not arrived", "was charged twice", "is missing an item", "cannot be found", "arrived damaged",
             "was cancelled by mistake", "shows the wrong address", "is still pending", "expired yesterday"]
_REPLIES = ["We are sorry about that and have opened a case.", "Thank you, a replacement is on its way.",
            "The refund will reach your card within five days.", "Please reply with a photo of the damage.",
            "I have updated the address on file.", "Your account has been unlocked."]


def generate_corpus(lines: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(lines):
        out.append(f"Customer: Hello, {rng.choice(_SUBJECTS)} {rng.choice(_PROBLEMS)}. "
                   f"Agent: {rng.choice(_REPLIES)} Case {rng.randint(100, 999)}.")
    return out


def build_tiny_base(out_dir: Path, *, seed: int = 0, vocab_size: int = 512, n_layer: int = 2, n_embd: int = 64,
                    n_head: int = 2, n_positions: int = 128, train_steps: int = 0, corpus_lines: int = 4000,
                    progress: Callable[[int, int], None] | None = None) -> Path:
    """Build and save the tokenizer and model into `out_dir`; pretrain for `train_steps` steps
    (0: random weights, enough for gradient and accounting tests)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = generate_corpus(corpus_lines, seed)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=["<|endoftext|>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                        pad_token="<|endoftext|>", unk_token="<|endoftext|>", model_max_length=n_positions)
    tokenizer.save_pretrained(out_dir)

    torch.manual_seed(seed)
    # No dropout: a tiny model trained briefly gains nothing from it, and without it a forward
    # pass is deterministic, which the gradient and audit tests rely on.
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=n_positions, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    model = GPT2LMHeadModel(config)
    if train_steps:
        _pretrain(model, tokenizer, corpus, train_steps, seed, progress)
    model.save_pretrained(out_dir)
    return out_dir


def _pretrain(model, tokenizer, corpus, steps, seed, progress):
    import torch

    rng = random.Random(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        batch = tokenizer(rng.sample(corpus, 32), return_tensors="pt", padding=True, truncation=True, max_length=64)
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if progress:
            progress(step + 1, steps)
    model.eval()
