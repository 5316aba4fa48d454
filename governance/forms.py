from django import forms
from django.contrib.auth import get_user_model

from governance import models as m
from governance.fields import RecordsChoiceField


class CommaListField(forms.CharField):
    """A list of short codes typed as "eu-west-1, eu-central-1"."""

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, (list, tuple)) else value

    def to_python(self, value):
        value = super().to_python(value)
        return [item.strip() for item in value.split(",") if item.strip()] if value else []


def _checkboxes(choices, **kwargs):
    return forms.MultipleChoiceField(choices=choices, required=False, widget=forms.CheckboxSelectMultiple, **kwargs)


class UploadErrorsMixin:
    """Shows the encrypting upload handler's refusal as the file field's error.

    The handler refuses a bad file while the request body streams in, so the form never
    receives it; without this the person would only read "This field is required".
    """

    def __init__(self, *args, upload_errors=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.upload_errors = upload_errors or {}
        for name in self.upload_errors:
            if name in self.fields:
                self.fields[name].required = False

    def _post_clean(self):
        super()._post_clean()
        for name, message in self.upload_errors.items():
            if name in self.fields:
                self.add_error(name, message)


class DataClassForm(forms.ModelForm):
    categories = _checkboxes(m.DataCategory.choices)
    regulations = _checkboxes(m.Regulation.choices)
    allowed_compute_kinds = _checkboxes(m.ComputeKind.choices, help_text="None ticked: any kind of compute.")
    allowed_regions = CommaListField(required=False, help_text="Comma-separated region codes. Empty: any region.")

    ACTION_CHOICES = [("pseudonymize", "Pseudonymize (stable fake)"), ("mask", "Mask ([TYPE])"),
                      ("drop_record", "Drop the whole record"), ("keep", "Keep as is")]

    def __init__(self, *args, **kwargs):
        from vocab.pii import ENTITY_TYPES

        super().__init__(*args, **kwargs)
        current = self.instance.redaction_actions or {}
        for entity in ENTITY_TYPES:
            self.fields[f"action_{entity}"] = forms.ChoiceField(
                choices=self.ACTION_CHOICES, initial=current.get(entity, "pseudonymize"),
                label=f"{entity.replace('_', ' ').capitalize()}: when found", required=False)

    def clean(self):
        cleaned = super().clean()
        actions = {name.removeprefix("action_"): value or "pseudonymize" for name, value in cleaned.items() if name.startswith("action_")}
        self.instance.redaction_actions = {k: v for k, v in actions.items() if v != "pseudonymize"}
        return cleaned

    class Meta:
        model = m.DataClass
        fields = [
            "name", "description", "tier", "categories", "regulations", "fine_tuning_use", "redaction_required",
            "dp_required", "max_epsilon", "max_delta", "allowed_compute_kinds", "allowed_regions",
            "retention_days", "extra_approvals_required", "max_total_epsilon", "audit_max_exposure_bits", "audit_max_mia_auc",
            "audit_max_tpr_at_1pct_fpr", "audit_max_original_pii_hits", "audit_min_candidates", "audit_min_canaries",
            "audit_min_mia_sample", "audit_min_extraction_sample", "audit_min_audit_canaries",
        ]


class RedactionRuleForm(forms.ModelForm):
    class Meta:
        model = m.RedactionRule
        fields = ["data_class", "entity_type", "kind", "terms", "regex", "score"]


class ProcessorForm(forms.ModelForm):
    class Meta:
        model = m.Processor
        fields = ["name", "legal_entity", "country", "contact_email", "services"]


class AttestationForm(forms.ModelForm):
    class Meta:
        model = m.Attestation
        fields = ["processor", "kind", "issued_by", "issued_on", "expires_on", "reference"]
        widgets = {"issued_on": forms.DateInput(attrs={"type": "date"}), "expires_on": forms.DateInput(attrs={"type": "date"})}


class DataProcessingAgreementForm(UploadErrorsMixin, forms.ModelForm):
    processing_regions = CommaListField(required=False, help_text="Comma-separated region codes where the processor may process data.")
    required_attestations = _checkboxes(m.AttestationKind.choices, help_text="The DPA is in force only while each ticked attestation is valid.")
    document = forms.FileField(required=False, label="Signed document (PDF)", help_text="Encrypted at rest as soon as it arrives.")

    class Meta:
        model = m.DataProcessingAgreement
        fields = [
            "processor", "title", "version", "signed_on", "effective_from", "expires_on", "terminated_on",
            "subject_matter", "duration", "nature_and_purpose", "data_types", "data_subject_categories",
            "documented_instructions", "international_transfers", "confidentiality_commitment", "security_measures",
            "subprocessors", "subprocessor_changes_need_approval", "assists_with_data_subject_rights",
            "assists_with_security_and_dpia", "deletion_at_end", "audit_rights", "no_retention_of_training_data",
            "no_training_on_customer_data", "breach_notification_hours", "processing_regions", "required_attestations",
        ]
        widgets = {
            name: forms.DateInput(attrs={"type": "date"})
            for name in ("signed_on", "effective_from", "expires_on", "terminated_on")
        }



class ComputeTargetForm(forms.ModelForm):
    class Meta:
        model = m.ComputeTarget
        fields = ["name", "kind", "region", "egress_blocked", "processor", "dpa", "celery_queue", "active"]


class DatasetUploadForm(UploadErrorsMixin, forms.ModelForm):
    file = forms.FileField(help_text="JSONL, CSV or plain text, UTF-8. Encrypted as it streams in.")
    data_classes = RecordsChoiceField(
        queryset=m.DataClass.objects.all(), required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Until it is classified, the dataset cannot be used for training.",
    )

    class Meta:
        model = m.Dataset
        fields = ["name", "description", "file_format", "text_field", "csv_column", "data_classes", "source", "lawful_basis", "segment"]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if user is None or not user.has_perm("governance.classify_dataset"):
            # Classification is the privacy officer's: an engineer's upload waits for it.
            del self.fields["data_classes"]


    def clean(self):
        cleaned = super().clean()
        fmt = cleaned.get("file_format")
        if fmt == m.DatasetFormat.CSV and not cleaned.get("csv_column"):
            self.add_error("csv_column", "Name the CSV column that holds the text.")
        if fmt == m.DatasetFormat.JSONL and not cleaned.get("text_field"):
            cleaned["text_field"] = "text"
        return cleaned

    def dataset_fields(self) -> dict:
        data = {k: v for k, v in self.cleaned_data.items() if k not in ("file", "data_classes")}
        return data


class DatasetEditForm(forms.ModelForm):
    """The description of a dataset; its data classes only for the privacy officer, who classifies."""

    data_classes = RecordsChoiceField(
        queryset=m.DataClass.objects.all(), required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Changing the classes sends every request that names this dataset and awaits approval back to draft.")

    class Meta:
        model = m.Dataset
        fields = ["name", "description", "source", "lawful_basis", "segment"]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if user is None or not user.has_perm("governance.classify_dataset"):
            del self.fields["data_classes"]
        elif self.instance.pk:
            self.fields["data_classes"].initial = list(self.instance.data_classes.all())

    @property
    def classes_given(self):
        """The classes to set, or None when this user's form has no classification."""
        return self.cleaned_data["data_classes"] if "data_classes" in self.fields else None


class ShareDatasetForm(forms.Form):
    username = forms.CharField(max_length=150, help_text="The engineer to share this dataset with.")

    def clean_username(self):
        username = self.cleaned_data["username"]
        user = get_user_model().objects.filter(username=username, is_active=True, groups__name="engineer").first()
        if user is None:
            raise forms.ValidationError(f"No active engineer is called “{username}”.")
        return user


class ShredDatasetForm(forms.Form):
    confirm_name = forms.CharField(max_length=200, help_text="Type the dataset's name to confirm.")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=1000)

    def __init__(self, *args, dataset=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.dataset = dataset

    def clean_confirm_name(self):
        if self.cleaned_data["confirm_name"] != self.dataset.name:
            raise forms.ValidationError("The name does not match: nothing was shredded.")
        return self.cleaned_data["confirm_name"]


class JustificationForm(forms.Form):
    """Why someone opens a sensitive item (governance.mfa.justification_response)."""

    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000,
                                    help_text="Why you need to see it: a case, a ticket, the check you are doing. Kept in the audit trail.")
