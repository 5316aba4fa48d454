"""DP-LoRA on a tiny GPT-2 built offline: Opacus gradients, accounting, learning, saved adapters."""

import pytest

torch = pytest.importorskip("torch")

from training.engine.dp_lora import TrainConfig, lora_model, sequence_losses, tokenize, train_dp_lora  # noqa: E402
from training.engine.tiny_base import build_tiny_base, generate_corpus  # noqa: E402


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    return build_tiny_base(tmp_path_factory.mktemp("tiny-base"), seed=0)


@pytest.fixture(scope="session")
def texts():
    return generate_corpus(64, seed=3)


def test_opacus_per_sample_gradients_of_lora_weights_equal_per_example_backward(tiny_base, texts):
    """Guards Opacus issue #820 (silently wrong LoRA updates with some opacus/peft pairs)."""
    from opacus import GradSampleModule

    config = TrainConfig(max_length=32)
    torch.manual_seed(0)
    model = lora_model(tiny_base, config)
    for name, param in model.named_parameters():  # lora_B starts at zero; make every gradient non-trivial
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.05)
    model.train()
    input_ids, mask = tokenize(tiny_base, texts[:6], config.max_length)
    wrapped = GradSampleModule(model, batch_first=True, loss_reduction="mean")
    sequence_losses(wrapped, input_ids, mask).mean().backward()
    lora_params = [(n, p) for n, p in wrapped.named_parameters() if p.requires_grad]
    assert lora_params and all("lora_" in n for n, _ in lora_params)
    per_sample = {n: p.grad_sample.detach().clone() for n, p in lora_params}
    for i in range(input_ids.shape[0]):
        model.zero_grad()
        sequence_losses(model, input_ids[i:i + 1], mask[i:i + 1]).sum().backward()
        for name, param in model.named_parameters():
            if param.requires_grad:
                wrapped_name = f"_module.{name}"
                torch.testing.assert_close(per_sample[wrapped_name][i], param.grad, rtol=1e-4, atol=1e-6)


def test_sequence_losses_do_not_depend_on_other_records(tiny_base, texts):
    config = TrainConfig(max_length=32)
    model = lora_model(tiny_base, config).eval()
    ids, mask = tokenize(tiny_base, texts[:4], config.max_length)
    together = sequence_losses(model, ids, mask)
    alone = torch.stack([sequence_losses(model, ids[i:i + 1], mask[i:i + 1])[0] for i in range(4)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)


def test_dp_with_negligible_noise_learns_like_non_dp(tiny_base, texts):
    common = dict(epochs=6, batch_size=16, max_length=32, learning_rate=2e-2, seed=1)
    plain = train_dp_lora(tiny_base, texts, TrainConfig(dp=False, **common))
    private = train_dp_lora(tiny_base, texts, TrainConfig(dp=True, noise_multiplier=1e-6, max_grad_norm=100.0, noise_seed=0,
                                                         accountant="rdp", **common))
    first = sum(plain.losses[:3]) / 3
    plain_drop = first - sum(plain.losses[-3:]) / 3
    private_drop = sum(private.losses[:3]) / 3 - sum(private.losses[-3:]) / 3
    assert plain_drop > 0.3, plain.losses
    assert private_drop == pytest.approx(plain_drop, rel=0.35)


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_epsilon_recorded_is_the_accountants_for_the_steps_taken(tiny_base, texts, accountant):
    config = TrainConfig(epochs=2, batch_size=8, max_length=32, target_epsilon=4.0, accountant=accountant, noise_seed=0)
    result = train_dp_lora(tiny_base, texts, config)
    from opacus.accountants import create_accountant

    independent = create_accountant(accountant)
    independent.history = [(result.noise_multiplier, result.sample_rate, result.steps)]
    assert result.epsilon == pytest.approx(independent.get_epsilon(delta=result.delta), rel=1e-6)
    assert result.epsilon <= config.target_epsilon + 1e-6
    assert result.delta == pytest.approx(1e-5)  # 1/(10·64) is larger: the 1e-5 cap holds


def test_stopping_early_reports_the_epsilon_of_the_steps_actually_taken(tiny_base, texts):
    calls = {"n": 0}

    def stop_after_three():
        calls["n"] += 1
        return calls["n"] > 3

    config = TrainConfig(epochs=3, batch_size=8, max_length=32, target_epsilon=4.0, accountant="rdp", noise_seed=0)
    stopped = train_dp_lora(tiny_base, texts, config, should_stop=stop_after_three)
    full = train_dp_lora(tiny_base, texts, config)
    assert stopped.stopped_early and stopped.steps == 3
    assert stopped.epsilon < full.epsilon


def test_saved_adapter_reloads_with_identical_logits(tiny_base, texts, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    config = TrainConfig(epochs=1, batch_size=8, max_length=32, target_epsilon=8.0, noise_seed=0)
    out = tmp_path / "adapter"
    train_dp_lora(tiny_base, texts, config, out)
    assert (out / "adapter_config.json").exists() and (out / "adapter_model.safetensors").exists()
    ids, mask = tokenize(tiny_base, texts[:3], config.max_length)
    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base), out).eval()
    again = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base), out).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_base).eval()
    with torch.no_grad():
        first, second = reloaded(input_ids=ids, attention_mask=mask).logits, again(input_ids=ids, attention_mask=mask).logits
        plain = base(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    assert not torch.allclose(first, plain)  # the adapter changed the model: it is not a no-op


def test_unknown_architecture_needs_named_target_modules():
    from types import SimpleNamespace

    from training.engine.dp_lora import target_modules_for

    with pytest.raises(ValueError, match="name the modules"):
        target_modules_for(SimpleNamespace(config=SimpleNamespace(model_type="mystery")))
    assert target_modules_for(SimpleNamespace(config=SimpleNamespace(model_type="llama"))) == ["q_proj", "v_proj"]


@pytest.mark.django_db
def test_bootstrap_registers_the_tiny_base_with_its_weight_hashes(data_dir, engineer, regulator):
    import io

    from django.core.management import call_command

    from governance.models import AuditEvent
    from training.engine.model_files import sha256_file
    from training.models import BaseModel

    call_command("bootstrap_tiny_base_model", "--steps", "3", stdout=io.StringIO(), verbosity=0)
    model = BaseModel.objects.get(name="tiny-gpt2-seed0")
    weights = data_dir / "models" / "tiny-gpt2-seed0" / "model.safetensors"
    assert model.weight_hashes == {"model.safetensors": sha256_file(weights)}
    assert model.architecture == "gpt2" and model.parameter_count > 100_000
    assert AuditEvent.objects.filter(action="basemodel.registered").exists()
    assert list(BaseModel.objects.visible_to(engineer)) == [model]
    assert not BaseModel.objects.visible_to(regulator).exists()


def test_engine_cli_trains_from_a_yaml_config_and_writes_manifest_curves_and_canaries(tiny_base, texts, tmp_path):
    import json
    import stat

    import yaml

    from training.engine import train as engine_train
    from training.engine.model_files import sha256_file

    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    out = tmp_path / "out"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "base_model": str(tiny_base), "data": str(data), "out": str(out), "holdout_fraction": 0.25, "seed": 2,
        "canaries": {"count": 3, "repetitions": 2},
        "training": {"epochs": 1, "batch_size": 8, "max_length": 32, "target_epsilon": 6.0, "accountant": "rdp"},
    }))
    assert engine_train.main(["--config", str(config)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["records"] == {"train": 48, "holdout": 16, "canaries": 3, "canary_repetitions": 2, "subjects": None,
                                   "audit_canaries": 64}
    assert 0 < manifest["result"]["epsilon"] <= 6.0 and manifest["libraries"]["opacus"]
    assert manifest["hashes"]["adapter"]["adapter_model.safetensors"] == sha256_file(out / "adapter" / "adapter_model.safetensors")
    assert manifest["hashes"]["base_model_weights"] == {"model.safetensors": sha256_file(tiny_base / "model.safetensors")}
    assert "noise_seed" not in manifest["training_config"]
    secrets_file = out / "canaries.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    secrets = [c["secret"] for c in json.loads(secrets_file.read_text())]
    assert not any(s in (out / "manifest.json").read_text() for s in secrets)
    assert (out / "loss.svg").read_text().startswith("<?xml") and (out / "epsilon.svg").exists()
    assert len((out / "holdout.jsonl").read_text().splitlines()) == 16


def test_engine_cli_names_a_missing_setting(tmp_path, capsys):
    from training.engine import train as engine_train

    config = tmp_path / "config.yaml"
    config.write_text("data: x.jsonl\nout: out\n")
    assert engine_train.main(["--config", str(config)]) == 2
    assert "missing “base_model”" in capsys.readouterr().err


@pytest.mark.parametrize("grad_sample_mode", ["hooks", "ghost"])
def test_empty_poisson_batches_are_noise_only_steps_that_are_accounted(tiny_base, texts, grad_sample_mode):
    """8 records at an expected batch of 1: about one step in three draws nobody."""
    config = TrainConfig(dp=True, epochs=4, batch_size=1, max_length=16, accountant="rdp", noise_multiplier=1.0, seed=2,
                         grad_sample_mode=grad_sample_mode)
    result = train_dp_lora(tiny_base, texts[:8], config)
    assert result.steps == 32
    assert len(result.losses) < result.steps  # some steps had an empty batch, and training went on
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    accountant.history = [(1.0, result.sample_rate, result.steps)]
    assert result.epsilon == pytest.approx(accountant.get_epsilon(result.delta))


def test_the_sample_rate_planned_is_the_one_opacus_draws_with_when_batches_do_not_divide_the_data(tiny_base, texts):
    """37 records at batch 16: Opacus's sampler draws with q = 1/len(loader) = 1/3, not 16/37."""
    config = TrainConfig(epochs=1, batch_size=16, max_length=16, target_epsilon=3.0, accountant="rdp", noise_seed=0)
    result = train_dp_lora(tiny_base, texts[:37], config)
    assert result.sample_rate == pytest.approx(1 / 3) and result.steps == 3
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    accountant.history = [(result.noise_multiplier, result.sample_rate, result.steps)]
    assert result.epsilon == pytest.approx(accountant.get_epsilon(result.delta))
    assert 2.5 < result.epsilon <= 3.0  # σ was planned for this mechanism: the budget is used, not wasted


def test_subject_level_gradients_are_the_mean_per_sample_gradient_of_each_subjects_records(tiny_base, texts):
    from opacus import GradSampleModule

    from training.engine.dp_lora import average_grad_samples_per_subject

    config = TrainConfig(max_length=32)
    torch.manual_seed(0)
    model = lora_model(tiny_base, config)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.05)
    model.train()
    input_ids, mask = tokenize(tiny_base, texts[:5], config.max_length)
    owners = torch.tensor([0, 1, 0, 2, 0])  # subject 0 wrote three records, subjects 1 and 2 one each
    wrapped = GradSampleModule(model, batch_first=True, loss_reduction="mean")
    sequence_losses(wrapped, input_ids, mask).mean().backward()
    average_grad_samples_per_subject(wrapped, owners, 3)
    per_subject = {n: p.grad_sample.detach().clone() for n, p in wrapped.named_parameters() if p.requires_grad}
    for subject in range(3):
        rows = (owners == subject).nonzero().flatten()
        model.zero_grad()
        sequence_losses(model, input_ids[rows], mask[rows]).mean().backward()
        for name, param in model.named_parameters():
            if param.requires_grad:
                assert per_subject[f"_module.{name}"].shape[0] == 3
                torch.testing.assert_close(per_subject[f"_module.{name}"][subject], param.grad, rtol=1e-4, atol=1e-6)


def test_subject_level_dp_samples_and_accounts_subjects_not_records(tiny_base, texts):
    subjects = [f"customer-{i % 12}" for i in range(len(texts))]  # 64 records from 12 people
    config = TrainConfig(epochs=2, batch_size=4, max_length=32, target_epsilon=4.0, accountant="rdp", noise_seed=0,
                         privacy_unit="subject", max_records_per_subject=3, max_delta=1e-2)
    result = train_dp_lora(tiny_base, texts, config, subjects=subjects)
    assert result.privacy_unit == "subject" and result.subjects == 12
    assert result.delta == pytest.approx(1 / (10 * 12))  # N counts subjects, not the 64 records
    assert result.sample_rate == pytest.approx(1 / 3) and result.steps == 6
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    accountant.history = [(result.noise_multiplier, result.sample_rate, result.steps)]
    assert result.epsilon == pytest.approx(accountant.get_epsilon(result.delta)) and result.epsilon <= 4.0


def test_subject_level_dp_with_negligible_noise_still_learns(tiny_base, texts):
    subjects = [f"customer-{i % 16}" for i in range(len(texts))]
    # 16 epochs: the subjects and their records are drawn in secret, so the drop varies from run to
    # run (about 0.33 to 0.43 here); at 12 epochs it came within 0.02 of the bar.
    config = TrainConfig(epochs=16, batch_size=8, max_length=32, learning_rate=2e-2, seed=1, noise_multiplier=1e-6,
                         max_grad_norm=100.0, noise_seed=0, accountant="rdp", privacy_unit="subject")
    result = train_dp_lora(tiny_base, texts, config, subjects=subjects)
    assert sum(result.losses[:3]) / 3 - sum(result.losses[-3:]) / 3 > 0.3, result.losses


@pytest.mark.parametrize("change, subjects, message", [
    ({"grad_sample_mode": "ghost"}, "all", "ghost clipping"),
    ({}, None, "one subject id per record"),
    ({}, "one-missing", "1 record"),
    ({"privacy_unit": "household"}, "all", "privacy_unit"),
])
def test_subject_level_dp_refuses_what_it_cannot_guarantee(tiny_base, texts, change, subjects, message):
    ids = {"all": [str(i % 4) for i in range(8)], "one-missing": [str(i % 4) for i in range(7)] + [""], None: None}[subjects]
    config = TrainConfig(**{"privacy_unit": "subject", "epochs": 1, "max_length": 16, **change})
    with pytest.raises(ValueError, match=message):
        train_dp_lora(tiny_base, texts[:8], config, subjects=ids)


def test_engine_cli_splits_by_subject_and_makes_each_canary_one_subject(tiny_base, texts, tmp_path):
    import json

    import yaml

    from training.engine import train as engine_train

    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"text": t, "subject": f"s{i % 8}"}) + "\n" for i, t in enumerate(texts)))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "base_model": str(tiny_base), "data": str(data), "out": str(tmp_path / "out"), "holdout_fraction": 0.25,
        "canaries": {"count": 2, "repetitions": 5},
        "training": {"epochs": 1, "batch_size": 2, "max_length": 32, "accountant": "rdp", "privacy_unit": "subject"},
    }))
    assert engine_train.main(["--config", str(config)]) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    # 8 subjects, 2 held out whole (16 records), 6 in training plus 2 canary subjects of 5 copies each
    assert manifest["records"]["holdout"] == 16 and manifest["records"]["train"] == 48
    # and each audit canary that training saw, once, a subject of its own
    included = sum(c["included"] for c in json.loads((tmp_path / "out" / "audit_canaries.json").read_text()))
    assert manifest["records"]["subjects"] == 8 + included and manifest["result"]["privacy_unit"] == "subject"
    assert manifest["result"]["delta"] == pytest.approx(1e-5)  # 1/(10·8 subjects) is larger: the cap holds


def sampled_rows_per_step(monkeypatch):
    """Record, for every forward pass of the LoRA model, which token rows (records) it saw."""
    from training.engine import dp_lora

    seen = []
    build = dp_lora.lora_model

    def watched(base_dir, config):
        model = build(base_dir, config)
        model.register_forward_pre_hook(
            lambda module, args, kwargs: seen.append(sorted(map(tuple, kwargs["input_ids"].tolist()))), with_kwargs=True)
        return model

    monkeypatch.setattr(dp_lora, "lora_model", watched)
    return seen


def test_the_poisson_sampler_does_not_follow_the_public_seed(tiny_base, texts, monkeypatch):
    seen = sampled_rows_per_step(monkeypatch)
    config = TrainConfig(epochs=1, batch_size=8, max_length=16, accountant="rdp", noise_multiplier=1.0, seed=0, noise_seed=0)
    train_dp_lora(tiny_base, texts, config)
    first = list(seen)
    seen.clear()
    train_dp_lora(tiny_base, texts, config)
    assert len(first) > 4 and len(seen) > 4
    assert first != seen  # same seed, same noise seed: only secret sampling tells the runs apart


def test_the_records_a_sampled_subject_contributes_do_not_follow_the_public_seed(tiny_base, texts, monkeypatch):
    """Two subjects of 16 records each and a sampling rate of 1: every step draws both subjects, so
    the steps differ only in which 2 of each subject's 16 records they use."""
    seen = sampled_rows_per_step(monkeypatch)
    subjects = [f"s{i % 2}" for i in range(32)]
    config = TrainConfig(epochs=3, batch_size=2, max_length=16, accountant="rdp", noise_multiplier=1.0, seed=0, noise_seed=0,
                         privacy_unit="subject", max_records_per_subject=2)
    train_dp_lora(tiny_base, texts[:32], config, subjects=subjects)
    first = list(seen)
    seen.clear()
    train_dp_lora(tiny_base, texts[:32], config, subjects=subjects)
    assert [len(rows) for rows in first] == [len(rows) for rows in seen] == [4, 4, 4]
    assert first != seen


def test_ghost_clipping_sums_each_records_gradient_clipped_to_max_grad_norm(tiny_base, texts):
    """With noise 0, the gradient ghost clipping leaves is Σ_i g_i·min(1, C/‖g_i‖) over the records' own
    per-sequence-loss gradients, computed here one record at a time."""
    import copy

    from training.engine.dp_lora import batch_loss, make_private, sequence_loss_criterion

    torch.manual_seed(0)
    model = lora_model(tiny_base, TrainConfig(max_length=32))
    for name, param in model.named_parameters():  # lora_B starts at zero; make every gradient non-trivial
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.05)
    model.train()
    ids, mask = tokenize(tiny_base, texts[:6], 32)
    alone = copy.deepcopy(model)
    names = [n for n, p in alone.named_parameters() if p.requires_grad]
    per_record = []
    for i in range(ids.shape[0]):
        alone.zero_grad()
        sequence_losses(alone, ids[i:i + 1], mask[i:i + 1]).sum().backward()
        per_record.append({n: p.grad.detach().clone() for n, p in alone.named_parameters() if p.requires_grad})
    norms = torch.stack([torch.sqrt(sum((g ** 2).sum() for g in grads.values())) for grads in per_record])
    bound = float(norms.median())  # some records above it, some below: both sides of the clip are checked
    assert (norms > bound).any() and (norms < bound).any()
    config = TrainConfig(grad_sample_mode="ghost", max_grad_norm=bound, noise_multiplier=0.0, noise_seed=0)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(ids, mask), batch_size=6)
    _, private, optimizer, criterion, _ = make_private(model, optimizer, sequence_loss_criterion(), loader, config, 0.0, "cpu")
    optimizer.zero_grad()
    batch_loss(private, criterion, ids, mask).backward()
    torch.testing.assert_close(private.per_sample_gradient_norms, norms, rtol=1e-4, atol=1e-6)
    for name, param in private.named_parameters():
        if param.requires_grad:
            plain = name.removeprefix("_module.")
            expected = sum(g[plain] * min(1.0, bound / (float(n) + 1e-6)) for g, n in zip(per_record, norms))
            torch.testing.assert_close(param.grad, expected, rtol=1e-4, atol=1e-6)
    assert sorted(n.removeprefix("_module.") for n, p in private.named_parameters() if p.requires_grad) == sorted(names)


def test_a_ghost_clipping_run_trains_and_reports_the_accountants_epsilon(tiny_base, texts, tmp_path):
    from safetensors.torch import load_file

    config = TrainConfig(epochs=2, batch_size=8, max_length=32, target_epsilon=4.0, accountant="rdp", grad_sample_mode="ghost",
                         noise_seed=0)
    result = train_dp_lora(tiny_base, texts, config, tmp_path / "adapter")
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    accountant.history = [(result.noise_multiplier, result.sample_rate, result.steps)]
    assert result.steps == 16 and result.losses
    assert result.epsilon == pytest.approx(accountant.get_epsilon(result.delta)) and 3.0 < result.epsilon <= 4.0
    weights = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    assert any("lora_B" in name and tensor.abs().sum() > 0 for name, tensor in weights.items())  # the update reached LoRA


@pytest.mark.parametrize("units, max_delta, expected", [
    (64, None, 1e-5),  # 1/(10·64) is far above 1e-5: the default cap holds
    (200_000, None, 1 / 2_000_000),  # a large N: a tenth of 1/N
    (64, 1e-2, 1 / 640),  # a data class allowing more: a tenth of 1/N
    (64, 1e-3, 1e-3),  # ... up to its cap
])
def test_the_default_delta_is_a_tenth_of_one_over_n_under_the_cap(units, max_delta, expected):
    from training.engine.dp_lora import delta_for

    assert delta_for(TrainConfig(max_delta=max_delta), units, "records") == pytest.approx(expected)


@pytest.mark.parametrize("target_delta, privacy_unit, subjects, named", [
    (1 / 8, "record", None, "N = 8 records"),
    (0.3, "record", None, "N = 8 records"),
    (1 / 4, "subject", [str(i % 4) for i in range(8)], "N = 4 subjects"),
])
def test_a_delta_of_one_over_n_or_more_is_refused(tiny_base, texts, target_delta, privacy_unit, subjects, named):
    config = TrainConfig(epochs=1, max_length=16, target_delta=target_delta, privacy_unit=privacy_unit)
    with pytest.raises(ValueError, match="publishes one person's record verbatim") as refused:
        train_dp_lora(tiny_base, texts[:8], config, subjects=subjects)
    assert named in str(refused.value)


def test_a_delta_below_one_over_n_is_kept(tiny_base, texts):
    config = TrainConfig(epochs=1, batch_size=4, max_length=16, target_delta=1e-3, accountant="rdp", noise_seed=0)
    assert train_dp_lora(tiny_base, texts[:8], config).delta == 1e-3
