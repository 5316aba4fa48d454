"""Membership inference: can an attacker tell training records (members) from held-out records
(non-members) of the same data? No Django here.

Every attack gives one score per record, and a HIGHER score always means "more likely a member",
so one ROC routine serves them all. The scores come from the log probability the model gives
each actual next token of the record (`token_log_probs`):

- `loss`: the negative mean token loss under the adapted model (Yeom et al. 2018). Training
  lowers the loss of what it saw.
- `zlib`: the sum of token log probs divided by the zlib-compressed length of the text in bytes
  (Carlini et al. 2021, "Extracting Training Data from Large Language Models"). Repetitive,
  easily compressed text is easy for any model; dividing by what zlib needs calibrates for it.
  Here the numerator is the total (not the mean) loss, so both sides grow with the length of the
  text; the reference code of Carlini et al. and MIMIR divides the mean loss instead.
- `min_k`: the mean log prob of the k% least likely tokens (default 20%; Shi et al. 2023,
  "Detecting Pretraining Data from Large Language Models", Min-K% Prob). An unseen text tends to
  hold a few very surprising tokens; a memorised one does not.
- `reference`: the base model's mean loss minus the adapted model's (difficulty calibration:
  Carlini et al. 2021 with a reference model, Watson et al. 2022). What the base model already
  found easy is not evidence of training; only the drop that fine-tuning caused is.

We report ROC AUC and, as Carlini et al. 2022 ("Membership Inference Attacks From First
Principles", LiRA) argue, the TPR at a low FPR (1% and 0.1%): an attack that confidently
identifies a few records matters even when its AUC is near 0.5. Confidence intervals come from a
percentile bootstrap.

Against the DP claim: under (ε, δ)-DP every attack obeys TPR ≤ e^ε·FPR + δ (and the same for
TNR and FNR). Clopper–Pearson bounds on an attack's TPR and FPR turn that into an empirical lower
bound on ε (Jagielski et al. 2020, Nasr et al. 2021); a lower bound above the claimed ε means the
training or the accounting is wrong (Tramèr et al. 2022 found such a bug this way).

Distribution shift (Duan et al. 2024, "Do Membership Inference Attacks Work on Large Language
Models?"): when members and non-members differ in topic or time, an "attack" detects the shift,
not memorisation. A bag-of-words classifier that needs no model at all measures that shift.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass

import numpy as np

ATTACKS = ("loss", "zlib", "min_k", "reference")
SHIFT_WARNING_AUC = 0.6


# --- Scores ----------------------------------------------------------------------------------------


def token_log_probs(model, tokenizer, texts: list[str], batch_size: int = 32, max_length: int = 128,
                    device=None) -> list[list[float]]:
    """The natural-log probability of each actual next token of each text, batched.

    Right padding, so a text's tokens sit at the same positions as when it is scored alone, and
    padded positions are dropped. Texts are truncated to `max_length` tokens, as in training. A
    text of one token has no next token and gets an empty list. The logits of a batch take
    batch_size × max_length × vocabulary floats: lower `batch_size` for large vocabularies.
    """
    import torch

    device = device or next(model.parameters()).device
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    out: list[list[float]] = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], return_tensors="pt", padding=True, truncation=True,
                              max_length=max_length)
            ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1, :].float()
            # log p(token) = logit of the token − logsumexp of all logits; cheaper than a full log_softmax.
            chosen = logits.gather(-1, ids[:, 1:, None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)
            for row, length in zip(chosen, mask[:, 1:].sum(dim=1).tolist()):
                out.append(row[:length].tolist())
    return out


def scores_from_log_probs(texts: list[str], log_probs: list[list[float]], base_log_probs: list[list[float]] | None = None,
                          k: float = 0.2) -> dict[str, list[float]]:
    """The attack scores of each text from its token log probs (and the base model's, for `reference`)."""
    for i, lp in enumerate(log_probs):
        if not lp:
            raise ValueError(f"Text {i} has fewer than two tokens: there is no next-token probability to score.")
    scores: dict[str, list[float]] = {
        "loss": [float(np.mean(lp)) for lp in log_probs],
        "zlib": [float(np.sum(lp)) / len(zlib.compress(t.encode("utf-8"))) for t, lp in zip(texts, log_probs)],
        # At least one token, so short texts still get a score.
        "min_k": [float(np.mean(np.sort(lp)[:max(1, int(len(lp) * k))])) for lp in log_probs],
    }
    if base_log_probs is not None:
        # base loss − adapted loss = adapted mean log prob − base mean log prob.
        scores["reference"] = [float(np.mean(lp) - np.mean(blp)) for lp, blp in zip(log_probs, base_log_probs)]
    return scores


def attack_scores(adapted_model, base_model, tokenizer, texts: list[str], *, k: float = 0.2, batch_size: int = 32,
                  max_length: int = 128, device=None,
                  base_token_log_probs: list[list[float]] | None = None) -> dict[str, list[float]]:
    """All attacks' scores for `texts`: {"loss", "zlib", "min_k"} and "reference" when the base
    model (or its token log probs) is given.

    For a PEFT model, the base model is the same object with its adapter switched off; compute its
    log probs first and pass them in:

        with peft_model.disable_adapter():
            base = token_log_probs(peft_model, tokenizer, texts)
        scores = attack_scores(peft_model, None, tokenizer, texts, base_token_log_probs=base)
    """
    log_probs = token_log_probs(adapted_model, tokenizer, texts, batch_size, max_length, device)
    if base_model is not None:
        base_token_log_probs = token_log_probs(base_model, tokenizer, texts, batch_size, max_length, device)
    return scores_from_log_probs(texts, log_probs, base_token_log_probs, k)


# --- ROC and confidence intervals ----------------------------------------------------------------


@dataclass(frozen=True)
class Roc:
    auc: float
    tpr_at_1pct_fpr: float
    tpr_at_01pct_fpr: float
    fpr: list[float]  # at most ~200 points, for charts
    tpr: list[float]


# FPR points for charts: linear for a linear axis, log-spaced down to 1e-4 for the low-FPR region
# that LiRA-style plots show on log axes.
_CHART_FPR = np.unique(np.concatenate([np.linspace(0, 1, 101), np.logspace(-4, 0, 100)]))


def _roc_curve(member_scores, nonmember_scores):
    from sklearn.metrics import roc_curve

    labels = np.concatenate([np.ones(len(member_scores)), np.zeros(len(nonmember_scores))])
    fpr, tpr, _ = roc_curve(labels, np.concatenate([member_scores, nonmember_scores]), drop_intermediate=False)
    return fpr, tpr


def _tpr_at(fpr, tpr, target):
    """The highest TPR of any threshold whose FPR is at most `target` (the LiRA convention).
    The curve is sorted by rising FPR and TPR, so that is the last point with FPR ≤ target."""
    return tpr[np.searchsorted(fpr, target, side="right") - 1]


def _summary(fpr, tpr) -> tuple[float, float, float]:
    from sklearn.metrics import auc

    return float(auc(fpr, tpr)), float(_tpr_at(fpr, tpr, 0.01)), float(_tpr_at(fpr, tpr, 0.001))


def roc(member_scores, nonmember_scores) -> Roc:
    fpr, tpr = _roc_curve(member_scores, nonmember_scores)
    area, at_1, at_01 = _summary(fpr, tpr)
    return Roc(auc=area, tpr_at_1pct_fpr=at_1, tpr_at_01pct_fpr=at_01, fpr=_CHART_FPR.tolist(),
               tpr=[float(_tpr_at(fpr, tpr, x)) for x in _CHART_FPR])


def bootstrap_ci(member_scores, nonmember_scores, n: int = 1000, seed: int = 0,
                 level: float = 0.95) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals for "auc", "tpr_at_1pct_fpr" and "tpr_at_01pct_fpr".
    Members and non-members are resampled independently: they are two separate samples."""
    rng = np.random.default_rng(seed)
    members, nonmembers = np.asarray(member_scores, float), np.asarray(nonmember_scores, float)
    draws = np.array([_summary(*_roc_curve(rng.choice(members, len(members)), rng.choice(nonmembers, len(nonmembers))))
                      for _ in range(n)])
    tail = (1 - level) / 2 * 100
    lows, highs = np.percentile(draws, [tail, 100 - tail], axis=0)
    return {name: (float(lo), float(hi)) for name, lo, hi in zip(("auc", "tpr_at_1pct_fpr", "tpr_at_01pct_fpr"), lows, highs)}


@dataclass(frozen=True)
class AttackResult:
    name: str
    auc: float
    auc_ci: tuple[float, float]
    tpr_at_1pct_fpr: float
    tpr_at_1pct_ci: tuple[float, float]
    tpr_at_01pct_fpr: float
    tpr_at_01pct_ci: tuple[float, float]
    roc_fpr: list[float]
    roc_tpr: list[float]
    members: int
    nonmembers: int

    def as_dict(self) -> dict:
        return asdict(self)


def evaluate_attack(name: str, member_scores, nonmember_scores, *, n_bootstrap: int = 1000, seed: int = 0) -> AttackResult:
    curve = roc(member_scores, nonmember_scores)
    ci = bootstrap_ci(member_scores, nonmember_scores, n=n_bootstrap, seed=seed)
    return AttackResult(name=name, auc=curve.auc, auc_ci=ci["auc"], tpr_at_1pct_fpr=curve.tpr_at_1pct_fpr,
                        tpr_at_1pct_ci=ci["tpr_at_1pct_fpr"], tpr_at_01pct_fpr=curve.tpr_at_01pct_fpr,
                        tpr_at_01pct_ci=ci["tpr_at_01pct_fpr"], roc_fpr=curve.fpr, roc_tpr=curve.tpr,
                        members=len(member_scores), nonmembers=len(nonmember_scores))


# --- Against the DP claim --------------------------------------------------------------------------


@dataclass(frozen=True)
class EpsilonLowerBound:
    epsilon: float  # 0 when no threshold gives a significant bound
    threshold: float | None  # "member" when score >= threshold
    direction: str | None  # "tpr/fpr": guessing members; "tnr/fnr": guessing non-members
    confidence: float
    delta: float
    members: int
    nonmembers: int
    true_positives: int | None
    false_positives: int | None


def _clopper_pearson(successes, trials, confidence):
    """Two-sided Clopper–Pearson interval (exact binomial), vectorised over `successes`."""
    from scipy.stats import beta

    alpha = 1 - confidence
    k = np.asarray(successes, float)
    with np.errstate(invalid="ignore"):  # the ends are set below where beta's parameter would be 0
        low = np.where(k == 0, 0.0, beta.ppf(alpha / 2, k, trials - k + 1))
        high = np.where(k == trials, 1.0, beta.ppf(1 - alpha / 2, k + 1, trials - k))
    return low, high


def empirical_epsilon_lower_bound(member_scores, nonmember_scores, delta: float,
                                  confidence: float = 0.95) -> EpsilonLowerBound:
    """The largest ε that the attack proves at `confidence`, over all thresholds and both directions:
    ε ≥ ln((TPR_lo − δ) / FPR_hi) and ε ≥ ln((TNR_lo − δ) / FNR_hi) (Jagielski et al. 2020, Nasr et al. 2021).

    The rates' bounds are two-sided Clopper–Pearson intervals, as in Jagielski et al.'s code. The
    threshold is picked on the same scores it is measured on, which flatters the bound a little
    (with 1000 vs 1000 scores from one distribution, 6.5% of 200 draws gave a bound above 0, against
    the nominal 5%); an audit that must be rigorous picks it on a separate split. With n records per side the bound
    cannot exceed about ln(n), whatever the attack."""
    members, nonmembers = np.sort(np.asarray(member_scores, float)), np.sort(np.asarray(nonmember_scores, float))
    m, n = len(members), len(nonmembers)
    thresholds = np.unique(np.concatenate([members, nonmembers]))
    tp = m - np.searchsorted(members, thresholds, side="left")  # members with score >= threshold
    fp = n - np.searchsorted(nonmembers, thresholds, side="left")
    tpr_lo, _ = _clopper_pearson(tp, m, confidence)
    _, fpr_hi = _clopper_pearson(fp, n, confidence)
    tnr_lo, _ = _clopper_pearson(n - fp, n, confidence)
    _, fnr_hi = _clopper_pearson(m - tp, m, confidence)
    with np.errstate(divide="ignore", invalid="ignore"):  # numerators ≤ 0 prove nothing: -inf or nan
        candidates = {"tpr/fpr": np.log((tpr_lo - delta) / fpr_hi), "tnr/fnr": np.log((tnr_lo - delta) / fnr_hi)}
    best = EpsilonLowerBound(0.0, None, None, confidence, delta, m, n, None, None)
    for direction, eps in candidates.items():
        eps = np.nan_to_num(eps, nan=-np.inf)
        i = int(np.argmax(eps))
        if eps[i] > best.epsilon:
            best = EpsilonLowerBound(float(eps[i]), float(thresholds[i]), direction, confidence, delta, m, n,
                                     int(tp[i]), int(fp[i]))
    return best


def dp_consistent(tpr: float, fpr: float, epsilon: float, delta: float) -> bool:
    """Whether an attack's (TPR, FPR) lies inside the (ε, δ)-DP region: TPR ≤ e^ε·FPR + δ, and the
    same for the complementary guess, TNR ≤ e^ε·FNR + δ (Kairouz et al. 2015)."""
    bound = math.exp(epsilon)
    tolerance = 1e-12  # rates computed from counts should not fail on rounding
    return tpr <= bound * fpr + delta + tolerance and (1 - fpr) <= bound * (1 - tpr) + delta + tolerance


def dp_tpr_limit(fpr, epsilon: float, delta: float) -> np.ndarray:
    """The highest TPR (ε, δ)-DP allows at each FPR, for drawing over an ROC chart: the lower of
    e^ε·FPR + δ and 1 − e^−ε·(1 − δ − FPR) (the second from TNR ≤ e^ε·FNR + δ), capped at 1."""
    fpr = np.asarray(fpr, float)
    return np.clip(np.minimum(np.exp(epsilon) * fpr + delta, 1 - np.exp(-epsilon) * (1 - delta - fpr)), 0, 1)


# --- Distribution shift --------------------------------------------------------------------------


def distribution_shift_auc(member_texts: list[str], nonmember_texts: list[str], seed: int = 0) -> float:
    """Cross-validated ROC AUC of a bag-of-words logistic regression telling members from
    non-members. About 0.5 means the split is fair; well above means the texts themselves differ.
    The vectoriser is fitted inside each fold, so no fold sees the test fold's vocabulary."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline

    folds = min(5, len(member_texts), len(nonmember_texts))
    if folds < 2:
        raise ValueError("The shift check needs at least two member and two non-member texts.")
    texts = list(member_texts) + list(nonmember_texts)
    labels = np.array([1] * len(member_texts) + [0] * len(nonmember_texts))
    classifier = make_pipeline(CountVectorizer(), LogisticRegression(max_iter=1000))
    probabilities = cross_val_predict(classifier, texts, labels, method="predict_proba",
                                      cv=StratifiedKFold(folds, shuffle=True, random_state=seed))[:, 1]
    return float(roc_auc_score(labels, probabilities))


def shift_warning(auc: float) -> str | None:
    if auc < SHIFT_WARNING_AUC:
        return None
    return (f"A bag-of-words classifier tells members from non-members apart (AUC {auc:.2f}): the membership "
            "figures are inflated by distribution shift, not only by memorisation.")
