"""Run the whole training engine from a YAML file, with no portal.

    python -m training.engine.train --config CONFIG.yaml

CONFIG.yaml:
    base_model: path/to/hf-model-directory
    data: path/to/records.jsonl          # lines with "text" (already redacted: the portal redacts first),
                                         # and "subject" (an opaque id) for subject-level DP
    out: path/to/output-directory
    holdout_fraction: 0.1
    seed: 0
    canaries: {count: 10, repetitions: 1, length: 8, audit_count: 64}
    training: {epochs: 1, batch_size: 16, target_epsilon: 8.0, accountant: prv, ...}   # TrainConfig fields
                                         # privacy_unit: subject  samples subjects, not records

Writes into `out`: the adapter (PEFT format), `canaries.json` (mode 0600: the secrets the
memorisation audit looks for), `audit_canaries.json` (mode 0600: the one-run audit's canaries and
which of them were trained on; the manifest has only their number), `holdout.jsonl`
(non-members), `members.jsonl` (a random sample of the training records, at most `audit_members`,
default 1000), `loss.svg`, `epsilon.svg` and `manifest.json`
(every parameter, library versions, seeds, and the SHA-256 of the base weights, the training
data and the adapter).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import sys
from dataclasses import asdict, fields
from importlib import metadata
from pathlib import Path

from training.engine.dp_lora import TrainConfig, train_dp_lora
from training.engine.model_files import sha256_file, weight_hashes
from training.engine.prepare import (CanarySpec, insert_canaries, make_audit_canaries, make_canaries,
                                     split_train_holdout)

LIBRARIES = ("torch", "transformers", "peft", "opacus", "tokenizers", "presidio-analyzer", "spacy")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def save_curves(out: Path, losses: list[float], epsilon_curve: list[tuple[int, float]]) -> list[Path]:
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    paths = []
    for name, xs, ys, label in (
        ("loss.svg", list(range(1, len(losses) + 1)), losses, "training loss (mean per-sequence)"),
        ("epsilon.svg", [s for s, _ in epsilon_curve], [e for _, e in epsilon_curve], "ε spent"),
    ):
        figure, axes = plt.subplots(figsize=(6, 3.2))
        axes.plot(xs, ys, linewidth=1.5)
        axes.set_xlabel("step")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        figure.tight_layout()
        figure.savefig(out / name, metadata={"Date": None})  # no timestamp: same run, same file
        plt.close(figure)
        paths.append(out / name)
    return paths


def run(config: dict, progress=None, should_stop=None, on_checkpoint=None) -> dict:
    """Split, plant canaries, train and write the outputs. `config["data"]` is a JSONL file of
    already-redacted records."""
    out = Path(config["out"])
    out.mkdir(parents=True, exist_ok=True)
    seed = int(config.get("seed", 0))
    rows = [json.loads(line) for line in Path(config["data"]).read_text(encoding="utf-8").splitlines() if line.strip()]
    known = {f.name for f in fields(TrainConfig)}
    training = {k: (tuple(v) if k == "target_modules" else v) for k, v in config.get("training", {}).items() if k in known}
    train_config = TrainConfig(seed=seed, **training)
    by_subject = train_config.dp and train_config.privacy_unit == "subject"
    # Subject-level: each record's "subject" (an opaque id), split by subject; each canary is a
    # subject of its own, all its repetitions included, as a real person's repeated secret would be.
    items = [(row["text"], row.get("subject") if by_subject else None) for row in rows]
    if by_subject and any(subject in (None, "") for _, subject in items):
        raise ValueError("Subject-level DP needs a “subject” on every record of the training data.")
    train, holdout = split_train_holdout(items, float(config.get("holdout_fraction", 0.1)), seed,
                                         subjects=[s for _, s in items] if by_subject else None)
    spec = CanarySpec(**config.get("canaries", {}))
    canaries = make_canaries(spec)
    audit_canaries = make_audit_canaries(spec, avoid={c.secret for c in canaries})
    train_with_canaries = insert_canaries(train, canaries, seed, as_record=lambda i, c: (c.text, f"canary-{i}"))
    # The audit canaries whose secret coin came up heads, once each, each a subject of its own: the
    # one-run audit bounds ε for one record (or one subject), as the accountant does.
    train_with_canaries = insert_canaries(train_with_canaries, [c for c in audit_canaries if c.included], seed + 2,
                                          as_record=lambda i, c: (c.text, f"audit-canary-{i}"))
    result = train_dp_lora(Path(config["base_model"]), [t for t, _ in train_with_canaries], train_config, out / "adapter",
                           subjects=[s for _, s in train_with_canaries] if by_subject else None, progress=progress,
                           should_stop=should_stop, on_checkpoint=on_checkpoint)
    train = [t for t, _ in train]
    holdout = [t for t, _ in holdout]

    fd = os.open(out / "canaries.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump([{"prefix": c.prefix, "secret": c.secret, "repetitions": c.repetitions} for c in canaries], handle)
    fd = os.open(out / "audit_canaries.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump([{"text": c.text, "included": c.included} for c in audit_canaries], handle)
    (out / "holdout.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in holdout), encoding="utf-8")
    # The members the membership audits attack, drawn at random from the training records (canaries
    # excluded): kept, encrypted, so an audit can be re-run after the scratch is gone.
    members = random.Random(seed + 1).sample(train, min(len(train), int(config.get("audit_members", 1000))))
    (out / "members.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in members), encoding="utf-8")
    save_curves(out, result.losses, result.epsilon_curve)
    data_hash = hashlib.sha256("".join(json.dumps({"text": t}) + "\n" for t in train).encode()).hexdigest()
    manifest = {
        "training_config": {k: v for k, v in asdict(train_config).items() if k != "noise_seed"},
        "result": {k: v for k, v in result.as_dict().items() if k not in ("losses", "epsilon_curve")},
        "records": {"train": len(train), "holdout": len(holdout), "canaries": len(canaries), "subjects": result.subjects,
                    "canary_repetitions": canaries[0].repetitions if canaries else 0, "audit_canaries": len(audit_canaries)},
        "seed": seed,
        "libraries": library_versions(),
        "hashes": {
            "base_model_weights": weight_hashes(Path(config["base_model"])),
            "training_data_sha256": data_hash,
            "adapter": {p.name: sha256_file(p) for p in sorted((out / "adapter").iterdir()) if p.is_file()},
        },
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def main(argv=None) -> int:
    import yaml
    from tqdm import tqdm

    parser = argparse.ArgumentParser(prog="python -m training.engine.train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    config = yaml.safe_load(args.config.read_text())
    for key in ("base_model", "data", "out"):
        if key not in config:
            print(f"{args.config}: missing “{key}”.", file=sys.stderr)
            return 2
    bar = tqdm(unit="step", desc="training")

    def progress(state):
        bar.total = state["steps"]
        bar.update(state["step"] - bar.n)
        if state["epsilon"] is not None:
            bar.set_postfix(loss=f"{state['loss']:.3f}" if state["loss"] else "-", epsilon=f"{state['epsilon']:.2f}")

    manifest = run(config, progress)
    bar.close()
    result = manifest["result"]
    print(f"{result['steps']} steps, ε = {result['epsilon']} (δ = {result['delta']}, {result['accountant']}); "
          f"adapter and manifest in {config['out']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
