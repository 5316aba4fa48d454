"""The deployment's statistical watermark, and its detection in a text found in the wild. No Django here.

The scheme is Kirchenbauer et al.'s green list ("A Watermark for Large Language Models", 2023;
"On the Reliability of Watermarks for Large Language Models", 2024) as transformers ships it:
`WatermarkingConfig` passed to `generate` adds `BIAS` to the logits of a pseudo-random "green"
share (`GREENLIST_RATIO`) of the vocabulary at every step, the share drawn from a secret key and the
preceding tokens; `WatermarkDetector` counts the green tokens of a text and tests the count against
what a text written without the key would show (a binomial with p = `GREENLIST_RATIO`).

The constants, and why:
- `GREENLIST_RATIO = 0.25`, `BIAS = 2.0`: the setting both papers report as the balance of detection
  against quality (gamma 0.25, delta 2). A larger bias is detected in fewer tokens but costs more
  perplexity; bench/watermark.py measures both on the demo base.
- `SEEDING_SCHEME = "lefthash"`, `CONTEXT_WIDTH = 1`: the green list of a token depends on the
  token before it. This is what makes the test valid: with repeated (previous, token) pairs scored
  once, every scored token is an independent draw with chance `GREENLIST_RATIO` in a text written
  without the key, which is what the p-value assumes. The reliability paper's "selfhash" (min-hash
  over 4 tokens) was measured here first and rejected: its seed is decided by the one token of the
  window with the smallest hash, so many different 4-grams share a seed, the detector's count of
  "unique 4-grams" over-counts the independent draws, and the z-score of unwatermarked text swings
  far beyond N(0, 1) (a green share of 0.19 or 0.26 on 4,000 scored tokens of low-variety text,
  depending on the key: a false accusation waiting to happen). The cost of a one-token context:
  someone who collects a great many outputs can estimate the green lists of common tokens and
  then forge or scrub the watermark, so a detection is evidence about a text, not proof against
  an adversary who studied the deployment. It is also the cheapest scheme at generation time.
- Repeated (previous, token) pairs are scored once (`ignore_repeated_ngrams=True`): a phrase a
  human repeats (a licence's boilerplate) would otherwise count the same draw many times and
  inflate the z-score of a text nobody watermarked.
- The decision is on an exact binomial p-value, not on the detector's normal approximation, which
  under-states the tail for short texts (at z = 4 and 25 scored tokens the true false-positive rate
  is 2.1e-4, not 3.2e-5). A text is called watermarked when p <= `ALPHA` = 3.17e-5, the one-sided
  tail of z = 4: about one false accusation in 30,000 human texts, per key tested.
- "Too short to tell": a text that does not reach significance with fewer than
  `MIN_TOKENS_FOR_NEGATIVE` scored tokens is not called "not watermarked", because a watermarked
  text that short is often not significant either (bench/watermark.py reports the detection rate).
  A short text that does reach significance is called watermarked: the exact p-value holds at any length.

The green lists are computed on the CPU whatever device generates: torch's random permutations
differ between CPU and CUDA for the same seed, so a watermark made on a GPU host would otherwise be
invisible to the portal's CPU detector.

`WatermarkKey.hashing_key` is the deployment's secret, an integer of up to 64 bits from the OS's
entropy. transformers multiplies it into torch int64 arithmetic, so it is folded into
[1, 2**63 - 2] before use (`transformers_key`).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache

GREENLIST_RATIO = 0.25
BIAS = 2.0
SEEDING_SCHEME = "lefthash"
CONTEXT_WIDTH = 1
Z_THRESHOLD = 4.0
ALPHA = 0.5 * math.erfc(Z_THRESHOLD / math.sqrt(2))  # 3.17e-5: the one-sided normal tail at z = 4
MIN_TOKENS_FOR_NEGATIVE = 50

WATERMARKED, NOT_WATERMARKED, TOO_SHORT = "watermarked", "not watermarked", "too short to tell"
_INT64_FOLD = 2**63 - 2


@dataclass(frozen=True)
class WatermarkKey:
    """A deployment's secret watermark key (never sent by a client: the server gets it from its resolver)."""

    hashing_key: int = field(repr=False)

    def __post_init__(self):
        if isinstance(self.hashing_key, bool) or not isinstance(self.hashing_key, int) or not 0 < self.hashing_key < 2**64:
            raise ValueError("A watermark key is a positive integer below 2**64.")

    @classmethod
    def generate(cls) -> "WatermarkKey":
        import secrets

        return cls(secrets.randbelow(2**64 - 1) + 1)

    @property
    def transformers_key(self) -> int:
        return self.hashing_key % _INT64_FOLD + 1


@lru_cache(maxsize=1)
def _cpu_classes():
    """transformers' config and processor, with the green lists always computed on the CPU."""
    from transformers import WatermarkingConfig
    from transformers.generation.logits_process import WatermarkLogitsProcessor

    class CpuWatermarkLogitsProcessor(WatermarkLogitsProcessor):
        def __call__(self, input_ids, scores):
            if scores.device.type == "cpu":
                return super().__call__(input_ids, scores)
            return super().__call__(input_ids.cpu(), scores.cpu()).to(scores.device)

    class CpuWatermarkingConfig(WatermarkingConfig):
        def construct_processor(self, vocab_size: int, device) -> WatermarkLogitsProcessor:
            return CpuWatermarkLogitsProcessor(vocab_size=vocab_size, device="cpu", greenlist_ratio=self.greenlist_ratio,
                                               bias=self.bias, hashing_key=self.hashing_key,
                                               seeding_scheme=self.seeding_scheme, context_width=self.context_width)

    return CpuWatermarkingConfig, CpuWatermarkLogitsProcessor


def watermarking_config(key: WatermarkKey):
    """The `WatermarkingConfig` to pass to `generate` for this key."""
    config_class, _ = _cpu_classes()
    return config_class(greenlist_ratio=GREENLIST_RATIO, bias=BIAS, hashing_key=key.transformers_key,
                        seeding_scheme=SEEDING_SCHEME, context_width=CONTEXT_WIDTH)


@dataclass(frozen=True)
class Detection:
    z_score: float
    p_value: float  # exact binomial tail: the chance that a text written without the key scores this many green tokens
    watermarked: bool
    tokens_scored: int
    green_tokens: int = 0
    verdict: str = NOT_WATERMARKED  # WATERMARKED, NOT_WATERMARKED or TOO_SHORT

    def to_dict(self) -> dict:
        return {"z_score": self.z_score, "p_value": self.p_value, "watermarked": self.watermarked,
                "tokens_scored": self.tokens_scored, "green_tokens": self.green_tokens, "verdict": self.verdict}


def _verdict(p_value: float, tokens_scored: int, alpha: float = ALPHA) -> tuple[bool, str]:
    if p_value <= alpha:
        return True, WATERMARKED
    return False, TOO_SHORT if tokens_scored < MIN_TOKENS_FOR_NEGATIVE else NOT_WATERMARKED


_detectors: OrderedDict = OrderedDict()
_detectors_lock = threading.Lock()


def _detector(model_config, key: WatermarkKey):
    """A WatermarkDetector per (vocabulary, BOS, key), kept for the next text: building one draws a
    million-entry permutation table."""
    from transformers import WatermarkDetector

    cache_key = (int(model_config.vocab_size), getattr(model_config, "bos_token_id", None), key.transformers_key)
    with _detectors_lock:
        if cache_key in _detectors:
            _detectors.move_to_end(cache_key)
            return _detectors[cache_key]
    detector = WatermarkDetector(model_config=model_config, device="cpu", watermarking_config=watermarking_config(key),
                                 ignore_repeated_ngrams=True)
    with _detectors_lock:
        _detectors[cache_key] = detector
        while len(_detectors) > 32:
            _detectors.popitem(last=False)
    return detector


def detect(text: str, tokenizer, model_config, key: WatermarkKey) -> Detection:
    """Whether `text` carries the watermark of `key`, for the model with this tokenizer and config."""
    import torch
    from scipy.stats import binom

    if not isinstance(text, str):
        raise ValueError("The text to test must be a string.")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    bos = getattr(model_config, "bos_token_id", None)
    if ids and ids[0] == bos:
        ids = ids[1:]  # the detector drops a leading BOS itself; count without it here too
    if len(ids) <= CONTEXT_WIDTH:
        return Detection(z_score=0.0, p_value=1.0, watermarked=False, tokens_scored=0, verdict=TOO_SHORT)
    result = _detector(model_config, key)(torch.tensor([ids]), z_threshold=Z_THRESHOLD, return_dict=True)
    scored, green = int(result.num_tokens_scored[0]), int(result.num_green_tokens[0])
    p_value = float(binom.sf(green - 1, scored, GREENLIST_RATIO))
    watermarked, verdict = _verdict(p_value, scored)
    return Detection(z_score=round(float(result.z_score[0]), 4), p_value=p_value, watermarked=watermarked,
                     tokens_scored=scored, green_tokens=green, verdict=verdict)


@dataclass(frozen=True)
class Attribution:
    """The best-matching deployment among several, corrected for testing several keys."""

    label: str | None  # the deployment that produced the text, when one is significant after the correction
    best_label: str  # the candidate with the strongest evidence, significant or not
    detection: Detection  # that candidate's own detection
    p_value: float  # Bonferroni-corrected: min(1, p * candidates)
    watermarked: bool
    verdict: str
    candidates: int
    all: tuple = ()  # (label, Detection) for every candidate, strongest first

    def to_dict(self) -> dict:
        return {"label": self.label, "best_label": self.best_label, "p_value": self.p_value, "watermarked": self.watermarked,
                "verdict": self.verdict, "candidates": self.candidates, "detection": self.detection.to_dict(),
                "all": [{"label": label, **d.to_dict()} for label, d in self.all]}


def detect_any(text: str, candidates: list[tuple]) -> Attribution:
    """Which of several deployments, given as (label, tokenizer, model_config, key), produced `text`.

    Testing K keys gives K chances of a false match, so the best candidate's p-value is multiplied by
    K (Bonferroni) before it is compared with ALPHA: the false-accusation rate stays ALPHA per text,
    however many deployments there are."""
    if not candidates:
        raise ValueError("There is no watermarked deployment to compare the text with.")
    scored = [(label, detect(text, tokenizer, config, key)) for label, tokenizer, config, key in candidates]
    scored.sort(key=lambda item: (item[1].p_value, -item[1].z_score))
    best_label, best = scored[0]
    corrected = min(1.0, best.p_value * len(candidates))
    watermarked, verdict = _verdict(corrected, best.tokens_scored)
    return Attribution(label=best_label if watermarked else None, best_label=best_label, detection=best, p_value=corrected,
                       watermarked=watermarked, verdict=verdict, candidates=len(candidates), all=tuple(scored))
