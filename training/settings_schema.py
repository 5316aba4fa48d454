"""The one schema of a run's settings: types, ranges and the keys that exist.

The API, the request form, the `request` command, stored run configs and the OpenAPI document all
go through `RunSettingsSchema`; `training.runs.RunSettings` builds the engine's configs
(`TrainConfig`, `CanarySpec`) from it and adds the checks that tie several settings together.
Every problem comes back as a sentence that starts with the key's path
("training.target_epsilon: must be a number, got 'abc'"), so whoever sent it knows what to fix.

Numbers are not coerced from text (a JSON string "8" is a mistake, not a number), booleans must be
true or false, floats must be finite (JSON `1e999` parses as infinity), and text must be text that
can be stored and hashed: no NUL and no lone surrogate (`"\\ud800"` is valid JSON but not Unicode).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

# Bounds wide enough for any real run, narrow enough that no arithmetic on them overflows or runs
# for ever (a canary length of 10**100 once meant computing 10 ** 10**100).
MAX_WHOLE = 2**31 - 1
MAX_PROBLEMS_SHOWN = 6

NOISE_SEED_REFUSED = "The DP noise seed cannot be set for a run: it is drawn from the OS entropy pool."
# σ set by hand escapes every check that reads the target ε (policy, the budget's hold, the verdict):
# σ = 0.05 at a target of ε = 1 is really ε ≈ 8,000. The accountant picks σ.
NOISE_MULTIPLIER_REFUSED = ("The noise multiplier cannot be set for a run: the accountant derives it from target_epsilon "
                            "and δ, so the ε that policy and the approvers check is the ε the run is trained to.")
TRAINING_SEED_REFUSED = "Set the run's seed at the top level (it drives the split, the data order and the initialisation)."


def shown(value: Any, limit: int = 60) -> str:
    """A value as it may appear in an error: escaped (a lone surrogate or a NUL would break the
    page, the JSON answer and the trail event that quote it) and short."""
    text = ascii(value) if isinstance(value, str) and not value.isprintable() else repr(value)
    if isinstance(value, (list, tuple, dict)) and len(text) > limit:
        return f"a {'list' if isinstance(value, (list, tuple)) else 'object'}"
    return text if len(text) <= limit else text[:limit] + "…"


def key_shown(key: Any) -> str:
    return key if isinstance(key, str) and key.isidentifier() else shown(key, 40)


def text_problem(value: str) -> str | None:
    """Why `value` is not storable text, or None."""
    if "\x00" in value:
        return "must not contain a NUL character (\\u0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (such as \\ud800), which is not text: send valid UTF-8"
    return None


# --------------------------------------------------------------------------- value types


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PydanticCustomError("number_type", "must be a number, got {got}", {"got": shown(value)})
    try:
        value = float(value)
    except OverflowError:
        raise PydanticCustomError("finite_number", "must be a finite number, got a number too large to represent") from None
    if not math.isfinite(value):
        raise PydanticCustomError("finite_number", "must be a finite number, got {got}", {"got": shown(value)})
    return value


def _optional_number(value):
    return None if value is None else _number(value)


def _whole(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PydanticCustomError("whole_number_type", "must be a whole number, got {got}", {"got": shown(value)})
    if isinstance(value, float):
        if not value.is_integer():  # also inf and nan
            raise PydanticCustomError("whole_number_type", "must be a whole number, got {got}", {"got": shown(value)})
        value = int(value)  # 16.0 from an older client is 16
    return value


def _boolean(value):
    if not isinstance(value, bool):
        raise PydanticCustomError("boolean_type", "must be true or false, got {got}", {"got": shown(value)})
    return value


def _text(value):
    if not isinstance(value, str):
        raise PydanticCustomError("text_type", "must be text, got {got}", {"got": shown(value)})
    problem = text_problem(value)
    if problem:
        raise PydanticCustomError("text_value", problem)
    return value


def _list(value):
    if not isinstance(value, (list, tuple)):
        raise PydanticCustomError("list_type", "must be a list, got {got}", {"got": shown(value)})
    return list(value)


def _object(value):
    if not isinstance(value, dict):
        raise PydanticCustomError("object_type", "must be an object of settings, got {got}", {"got": shown(value)})
    return value


def _choice(*options: str):
    def check(value):
        if not isinstance(value, str) or value not in options:
            raise PydanticCustomError("choice", "must be one of {options}, got {got}",
                                      {"options": ", ".join(options), "got": shown(value)})
        return value

    return Annotated[Literal[options], BeforeValidator(check)]


def Number(**bounds):
    return Annotated[float, Field(**bounds), BeforeValidator(_number)]  # bounds first: the JSON schema reads them


def Whole(**bounds):
    bounds.setdefault("le", MAX_WHOLE)
    return Annotated[int, Field(**bounds), BeforeValidator(_whole)]


Boolean = Annotated[bool, BeforeValidator(_boolean)]


def Text(**bounds):
    return Annotated[str, Field(**bounds), BeforeValidator(_text)]


OptionalNumber = Annotated[float | None, BeforeValidator(_optional_number)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, data):
        return _object(data)


# --------------------------------------------------------------------------- the schema


class TrainingSettings(_Section):
    """LoRA and DP-SGD (training.engine.dp_lora.TrainConfig, without the settings a run may not choose)."""

    lora_r: Whole(ge=1, le=4096, description="LoRA rank.") = 8
    lora_alpha: Whole(ge=1, le=65536, description="LoRA scaling alpha.") = 16
    lora_dropout: Number(ge=0, lt=1) = 0.0
    target_modules: Annotated[list[Text(min_length=1, max_length=200)], Field(max_length=100), BeforeValidator(_list)] = Field(
        default_factory=list, description="Module names to adapt. Empty: chosen per architecture.")
    epochs: Number(gt=0, le=10_000) = 1.0
    learning_rate: Number(gt=0, le=10) = 1e-3
    batch_size: Whole(ge=1, le=1_000_000, description="Expected logical batch under Poisson sampling.") = 16
    max_length: Whole(ge=8, le=1_048_576, description="Tokens per record; the audit scores the same tokens.") = 64
    dp: Boolean = Field(True, description="Train with differential privacy (DP-SGD).")
    target_epsilon: Number(description="The ε the accountant trains to; must be positive with DP.") = 8.0
    target_delta: OptionalNumber = Field(None, description="With DP, in (0, 1). Null: min(cap, 1/(10·N)), N the records "
                                                           "(or subjects); a δ of 1/N or more is refused.")
    max_delta: OptionalNumber = Field(None, description="Cap on the default δ, in (0, 1]; data classes may lower it. Null: 1e-5.")
    max_grad_norm: Number(description="Per-sample clipping norm; must be positive with DP.") = 1.0
    accountant: _choice("prv", "rdp") = "prv"
    grad_sample_mode: _choice("hooks", "ghost", "functorch") = "hooks"
    checkpoint_every: Whole(ge=0, description="Steps between adapter checkpoints; 0: none.") = 0
    privacy_unit: _choice("record", "subject") = Field(
        "record", description="subject: user-level DP, which needs subject_field and per-sample gradients (not ghost).")
    max_records_per_subject: Whole(ge=1, le=1_000_000, description="Subject-level: records of a sampled subject used in one step.") = 8

    @model_validator(mode="before")
    @classmethod
    def _refuse_what_a_run_may_not_choose(cls, data):
        data = dict(_object(data))
        if "noise_seed" in data:
            raise PydanticCustomError("refused_key", NOISE_SEED_REFUSED, {"key": "noise_seed"})
        if data.pop("noise_multiplier", None) is not None:  # null: a config stored before it was dropped
            raise PydanticCustomError("refused_key", NOISE_MULTIPLIER_REFUSED, {"key": "noise_multiplier"})
        if "seed" in data:
            raise PydanticCustomError("refused_key", TRAINING_SEED_REFUSED, {"key": "seed"})
        return data


class CanarySettings(_Section):
    """Made-up secrets planted to measure memorisation (training.engine.prepare.CanarySpec)."""

    count: Whole(ge=0, le=100_000, description="Exposure canaries; 0: none, and the exposure audit cannot measure.") = 10
    repetitions: Whole(ge=1, le=10_000) = 1
    prefix_template: Text(max_length=1000) = "My account recovery code is "
    alphabet: Text(max_length=1000, description="Characters the secrets are drawn from.") = "0123456789"
    length: Whole(ge=4, le=1000, description="Characters per secret.") = 8
    audit_count: Whole(ge=0, le=100_000, description="One-run audit canaries, each trained on with probability ½.") = 64


class RunSettingsSchema(_Section):
    """A run's settings beyond its base model and datasets. Unknown keys are refused, so a typo
    never silently falls back to a default."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="RunSettings")

    training: TrainingSettings = Field(default_factory=TrainingSettings)
    canaries: CanarySettings = Field(default_factory=CanarySettings)
    holdout_fraction: Number(ge=0, lt=0.9, description="Share of records held out as the audit's non-members.") = 0.1
    seed: Whole(ge=0, le=2**63 - 1, description="Public: the split, the data order and the initialisation. "
                                                "The DP sampler and noise never follow it.") = 0
    redaction: Boolean = Field(True, description="Redact personal data before training.")
    subject_field: Text(max_length=200, description="Subject-level DP: the JSONL field or CSV column naming each "
                                                    "record's data subject.") = ""
    audit: Annotated[dict[str, Any], BeforeValidator(_object)] = Field(
        default_factory=dict, description="Overrides of the audit's settings (positive whole numbers: candidates, mia_sample, "
                                          "extraction_sample, bootstrap…) for the audit queued after training. Empty: the "
                                          "portal's defaults.")


# --------------------------------------------------------------------------- errors with key paths


@dataclass(frozen=True)
class Problem:
    path: str  # "training.target_epsilon"; "settings" for the object itself
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def path_of(loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + key_shown(part)
    return out or "settings"


_TEMPLATES = {
    "greater_than": "must be more than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "string_too_short": "must not be empty",
    "too_short": "must not be empty",
    # pydantic-core reads every key of an object as a Python string first: a lone surrogate fails there
    "string_unicode": "a key contains a lone surrogate (such as \\ud800), which is not text: send valid UTF-8",
    "string_too_long": "must be at most {max_length} characters long",
    "too_long": "must have at most {max_length} items",
    "model_type": "must be an object of settings",
}


def _known_keys(loc) -> list[str]:
    model = RunSettingsSchema
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def problems_of(error: ValidationError) -> list[Problem]:
    problems = []
    for e in error.errors(include_url=False):
        loc, ctx = tuple(e["loc"]), e.get("ctx") or {}
        if "key" in ctx:  # a refused key, found by the section's own check
            loc = loc + (ctx["key"],)
        if e["type"] == "extra_forbidden":
            known = _known_keys(loc[:-1])
            message = "is not a setting" + (f" here (known: {', '.join(known)})" if known else "")
        elif e["type"] in _TEMPLATES:
            message = _TEMPLATES[e["type"]].format(**{k: _bound(v) for k, v in ctx.items()})
            if e["type"] not in ("model_type", "string_too_short", "too_short", "string_unicode") and not isinstance(e["input"], (dict, list, str)):
                message += f", got {shown(e['input'])}"
        else:  # our own validators' sentences; pydantic's own as a last resort
            message = e["msg"]
        problems.append(Problem(path_of(loc), message))
    return problems


def _bound(value):
    return f"{value:g}" if isinstance(value, float) else value


def validate(raw) -> tuple[RunSettingsSchema | None, list[Problem]]:
    """The settings, or the problems with them (each naming its key)."""
    try:
        return RunSettingsSchema.model_validate(raw), []
    except ValidationError as exc:
        return None, problems_of(exc)


def sentence(problems: list[Problem]) -> str:
    shown_problems = [str(p) for p in problems[:MAX_PROBLEMS_SHOWN]]
    if len(problems) > MAX_PROBLEMS_SHOWN:
        shown_problems.append(f"and {len(problems) - MAX_PROBLEMS_SHOWN} more")
    text = "; ".join(shown_problems)
    return text if text.endswith(".") else text + "."


# --------------------------------------------------------------------------- the OpenAPI document


def json_schema() -> dict:
    """The schema as one self-contained JSON Schema object (nested models inlined), for the
    OpenAPI document's `settings` and `config` fields."""
    schema = RunSettingsSchema.model_json_schema(mode="validation")
    defs = schema.pop("$defs", {})

    def inline(node):
        if isinstance(node, dict):
            if "$ref" in node:
                target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return inline({**target, **rest})
            return _openapi_30({k: inline(v) for k, v in node.items()})
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(schema)


def _openapi_30(node: dict) -> dict:
    """pydantic writes JSON Schema 2020-12; drf-spectacular's document is OpenAPI 3.0, where an
    exclusive bound is a boolean beside minimum/maximum and null is `nullable`, not a type."""
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if not isinstance(node.get(exclusive), bool) and exclusive in node:
            node[bound], node[exclusive] = node.pop(exclusive), True
    options = node.get("anyOf")
    if options and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        node.pop("anyOf")
        node.update(rest[0] if len(rest) == 1 else {"anyOf": rest})
        node["nullable"] = True
    return node
