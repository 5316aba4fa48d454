"""DP-SGD overhead: the same model, data and batch, non-DP LoRA against DP-LoRA with Opacus's
`hooks` and `ghost` (fast gradient clipping) modes. Median step time and peak memory.

Anchor: the non-DP LoRA step on the same batch (dp-transformers reports 1.12x for GPT-2 LoRA).
Each mode runs in its own process, so peak resident memory is its own.

    python bench/dp_overhead.py [--steps 15] [--batch 16] [--length 64] [--layers 6] [--width 768]
    python bench/dp_overhead.py --base demo [--steps 8]    # the demo base, SmolLM2-135M (LoRA on q_proj, v_proj)

The last line prints the DP/non-DP step-time ratio for `hooks` (and `ghost`).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _measure(mode: str, base: str, args, queue) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    import torch
    from torch import nn

    from training.engine.dp_lora import TrainConfig, lora_model, sequence_losses, tokenize
    from training.engine.tiny_base import generate_corpus

    torch.manual_seed(0)
    model = lora_model(Path(base), TrainConfig(max_length=args.length))
    model.train()
    ids, mask = tokenize(Path(base), generate_corpus(args.batch, seed=1), args.length)
    dataset = torch.utils.data.TensorDataset(ids, mask)
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    criterion = None
    if mode != "non-DP":
        from opacus import PrivacyEngine

        class SequenceLoss(nn.Module):
            """Per-sequence mean token loss; Opacus's ghost mode sets `reduction` to "none"."""

            reduction = "mean"

            def forward(self, logits, batch_mask):
                targets, token_mask = batch_mask
                losses = nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), targets[:, 1:].reshape(-1),
                                                     reduction="none").view(targets[:, 1:].shape) * token_mask[:, 1:]
                per_sequence = losses.sum(1) / token_mask[:, 1:].sum(1).clamp(min=1)
                return per_sequence if self.reduction == "none" else per_sequence.mean()

        engine = PrivacyEngine(accountant="rdp")
        made = engine.make_private(module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=1.0,
                                   max_grad_norm=1.0, poisson_sampling=False, grad_sample_mode=mode,
                                   criterion=SequenceLoss())
        if mode == "ghost":
            model, optimizer, criterion, loader = made
        else:
            model, optimizer, loader = made
    batch_ids, batch_mask = next(iter(loader))
    times = []
    for _ in range(args.steps + 3):
        started = time.perf_counter()
        optimizer.zero_grad()
        if criterion is not None:
            logits = model(input_ids=batch_ids, attention_mask=batch_mask).logits
            loss = criterion(logits, (batch_ids, batch_mask.float()))
        else:
            loss = sequence_losses(model, batch_ids, batch_mask).mean()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    queue.put((mode, statistics.median(times[3:]), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--base", default="", help="'demo' (SmolLM2-135M, converted once under var/models) or a model "
                        "directory; default: a GPT-2 style model of --layers and --width")
    args = parser.parse_args()

    if args.base:
        from training.engine.model_files import demo_base_dir

        base = str(demo_base_dir(Path("var/models/SmolLM2-135M-Instruct")) if args.base == "demo" else Path(args.base))
        described = f"{Path(base).name}, LoRA r=8 on the architecture's attention projections"
    else:
        from training.engine.tiny_base import build_tiny_base

        base = tempfile.mkdtemp(prefix="provenant-bench-dp-")
        build_tiny_base(Path(base), n_layer=args.layers, n_embd=args.width, n_head=4, n_positions=max(128, args.length))
        described = f"GPT-2 style, {args.layers} layers, width {args.width}, LoRA r=8 on c_attn"
    context = multiprocessing.get_context("spawn")
    results = {}
    for mode in ("non-DP", "hooks", "ghost"):
        queue = context.Queue()
        process = context.Process(target=_measure, args=(mode, base, args, queue))
        process.start()
        process.join()
        results[mode] = queue.get() if process.exitcode == 0 else (mode, None, None)
    anchor = results["non-DP"][1]
    print(f"{described}; batch {args.batch} x {args.length} tokens; median of {args.steps} steps; CPU")
    print(f"{'mode':<8}{'step s':>10}{'x non-DP':>10}{'peak RSS MB':>13}")
    for mode, seconds, peak in results.values():
        if seconds is None:
            print(f"{mode:<8}{'failed':>10}")
            continue
        print(f"{mode:<8}{seconds:>10.4f}{seconds / anchor:>10.2f}{peak:>13.0f}")
    hooks, ghost = results["hooks"][1], results["ghost"][1]
    print(f"DP/non-DP step time: hooks {hooks / anchor:.2f}x" + (f", ghost {ghost / anchor:.2f}x" if ghost else ", ghost failed"))


if __name__ == "__main__":
    main()
