"""Canary exposure (Carlini et al. 2019, "The Secret Sharer"). No Django here.

exposure = log2 |R| − log2 rank, where rank is the position of the true secret among the
candidates R (the true one included), ordered by the model's log-perplexity of prefix + secret.
Rank 1 among 10^4 candidates gives log2(10^4) = 13.29 bits, the maximum for that many.
Candidates are scored in batches: one forward pass per batch, padding masked out.
"""

from __future__ import annotations

import math
import secrets as _secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class CanaryExposure:
    rank: int
    candidates: int
    exposure_bits: float
    max_bits: float


def exposure_from_rank(rank: int, candidates: int) -> float:
    if not 1 <= rank <= candidates:
        raise ValueError("The rank must lie between 1 and the number of candidates.")
    return math.log2(candidates) - math.log2(rank)


def log_perplexities(model, tokenizer, texts: list[str], batch_size: int = 256, device=None) -> list[float]:
    """Sum of token negative log-likelihoods of each text (natural log), batched."""
    import torch
    import torch.nn.functional as F

    device = device or next(model.parameters()).device
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    scores: list[float] = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], return_tensors="pt", padding=True)
            ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1, :].float()
            nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1), reduction="none").view(ids[:, 1:].shape)
            scores.extend((nll * mask[:, 1:]).sum(dim=1).tolist())
    return scores


def canary_exposure(model, tokenizer, prefix: str, secret: str, alphabet: str, *, candidates: int = 10_000,
                    batch_size: int = 256) -> CanaryExposure:
    """Rank the true secret among `candidates` − 1 other secrets of the same format, drawn at random
    without replacement (the full space when it is smaller)."""
    space = len(alphabet) ** len(secret)
    count = min(candidates, space)
    others: set[str] = set()
    if count == space:
        others = {_nth(i, alphabet, len(secret)) for i in range(space)} - {secret}
    else:
        while len(others) < count - 1:
            guess = "".join(_secrets.choice(alphabet) for _ in range(len(secret)))
            if guess != secret:
                others.add(guess)
    pool = [secret] + sorted(others)
    scores = log_perplexities(model, tokenizer, [prefix + s for s in pool], batch_size)
    true = scores[0]
    rank = 1 + sum(1 for s in scores[1:] if s < true)  # ties count in the secret's favour: a lower bound on exposure
    return CanaryExposure(rank=rank, candidates=len(pool), exposure_bits=exposure_from_rank(rank, len(pool)),
                          max_bits=math.log2(len(pool)))


def _nth(index: int, alphabet: str, length: int) -> str:
    chars = []
    for _ in range(length):
        index, digit = divmod(index, len(alphabet))
        chars.append(alphabet[digit])
    return "".join(reversed(chars))
