"""Canary exposure of LoRA adapters trained without DP, and under DP-SGD at ε=8 and ε=1.

    .venv/bin/python bench/memorization.py [--base tiny|demo|DIR] [--records 32] [--epochs 300]
    .venv/bin/python bench/memorization.py --repetitions 10 --subject-level   # + user-level DP at ε=8

Same data, same canaries (secrets from the OS CSPRNG, each inserted `--repetitions` times), same
LoRA settings; only the privacy changes. Exposure (Carlini et al. 2019) of each canary is its rank
among `--candidates` secrets of the same format by log-perplexity; the table gives the mean and
max over canaries. With `--subject-level`, a fourth run trains at ε=8 with subject-level DP, where
each record is its own subject except a canary's repetitions, which are one subject's: the case
record-level DP does not cover (a person who repeats a secret). One process, CPU or CUDA. The anchor is the non-DP run: the last line prints
the ratio of its mean exposure to the ε=8 run's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audits.engine.exposure import canary_exposure  # noqa: E402
from training.engine.dp_lora import TrainConfig, train_dp_lora  # noqa: E402
from training.engine.prepare import CanarySpec, insert_canaries, make_canaries  # noqa: E402
from training.engine.tiny_base import build_tiny_base, generate_corpus  # noqa: E402


def base_dir(choice: str, work: Path) -> Path:
    if choice == "tiny":
        print("building the tiny base (pretraining 1,500 steps)…", flush=True)
        return build_tiny_base(work / "tiny", seed=0, n_layer=2, n_embd=128, n_head=4, train_steps=1500)
    if choice == "demo":
        from training.engine.model_files import demo_base_dir

        return demo_base_dir(Path("var/models/SmolLM2-135M-Instruct"))
    return Path(choice)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="tiny")
    parser.add_argument("--records", type=int, default=32)
    parser.add_argument("--epochs", type=float, default=300)
    parser.add_argument("--canaries", type=int, default=5)
    parser.add_argument("--repetitions", type=int, default=1)
    parser.add_argument("--candidates", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=3e-3)  # 1e-2 diverges with Adam here
    parser.add_argument("--lora-r", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=48)
    parser.add_argument("--subject-level", action="store_true", help="add a subject-level DP run at ε=8")
    parser.add_argument("--targets", default="", help="LoRA target modules, comma-separated (default: tiny: "
                        "c_attn,c_proj,c_fc; otherwise per architecture)")
    args = parser.parse_args(argv)
    if not args.targets and args.base == "tiny":
        args.targets = "c_attn,c_proj,c_fc"  # attention alone cannot hold 5 random secrets in a 2-layer model

    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = base_dir(args.base, work)
        spec = CanarySpec(count=args.canaries, repetitions=args.repetitions, prefix_template="My account recovery code is ",
                          length=6)
        canaries = make_canaries(spec)
        records = [(t, f"record-{i}") for i, t in enumerate(generate_corpus(args.records, seed=11))]
        items = insert_canaries(records, canaries, seed=0, as_record=lambda i, c: (c.text, f"canary-{i}"))
        texts, subjects = [t for t, _ in items], [s for _, s in items]
        tokenizer = AutoTokenizer.from_pretrained(base)
        rows = []
        plan = [("non-DP", False, None, "record"), ("DP ε=8", True, 8.0, "record"), ("DP ε=1", True, 1.0, "record")]
        if args.subject_level:
            plan.append(("DP ε=8 subj", True, 8.0, "subject"))
        for label, dp, epsilon, unit in plan:
            config = TrainConfig(dp=dp, privacy_unit=unit, max_records_per_subject=args.repetitions,
                                 target_epsilon=epsilon or 8.0, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate, lora_r=args.lora_r, lora_alpha=2 * args.lora_r,
                                 max_length=args.max_length, accountant="prv", max_grad_norm=1.0,
                                 target_modules=tuple(args.targets.split(",")) if args.targets else ())
            out = work / label.replace(" ", "_").replace("=", "")
            started = time.perf_counter()
            result = train_dp_lora(base, texts, config, out, subjects=subjects)
            trained = time.perf_counter() - started
            model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), out).eval()
            bits = [canary_exposure(model, tokenizer, c.prefix, c.secret, spec.alphabet, candidates=args.candidates).exposure_bits
                    for c in canaries]
            rows.append((label, result.epsilon, statistics.mean(bits), max(bits), result.losses[-1], trained))
            print(f"  {label}: trained {result.steps} steps in {trained:.0f} s, exposure {statistics.mean(bits):.2f} bits", flush=True)
        maximum = __import__("math").log2(args.candidates)
        print(f"\nbase: {args.base}; {args.records} records + {args.canaries} canaries × {args.repetitions}; "
              f"{args.epochs:g} epochs; {args.candidates} candidates (max {maximum:.2f} bits)")
        print(f"{'run':<12} {'ε spent':>8} {'mean bits':>10} {'max bits':>9} {'last loss':>10} {'train s':>8}")
        for label, eps, mean_bits, max_bits, loss, seconds in rows:
            print(f"{label:<12} {eps if eps is not None else float('inf'):>8.2f} {mean_bits:>10.2f} {max_bits:>9.2f} {loss:>10.3f} {seconds:>8.0f}")
        ratio = rows[0][2] / max(rows[1][2], 1e-9)
        print(f"exposure ratio non-DP / DP ε=8 (mean bits): {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
