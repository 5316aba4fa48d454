"""Run settings have one schema (training.settings_schema): every wrong type, range or key is an
InvalidRunSettings whose sentence names the key's path, never a TypeError further down."""

import dataclasses
import json

import pytest

from training.engine.dp_lora import TrainConfig
from training.engine.prepare import CanarySpec
from training.runs import InvalidRunSettings, RunSettings
from training.settings_schema import RunSettingsSchema
from tests.governance.test_requests import base_model, setup  # noqa: F401 - fixtures


def refusal(raw) -> str:
    with pytest.raises(InvalidRunSettings) as caught:
        RunSettings.from_dict(raw)
    return str(caught.value)


@pytest.mark.parametrize("value", ["abc", "8", [8.0], {"value": 8.0}, None, True])
def test_a_number_setting_of_another_type_is_refused_naming_its_key(value):
    assert refusal({"training": {"target_epsilon": value}}).startswith("training.target_epsilon: must be a number, got ")


def test_an_epsilon_of_1e999_is_refused_as_not_finite():
    """JSON's 1e999 parses as infinity: ε = ∞ once passed validation and broke the database write."""
    assert "training.target_epsilon: must be a finite number" in refusal(json.loads('{"training": {"target_epsilon": 1e999}}'))


@pytest.mark.parametrize("value", ["16", 16.5, False])
def test_a_whole_number_setting_refuses_text_fractions_and_booleans(value):
    assert refusal({"training": {"batch_size": value}}).startswith("training.batch_size: must be a whole number")


def test_a_whole_number_sent_as_a_float_without_fraction_is_accepted():
    assert RunSettings.from_dict({"training": {"batch_size": 16.0}}).training.batch_size == 16


@pytest.mark.parametrize("value", [1, "false", None])
def test_a_switch_must_be_true_or_false(value):
    assert refusal({"redaction": value}).startswith("redaction: must be true or false")


@pytest.mark.parametrize("raw, path", [
    ({"training": {"epoch": 3}}, "training.epoch"),
    ({"canaries": {"colour": "red"}}, "canaries.colour"),
    ({"epochs": 3}, "epochs"),
])
def test_an_unknown_key_is_refused_with_its_path(raw, path):
    assert refusal(raw).startswith(f"{path}: is not a setting")


@pytest.mark.parametrize("raw, path", [
    ({"holdout_fraction": 0.95}, "holdout_fraction"),
    ({"training": {"lora_dropout": 1.0}}, "training.lora_dropout"),
    ({"training": {"max_length": 4}}, "training.max_length"),
    ({"canaries": {"length": 5000}}, "canaries.length"),
    ({"seed": -1}, "seed"),
])
def test_a_value_out_of_range_is_refused_with_its_path(raw, path):
    assert refusal(raw).startswith(f"{path}: must be")


@pytest.mark.parametrize("value", [[], [["epochs", 1]], "training", None])
def test_a_section_that_is_not_an_object_is_refused(value):
    assert refusal({"training": value}).startswith("training: must be an object of settings")


@pytest.mark.parametrize("raw, path", [
    ({"subject_field": "customer\ud800"}, "subject_field"),
    ({"subject_field": "customer\x00id"}, "subject_field"),
    ({"training": {"target_modules": ["c_attn", "\udfff"]}}, "training.target_modules[1]"),
    ({"canaries": {"alphabet": "0123456789\ud800"}}, "canaries.alphabet"),
])
def test_text_with_a_lone_surrogate_or_a_nul_is_refused(raw, path):
    message = refusal(raw)
    assert message.startswith(f"{path}: ") and ("surrogate" in message or "NUL" in message)
    message.encode("utf-8")  # the sentence itself is quotable: in a page, a JSON answer, a trail event


def test_the_settings_a_run_may_not_choose_are_refused_naming_them():
    assert refusal({"training": {"noise_seed": 1}}).startswith("training.noise_seed: The DP noise seed cannot be set")
    assert refusal({"training": {"noise_multiplier": 0.5}}).startswith("training.noise_multiplier: The noise multiplier cannot")
    assert refusal({"training": {"seed": 3}}).startswith("training.seed: Set the run's seed at the top level")


@pytest.mark.parametrize("audit, expected", [
    ({"candidates": "many"}, "audit.candidates: must be a whole number, got 'many'"),
    ({"mia_sample": 0}, "audit.mia_sample: must be at least 1"),
    ({"bootstrap": [100]}, "audit.bootstrap: must be a whole number"),
    ([1], "audit: must be an object of settings"),
    ({"\ud800": 1}, "audit: unknown audit settings: '\\ud800'"),
])
def test_audit_overrides_of_the_wrong_type_are_refused_naming_the_key(audit, expected):
    assert expected in refusal({"audit": audit})


def test_every_problem_is_named_not_only_the_first():
    message = refusal({"training": {"target_epsilon": "abc", "batch_size": "x"}, "subject_field": 5})
    assert all(path in message for path in ("training.target_epsilon", "training.batch_size", "subject_field"))


def test_a_config_stored_by_an_older_version_still_loads():
    """Runs keep their config: one stored before σ was dropped from it, with a float batch size."""
    stored = {"training": {"lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": [], "epochs": 1,
                           "learning_rate": 0.001, "batch_size": 8.0, "max_length": 32, "dp": True, "target_epsilon": 4.0,
                           "target_delta": None, "max_delta": None, "max_grad_norm": 1.0, "accountant": "rdp",
                           "grad_sample_mode": "hooks", "noise_multiplier": None, "checkpoint_every": 0},
              "canaries": {"count": 2, "repetitions": 1, "prefix_template": "My account recovery code is ",
                           "alphabet": "0123456789", "length": 6},
              "holdout_fraction": 0.2, "seed": 0, "redaction": True}
    loaded = RunSettings.from_dict(stored)
    assert (loaded.training.target_epsilon, loaded.training.batch_size, loaded.canaries.count) == (4.0, 8, 2)
    assert RunSettings.from_dict(loaded.as_dict()) == loaded


def test_the_schemas_defaults_are_the_engines_defaults():
    """One source: a default changed in the engine and not in the schema (or back) would split them."""
    built = RunSettings.from_dict({})
    assert built.training == TrainConfig() and built.canaries == CanarySpec() and built == RunSettings()


def test_the_schema_describes_every_engine_setting_a_run_may_choose():
    chosen_elsewhere = {"noise_multiplier", "noise_seed", "seed"}
    training = RunSettingsSchema.model_json_schema()["$defs"]["TrainingSettings"]["properties"]
    assert set(training) == {f.name for f in dataclasses.fields(TrainConfig)} - chosen_elsewhere
    assert training["target_epsilon"]["type"] == "number" and training["batch_size"]["type"] == "integer"


def test_the_request_form_shows_a_settings_problem_beside_its_field(engineer, setup):
    from workflow.request_forms import TrainingRequestForm, initial_for

    data = {"title": "Drafts", "intended_use": "Replies", "base_model": setup["base_model"].pk, "datasets": [setup["dataset"].pk],
            "compute_target": setup["computetarget"].pk, "audience": "internal", "dp": "on", "redaction": "on"}
    data.update({k: ",".join(v) if isinstance(v, list) else v for k, v in initial_for(None).items()
                 if v is not None and k not in data and not isinstance(v, bool)})
    form = TrainingRequestForm({**data, "privacy_unit": "subject", "subject_field": "", "target_modules": "c_attn, q\ud800"},
                               user=engineer)
    assert not form.is_valid()
    assert any("lone surrogate" in e for e in form.errors["target_modules"]) and "__all__" not in form.errors


def test_the_train_command_refuses_a_run_whose_stored_settings_are_wrong_naming_the_key(engineer, base_model):
    from django.core.management import CommandError, call_command

    from training.models import RunState, TrainingRun

    run = TrainingRun.objects.create(created_by=engineer, base_model=base_model, config={"training": {"target_epsilon": "abc"}})
    with pytest.raises(CommandError, match="training.target_epsilon: must be a number"):
        call_command("train", "--run", str(run.pk), verbosity=0)
    assert TrainingRun.objects.get(pk=run.pk).state == RunState.QUEUED  # nothing started
