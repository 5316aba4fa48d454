"""The training-request form: what the engineer types, turned into the request's fields and its
`settings` in RunSettings shape. The form keeps settings it does not show (set through the API)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from django import forms

from governance import models as m
from workflow import models as wm
from governance.fields import RecordsChoiceField
from governance.forms import CommaListField, _checkboxes

PURPOSE = ("title", "intended_use", "out_of_scope")
DATA = ("base_model", "datasets")
THREAT = ("leak_definition", "adversaries", "audience")
METHOD = ("lora_r", "lora_alpha", "target_modules", "epochs", "learning_rate", "batch_size", "max_length")
DP = ("dp", "target_epsilon", "target_delta", "max_grad_norm", "accountant", "privacy_unit", "subject_field")
CANARIES = ("canary_count", "canary_repetitions", "canary_length")
# form field -> key of request.audit_thresholds -> the data class field it may only tighten
THRESHOLDS = {
    "max_exposure_bits": "audit_max_exposure_bits", "max_mia_auc": "audit_max_mia_auc",
    "max_tpr_at_1pct_fpr": "audit_max_tpr_at_1pct_fpr", "max_original_pii_hits": "audit_max_original_pii_hits",
}
SECTIONS = [
    ("Purpose", PURPOSE), ("Data", DATA), ("Threat model", THREAT), ("Method (LoRA)", METHOD),
    ("Differential privacy", DP), ("Compute target", ("compute_target",)), ("Redaction", ("redaction",)),
    ("Canaries", CANARIES), ("Audit thresholds (optional, stricter than the data classes')", tuple(THRESHOLDS)),
]
# form field -> (settings part or None for the top level, key)
SETTINGS_KEYS = {
    **{name: ("training", name) for name in METHOD + DP if name != "subject_field"},
    "subject_field": (None, "subject_field"), "redaction": (None, "redaction"),
    "canary_count": ("canaries", "count"), "canary_repetitions": ("canaries", "repetitions"), "canary_length": ("canaries", "length"),
}


@dataclass
class Section:
    """One fieldset, shaped like a form for records/_form_fields.html."""

    legend: str
    visible_fields: list
    hidden_fields: list = field(default_factory=list)
    non_field_errors: list = field(default_factory=list)


class DatasetChoiceField(RecordsChoiceField):  # an id past the database's integer range is not a choice
    def label_from_instance(self, obj):
        classes = ", ".join(c.name for c in obj.data_classes.all()) or "not classified yet"
        return f"{obj.name} ({obj.record_count} record{'s' if obj.record_count != 1 else ''}; {classes})"


def _number(kind=forms.FloatField, **kwargs):
    return kind(widget=forms.NumberInput(attrs={"step": "any"}) if kind is forms.FloatField else None, **kwargs)


class TrainingRequestForm(forms.Form):
    title = forms.CharField(max_length=200)
    intended_use = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="What the adapter is for, and who uses it.")
    out_of_scope = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="Uses the adapter must not be put to.")
    base_model = forms.ModelChoiceField(queryset=None)
    datasets = DatasetChoiceField(queryset=None, widget=forms.CheckboxSelectMultiple, help_text="Datasets you own or that are shared with you.")
    leak_definition = forms.CharField(label="What counts as a leak", required=False, widget=forms.Textarea(attrs={"rows": 2}))
    adversaries = _checkboxes(wm.Adversary.choices, label="Who might try to extract the data")
    audience = forms.ChoiceField(label="Who will query the model", choices=wm.Audience.choices, required=False, widget=forms.RadioSelect)
    lora_r = _number(forms.IntegerField, label="LoRA rank", min_value=1)
    lora_alpha = _number(forms.IntegerField, label="LoRA alpha", min_value=1)
    target_modules = CommaListField(required=False, help_text="Comma-separated module names. Empty: chosen per architecture.")
    epochs = _number(min_value=0.01)
    learning_rate = _number(min_value=0)
    batch_size = _number(forms.IntegerField, min_value=1, help_text="Expected logical batch under Poisson sampling.")
    max_length = _number(forms.IntegerField, label="Maximum length (tokens)", min_value=8)
    dp = forms.BooleanField(label="Train with differential privacy", required=False)
    target_epsilon = _number(label="Target ε", min_value=0.01)
    target_delta = _number(label="δ", required=False, min_value=0, help_text="Empty: 1/(10·N), N the records (or subjects) trained on, and never above 1e-5 unless a data "
                                 "class allows more. A δ of 1/N or more is refused.")
    max_grad_norm = _number(label="Clipping norm", min_value=0.0001)
    accountant = forms.ChoiceField(choices=[("prv", "PRV"), ("rdp", "RDP")])
    privacy_unit = forms.ChoiceField(choices=[("record", "Record"), ("subject", "Data subject")], widget=forms.RadioSelect,
                                     help_text="Subject-level protects everything one person contributed.")
    subject_field = forms.CharField(required=False, max_length=100, help_text="Subject-level: the field or column naming each record's subject.")
    compute_target = forms.ModelChoiceField(queryset=None)
    redaction = forms.BooleanField(label="Redact personal data before training", required=False)
    canary_count = _number(forms.IntegerField, label="Canaries", min_value=0, help_text="0: none, and the exposure audit cannot measure.")
    canary_repetitions = _number(forms.IntegerField, label="Repetitions of each", min_value=1)
    canary_length = _number(forms.IntegerField, label="Secret length (characters)", min_value=4)
    max_exposure_bits = _number(label="Maximum canary exposure (bits)", required=False, min_value=0)
    max_mia_auc = _number(label="Maximum membership-inference AUC", required=False, min_value=0.5, max_value=1)
    max_tpr_at_1pct_fpr = _number(label="Maximum TPR at 1% FPR", required=False, min_value=0, max_value=1)
    max_original_pii_hits = _number(forms.IntegerField, label="Original personal data found in samples", required=False, min_value=0)

    def __init__(self, *args, user, instance: wm.TrainingRequest | None = None, **kwargs):
        from training.models import BaseModel

        self.instance = instance
        kwargs.setdefault("initial", initial_for(instance))
        super().__init__(*args, **kwargs)
        self.fields["base_model"].queryset = BaseModel.objects.visible_to(user)
        self.fields["datasets"].queryset = (m.Dataset.objects.visible_to(user).filter(state=m.DatasetState.ACTIVE)
                                            .prefetch_related("data_classes").order_by("name"))
        self.fields["compute_target"].queryset = m.ComputeTarget.objects.visible_to(user)

    def sections(self) -> list[Section]:
        return [Section(legend, [self[name] for name in names]) for legend, names in SECTIONS]

    def clean(self):
        cleaned = super().clean()
        if not any(name in self.errors for name in SETTINGS_KEYS):
            from training.runs import InvalidRunSettings, RunSettings

            try:
                RunSettings.from_dict(self.settings())
            except InvalidRunSettings as exc:
                # Beside the field that shows the setting, when the form has one; else above the form
                # (a setting set through the API that this form keeps but does not show).
                by_path = {".".join(filter(None, place)): name for name, place in SETTINGS_KEYS.items()}
                for problem in exc.problems or [exc]:
                    path = getattr(problem, "path", "")
                    name = by_path.get(path.split("[", 1)[0])  # training.target_modules[1] is the target_modules field
                    if name is not None:
                        self.add_error(name, problem.message)
                    else:
                        self.add_error(None, f"The method and privacy settings are not valid: {problem}")
        for name, class_field in THRESHOLDS.items():
            value = cleaned.get(name)
            limits = [(getattr(c, class_field), c.name) for d in cleaned.get("datasets") or () for c in d.data_classes.all()
                      if getattr(c, class_field) is not None]
            if value is not None and limits and value > min(limits)[0]:
                self.add_error(name, f"Data class “{min(limits)[1]}” already allows at most {min(limits)[0]:g}: "
                                     "a request may only be stricter.")
        return cleaned

    def audit_cost(self) -> str:
        """What the audit this request gets will cost in time, as the form stands (see
        `audit_cost_sentence`)."""
        if self.is_bound and self.is_valid():
            settings, datasets, base = self.settings(), self.cleaned_data["datasets"], self.cleaned_data["base_model"]
        elif self.instance is not None:
            settings, datasets, base = self.instance.settings, self.instance.datasets.all(), self.instance.base_model
        else:
            settings, datasets, base = {}, [], None
        classes = {c.pk: c for d in datasets for c in d.data_classes.all()}.values()
        return audit_cost_sentence(settings, classes, base)

    def settings(self) -> dict:
        """The request's settings with this form's values laid over them."""
        settings = copy.deepcopy(self.instance.settings) if self.instance else {}
        for name, (part, key) in SETTINGS_KEYS.items():
            target = settings.setdefault(part, {}) if part else settings
            target[key] = self.cleaned_data.get(name)
        return settings

    def request_data(self) -> dict:
        """The fields for `actions.create_request` / `update_request`."""
        c = self.cleaned_data
        data = {name: c.get(name) for name in ("title", "intended_use", "out_of_scope", "base_model", "compute_target",
                                                "leak_definition", "adversaries", "audience")}
        data["settings"] = self.settings()
        data["audit_thresholds"] = {key: c[key] for key in THRESHOLDS if c.get(key) is not None}
        return data


# --------------------------------------------------------------------------- what the audit costs


def audit_strength(settings: dict, classes) -> dict:
    """The audit a request gets: each knob as the request asks (else the portal's default), raised
    to the strictest minimum of its data classes (as audits.runner does when the audit runs), and
    the canaries it plants."""
    from audits.actions import default_audit_config
    from training.runs import RunSettings

    try:
        canaries = RunSettings.from_dict(settings).canaries.count
    except ValueError:
        canaries = RunSettings().canaries.count
    asked = {**default_audit_config(), **((settings or {}).get("audit") or {})}
    strength = {"canaries": canaries}
    for knob, minimum_field in m.DataClass.AUDIT_CONFIG_MINIMUMS.items():
        minimums = [getattr(c, minimum_field) for c in classes if getattr(c, minimum_field) is not None]
        strength[knob] = max([asked[knob], *minimums])
    return strength


def measured_audit_rates(base_model=None, last: int = 10) -> dict | None:
    """Seconds per unit of work, measured by this portal's last completed audits (of `base_model`
    when it has some): per canary candidate scored, per membership record scored (adapter and base
    model), and the other phases' time. None before any audit has completed."""
    from statistics import median

    from django.apps import apps

    # Read through the app registry: the audits app sits above this one and is not imported here.
    audits = apps.get_model("audits", "AdapterAudit").objects.filter(state="completed").order_by("-finished_at")
    if base_model is not None and audits.filter(run__base_model=base_model).exists():
        audits = audits.filter(run__base_model=base_model)
    per_candidate, per_record, other = [], [], []
    for report in audits.values_list("report", flat=True)[:last]:
        seconds, canaries = (report or {}).get("seconds") or {}, (report or {}).get("canaries") or []
        membership = (report or {}).get("membership") or {}
        scored = sum(c.get("candidates") or 0 for c in canaries)
        if seconds.get("canaries") and scored:
            per_candidate.append(seconds["canaries"] / scored)
        records = (membership.get("members") or 0) + (membership.get("nonmembers") or 0)
        if seconds.get("membership") and records:
            per_record.append(seconds["membership"] / records)
        if seconds:
            other.append(sum(s for phase, s in seconds.items() if phase not in ("canaries", "membership")))
    if not per_candidate or not per_record:
        return None
    return {"audits": len(other), "per_candidate": median(per_candidate), "per_record": median(per_record),
            "other": median(other)}


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def audit_cost_sentence(settings: dict, classes, base_model=None) -> str:
    """What the audit's strength costs in time, in a sentence for the engineer: an estimate from
    the scoring rates this portal's own audits measured (the exposure test scores canaries ×
    candidates sequences, membership inference twice the sample on two models)."""
    s = audit_strength(settings, classes)
    scored, records = s["canaries"] * s["candidates"], 2 * s["mia_sample"]
    work = (f"The audit ranks each of the {s['canaries']:,} canaries among {s['candidates']:,} candidates ({scored:,} "
            f"sequences scored) and attacks {s['mia_sample']:,} training and as many held-out records on the adapter and on "
            "the base model")
    rates = measured_audit_rates(base_model)
    if rates is None:
        return (f"{work}. No audit has completed on this portal yet, so there is no measured rate to estimate its time "
                "from; the exposure test's time grows in proportion to canaries × candidates.")
    exposure, attacks = scored * rates["per_candidate"], records * rates["per_record"]
    return (f"{work}: about {_duration(exposure + attacks + rates['other'])} in all, estimated from the last "
            f"{rates['audits']} audit(s) on this portal ({1 / rates['per_candidate']:,.0f} candidates scored per second, so "
            f"about {_duration(exposure)} for the exposure test; {_duration(attacks)} for membership inference; "
            f"{_duration(rates['other'])} for the other phases). An estimate, not a promise: the worker's machine, the base "
            "model and the length of the records change it, and ten times the candidates take about ten times the exposure "
            "test's time.")


def initial_for(request: wm.TrainingRequest | None) -> dict:
    """The form's starting values: the request's, or RunSettings' defaults for a new one."""
    from training.runs import RunSettings

    try:
        settings = RunSettings.from_dict(request.settings if request else {}).as_dict()
    except ValueError:
        settings = RunSettings().as_dict()
    initial = {}
    for name, (part, key) in SETTINGS_KEYS.items():
        initial[name] = (settings.get(part, {}) if part else settings).get(key)
    if request is not None:
        initial.update({name: getattr(request, name) for name in PURPOSE + THREAT + ("base_model", "compute_target")})
        initial["datasets"] = list(request.datasets.all())
        initial.update(request.audit_thresholds or {})
    return initial


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=wm.ApprovalDecision.choices, widget=forms.RadioSelect)
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=5000,
                              help_text="Required to reject: the requester reads it.")
    conditions = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=5000,
                                 help_text="Conditions attached to your approval, if any.")


class WithdrawForm(forms.Form):
    reason = forms.CharField(required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2}))
