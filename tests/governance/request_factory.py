"""A training request that policy passes, for any test module to build on and then break one thing.

    request = make_good_request(engineer)                                  # no blockers
    request = make_good_request(engineer, settings={"redaction": False})   # one thing changed
"""

from workflow import actions
from governance import models as m
from workflow import models as wm
from tests.conftest import make_dataset

GOOD_SETTINGS = {"training": {"epochs": 0.5, "target_epsilon": 4.0}}  # RunSettings defaults otherwise


def good_data_class(**fields) -> m.DataClass:
    """Fine-tuning allowed, DP required, ε at most 8."""
    defaults = dict(tier=m.Tier.CONFIDENTIAL, categories=[m.DataCategory.PERSONAL], fine_tuning_use=m.FineTuningUse.ALLOWED,
                    dp_required=True, max_epsilon=8.0)
    return m.DataClass.objects.create(**{"name": "Support tickets", **defaults, **fields})


def good_compute_target(**fields) -> m.ComputeTarget:
    return m.ComputeTarget.objects.create(**{"name": "Paris on-prem GPUs", "kind": m.ComputeKind.ON_PREMISES,
                                             "region": "on-prem-paris", **fields})


def good_base_model(**fields):
    from training.models import BaseModel

    defaults = dict(source="local_directory", location="/nowhere", architecture="gpt2", parameter_count=1, licence="Apache-2.0")
    return BaseModel.objects.create(**{"name": "tiny-gpt2", **defaults, **fields})


def good_dataset(owner, data_class=None, name="Good tickets", **fields) -> m.Dataset:
    return make_dataset(owner, name=name, data_classes=[data_class or good_data_class()], **fields)


def make_good_request(requester, *, datasets=None, data_class=None, compute_target=None, base_model=None,
                      settings=None, **fields) -> wm.TrainingRequest:
    """A draft request with no blocker and no warning. Pass any of the records to use your own,
    `settings` to merge into the good settings (the `training` part merged key by key), or any
    request field (title, leak_definition, adversaries, audience, intended_use...) to replace it."""
    if datasets is None:
        datasets = [good_dataset(requester, data_class)]
    merged = {**GOOD_SETTINGS, **(settings or {})}
    merged["training"] = {**GOOD_SETTINGS["training"], **(settings or {}).get("training", {})}
    data = dict(
        title="Support reply drafts", intended_use="Drafting replies to support tickets, reviewed by an agent before sending.",
        base_model=base_model or good_base_model(), compute_target=compute_target or good_compute_target(),
        leak_definition="Any customer name, e-mail address or account number from the tickets appearing in output.",
        adversaries=[wm.Adversary.EXTERNAL_ATTACKER], audience=wm.Audience.INTERNAL, settings=merged,
    )
    data.update(fields)
    return actions.create_request(requester, data, datasets)


def make_succeeded_run(owner, dataset, *, dp=True, state="succeeded", **result):
    """A finished run on `dataset` as the privacy ledger reads it: `result` as the pipeline stores it
    (epsilon, delta, noise_multiplier, sample_rate, steps, accountant)."""
    from training.models import BaseModel, TrainingRun

    base = BaseModel.objects.get_or_create(name="ledger-base", defaults=dict(source="local_directory", location="/nowhere",
                                                                              architecture="gpt2", parameter_count=1))[0]
    run = TrainingRun.objects.create(created_by=owner, base_model=base, config={"training": {"dp": dp}}, state=state, result=result)
    run.datasets.add(dataset)
    return run
