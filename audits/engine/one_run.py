"""One-run auditing of an ε claim (Steinke, Nasr and Jagielski 2023, "Privacy Auditing with One (1)
Training Run"). No Django here.

m audit canaries are each trained on with probability ½, by independent coin flips from secret
randomness. After training, an attack scores every canary, guesses "included" for the k+ highest
scores and "excluded" for the k- lowest, and abstains on the rest. Under (ε, δ)-DP the number V of
correct guesses among the r = k+ + k- made is dominated by a Binomial(r, q), q = e^ε / (1 + e^ε),
up to a δ term (the paper's theorem for approximate DP): for every v,

    P[V ≥ v] ≤ f(v) + 2·m·δ·α,   f(u) = P[Binomial(r, q) ≥ u],
                                  α = max over i = 1 … v of (f(v − i) − f(v)) / i.

The right-hand side is the p-value of the observed v under the hypothesis "the training is
(ε, δ)-DP". It grows with ε, so the hypotheses that v rejects at level β are those of every ε
below some ε*: ε* is the lower bound at confidence 1 − β, found by bisection.

Why this and not a bound over membership scores of a fixed member/holdout split: the records of a
split are scored against one model, so they are not independent trials, and treating them as such
proves nothing about ε. Here the randomness is the coin flips, independent by construction, and
the theorem covers the one model's dependence on all of them at once.

What it cannot do: even a perfect attack (v = r) shows at most `max_provable_epsilon`, which grows
only like log(r): about 3 for r = 64, 5.5 for r = 768; showing ε = 8 takes some 9,000 guesses. A
claim above that is not tested by the audit, whatever the adapter does.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import numpy as np

METHOD = "one-run audit (Steinke, Nasr and Jagielski 2023)"
CONFIDENCE = 0.95
# The attack guesses "included" for this fraction of the canaries (the highest scores) and
# "excluded" for as many (the lowest), and abstains on the middle quarter: even a perfect attack
# meets mistakes there, because the number of canaries trained on varies from run to run by about
# √m / 2 around m / 2 (with m = 64, fewer than 24 are trained on, or excluded, in 4% of runs).
# Fixed in advance: choosing the split after seeing the scores would be a multiple test.
GUESS_FRACTION = 3 / 8
# No audit of a realistic size shows ε this large (a perfect attack needs some e^ε guesses).
EPSILON_CEILING = 64.0
BISECTION_STEPS = 40  # from a bracket of at most 64: within 6e-11


def guess_counts(canaries: int) -> tuple[int, int]:
    """(k+, k-): how many canaries the attack guesses were trained on, and were not."""
    k = math.floor(canaries * GUESS_FRACTION)
    return k, k


def p_value(epsilon: float, *, canaries: int, guesses: int, correct: int, delta: float) -> float:
    """The largest probability that an (ε, δ)-DP training lets `correct` or more of `guesses`
    guesses about `canaries` coin-flipped canaries come out right."""
    from scipy.stats import binom

    _check_counts(canaries, guesses, correct)
    if not 0 <= delta <= 1 or epsilon < 0:
        raise ValueError("The p-value needs ε ≥ 0 and δ in [0, 1].")
    q = 1 / (1 + math.exp(-epsilon)) if epsilon < 700 else 1.0  # e^ε / (1 + e^ε), without overflow
    tail = float(binom.sf(correct - 1, guesses, q))  # f(v) = P[Binomial(r, q) ≥ v]
    if delta == 0 or correct == 0:
        return min(1.0, tail)
    # f(v − i) − f(v) = P[v − i ≤ Binomial < v]: the running sum of the probabilities of v − 1, v − 2, …
    below = np.cumsum(binom.pmf(np.arange(correct - 1, -1, -1), guesses, q))
    alpha = float(np.max(below / np.arange(1, correct + 1)))
    return min(1.0, tail + 2 * canaries * delta * alpha)


def epsilon_lower_bound(*, canaries: int, guesses: int, correct: int, delta: float,
                        confidence: float = CONFIDENCE) -> float:
    """The largest ε that `correct` of `guesses` right rejects at level β = 1 − `confidence`: the
    training is not (ε', δ)-DP for any ε' below it, with that confidence. 0 when nothing is rejected.
    Bisection keeps the low end, so the bound never overstates."""
    beta = 1 - confidence
    if not 0 < beta < 1:
        raise ValueError("The confidence must be in (0, 1).")

    def rejected(epsilon):
        return p_value(epsilon, canaries=canaries, guesses=guesses, correct=correct, delta=delta) < beta

    if guesses == 0 or not rejected(0.0):
        return 0.0
    low, high = 0.0, 1.0
    while rejected(high):
        if high >= EPSILON_CEILING:
            return EPSILON_CEILING
        low, high = high, min(2 * high, EPSILON_CEILING)
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2
        low, high = (middle, high) if rejected(middle) else (low, middle)
    return low


@lru_cache(maxsize=256)  # the same few audit sizes come back, and each costs some 50 p-values
def max_provable_epsilon(*, canaries: int, guesses: int, delta: float, confidence: float = CONFIDENCE) -> float:
    """The bound a perfect attack (every guess right) would give: the largest ε this audit can show."""
    return epsilon_lower_bound(canaries=canaries, guesses=guesses, correct=guesses, delta=delta, confidence=confidence)


def audit_one_run(scores: Sequence[float], included: Sequence[bool], delta: float, k_plus: int | None = None,
                  k_minus: int | None = None, confidence: float = CONFIDENCE) -> dict:
    """The one-run audit of canaries with attack `scores` (higher: more likely trained on) and
    their secret inclusion bits: how many guesses were made and right, and the ε they prove.
    `k_plus` and `k_minus` default to `guess_counts(m)`. The result holds counts and bounds only,
    never a canary or its bit."""
    scores = np.asarray(scores, dtype=float)
    included = np.asarray(included, dtype=bool)
    m = len(scores)
    if len(included) != m:
        raise ValueError("One inclusion bit per scored canary is needed.")
    if not np.all(np.isfinite(scores)):
        raise ValueError("Every audit canary needs a finite score.")
    default_plus, default_minus = guess_counts(m)
    k_plus = default_plus if k_plus is None else k_plus
    k_minus = default_minus if k_minus is None else k_minus
    if k_plus < 0 or k_minus < 0 or k_plus + k_minus > m:
        raise ValueError("The guesses must be between 0 and the number of canaries, together.")
    # Highest score first; ties keep the canaries' own order, which the coin flips did not choose.
    order = np.argsort(-scores, kind="stable")
    guessed_in, guessed_out = order[:k_plus], order[m - k_minus:]
    correct = int(included[guessed_in].sum() + (~included[guessed_out]).sum())
    guesses = k_plus + k_minus
    return {"canaries": m, "guesses": guesses, "correct": correct, "confidence": confidence, "delta": delta,
            "epsilon_lower_bound": epsilon_lower_bound(canaries=m, guesses=guesses, correct=correct, delta=delta,
                                                       confidence=confidence),
            "max_provable_epsilon": max_provable_epsilon(canaries=m, guesses=guesses, delta=delta, confidence=confidence),
            "method": METHOD}


def _check_counts(canaries: int, guesses: int, correct: int) -> None:
    if not 0 <= correct <= guesses <= canaries:
        raise ValueError("Counts must satisfy 0 ≤ correct ≤ guesses ≤ canaries.")
