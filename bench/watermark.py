"""The gateway's watermark on the demo base: detection rate, false positives on human text, and its cost in perplexity.

    .venv/bin/python bench/watermark.py [--quick] [--base demo|DIR] [--texts 200] [--max-new-tokens 100]
        [--temperature 1.0] [--top-p 1.0] [--batch-size 16] [--threads N] [--seed 0] [--json OUT]

With the settings the gateway uses (`serving.engine.watermark`: green list 0.25, bias 2.0, left
hash over one token, exact binomial p-value, watermarked at p <= 3.17e-5, the tail of z = 4), it
generates `--texts` completions of a fixed, varied list of chat prompts twice, with the watermark
and without it (same prompts, same sampling seeds, so the pairs differ only by the watermark), and
collects as many human-written texts from this machine:

- licences: the paragraphs of /usr/share/common-licenses (GPL, Apache, MPL, Artistic, ...);
- Python docstrings: module, class and function docstrings of the standard library's modules
  (prose only: a docstring with a doctest prompt is left out);
- package documentation: README, NEWS and FAQ files under /usr/share/doc.

Human texts are cut into chunks, exact and near duplicates dropped (licence boilerplate repeats
across files), and each is cut to `--max-new-tokens` tokens, the generations' length, so both sides
are scored on the same number of tokens. All were written by people long before this model existed.

It reports the detection rate (TPR) on the watermarked generations, the false-positive rate on the
human texts and on the unwatermarked generations, the z-scores' spread on human text (a calibrated
detector gives mean ~0 and sd ~1), and the utility cost: the perplexity of each set of generations
under the unwatermarked model, given its prompt. The last line is the ratio of perplexities, with
the watermark over without. Generation is batched (`--batch-size`) with the same watermarking
config the model server passes to `generate`. The default size takes ~10-15 minutes on 2 idle
cores; `--quick` (40 texts of 64 tokens) about a fifth of that.
"""

from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import json
import math
import random
import re
import statistics
import sys
import sysconfig
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from serving.engine import watermark as wm  # noqa: E402

TOPICS = ["bicycles", "the history of tea", "volcanoes", "learning a second language", "saving money", "honeybees",
          "the moon landing", "remote work", "composting", "the printing press", "sleep", "chess", "rainforests",
          "electric cars", "the Roman Empire", "photography", "public libraries", "marathon training", "coffee",
          "recycling plastic", "the ocean's tides", "jazz music", "vaccines", "baking bread", "the internet",
          "mountain climbing", "bird migration", "renewable energy", "ancient Egypt", "friendship", "city parks",
          "the human heart", "board games", "deserts", "writing a good email", "time management", "penguins",
          "the water cycle", "museums", "gardening in small spaces"]
TEMPLATES = ["Write a short paragraph about {}.", "Explain {} to a ten-year-old.", "Give three practical tips about {}.",
             "Write a short story that involves {}.", "What are the advantages and drawbacks of {}?"]
# A fixed key, so the figures can be reproduced; a deployment's key comes from the OS's entropy.
BENCH_KEY = wm.WatermarkKey(0x5EED_0F_B3_9C_7A_11)


def prompts(count: int) -> list[str]:
    """`count` prompts, topics and task templates interleaved so that any prefix of the list is varied."""
    pairs = [(t, topic) for i, topic in enumerate(TOPICS) for t in TEMPLATES[i % 5:] + TEMPLATES[:i % 5]]
    ordered = [pairs[i * 5 + j] for j in range(5) for i in range(len(TOPICS))]
    return [template.format(topic) for template, topic in (ordered * (count // len(ordered) + 1))[:count]]


# --------------------------------------------------------------------------- human texts


def _paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


def _chunks(paragraphs: list[str], min_chars: int) -> list[str]:
    """Consecutive paragraphs joined until a chunk has `min_chars` characters."""
    out, current = [], ""
    for paragraph in paragraphs:
        current = f"{current} {paragraph}".strip()
        if len(current) >= min_chars:
            out.append(current)
            current = ""
    return out


def _prose(text: str) -> bool:
    letters = sum(c.isalpha() for c in text)
    return letters >= 0.7 * len(text.replace(" ", "")) and ">>>" not in text and "{" not in text


def _read(path: Path) -> str:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return data.decode("utf-8", errors="replace")


def human_sources(min_chars: int) -> dict[str, list[str]]:
    sources: dict[str, list[str]] = {"licences": [], "python docstrings": [], "package docs": []}
    seen_files = set()
    for path in sorted(Path("/usr/share/common-licenses").glob("*")):
        if path.is_file() and (real := path.resolve()) not in seen_files:
            seen_files.add(real)
            sources["licences"] += _chunks(_paragraphs(_read(real)), min_chars)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in [tree, *ast.walk(tree)]:
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    sources["python docstrings"] += _chunks(_paragraphs(doc), min_chars)
    docs = Path("/usr/share/doc")
    for path in sorted(docs.glob("*/*")):
        if path.is_file() and re.match(r"(?i)(readme|news|faq)(\.md|\.txt|\.markdown)?(\.gz)?$", path.name):
            try:
                sources["package docs"] += _chunks(_paragraphs(_read(path)), min_chars)
            except OSError:
                continue
    return sources


def human_texts(count: int, tokenizer, max_tokens: int, seed: int) -> list[tuple[str, str]]:
    """(source, text) pairs: prose chunks, duplicates and near duplicates dropped, taken from the
    sources in turn, each cut to `max_tokens` tokens."""
    rng = random.Random(seed)
    pools, seen = {}, set()
    for source, chunks in human_sources(min_chars=max_tokens * 6).items():
        kept = []
        for chunk in chunks:
            words = re.sub(r"\W+", " ", chunk.lower()).split()
            fingerprint = hashlib.sha256(" ".join(words[:25]).encode()).hexdigest()  # the same opening = near duplicate
            if _prose(chunk) and fingerprint not in seen:
                seen.add(fingerprint)
                kept.append(chunk)
        rng.shuffle(kept)
        pools[source] = kept
    out = []
    while len(out) < count and any(pools.values()):
        for source, pool in pools.items():
            if pool and len(out) < count:
                ids = tokenizer(pool.pop(), add_special_tokens=False)["input_ids"][:max_tokens]
                out.append((source, tokenizer.decode(ids)))
    return out


# --------------------------------------------------------------------------- generation and scoring


def generate_pairs(model, tokenizer, prompt_ids: list[list[int]], args, key) -> dict:
    """The new token ids after each prompt (cut at the end token), with the watermark and without,
    and the seconds each side took. Batch b is sampled from seed + b on both sides, and the two
    sides alternate batch by batch, so a change in the machine's load hits both alike."""
    import torch

    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    sides = {"with": {"config": wm.watermarking_config(key), "ids": [], "seconds": 0.0},
             "without": {"config": None, "ids": [], "seconds": 0.0}}
    for b, start in enumerate(range(0, len(prompt_ids), args.batch_size)):
        chunk = prompt_ids[start:start + args.batch_size]
        width = max(map(len, chunk))
        ids = torch.tensor([[pad] * (width - len(x)) + x for x in chunk])
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in chunk])
        for side in sides.values():
            torch.manual_seed(args.seed + b)
            started = time.perf_counter()
            with torch.no_grad():
                generated = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=args.max_new_tokens,
                                           do_sample=True, temperature=args.temperature, top_p=args.top_p, top_k=0,
                                           pad_token_id=pad, eos_token_id=eos, watermarking_config=side["config"])
            side["seconds"] += time.perf_counter() - started
            side["ids"] += [row[:row.index(eos)] if eos in row else row for row in generated[:, width:].tolist()]
        print(f"  generated {start + len(chunk)}/{len(prompt_ids)} prompts with and without the watermark", flush=True)
    return sides


def negative_log_likelihoods(model, prompt_ids, new_ids, batch_size: int) -> list[tuple[float, int]]:
    """(sum of NLL, tokens) of each continuation given its prompt, under `model`. Only the
    continuation's positions go through the loss: a log-softmax over the whole batch and vocabulary
    would be a second tensor as large as the logits."""
    import torch
    import torch.nn.functional as F

    out = []
    for start in range(0, len(prompt_ids), batch_size):
        pairs = list(zip(prompt_ids[start:start + batch_size], new_ids[start:start + batch_size]))
        rows = [p + n for p, n in pairs]
        width = max(map(len, rows))
        ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits
        for i, (p, n) in enumerate(pairs):
            if n:
                predicted = logits[i, len(p) - 1:len(p) - 1 + len(n)].float()
                out.append((float(F.cross_entropy(predicted, torch.tensor(n), reduction="sum")), len(n)))
            else:
                out.append((0.0, 0))
    return out


def perplexity(nlls: list[tuple[float, int]]) -> dict:
    total, tokens = sum(n for n, _ in nlls), sum(t for _, t in nlls)
    per_text = [math.exp(n / t) for n, t in nlls if t]
    return {"corpus": math.exp(total / tokens) if tokens else float("nan"),
            "median_per_text": statistics.median(per_text) if per_text else float("nan"), "tokens": tokens}


def rates(detections: list[wm.Detection]) -> dict:
    n = len(detections)
    flagged = sum(d.watermarked for d in detections)
    short = sum(d.verdict == wm.TOO_SHORT for d in detections)
    z = [d.z_score for d in detections if d.tokens_scored]
    return {"texts": n, "watermarked": flagged, "rate": flagged / n if n else float("nan"), "too_short": short,
            "z_mean": statistics.fmean(z) if z else float("nan"), "z_sd": statistics.pstdev(z) if len(z) > 1 else float("nan"),
            "z_max": max(z) if z else float("nan"), "z_min": min(z) if z else float("nan"),
            "tokens_scored_median": statistics.median(d.tokens_scored for d in detections) if n else 0}


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson interval of a rate k/n (an observed 0/200 is not a rate of zero)."""
    if not n:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="demo", help="'demo' (SmolLM2-135M-Instruct, converted once under var/models) or a "
                        "Hugging Face model directory")
    parser.add_argument("--texts", type=int, default=200, help="generations with the watermark, without it, and human texts")
    parser.add_argument("--max-new-tokens", type=int, default=100)
    parser.add_argument("--temperature", type=float, default=1.0, help="the gateway's default when a client sends none")
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default; 1 is faster on a busy machine)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="40 texts of 64 tokens")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    if args.quick:
        args.texts, args.max_new_tokens = min(args.texts, 40), min(args.max_new_tokens, 64)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.base == "demo":
        from training.engine.model_files import demo_base_dir

        base = demo_base_dir(Path("var/models/SmolLM2-135M-Instruct"))
    else:
        base = Path(args.base)
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base).eval()
    chat = bool(getattr(tokenizer, "chat_template", None))
    texts = prompts(args.texts)
    rendered = [tokenizer.apply_chat_template([{"role": "user", "content": t}], tokenize=False, add_generation_prompt=True)
                if chat else f"user: {t}\nassistant:" for t in texts]
    prompt_ids = [tokenizer(r, add_special_tokens=not chat)["input_ids"] for r in rendered]

    print(f"{base.name}: {len(texts)} prompts, {args.max_new_tokens} new tokens, temperature {args.temperature}, "
          f"top_p {args.top_p}, batch {args.batch_size}, {torch.get_num_threads()} torch threads", flush=True)
    sides = generate_pairs(model, tokenizer, prompt_ids, args, BENCH_KEY)
    marked, marked_seconds = sides["with"]["ids"], sides["with"]["seconds"]
    plain, plain_seconds = sides["without"]["ids"], sides["without"]["seconds"]
    print("scoring perplexity and the watermark…", flush=True)
    ppl_marked = perplexity(negative_log_likelihoods(model, prompt_ids, marked, 4))
    ppl_plain = perplexity(negative_log_likelihoods(model, prompt_ids, plain, 4))

    def detect(text):
        return wm.detect(text, tokenizer, model.config, BENCH_KEY)

    decoded_marked = [tokenizer.decode(ids, skip_special_tokens=True) for ids in marked]
    decoded_plain = [tokenizer.decode(ids, skip_special_tokens=True) for ids in plain]
    humans = human_texts(args.texts, tokenizer, args.max_new_tokens, args.seed)
    results = {
        "watermarked generations": rates([detect(t) for t in decoded_marked]),
        "unwatermarked generations": rates([detect(t) for t in decoded_plain]),
        "human texts": rates([detect(t) for _, t in humans]),
    }
    by_source = {}
    for source, text in humans:
        by_source.setdefault(source, []).append(detect(text))

    print()
    print(f"watermark: green list {wm.GREENLIST_RATIO}, bias {wm.BIAS}, {wm.SEEDING_SCHEME} over {wm.CONTEXT_WIDTH} token, "
          f"watermarked at exact p <= {wm.ALPHA:.3g} (z = {wm.Z_THRESHOLD:g}); 'too short' under {wm.MIN_TOKENS_FOR_NEGATIVE} "
          "scored tokens")
    print(f"{'texts':<28}{'n':>5}{'flagged':>9}{'rate':>8}{'95% CI':>17}{'short':>7}{'z mean':>8}{'z sd':>7}{'z max':>7}"
          f"{'tokens':>8}")
    for label, r in results.items():
        low, high = wilson(r["watermarked"], r["texts"])
        print(f"{label:<28}{r['texts']:>5}{r['watermarked']:>9}{r['rate']:>8.3f}{f'[{low:.3f}, {high:.3f}]':>17}{r['too_short']:>7}"
              f"{r['z_mean']:>8.2f}{r['z_sd']:>7.2f}{r['z_max']:>7.2f}{r['tokens_scored_median']:>8.0f}")
    for source, detections in by_source.items():
        r = rates(detections)
        print(f"{'  human: ' + source:<28}{r['texts']:>5}{r['watermarked']:>9}{r['rate']:>8.3f}{'':>17}{r['too_short']:>7}"
              f"{r['z_mean']:>8.2f}{r['z_sd']:>7.2f}{r['z_max']:>7.2f}{r['tokens_scored_median']:>8.0f}")
    print()
    marked_tokens, plain_tokens = sum(map(len, marked)), sum(map(len, plain))
    print(f"{'generations':<28}{'perplexity':>11}{'median/text':>13}{'tokens':>8}{'tok/s':>8}")
    print(f"{'with watermark':<28}{ppl_marked['corpus']:>11.2f}{ppl_marked['median_per_text']:>13.2f}{marked_tokens:>8}"
          f"{marked_tokens / marked_seconds:>8.1f}")
    print(f"{'without watermark':<28}{ppl_plain['corpus']:>11.2f}{ppl_plain['median_per_text']:>13.2f}{plain_tokens:>8}"
          f"{plain_tokens / plain_seconds:>8.1f}")
    print(f"TPR {results['watermarked generations']['rate']:.3f}, FPR on human text "
          f"{results['human texts']['rate']:.3f} ({results['human texts']['watermarked']}/{results['human texts']['texts']}), "
          f"{time.perf_counter() - started:.0f} s in all")
    ratio = ppl_marked["corpus"] / ppl_plain["corpus"]
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "detection": results,
                                         "human_by_source": {s: rates(d) for s, d in by_source.items()},
                                         "perplexity": {"with": ppl_marked, "without": ppl_plain}, "ratio": ratio}, indent=2))
    print(f"perplexity with / without watermark: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
