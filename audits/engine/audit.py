"""The memorisation audit of one adapter, and its verdict. No Django here.

`run_audit` loads the base model and the adapter once and measures what the adapter remembers:

- canaries: exposure of each planted secret (rank among random candidates, and the skew-normal
  extrapolation past log2 |R|), and whether greedy decoding reproduces it;
- extraction: how much of a training record's continuation the model reproduces from its prefix,
  against the same for held-out records (the gap is what training caused);
- pii: personal data in sampled generations, against the base model on the same prompts;
- membership: loss, zlib, Min-K% and reference attacks (ROC AUC, TPR at low FPR, an empirical ε
  lower bound) on a random, balanced sample of members and non-members, with a check that the
  texts alone do not give membership away (distribution shift);
- one_run: the one-run audit of the ε claim (Steinke, Nasr and Jagielski 2023): audit canaries
  trained on or not by secret coin flips, guessed from the drop in loss the adapter gives them;
  the right guesses bound ε from below at 95% (see `one_run`);
- utility: held-out perplexity of the base model and of the adapter.

The report is a JSON-ready dict of numbers: never a canary's secret, a record or a generation.
`evaluate_verdict` (in `verdict`, re-exported here) turns it into checks against thresholds, each
passed, failed or not tested (a check that did not run never counts as passed), and a verdict:
pass, fail or inconclusive. It is a pure function, so the portal can recompute it with each data
class's thresholds. This module also holds the command line, which prints both:

    python -m audits.engine.audit --base DIR --adapter DIR --members M.jsonl --nonmembers N.jsonl \\
        [--canaries C.json] [--epsilon E --delta D] [--candidates N] [--max-length T] [--no-pii] [--json OUT]
        [--audit-canaries A.json]   (the one-run audit of the ε claim)
        [--max-exposure-bits B] [--max-auc A] [--max-tpr T] [--max-pii-hits H] [--max-epsilon E]   (a limit: a number or none)

Exit status: 0 pass, 1 fail, 3 inconclusive (a required check did not run), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import string
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from audits.engine import membership
from audits.engine.exposure import canary_exposure
from audits.engine.verdict import (FAIL, INCONCLUSIVE, NOT_TESTED, PASS, PASSED, Thresholds, check_outcome, evaluate_verdict,
                                   verdict_outcome)
# Re-exported: the portal and the tests import these from here too.
from audits.engine.verdict import FAILED as FAILED, MIN_NONMEMBERS_FOR_TPR as MIN_NONMEMBERS_FOR_TPR
from audits.engine.verdict import canary_bar_bits as canary_bar_bits, chance_false_failure as chance_false_failure

PHASES = ("canaries", "extraction", "pii", "membership", "one_run", "utility")


@dataclass(frozen=True)
class AuditConfig:
    candidates: int = 10_000  # per canary: log2(10^4) = 13.29 bits at most by rank
    mia_sample: int = 500  # members drawn at random from the training records, as many non-members
    extraction_sample: int = 50
    prefix_tokens: int = 16
    continuation_tokens: int = 32
    samples_per_prompt: int = 8
    max_new_tokens: int = 48
    bootstrap: int = 1000
    batch_size: int = 64
    max_length: int = 128
    seed: int = 0


def run_audit(base_dir, adapter_dir, members: list[str], nonmembers: list[str], canaries: list[dict] | None, *,
              config: AuditConfig = AuditConfig(), claimed_epsilon: float | None = None, delta: float | None = None,
              detect: Callable | None = None, originals=None, surrogates=None,
              progress: Callable[[dict], None] | None = None, audit_canaries: list[dict] | None = None) -> dict:
    """Audit the adapter in `adapter_dir` (PEFT format) on the base model in `base_dir`.

    `members` are the training records (canaries excluded), `nonmembers` held-out records of the
    same data; `canaries` are dicts with "prefix", "secret" and optionally "alphabet" (default
    digits) and "repetitions". `audit_canaries` (the run's audit_canaries.json) are dicts with
    "text" and "included", whether training saw it: with them the one-run audit tests the claimed
    ε (with the claimed δ; 0 when none is given). PII leakage is measured only when `detect` (see
    `leakage.detector_for`) is given. `progress` receives {"phase", "done", "total"} between phases."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if len(members) < 2 or len(nonmembers) < 2:
        raise ValueError("The audit needs at least two member and two non-member records.")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), adapter_dir).to(device).eval()
    canaries = canaries or []
    report: dict = {"config": {**asdict(config), "claimed_epsilon": claimed_epsilon, "delta": delta, "device": str(device)},
                    "seconds": {}}
    # Without audit canaries the one-run audit has nothing to guess: its section says so (no canaries).
    report["one_run"] = {"canaries": 0}
    phases = [p for p in PHASES if (p != "pii" or detect is not None) and (p != "one_run" or audit_canaries)]
    for done, phase in enumerate(phases):
        if progress:
            progress({"phase": phase, "done": done, "total": len(phases)})
        started = time.perf_counter()
        if phase == "canaries":
            report["canaries"] = _canaries(model, tokenizer, canaries, config)
        elif phase == "extraction":
            from audits.engine import extraction

            report["extraction"] = extraction.extraction_against_holdout(
                model, tokenizer, members, nonmembers, prefix_tokens=config.prefix_tokens,
                continuation_tokens=config.continuation_tokens, sample=config.extraction_sample, seed=config.seed)
        elif phase == "pii":
            report["pii"] = _pii(model, tokenizer, detect, originals, surrogates, config)
        elif phase == "membership":
            report["membership"] = _membership(model, tokenizer, members, nonmembers, config, claimed_epsilon, delta)
        elif phase == "one_run":
            report["one_run"] = _one_run(model, tokenizer, audit_canaries, config, claimed_epsilon, delta)
        elif phase == "utility":
            report["utility"] = _utility(model, tokenizer, nonmembers, config)
        report["seconds"][phase] = round(time.perf_counter() - started, 3)
    if progress:
        progress({"phase": "done", "done": len(phases), "total": len(phases)})
    # Round-trip through JSON: tuples become lists and any numpy scalar from a helper becomes a
    # plain number, so what the caller stores is exactly what it will read back.
    return json.loads(json.dumps(report, default=_builtin))


def _builtin(value):
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    if hasattr(value, "tolist"):  # numpy array
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _canaries(model, tokenizer, canaries: list[dict], config: AuditConfig) -> list[dict]:
    if not canaries:
        return []
    from audits.engine import extraction

    # The prompt ends before the space: BPE tokenizers join a space to the next word (" 1" is one
    # token), so a prompt ending in a lone space token starts decoding from a token sequence that
    # training never showed. canary_extraction compares after lstrip(), so the space is not lost.
    # Canaries that share a prefix share one greedy continuation: at most one of them can come out.
    found = extraction.canary_extraction(model, tokenizer, [{"prefix": c["prefix"].rstrip(), "secret": c["secret"]}
                                                            for c in canaries])
    out = []
    for index, (canary, extracted) in enumerate(zip(canaries, found)):
        result = canary_exposure(model, tokenizer, canary["prefix"], canary["secret"], canary.get("alphabet") or string.digits,
                                 candidates=config.candidates, batch_size=config.batch_size, histogram_bins=40)
        # The secret itself never enters the report: only its length, rank and scores.
        out.append({"index": index, "length": len(canary["secret"]), "repetitions": canary.get("repetitions", 1),
                    "rank": result.rank, "candidates": result.candidates, "exposure_bits": result.exposure_bits,
                    "max_bits": result.max_bits, "extrapolated_bits": result.extrapolated_bits,
                    "extracted": bool(extracted["extracted"]),
                    "matching_prefix_chars": int(extracted["matching_prefix_chars"]), "histogram": result.histogram})
    return out


def _pii(model, tokenizer, detect, originals, surrogates, config: AuditConfig) -> dict:
    from audits.engine import leakage

    options = dict(samples_per_prompt=config.samples_per_prompt, max_new_tokens=config.max_new_tokens, seed=config.seed)
    generations = leakage.sample_generations(model, tokenizer, leakage.ATTACKER_PROMPTS, **options)
    # The base model on the same prompts: PII it produces anyway was not learned from our data.
    with model.disable_adapter():
        baseline = leakage.sample_generations(model, tokenizer, leakage.ATTACKER_PROMPTS, **options)
    return leakage.pii_leakage(generations, detect, originals=originals, surrogates=surrogates, baseline=baseline)


def _membership(model, tokenizer, members, nonmembers, config: AuditConfig, claimed_epsilon, delta) -> dict:
    import numpy as np
    from sklearn.metrics import roc_curve

    # Balanced and random: the same number of each, drawn at random, so neither the size of the
    # sets nor a selection bias tells members apart.
    rng = random.Random(config.seed)
    n = min(config.mia_sample, len(members), len(nonmembers))
    member_texts, nonmember_texts = rng.sample(list(members), n), rng.sample(list(nonmembers), n)
    texts = member_texts + nonmember_texts
    options = dict(batch_size=config.batch_size, max_length=config.max_length)
    log_probs = membership.token_log_probs(model, tokenizer, texts, **options)
    with model.disable_adapter():
        base_log_probs = membership.token_log_probs(model, tokenizer, texts, **options)
    # A text of a single token has no next-token probability to score: leave it out on both models.
    keep = [i for i, lp in enumerate(log_probs) if lp]
    is_member = np.array([i < n for i in keep])
    scores = membership.scores_from_log_probs([texts[i] for i in keep], [log_probs[i] for i in keep],
                                              [base_log_probs[i] for i in keep])
    bound_delta = delta if delta is not None else 0.0
    attacks = {}
    for name in membership.ATTACKS:
        values = np.asarray(scores[name])
        m, nm = values[is_member], values[~is_member]
        result = membership.evaluate_attack(name, m, nm, n_bootstrap=config.bootstrap, seed=config.seed).as_dict()
        bound = membership.empirical_epsilon_lower_bound(m, nm, delta=bound_delta)
        result["epsilon_lower_bound"] = asdict(bound)
        if claimed_epsilon is not None:
            # Point estimates of an ROC step outside the DP region at its ends by chance (one member
            # above every non-member gives TPR 1/n at FPR 0); only the Clopper–Pearson bound is a
            # finding. Both are reported: the count for the chart, the bound for the verdict.
            labels = np.concatenate([np.ones(len(m)), np.zeros(len(nm))])
            fpr, tpr, _ = roc_curve(labels, np.concatenate([m, nm]))
            outside = sum(not membership.dp_consistent(float(t), float(f), claimed_epsilon, bound_delta) for f, t in zip(fpr, tpr))
            result["dp_region"] = {"epsilon": claimed_epsilon, "delta": bound_delta, "roc_points_outside": int(outside),
                                   "respected": bound.epsilon <= claimed_epsilon}
        attacks[name] = result
    shift = membership.distribution_shift_auc(member_texts, nonmember_texts, seed=config.seed)
    return {"members": int(is_member.sum()), "nonmembers": int((~is_member).sum()), "attacks": attacks,
            "distribution_shift": {"auc": shift, "warning": membership.shift_warning(shift)}}


def _one_run(model, tokenizer, audit_canaries: list[dict], config: AuditConfig, claimed_epsilon, delta) -> dict:
    """The one-run audit's figures: counts and bounds, never a canary's text or its inclusion bit.
    The attack's score is the reference-calibrated loss (base-model loss minus adapter loss): what
    the base model already found likely is no evidence that training saw it."""
    from audits.engine.one_run import audit_one_run

    texts = [c["text"] for c in audit_canaries]
    options = dict(batch_size=config.batch_size, max_length=config.max_length)
    log_probs = membership.token_log_probs(model, tokenizer, texts, **options)
    with model.disable_adapter():
        base_log_probs = membership.token_log_probs(model, tokenizer, texts, **options)
    scores = membership.scores_from_log_probs(texts, log_probs, base_log_probs)["reference"]
    result = audit_one_run(scores, [bool(c["included"]) for c in audit_canaries], delta if delta is not None else 0.0)
    keys = ("canaries", "guesses", "correct", "confidence", "delta", "epsilon_lower_bound", "max_provable_epsilon")
    return {**{k: result[k] for k in keys}, "claimed_epsilon": claimed_epsilon, "method": result["method"]}


def _utility(model, tokenizer, nonmembers, config: AuditConfig) -> dict:
    """Perplexity = exp(mean token NLL) over all held-out tokens, for the base and the adapter."""
    options = dict(batch_size=config.batch_size, max_length=config.max_length)
    adapted = membership.token_log_probs(model, tokenizer, list(nonmembers), **options)
    with model.disable_adapter():
        base = membership.token_log_probs(model, tokenizer, list(nonmembers), **options)

    def perplexity(log_probs):
        tokens = [x for lp in log_probs for x in lp]
        return math.exp(-sum(tokens) / len(tokens))

    base_ppl, adapter_ppl = perplexity(base), perplexity(adapted)
    return {"texts": len(nonmembers), "tokens": sum(len(lp) for lp in adapted), "base_perplexity": base_ppl,
            "adapter_perplexity": adapter_ppl, "ratio": adapter_ppl / base_ppl}


def scored_like_training(config: AuditConfig, max_length: int) -> AuditConfig:
    """The audit config that scores only what training saw: training truncated every record to
    `max_length` tokens, so tokens past it were never trained on, and scoring them measures the
    base model. Membership and utility score `max_length` tokens; extraction's prefix and true
    continuation fit inside them too."""
    from dataclasses import replace

    prefix = min(config.prefix_tokens, max_length // 2)
    return replace(config, max_length=max_length, prefix_tokens=prefix,
                   continuation_tokens=min(config.continuation_tokens, max_length - prefix))


# --- CLI --------------------------------------------------------------------------------------------


class BadInput(Exception):
    pass


def _read_jsonl(path: Path) -> list[str]:
    if not path.is_file():
        raise BadInput(f"{path}: no such file.")
    texts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise BadInput(f"{path}, line {number}: not valid JSON ({error.msg}).") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise BadInput(f"{path}, line {number}: expected an object with a “text” string.")
        texts.append(row["text"])
    if len(texts) < 2:
        raise BadInput(f"{path}: at least two records are needed, found {len(texts)}.")
    return texts


def _read_json_list(path: Path, valid, shape: str) -> list[dict]:
    """A JSON file holding a list of objects that each pass `valid`; `shape` says what is expected."""
    if not path.is_file():
        raise BadInput(f"{path}: no such file.")
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise BadInput(f"{path}, line {error.lineno}: not valid JSON ({error.msg}).") from None
    if not isinstance(items, list) or not all(isinstance(c, dict) and valid(c) for c in items):
        raise BadInput(f"{path}: expected a list of objects with {shape}.")
    return items


def _read_canaries(path: Path) -> list[dict]:
    """canaries.json from training: [{"prefix", "secret", …}, …]."""
    return _read_json_list(path, lambda c: isinstance(c.get("prefix"), str) and isinstance(c.get("secret"), str),
                           "“prefix” and “secret” strings")


def _read_audit_canaries(path: Path) -> list[dict]:
    """audit_canaries.json from training: [{"text", "included"}, …]."""
    return _read_json_list(path, lambda c: isinstance(c.get("text"), str) and isinstance(c.get("included"), bool),
                           "a “text” string and an “included” true or false")


EXIT_CODES = {PASS: 0, FAIL: 1, INCONCLUSIVE: 3}  # 2: bad input


def check_mark(check: dict) -> str:
    outcome = check_outcome(check)
    if outcome == NOT_TESTED:
        return "not tested"
    if outcome == PASSED:
        return "ok"
    return "warn" if check.get("advisory") else "FAIL"


def _print_summary(report: dict, verdict: dict) -> None:
    outcome = verdict_outcome(verdict)
    print(f"\nVERDICT: {outcome.upper()}")
    for check in verdict["checks"]:
        print(f"  [{check_mark(check)}] {check['label']}: {check['reason']}")
    untested = [c["label"] for c in verdict["checks"] if c.get("required") and check_outcome(c) == NOT_TESTED]
    if outcome == INCONCLUSIVE:
        print(f"\nNot tested, and required for a pass: {'; '.join(untested)}.")
    print("\nKey figures")
    for c in report.get("canaries", []):
        extrapolated = "-" if c["extrapolated_bits"] is None else f"{c['extrapolated_bits']:.1f}"
        print(f"  canary {c['index']}: rank {c['rank']}/{c['candidates']}, exposure {c['exposure_bits']:.2f} of "
              f"{c['max_bits']:.2f} bits (extrapolated {extrapolated}), extracted: {'yes' if c['extracted'] else 'no'}")
    for name, a in report.get("membership", {}).get("attacks", {}).items():
        print(f"  MIA {name:<9}: AUC {a['auc']:.3f} [{a['auc_ci'][0]:.3f}, {a['auc_ci'][1]:.3f}], "
              f"TPR@1%FPR {a['tpr_at_1pct_fpr']:.3f}, Clopper–Pearson ε figure {a['epsilon_lower_bound']['epsilon']:.2f} "
              "(descriptive: one model's scores are not independent trials)")
    one_run = report.get("one_run") or {}
    if one_run.get("canaries"):
        print(f"  one-run audit: {one_run['canaries']} audit canaries, {one_run.get('correct')} of {one_run.get('guesses')} "
              f"guesses right: ε ≥ {one_run.get('epsilon_lower_bound', 0):.2f} (the most it could show: "
              f"{one_run.get('max_provable_epsilon', 0):.2f})")
    if "utility" in report:
        u = report["utility"]
        print(f"  held-out perplexity: base {u['base_perplexity']:.2f}, adapter {u['adapter_perplexity']:.2f} "
              f"(×{u['ratio']:.2f})")
    if "pii" in report:
        print(f"  PII: original hits {report['pii'].get('original_hits')} "
              f"(attributable {report['pii'].get('original_hits_attributable')}), surrogate hits {report['pii'].get('surrogate_hits')}")


def _limit(text: str) -> float | None:
    """A limit on the command line: a number, or none (the check is not required)."""
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or none, got {text!r}") from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audits.engine.audit", description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="base model directory (Hugging Face format)")
    parser.add_argument("--adapter", type=Path, required=True, help="adapter directory (PEFT format)")
    parser.add_argument("--members", type=Path, required=True, help="training records, JSONL with “text”")
    parser.add_argument("--nonmembers", type=Path, required=True, help="held-out records, JSONL with “text”")
    parser.add_argument("--canaries", type=Path, help="canaries.json from training: [{prefix, secret, …}]")
    parser.add_argument("--audit-canaries", type=Path,
                        help="audit_canaries.json from training: [{text, included}], for the one-run audit of --epsilon")
    parser.add_argument("--epsilon", type=float, help="the ε claimed for the adapter")
    parser.add_argument("--delta", type=float, help="the δ claimed for the adapter")
    parser.add_argument("--candidates", type=int, default=AuditConfig.candidates)
    parser.add_argument("--no-pii", action="store_true", help="skip PII leakage (no Presidio)")
    parser.add_argument("--json", type=Path, help="write the report and the verdict here")
    parser.add_argument("--max-length", type=int, default=AuditConfig.max_length,
                        help="the max_length the adapter was trained with: tokens past it were never trained on")
    parser.add_argument("--max-exposure-bits", type=_limit, default=Thresholds.max_exposure_bits,
                        help="limit on the MEAN canary exposure (none: not required)")
    parser.add_argument("--max-auc", type=_limit, default=Thresholds.max_mia_auc)
    parser.add_argument("--max-tpr", type=_limit, default=Thresholds.max_tpr_at_1pct_fpr)
    parser.add_argument("--max-pii-hits", type=_limit, default=Thresholds.max_original_pii_hits)
    parser.add_argument("--max-epsilon", type=_limit, help="the approved ε the spent --epsilon may not exceed")
    args = parser.parse_args(argv)
    try:
        for directory in (args.base, args.adapter):
            if not directory.is_dir():
                raise BadInput(f"{directory}: no such directory.")
        members, nonmembers = _read_jsonl(args.members), _read_jsonl(args.nonmembers)
        canaries = _read_canaries(args.canaries) if args.canaries else None
        audit_canaries = _read_audit_canaries(args.audit_canaries) if args.audit_canaries else None
    except BadInput as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from tqdm import tqdm

    detect = None
    if not args.no_pii:
        from audits.engine import leakage

        print("loading the PII detector…", file=sys.stderr)
        detect = leakage.detector_for()
    bar = tqdm(unit="phase", desc="audit")  # the total comes with the first report: PII may be skipped

    def progress(state):
        bar.total = state["total"]
        bar.set_description(f"audit: {state['phase']}")
        bar.update(state["done"] - bar.n)

    report = run_audit(args.base, args.adapter, members, nonmembers, canaries,
                       config=scored_like_training(AuditConfig(candidates=args.candidates), args.max_length),
                       claimed_epsilon=args.epsilon, delta=args.delta,
                       detect=detect, progress=progress, audit_canaries=audit_canaries)
    bar.close()
    verdict = evaluate_verdict(report, Thresholds(max_exposure_bits=args.max_exposure_bits, max_mia_auc=args.max_auc,
                                                  max_tpr_at_1pct_fpr=args.max_tpr, max_original_pii_hits=args.max_pii_hits,
                                                  max_epsilon=args.max_epsilon), args.epsilon)
    if args.json:
        args.json.write_text(json.dumps({"report": report, "verdict": verdict}, indent=2))
    _print_summary(report, verdict)
    return EXIT_CODES[verdict["outcome"]]


if __name__ == "__main__":
    sys.exit(main())
