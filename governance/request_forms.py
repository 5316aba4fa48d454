"""The training-request form: what the engineer types, turned into the request's fields and its
`settings` in RunSettings shape. The form keeps settings it does not show (set through the API)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from django import forms

from governance import models as m
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


class DatasetChoiceField(forms.ModelMultipleChoiceField):
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
    adversaries = _checkboxes(m.Adversary.choices, label="Who might try to extract the data")
    audience = forms.ChoiceField(label="Who will query the model", choices=m.Audience.choices, required=False, widget=forms.RadioSelect)
    lora_r = _number(forms.IntegerField, label="LoRA rank", min_value=1)
    lora_alpha = _number(forms.IntegerField, label="LoRA alpha", min_value=1)
    target_modules = CommaListField(required=False, help_text="Comma-separated module names. Empty: chosen per architecture.")
    epochs = _number(min_value=0.01)
    learning_rate = _number(min_value=0)
    batch_size = _number(forms.IntegerField, min_value=1, help_text="Expected logical batch under Poisson sampling.")
    max_length = _number(forms.IntegerField, label="Maximum length (tokens)", min_value=8)
    dp = forms.BooleanField(label="Train with differential privacy", required=False)
    target_epsilon = _number(label="Target ε", min_value=0.01)
    target_delta = _number(label="δ", required=False, min_value=0, help_text="Empty: 1/N, N the records (or subjects) trained on.")
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

    def __init__(self, *args, user, instance: m.TrainingRequest | None = None, **kwargs):
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
                self.add_error(None, f"The method and privacy settings are not valid: {exc}")
        for name, class_field in THRESHOLDS.items():
            value = cleaned.get(name)
            limits = [(getattr(c, class_field), c.name) for d in cleaned.get("datasets") or () for c in d.data_classes.all()
                      if getattr(c, class_field) is not None]
            if value is not None and limits and value > min(limits)[0]:
                self.add_error(name, f"Data class “{min(limits)[1]}” already allows at most {min(limits)[0]:g}: "
                                     "a request may only be stricter.")
        return cleaned

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


def initial_for(request: m.TrainingRequest | None) -> dict:
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
    decision = forms.ChoiceField(choices=m.ApprovalDecision.choices, widget=forms.RadioSelect)
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=5000,
                              help_text="Required to reject: the requester reads it.")
    conditions = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=5000,
                                 help_text="Conditions attached to your approval, if any.")


class WithdrawForm(forms.Form):
    reason = forms.CharField(required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2}))
