"""Canary exposure (Carlini et al. 2019, "The Secret Sharer"). No Django here.

exposure = log2 |R| − log2 rank, where rank is the position of the true secret among the
candidates R (the true one included), ordered by the model's log-perplexity of prefix + secret.
Rank 1 among 10^4 candidates gives log2(10^4) = 13.29 bits, the maximum for that many.
Candidates are scored in batches: one forward pass per batch, padding masked out.

Rank exposure cannot exceed log2 |R|. Carlini et al. extrapolate past it: the candidates'
log-perplexities are close to a skew-normal, so fitting one and reading off the probability that a
random candidate scores at least as well as the true secret gives exposure = −log2 P(score ≤ true),
which keeps growing when the secret is ranked first among every candidate drawn.
"""

from __future__ import annotations

import math
import secrets as _secrets
from dataclasses import dataclass

# −log2 of the smallest positive double: the most the extrapolation can say before P underflows to 0.
MAX_EXTRAPOLATED_BITS = 1074.0


@dataclass(frozen=True)
class CanaryExposure:
    rank: int
    candidates: int
    exposure_bits: float
    max_bits: float
    extrapolated_bits: float | None = None  # skew-normal fit; None when the candidates' scores are all equal
    # {"edges": [bins + 1 floats], "counts": [bins ints], "secret_score": float}: the candidates'
    # log-perplexities for a chart with the canary marked. Present only when asked for.
    histogram: dict | None = None


def exposure_from_rank(rank: int, candidates: int) -> float:
    if not 1 <= rank <= candidates:
        raise ValueError("The rank must lie between 1 and the number of candidates.")
    return math.log2(candidates) - math.log2(rank)


def extrapolated_exposure(candidate_scores, true_score: float) -> float | None:
    """−log2 P(score ≤ true_score) under a skew-normal fitted to the candidates' log-perplexities
    (lower is likelier). Not bounded by log2 of the number of candidates."""
    import numpy as np
    from scipy.stats import skewnorm

    scores = np.asarray(candidate_scores, float)
    if len(scores) < 3 or np.ptp(scores) == 0:
        return None  # nothing to fit: no spread
    shape, loc, scale = skewnorm.fit(scores)
    log_p = float(skewnorm.logcdf(true_score, shape, loc, scale))
    return min(-log_p / math.log(2), MAX_EXTRAPOLATED_BITS)  # logcdf is −inf once P underflows


def score_histogram(candidate_scores, true_score: float, bins: int = 40) -> dict:
    """A compact histogram of the candidates' scores; the range includes the true secret's score
    so the chart can mark it even when it lies far left of every candidate."""
    import numpy as np

    scores = np.asarray(candidate_scores, float)
    low, high = min(scores.min(), true_score), max(scores.max(), true_score)
    counts, edges = np.histogram(scores, bins=bins, range=(low, high) if high > low else None)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts], "secret_score": float(true_score)}


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


def shared_prefix_log_perplexities(model, tokenizer, texts: list[str], batch_size: int = 256, device=None) -> list[float]:
    """The same sums as `log_perplexities`, for texts that start with the same tokens (a canary's
    prefix followed by candidate secrets): the shared tokens go through the model once, and each
    batch of candidates runs only its own tokens on top of their cached keys and values. Falls
    back to `log_perplexities` when the texts share fewer than two tokens."""
    import copy

    import torch
    import torch.nn.functional as F

    device = device or next(model.parameters()).device
    encoded = [tokenizer(text)["input_ids"] for text in texts]
    shared = min(len(ids) for ids in encoded) - 1  # every text keeps at least one token of its own
    first = encoded[0]
    for ids in encoded[1:]:
        while shared and ids[:shared] != first[:shared]:
            shared -= 1
    if shared < 2:
        return log_perplexities(model, tokenizer, texts, batch_size, device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model.eval()
    scores: list[float] = []
    with torch.no_grad():
        head = torch.tensor([first[:shared]], device=device)
        out = model(input_ids=head, use_cache=True)
        head_nll = float(F.cross_entropy(out.logits[0, :-1].float(), head[0, 1:], reduction="sum"))
        next_logits = out.logits[0, -1].float()  # predicts each text's first token of its own
        for start in range(0, len(encoded), batch_size):
            tails = [ids[shared:] for ids in encoded[start:start + batch_size]]
            width = max(len(t) for t in tails)
            ids = torch.tensor([t + [pad] * (width - len(t)) for t in tails], device=device)
            mask = torch.tensor([[1] * len(t) + [0] * (width - len(t)) for t in tails], device=device)
            cache = copy.deepcopy(out.past_key_values)
            cache.batch_repeat_interleave(len(tails))
            full_mask = torch.cat([torch.ones(len(tails), shared, dtype=mask.dtype, device=device), mask], dim=1)
            positions = torch.arange(shared, shared + width, device=device).unsqueeze(0).expand(len(tails), -1)
            logits = model(input_ids=ids, attention_mask=full_mask, past_key_values=cache, position_ids=positions).logits.float()
            # Token i of a tail is predicted by the logits before it: the shared head's last for i = 0.
            predicting = torch.cat([next_logits.expand(len(tails), 1, -1), logits[:, :-1]], dim=1)
            nll = F.cross_entropy(predicting.reshape(-1, predicting.size(-1)), ids.reshape(-1), reduction="none").view(ids.shape)
            scores.extend((head_nll + (nll * mask).sum(dim=1)).tolist())
    return scores


def canary_exposure(model, tokenizer, prefix: str, secret: str, alphabet: str, *, candidates: int = 10_000,
                    batch_size: int = 256, histogram_bins: int = 0) -> CanaryExposure:
    """Rank the true secret among `candidates` − 1 other secrets of the same format, drawn at random
    without replacement (the full space when it is smaller); extrapolate with a skew-normal fit to
    the other candidates' scores; with `histogram_bins`, also return their histogram."""
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
    scores = shared_prefix_log_perplexities(model, tokenizer, [prefix + s for s in pool], batch_size)
    true, others_scores = scores[0], scores[1:]
    rank = 1 + sum(1 for s in others_scores if s < true)  # ties count in the secret's favour: a lower bound on exposure
    # The fit describes what a random secret scores, so the true one is left out of it.
    return CanaryExposure(rank=rank, candidates=len(pool), exposure_bits=exposure_from_rank(rank, len(pool)),
                          max_bits=math.log2(len(pool)), extrapolated_bits=extrapolated_exposure(others_scores, true),
                          histogram=score_histogram(others_scores, true, histogram_bins) if histogram_bins else None)


def _nth(index: int, alphabet: str, length: int) -> str:
    chars = []
    for _ in range(length):
        index, digit = divmod(index, len(alphabet))
        chars.append(alphabet[digit])
    return "".join(reversed(chars))
