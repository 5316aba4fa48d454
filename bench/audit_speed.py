"""Canary candidate scoring: the audit's scorer (`exposure.shared_prefix_log_perplexities`: the
canary's prefix through the model once, the candidates in batches on its cached keys and values)
against a one-sequence-at-a-time Hugging Face loop (`model(input_ids, labels=input_ids)` per
sequence); the plain batched scorer (`exposure.log_perplexities`) is shown between the two.

Anchor: the per-sequence loop, as the exposure code of many audits is written. Both score the same
candidates ("<prefix><secret>" with random 8-digit secrets) on the same model; the loop only a
subset, which must give the same scores (rel 1e-3) as the batched scorer.

    python bench/audit_speed.py [--base DIR] [--candidates 4000] [--loop 300] [--batch 256] [--layers 6] [--width 512]
                                [--threads N]

On a CPU shared with other work, pin --threads 1: two OpenMP threads that must wait for a busy
core slow the many small forward passes of the loop far more than the few large batched ones, and
the ratio then measures contention, not batching.

Without --base, a GPT-2 with random weights (tokenizer from training.engine.tiny_base). The last
line prints the batched/loop throughput ratio.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def loop_scores(model, tokenizer, texts: list[str]) -> list[float]:
    """Sum of token NLLs per text, one forward pass per text. HF's loss is the mean over the
    len − 1 predicted tokens, so multiply it back to the sum that log_perplexities returns."""
    import torch

    device = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(text, return_tensors="pt")["input_ids"].to(device)
            out.append(float(model(ids, labels=ids).loss) * (ids.shape[1] - 1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="a Hugging Face model directory (default: a random GPT-2)")
    parser.add_argument("--candidates", type=int, default=4000)
    parser.add_argument("--loop", type=int, default=300, help="candidates for the one-at-a-time loop")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from audits.engine.exposure import log_perplexities, shared_prefix_log_perplexities
    from training.engine.tiny_base import build_tiny_base

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.base:
        model, tokenizer = AutoModelForCausalLM.from_pretrained(args.base), AutoTokenizer.from_pretrained(args.base)
        label = args.base
    else:
        # The tiny base only for its tokenizer; the model is built wider and deeper from a config.
        tokenizer = AutoTokenizer.from_pretrained(build_tiny_base(Path(tempfile.mkdtemp(prefix="provenant-bench-audit-")),
                                                                  n_layer=1, n_embd=32))
        torch.manual_seed(0)
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=128, n_embd=args.width,
                                           n_layer=args.layers, n_head=8, bos_token_id=tokenizer.bos_token_id,
                                           eos_token_id=tokenizer.eos_token_id))
        label = f"GPT-2 style, random weights, {args.layers} layers, width {args.width}"
    model = model.to(device).eval()
    rng = random.Random(0)
    texts = [f"My account recovery code is {rng.randrange(10**8):08d}" for _ in range(args.candidates)]

    log_perplexities(model, tokenizer, texts[:args.batch], args.batch)  # warm-up: allocator, kernels
    started = time.perf_counter()
    plain = log_perplexities(model, tokenizer, texts, args.batch)
    plain_rate = len(texts) / (time.perf_counter() - started)
    started = time.perf_counter()
    batched = shared_prefix_log_perplexities(model, tokenizer, texts, args.batch)
    batched_rate = len(texts) / (time.perf_counter() - started)
    drift = max(abs(a - b) / abs(b) for a, b in zip(batched, plain))
    if drift > 1e-3:
        sys.exit(f"the two batched scorers differ: largest relative difference {drift:.2e} (> 1e-3)")

    subset = texts[:args.loop]
    loop_scores(model, tokenizer, subset[:5])  # warm-up
    started = time.perf_counter()
    looped = loop_scores(model, tokenizer, subset)
    loop_rate = len(subset) / (time.perf_counter() - started)

    worst = max(abs(a - b) / abs(b) for a, b in zip(batched[:args.loop], looped))
    if worst > 1e-3:
        sys.exit(f"scores differ: largest relative difference {worst:.2e} (> 1e-3)")
    print(f"{label}; {device}; {torch.get_num_threads()} threads; sequences of "
          f"{len(tokenizer(texts[0])['input_ids'])} tokens")
    print(f"{'scorer':<28}{'sequences':>10}{'seq/s':>10}")
    print(f"{'shared prefix, batch ' + str(args.batch):<28}{len(texts):>10}{batched_rate:>10.1f}")
    print(f"{'plain batched, batch ' + str(args.batch):<28}{len(texts):>10}{plain_rate:>10.1f}")
    print(f"{'HF loop, one at a time':<28}{len(subset):>10}{loop_rate:>10.1f}")
    print(f"same scores on the shared {len(subset)}: largest relative difference {worst:.1e}")
    print(f"batched/loop throughput ratio: {batched_rate / loop_rate:.2f}x")


if __name__ == "__main__":
    main()
