"""Data classes, redaction rules, processors, attestations, DPAs and compute targets."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from governance.keys import blob_store, master_key

from governance.models.base import GovernanceRecord


class Tier(models.TextChoices):
    PUBLIC = "public", "Public"
    INTERNAL = "internal", "Internal"
    CONFIDENTIAL = "confidential", "Confidential"
    RESTRICTED = "restricted", "Restricted"


class DataCategory(models.TextChoices):
    PERSONAL = "personal", "Personal data"
    SPECIAL = "special_category", "Special category / health"
    FINANCIAL = "financial", "Financial"
    TRADE_SECRET = "trade_secret", "Trade secret"


class Regulation(models.TextChoices):
    GDPR = "GDPR", "GDPR"
    UK_GDPR = "UK_GDPR", "UK GDPR"
    HIPAA = "HIPAA", "HIPAA"
    CCPA = "CCPA", "CCPA / CPRA"
    GLBA = "GLBA", "GLBA"
    PCI_DSS = "PCI_DSS", "PCI DSS"
    EU_AI_ACT = "EU_AI_ACT", "EU AI Act"


class FineTuningUse(models.TextChoices):
    ALLOWED = "allowed", "Allowed for fine-tuning"
    EVAL_ONLY = "eval_only", "Evaluation only"
    FORBIDDEN = "forbidden", "Forbidden"


class ComputeKind(models.TextChoices):
    ON_PREMISES = "on_premises", "On premises"
    PRIVATE_CLOUD = "private_cloud", "Private cloud"
    EXTERNAL_PROVIDER = "external_provider", "External provider"


class DataClass(GovernanceRecord):
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    tier = models.CharField("sensitivity tier", max_length=20, choices=Tier.choices, default=Tier.INTERNAL)
    categories = models.JSONField(default=list, blank=True, help_text="Kinds of data in this class.")
    regulations = models.JSONField(default=list, blank=True)
    fine_tuning_use = models.CharField(max_length=20, choices=FineTuningUse.choices, default=FineTuningUse.ALLOWED)
    redaction_required = models.BooleanField(default=True)
    dp_required = models.BooleanField("differential privacy required", default=True)
    max_epsilon = models.FloatField(
        "maximum ε", null=True, blank=True, validators=[MinValueValidator(0.01), MaxValueValidator(100)],
        help_text="Largest privacy loss ε a run on this class may claim. Empty: no cap.",
    )
    max_delta = models.FloatField(
        "maximum δ", null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(0.01)],
        help_text="Largest δ a run may use. Empty: at most 1e-5, and always below 1/(10·N), N the records (or subjects) trained on.",
    )
    allowed_compute_kinds = models.JSONField(default=list, blank=True, help_text="Empty: any kind of compute.")
    allowed_regions = models.JSONField(default=list, blank=True, help_text="Region codes, e.g. eu-west-1. Empty: any.")
    retention_days = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: keep until deleted.")
    extra_approvals_required = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(5)],
        help_text="Approvals needed beyond legal counsel and the privacy officer.",
    )
    redaction_actions = models.JSONField(
        default=dict, blank=True,
        help_text="Per entity type: pseudonymize (default), mask, drop_record or keep.",
    )
    review_threshold = models.FloatField(
        default=0.6, validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Detections scoring below this are queued for the privacy officer's review.",
    )
    max_total_epsilon = models.FloatField(
        "privacy budget: maximum total ε per dataset", null=True, blank=True, validators=[MinValueValidator(0.01)],
        help_text="The ε all runs on one dataset of this class may spend together (composed). Empty: no cap.",
    )
    # What an adapter's audit must show before it may be released (empty: not checked, and the
    # verdict does not wait for that check). The strictest limit across a run's data classes applies.
    audit_max_exposure_bits = models.FloatField(
        "audit: maximum MEAN canary exposure (bits)", null=True, blank=True, default=3.0, validators=[MinValueValidator(0)],
        help_text="Limit on the mean exposure across the run's canaries (Carlini et al. 2019); an adapter that learned "
                  "nothing averages about 1.44 bits. Each canary is also held to chance on its own: one that ranks "
                  "above what chance gives with 5% probability across all the canaries fails the audit, whatever "
                  "this limit.",
    )
    audit_max_mia_auc = models.FloatField(
        "audit: maximum membership-inference AUC", null=True, blank=True, default=0.6,
        validators=[MinValueValidator(0.5), MaxValueValidator(1)], help_text="0.5 is a coin toss.",
    )
    audit_max_tpr_at_1pct_fpr = models.FloatField(
        "audit: maximum TPR at 1% FPR", null=True, blank=True, default=0.05, validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Share of members an attacker identifies while wrongly accusing 1% of non-members (0.01: no better than chance).",
    )
    audit_max_original_pii_hits = models.PositiveIntegerField(
        "audit: original personal data found in samples", null=True, blank=True, default=0,
        help_text="Original (pre-redaction) values of the dataset that generated samples may contain. 0: none.",
    )
    # How strong the audit must be (empty: no minimum). The audit runs with at least the strictest
    # minimum across a run's classes whatever the request asks, and a check measured with less than
    # its minimum is reported as not tested, so the verdict cannot pass on it.
    audit_min_candidates = models.PositiveIntegerField(
        "audit: minimum candidates per canary", null=True, blank=True, validators=[MinValueValidator(2)],
        help_text="Random secrets each canary is ranked among. With N, exposure reaches at most log2 N bits: "
                  "1,000 allows 9.97 bits, 10,000 allows 13.29.",
    )
    audit_min_canaries = models.PositiveIntegerField(
        "audit: minimum exposure canaries", null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Canaries planted in the training data for the exposure test (the request's canary count).",
    )
    audit_min_mia_sample = models.PositiveIntegerField(
        "audit: minimum membership-inference sample", null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Training records attacked, and as many held-out ones. TPR at 1% FPR needs at least 100 held-out records.",
    )
    audit_min_extraction_sample = models.PositiveIntegerField(
        "audit: minimum extraction sample", null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Training records (and as many held-out ones) prompted with their prefix for verbatim extraction.",
    )
    audit_min_audit_canaries = models.PositiveIntegerField(
        "audit: minimum one-run audit canaries", null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Audit canaries for the one-run test of the ε claim (Steinke et al. 2023). Setting it requires that "
                  "test for a pass; empty: reported but not required. Few canaries can only test a small ε.",
    )

    # The audit setting (audits.engine.audit.AuditConfig) each minimum puts a floor under.
    AUDIT_CONFIG_MINIMUMS = {
        "candidates": "audit_min_candidates",
        "mia_sample": "audit_min_mia_sample",
        "extraction_sample": "audit_min_extraction_sample",
    }

    class Meta:
        ordering = ["name"]
        verbose_name = "data class"
        verbose_name_plural = "data classes"

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("governance:dataclass_detail", args=[self.pk])

    @property
    def high_risk(self) -> bool:
        """Restricted or special-category data: every detection is reviewed by a person."""
        return self.tier == Tier.RESTRICTED or DataCategory.SPECIAL in self.categories

    def clean(self):
        from vocab.pii import ACTIONS

        bad = {k: v for k, v in (self.redaction_actions or {}).items() if v not in ACTIONS}
        if bad:
            raise ValidationError({"redaction_actions": f"Unknown actions {bad}: use one of {', '.join(ACTIONS)}."})
        if self.dp_required and self.fine_tuning_use == FineTuningUse.ALLOWED and self.max_epsilon is None:
            raise ValidationError({"max_epsilon": "Set a maximum ε: this class requires differential privacy."})
        unknown = set(self.categories) - set(DataCategory.values)
        if unknown:
            raise ValidationError({"categories": f"Unknown categories: {', '.join(sorted(unknown))}."})
        unknown = set(self.allowed_compute_kinds) - set(ComputeKind.values)
        if unknown:
            raise ValidationError({"allowed_compute_kinds": f"Unknown compute kinds: {', '.join(sorted(unknown))}."})


class RedactionRuleKind(models.TextChoices):
    DENY_LIST = "deny_list", "Deny-list (exact terms)"
    PATTERN = "pattern", "Pattern (regular expression)"
    ALLOW = "allow", "Allow-list (never redacted: a pattern or exact terms)"


# An allow rule for every detected type, rather than one.
ANY_ENTITY = "ANY"


class RedactionRule(GovernanceRecord):
    """A data class's own identifiers (an internal customer-ID format, a list of project names),
    or what its data needs kept (an allow rule: the product's public names, its build-number
    format). An allow rule's entity type is the detected type it applies to, or ANY."""

    data_class = models.ForeignKey(DataClass, on_delete=models.CASCADE, related_name="redaction_rules")
    entity_type = models.CharField(max_length=40, help_text="Upper-case name, e.g. CUSTOMER_ID.",
                                   validators=[RegexValidator(r"^[A-Z][A-Z0-9_]{1,39}$", "Use upper-case letters, digits and _.")])
    kind = models.CharField(max_length=20, choices=RedactionRuleKind.choices)
    terms = models.TextField(blank=True, help_text="Deny-list: one term per line.")
    regex = models.CharField(max_length=500, blank=True, help_text=r"Pattern: a Python regular expression, e.g. \bCUST-\d{6}\b")
    score = models.FloatField(default=0.85, validators=[MinValueValidator(0.05), MaxValueValidator(1)])

    class Meta:
        ordering = ["data_class__name", "entity_type"]

    def __str__(self):
        return f"{self.entity_type} ({self.get_kind_display()}) — {self.data_class}"

    def get_absolute_url(self):
        return reverse("governance:redactionrule_detail", args=[self.pk])

    def clean(self):
        import re

        if self.kind == RedactionRuleKind.PATTERN or (self.kind == RedactionRuleKind.ALLOW and self.regex):
            try:
                compiled = re.compile(self.regex)
            except re.error as exc:
                raise ValidationError({"regex": f"Not a valid regular expression: {exc}."})
            if not self.regex or compiled.match(""):
                raise ValidationError({"regex": "The pattern matches empty text; it must match an identifier."})
        elif not [t for t in self.terms.splitlines() if t.strip()]:
            if self.kind == RedactionRuleKind.ALLOW:
                raise ValidationError({"regex": "An allow rule needs a pattern or at least one term (one per line)."})
            raise ValidationError({"terms": "List at least one term, one per line."})

    def term_list(self) -> list[str]:
        return [t.strip() for t in self.terms.splitlines() if t.strip()]


# --------------------------------------------------------------------------- processors and DPAs


class Processor(GovernanceRecord):
    name = models.CharField(max_length=200, unique=True)
    legal_entity = models.CharField(max_length=300, blank=True)
    country = models.CharField(max_length=100, blank=True)
    contact_email = models.EmailField(blank=True)
    services = models.TextField(blank=True, help_text="What the processor does for us.")

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("governance:processor_detail", args=[self.pk])


class AttestationKind(models.TextChoices):
    SOC2_TYPE2 = "soc2_type2", "SOC 2 Type II"
    SOC2_TYPE1 = "soc2_type1", "SOC 2 Type I"
    ISO27001 = "iso27001", "ISO/IEC 27001"
    ISO27701 = "iso27701", "ISO/IEC 27701"
    ISO42001 = "iso42001", "ISO/IEC 42001"
    HIPAA_BAA = "hipaa_baa", "HIPAA business associate agreement"
    CSA_STAR = "csa_star", "CSA STAR"
    OTHER = "other", "Other"


class Attestation(GovernanceRecord):
    processor = models.ForeignKey(Processor, on_delete=models.CASCADE, related_name="attestations")
    kind = models.CharField(max_length=30, choices=AttestationKind.choices)
    issued_by = models.CharField(max_length=200, blank=True, help_text="Auditor or certification body.")
    issued_on = models.DateField()
    expires_on = models.DateField()
    reference = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["processor__name", "kind", "-expires_on"]

    def __str__(self):
        return f"{self.get_kind_display()} — {self.processor} (until {self.expires_on})"

    def get_absolute_url(self):
        return reverse("governance:attestation_detail", args=[self.pk])

    def clean(self):
        if self.issued_on and self.expires_on and self.expires_on < self.issued_on:
            raise ValidationError({"expires_on": "The expiry date is before the issue date."})

    def valid_on(self, day: dt.date) -> bool:
        return self.issued_on <= day <= self.expires_on


class DeletionAtEnd(models.TextChoices):
    DELETE = "delete", "Delete all personal data"
    RETURN = "return", "Return all personal data"
    RETURN_THEN_DELETE = "return_then_delete", "Return, then delete copies"


class DataProcessingAgreement(GovernanceRecord):
    """A DPA under GDPR Art. 28(3), with the AI terms fine-tuning needs."""

    processor = models.ForeignKey(Processor, on_delete=models.PROTECT, related_name="agreements")
    title = models.CharField(max_length=200)
    version = models.PositiveIntegerField(default=1)
    signed_on = models.DateField(null=True, blank=True, help_text="Empty while unsigned: not in force.")
    effective_from = models.DateField()
    expires_on = models.DateField(null=True, blank=True, help_text="Empty: runs until terminated.")
    terminated_on = models.DateField(null=True, blank=True)
    # Art. 28(3) contents
    subject_matter = models.TextField()
    duration = models.CharField(max_length=300, help_text="Duration of the processing, as the contract states it.")
    nature_and_purpose = models.TextField()
    data_types = models.TextField("types of personal data")
    data_subject_categories = models.TextField("categories of data subjects")
    documented_instructions = models.TextField(help_text="Art. 28(3)(a): processing only on documented instructions.")
    international_transfers = models.TextField(blank=True, help_text="Transfers outside the EEA and their mechanism (SCCs, adequacy).")
    confidentiality_commitment = models.BooleanField(default=False, help_text="Art. 28(3)(b)")
    security_measures = models.TextField(help_text="Art. 28(3)(c) / Art. 32 measures.")
    subprocessors = models.TextField(blank=True, help_text="Art. 28(3)(d): authorised sub-processors, one per line.")
    subprocessor_changes_need_approval = models.BooleanField(default=True)
    assists_with_data_subject_rights = models.BooleanField(default=False, help_text="Art. 28(3)(e)")
    assists_with_security_and_dpia = models.BooleanField(default=False, help_text="Art. 28(3)(f)")
    deletion_at_end = models.CharField(max_length=30, choices=DeletionAtEnd.choices, default=DeletionAtEnd.DELETE, help_text="Art. 28(3)(g)")
    audit_rights = models.BooleanField(default=False, help_text="Art. 28(3)(h): audits and inspections allowed.")
    # AI terms
    no_retention_of_training_data = models.BooleanField(default=False)
    no_training_on_customer_data = models.BooleanField(default=False, help_text="The provider does not train its own models on our data.")
    breach_notification_hours = models.PositiveIntegerField(null=True, blank=True, validators=[MaxValueValidator(720)])
    processing_regions = models.JSONField(default=list, blank=True)
    required_attestations = models.JSONField(default=list, blank=True, help_text="Attestation kinds that must be valid for the DPA to be in force.")
    # The signed document, encrypted at rest.
    document_blob_id = models.CharField(max_length=36, blank=True, editable=False)
    document_wrapped_key = models.BinaryField(null=True, editable=False)
    document_sha256 = models.CharField(max_length=64, blank=True, editable=False)
    document_name = models.CharField(max_length=255, blank=True, editable=False)
    document_size = models.PositiveBigIntegerField(null=True, editable=False)

    audit_exclude = ("document_wrapped_key",)

    class Meta:
        ordering = ["processor__name", "-version"]
        verbose_name = "data processing agreement"
        constraints = [models.UniqueConstraint(fields=["processor", "title", "version"], name="dpa_unique_version")]

    def __str__(self):
        return f"{self.title} v{self.version} ({self.processor})"

    def get_absolute_url(self):
        return reverse("governance:dataprocessingagreement_detail", args=[self.pk])

    def clean(self):
        if self.effective_from and self.expires_on and self.expires_on < self.effective_from:
            raise ValidationError({"expires_on": "The end date is before the start date."})
        unknown = set(self.required_attestations) - set(AttestationKind.values)
        if unknown:
            raise ValidationError({"required_attestations": f"Unknown attestation kinds: {', '.join(sorted(unknown))}."})

    def lapses_on(self, day: dt.date) -> list[str]:
        """Why the agreement is not in force on `day`: an empty list means it is."""
        reasons = []
        if not self.signed_on:
            reasons.append("it has not been signed")
        if day < self.effective_from:
            reasons.append(f"it takes effect only on {self.effective_from:%Y-%m-%d}")
        if self.expires_on and day > self.expires_on:
            reasons.append(f"it expired on {self.expires_on:%Y-%m-%d}")
        if self.terminated_on and day >= self.terminated_on:
            reasons.append(f"it was terminated on {self.terminated_on:%Y-%m-%d}")
        attestations = list(self.processor.attestations.all())
        for kind in self.required_attestations:
            if not any(a.kind == kind and a.valid_on(day) for a in attestations):
                label = AttestationKind(kind).label
                reasons.append(f"the processor has no {label} attestation valid on {day:%Y-%m-%d}")
        return reasons

    def in_force_on(self, day: dt.date) -> bool:
        return not self.lapses_on(day)

    @property
    def lapses_on_today(self) -> list[str]:
        return self.lapses_on(timezone.localdate())

    def next_expiry(self, today: dt.date) -> dt.date | None:
        """The soonest date on which this DPA or one of its required attestations ends."""
        dates = [self.expires_on] if self.expires_on and self.expires_on >= today else []
        for kind in self.required_attestations:
            valid = [a.expires_on for a in self.processor.attestations.all() if a.kind == kind and a.expires_on >= today]
            if valid:
                dates.append(max(valid))
        return min(dates) if dates else None

    @property
    def has_document(self) -> bool:
        return bool(self.document_blob_id and self.document_wrapped_key)

    def document_context(self) -> str:
        return f"provenant:dpa-document:{self.document_blob_id}"

    def open_document(self):
        key = master_key().unwrap(self.document_wrapped_key, self.document_context())
        return key, blob_store().open(self.document_blob_id)


# --------------------------------------------------------------------------- compute


class ComputeTarget(GovernanceRecord):
    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=30, choices=ComputeKind.choices)
    region = models.CharField(max_length=50, help_text="Where the hardware is, e.g. eu-west-1 or on-prem-paris.")
    egress_blocked = models.BooleanField(default=True, help_text="Outbound network from the training hosts is blocked.")
    processor = models.ForeignKey(Processor, null=True, blank=True, on_delete=models.PROTECT, related_name="compute_targets")
    dpa = models.ForeignKey(
        DataProcessingAgreement, null=True, blank=True, on_delete=models.PROTECT, related_name="compute_targets",
        verbose_name="DPA", help_text="Required for an external provider.",
    )
    celery_queue = models.CharField(max_length=50, default="gpu")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("governance:computetarget_detail", args=[self.pk])

    def clean(self):
        if self.kind == ComputeKind.EXTERNAL_PROVIDER:
            if not self.dpa_id:
                raise ValidationError({"dpa": "An external provider needs the DPA it runs under."})
            if self.processor_id and self.dpa.processor_id != self.processor_id:
                raise ValidationError({"dpa": "This DPA is with a different processor."})


# --------------------------------------------------------------------------- datasets
