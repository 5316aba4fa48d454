"""DP-LoRA: a PEFT LoRA adapter trained with Opacus DP-SGD. No Django here.

Privacy: Poisson sampling of records (or of data subjects, see below), per-sample clipping to `max_grad_norm`, Gaussian noise
with the multiplier that the chosen accountant computes for the target ε and δ over the planned
steps; the ε reported is what the same accountant gives for the steps actually taken. The loss is
computed per sequence and averaged over the batch, so each record's gradient depends on that
record only (the HF `labels=` loss averages over all tokens of the batch and couples samples).

Secrets: the Poisson sampler, the per-subject record choice and the noise all draw from the OS
entropy pool, never from `seed`. The seed is public (it is in the manifest); an adversary who knows
which records each step used, or the noise, can subtract them and the guarantee is void.

δ: by default min(cap, 1/(10·N)), N the units sampled (records, or subjects) and cap `max_delta`
(a data class's rule) or 1e-5 without one. A δ of 1/N or more is refused: at δ = 1/N a mechanism
that publishes one randomly chosen record verbatim is (0, δ)-DP, so the guarantee would say nothing.

Ghost clipping (`grad_sample_mode="ghost"`): Opacus computes each record's gradient norm without
materialising per-sample gradients, in two backward passes that its loss wrapper runs inside
`loss.backward()`: the first for the norms, the second on the per-record losses weighted by their
clipping factors. The loss must therefore go through the wrapped criterion
(`sequence_loss_criterion`), never a plain `.backward()` on our own mean.

User-level DP (`privacy_unit="subject"`): record-level DP does not protect a person who wrote many
records, and a value repeated N times is learned N times (REFERENCES: a canary repeated 100× was
fully exposed at ε=8). With a subject id per record, the sampler draws subjects instead of
records; each sampled subject contributes the mean per-sample gradient of at most
`max_records_per_subject` of its records (drawn at random each step), and that one gradient per
subject is clipped and noised. The accountant then speaks of subjects: q is the subject sampling
rate and the N of the δ default counts subjects. It needs materialised per-sample gradients, so it
works with `hooks` and `functorch`, not `ghost` (which clips without ever forming them).
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

# LoRA targets per architecture: the attention projections, as in the LoRA paper.
TARGET_MODULES = {
    "gpt2": ["c_attn"],
    "llama": ["q_proj", "v_proj"],
    "mistral": ["q_proj", "v_proj"],
    "qwen2": ["q_proj", "v_proj"],
    "gpt_neox": ["query_key_value"],
    "opt": ["q_proj", "v_proj"],
    "phi": ["q_proj", "v_proj"],
}


@dataclass(frozen=True)
class TrainConfig:
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ()  # empty: chosen per architecture
    epochs: float = 1.0
    learning_rate: float = 1e-3
    batch_size: int = 16  # expected logical batch under Poisson sampling
    max_length: int = 64
    dp: bool = True
    target_epsilon: float = 8.0
    # None: min(cap, 1/(10·N)), N the records (subjects under subject-level DP). An explicit δ must
    # stay below 1/N: at 1/N a mechanism may publish one person's record verbatim.
    target_delta: float | None = None
    # The cap on the default δ from the data's rules; None: 1e-5. A data class may allow more.
    max_delta: float | None = None
    max_grad_norm: float = 1.0
    accountant: str = "prv"  # "prv" or "rdp": picks σ and reports ε
    grad_sample_mode: str = "hooks"
    noise_multiplier: float | None = None  # set only to override the accountant (tests, audits)
    # Initialisation, and the data order of a run without DP; recorded in the run manifest, so
    # public. The DP sampler never follows it.
    seed: int = 0
    # The DP noise must be unpredictable: by default its generator is seeded from the OS
    # entropy pool and the seed is never recorded. Tests may fix it to compare runs.
    noise_seed: int | None = None
    checkpoint_every: int = 0  # steps between adapter checkpoints; 0: none
    privacy_unit: str = "record"  # "record" or "subject" (user-level DP: needs a subject id per record)
    max_records_per_subject: int = 8  # subject-level: records of a sampled subject used in one step


@dataclass
class TrainResult:
    steps: int
    epochs: float
    losses: list[float]
    epsilon: float | None  # spent, by the accountant, for the steps taken; None without DP
    delta: float | None
    noise_multiplier: float | None
    sample_rate: float
    accountant: str | None
    records: int
    seconds: float
    device: str
    stopped_early: bool = False
    privacy_unit: str = "record"
    subjects: int | None = None  # subject-level: how many distinct subjects the data holds
    epsilon_curve: list[tuple[int, float]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


class TrainingStopped(Exception):
    pass


def pick_device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def target_modules_for(model, override: tuple[str, ...] = ()) -> list[str]:
    if override:
        return list(override)
    model_type = getattr(model.config, "model_type", "")
    if model_type not in TARGET_MODULES:
        raise ValueError(f"No default LoRA targets for architecture {model_type!r}: name the modules to adapt.")
    return TARGET_MODULES[model_type]


def losses_per_sequence(logits, input_ids, attention_mask):
    """Mean token loss of each sequence, from the model's logits: one number per record."""
    import torch.nn.functional as F

    logits = logits[:, :-1, :]
    targets = input_ids[:, 1:]
    mask = attention_mask[:, 1:].to(logits.dtype)
    token_losses = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="none")
    token_losses = token_losses.view(targets.shape) * mask
    return token_losses.sum(dim=1) / mask.sum(dim=1).clamp(min=1)


def sequence_losses(model, input_ids, attention_mask):
    """Mean token loss of each sequence: one number per record."""
    return losses_per_sequence(model(input_ids=input_ids, attention_mask=attention_mask).logits, input_ids, attention_mask)


def sequence_loss_criterion():
    """The training loss as a criterion: the mean over the batch of each sequence's mean token loss.
    Opacus's ghost-clipping wrapper sets `reduction` to "none" to get one loss per record, then runs
    both backward passes itself."""
    from torch import nn

    class SequenceLoss(nn.Module):
        def __init__(self):
            super().__init__()
            self.reduction = "mean"

        def forward(self, logits, input_ids, attention_mask):
            losses = losses_per_sequence(logits, input_ids, attention_mask)
            return losses if self.reduction == "none" else losses.mean()

    return SequenceLoss()


def batch_loss(model, criterion, input_ids, attention_mask):
    """The batch's loss through `criterion`: under ghost clipping, Opacus's wrapper, whose
    `.backward()` clips each record's gradient."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    return criterion(logits, input_ids, attention_mask)


# The default δ's ceiling when no data class allows more.
DEFAULT_MAX_DELTA = 1e-5


def delta_for(config: TrainConfig, units: int, unit: str) -> float:
    """The δ of the guarantee over `units` records or subjects (`unit` names them)."""
    if config.target_delta is None:
        cap = config.max_delta if config.max_delta is not None else DEFAULT_MAX_DELTA
        return min(cap, 1.0 / (10 * units))
    if config.target_delta >= 1.0 / units:
        raise ValueError(f"δ = {config.target_delta:g} is not below 1/N (N = {units} {unit}): a δ of 1/N or more allows "
                         f"a mechanism that publishes one person's record verbatim. Pick δ well below 1/N, or leave it "
                         f"empty for the default, at most 1/(10·N).")
    return config.target_delta


def secret_seed() -> int:
    """64 bits from the OS CSPRNG, for what must stay unpredictable; never stored."""
    return int.from_bytes(os.urandom(8), "big")


def lora_model(base_dir: Path, config: TrainConfig):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_dir)
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=target_modules_for(base, config.target_modules), task_type="CAUSAL_LM",
                      fan_in_fan_out=getattr(base.config, "model_type", "") == "gpt2")
    return get_peft_model(base, lora)


def tokenize(base_dir: Path, texts: list[str], max_length: int):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    batch = tokenizer(texts, return_tensors="pt", padding="max_length", truncation=True, max_length=max_length)
    return batch["input_ids"], batch["attention_mask"]


def noise_for(config: TrainConfig, sample_rate: float, steps: int, delta: float) -> float:
    if config.noise_multiplier is not None:
        return config.noise_multiplier
    from opacus.accountants.utils import get_noise_multiplier

    return get_noise_multiplier(target_epsilon=config.target_epsilon, target_delta=delta, sample_rate=sample_rate,
                                steps=steps, accountant=config.accountant)


def check_privacy_unit(config: TrainConfig, texts: list[str], subjects: list[str] | None) -> None:
    if config.privacy_unit not in ("record", "subject"):
        raise ValueError("privacy_unit must be “record” or “subject”.")
    if config.privacy_unit != "subject" or not config.dp:
        return
    if "ghost" in config.grad_sample_mode:
        raise ValueError("Subject-level DP needs per-sample gradients to average per subject; ghost clipping never forms "
                         "them. Use grad_sample_mode “hooks” or “functorch”.")
    if config.max_records_per_subject < 1:
        raise ValueError("max_records_per_subject must be at least 1.")
    if subjects is None or len(subjects) != len(texts):
        raise ValueError("Subject-level DP needs one subject id per record.")
    missing = sum(1 for s in subjects if s is None or s == "")
    if missing:
        raise ValueError(f"{missing} record(s) have no subject id; subject-level DP needs one on every record.")


def group_by_subject(subjects: list[str]) -> list[list[int]]:
    """Record indices of each subject, subjects in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for index, subject in enumerate(subjects):
        groups.setdefault(subject, []).append(index)
    return list(groups.values())


def subject_batch(sampled, groups: list[list[int]], input_ids, attention_mask, per_subject: int, rng: random.Random):
    """The records of the sampled subjects (at most `per_subject` each, drawn at random), and for
    each record the position of its subject in the batch."""
    import torch

    rows, owners = [], []
    for position, subject in enumerate(sampled.tolist()):
        members = groups[subject]
        chosen = members if len(members) <= per_subject else sorted(rng.sample(members, per_subject))
        rows.extend(chosen)
        owners.extend([position] * len(chosen))
    index = torch.tensor(rows, dtype=torch.long)
    return input_ids[index], attention_mask[index], torch.tensor(owners, dtype=torch.long)


def average_grad_samples_per_subject(model, owners, subjects: int) -> None:
    """Replace Opacus's per-record gradients by one mean gradient per subject, so the optimizer
    clips and noises subjects, not records: a subject's whole contribution is bounded by C."""
    import torch

    counts = torch.bincount(owners, minlength=subjects).clamp(min=1)
    for param in model.parameters():
        grad_sample = getattr(param, "grad_sample", None)
        if not param.requires_grad or grad_sample is None:
            continue
        summed = torch.zeros((subjects, *grad_sample.shape[1:]), dtype=grad_sample.dtype, device=grad_sample.device)
        summed.index_add_(0, owners.to(grad_sample.device), grad_sample)
        param.grad_sample = summed / counts.to(grad_sample.device, grad_sample.dtype).view(-1, *([1] * (grad_sample.dim() - 1)))


def make_private(model, optimizer, criterion, loader, config: TrainConfig, noise_multiplier: float, device):
    """Opacus's privacy engine around the model, optimizer, criterion and loader (Poisson sampling).
    Returns (engine, model, optimizer, criterion, loader); under ghost clipping the criterion is
    Opacus's wrapper, whose `.backward()` clips, otherwise the one given."""
    import torch
    from opacus import PrivacyEngine

    engine = PrivacyEngine(accountant=config.accountant)
    made = engine.make_private(
        module=model, optimizer=optimizer, data_loader=loader, criterion=criterion, noise_multiplier=noise_multiplier,
        max_grad_norm=config.max_grad_norm, poisson_sampling=True, grad_sample_mode=config.grad_sample_mode,
        noise_generator=torch.Generator(device=device).manual_seed(
            config.noise_seed if config.noise_seed is not None else secret_seed()),
    )
    if "ghost" in config.grad_sample_mode:  # Opacus's own test for returning the criterion
        model, optimizer, criterion, loader = made
    else:
        model, optimizer, loader = made
    return engine, model, optimizer, criterion, loader


def train_dp_lora(base_dir: Path, texts: list[str], config: TrainConfig, out_dir: Path | None = None, *,
                  subjects: list[str] | None = None, progress: Callable[[dict], None] | None = None,
                  should_stop: Callable[[], bool] | None = None,
                  on_checkpoint: Callable[[int, Path], None] | None = None) -> TrainResult:
    """Train a LoRA adapter on `texts`; save it in PEFT format to `out_dir` if given.

    `subjects` (one id per text) is needed for subject-level DP. With `checkpoint_every`, the
    adapter is also saved every that many steps under `out_dir/../checkpoints/step-N`, and
    `on_checkpoint(step, path)` is called (the portal encrypts the checkpoint there and removes
    the plaintext)."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    check_privacy_unit(config, texts, subjects)
    by_subject = config.dp and config.privacy_unit == "subject"
    records = len(texts)
    groups = group_by_subject(subjects) if by_subject else None
    units = len(groups) if by_subject else records  # what the sampler draws and the guarantee speaks of
    delta = delta_for(config, units, "subjects" if by_subject else "records") if config.dp else None
    torch.manual_seed(config.seed)
    device = pick_device()
    started = time.perf_counter()
    model = lora_model(base_dir, config).to(device)
    model.train()
    input_ids, attention_mask = tokenize(base_dir, texts, config.max_length)
    dataset = TensorDataset(torch.arange(units)) if by_subject else TensorDataset(input_ids, attention_mask)
    # Opacus's Poisson sampler draws each unit with probability 1/len(loader): plan σ and report ε
    # with that very rate, so the accountant that picks σ sees the mechanism that runs.
    steps_per_epoch = math.ceil(units / config.batch_size)
    sample_rate = 1 / steps_per_epoch
    planned_steps = max(1, math.ceil(config.epochs * steps_per_epoch))
    # Opacus's DPDataLoader draws its Poisson masks from this loader's generator (outside its
    # secure_mode): under DP it must be secret, or anyone holding the manifest could replay which
    # records each step used. Without DP there is nothing to protect and the seed keeps runs repeatable.
    order = torch.Generator().manual_seed(secret_seed() if config.dp else config.seed)
    loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, generator=order)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    criterion = sequence_loss_criterion()
    noise_multiplier = engine = None
    if config.dp:
        noise_multiplier = noise_for(config, sample_rate, planned_steps, delta)
        engine, model, optimizer, criterion, loader = make_private(model, optimizer, criterion, loader, config,
                                                                   noise_multiplier, device)
    # Which records of a sampled subject a step uses is part of the sampling: secret too.
    picker = random.SystemRandom()
    losses, epsilon_curve, step, stopped = [], [], 0, False
    while step < planned_steps and not stopped:
        for batch in loader:
            if step >= planned_steps:
                break
            if should_stop and should_stop():
                stopped = True
                break
            owners = None
            if by_subject:
                sampled = batch[0]
                batch_ids, batch_mask, owners = subject_batch(sampled, groups, input_ids, attention_mask,
                                                              config.max_records_per_subject, picker)
            else:
                batch_ids, batch_mask = batch
            optimizer.zero_grad()
            if batch_ids.shape[0]:
                loss = batch_loss(model, criterion, batch_ids.to(device), batch_mask.to(device))
                loss.backward()  # under ghost clipping: Opacus's two passes, leaving the clipped sum in .grad
                if owners is not None:
                    average_grad_samples_per_subject(model, owners, len(sampled))
                losses.append(float(loss.detach()))
            elif engine is not None:
                # Poisson sampling can draw an empty batch. It must still be a step: noise only,
                # accounted like any other. Opacus clips per-sample gradients (hooks, functorch):
                # give it zero samples. Ghost mode's optimizer only noises the summed .grad: give
                # it a zero sum. Either way the step adds only noise.
                for param in model.parameters():
                    if not param.requires_grad:
                        continue
                    if "ghost" in config.grad_sample_mode:
                        param.grad = torch.zeros_like(param)
                    else:
                        param.grad_sample = torch.zeros((0, *param.shape), device=param.device, dtype=param.dtype)
            optimizer.step()  # an empty Poisson batch still takes a (noise-only) step and is accounted
            step += 1
            spent = engine.get_epsilon(delta) if engine and (step % 10 == 0 or step == planned_steps) else None
            if spent is not None:
                epsilon_curve.append((step, spent))
            if config.checkpoint_every and out_dir is not None and step % config.checkpoint_every == 0 and step < planned_steps:
                path = Path(out_dir).parent / "checkpoints" / f"step-{step}"
                getattr(model, "_module", model).save_pretrained(path)
                if on_checkpoint:
                    on_checkpoint(step, path)
            if progress:
                progress({"step": step, "steps": planned_steps, "epoch": step / steps_per_epoch,
                          "loss": losses[-1] if losses else None, "epsilon": spent})
    epsilon = engine.get_epsilon(delta) if engine and step else (0.0 if engine else None)
    if out_dir is not None:
        unwrapped = getattr(model, "_module", model)
        unwrapped.save_pretrained(out_dir)
    return TrainResult(steps=step, epochs=step / steps_per_epoch, losses=losses, epsilon=epsilon, delta=delta,
                       noise_multiplier=noise_multiplier, sample_rate=sample_rate,
                       accountant=config.accountant if config.dp else None, records=records,
                       seconds=round(time.perf_counter() - started, 3), device=str(device), stopped_early=stopped,
                       privacy_unit=("subject" if by_subject else "record") if config.dp else "none",
                       subjects=units if by_subject else None, epsilon_curve=epsilon_curve)
