"""The story's records: training requests, their approvals, and the model card of each adapter.

They live in the workflow layer, above the apps whose records they name (datasets, compute
targets, runs), but keep `app_label = "governance"` and their tables: moving them would rewrite
the audit trail's object labels (`governance.trainingrequest`) and the permission names
(`governance.decide_trainingrequest`) that the hash chain and the roles already hold.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from governance.models import ComputeTarget, DataClass, Dataset, RestrictedQuerySet, canonical_json
from training.models import BaseModel, TrainingRun


# --------------------------------------------------------------------------- training requests


class RequestState(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    AUDITED = "audited", "Audited"
    AUDIT_FAILED = "audit_failed", "Audit failed"  # the audit crashed; the privacy officer may run it again
    RELEASED = "released", "Released"
    BLOCKED = "blocked", "Blocked"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


# The requester may still change these; from approval on, the request is what was approved.
EDITABLE_REQUEST_STATES = (RequestState.DRAFT, RequestState.SUBMITTED, RequestState.IN_REVIEW, RequestState.REJECTED)
AWAITING_DECISION_STATES = (RequestState.SUBMITTED, RequestState.IN_REVIEW)


class Adversary(models.TextChoices):
    EXTERNAL_ATTACKER = "external_attacker", "External attacker querying the model"
    INSIDER = "insider", "Insider with access to the adapter"
    PROVIDER_STAFF = "provider_staff", "Staff of the compute provider"


class Audience(models.TextChoices):
    INTERNAL = "internal", "Internal staff only"
    CUSTOMERS = "customers", "Our customers"
    PUBLIC = "public", "The public"


class TrainingRequest(models.Model):
    """An engineer's request to fine-tune on private data: what for, on what, against which
    threats, with which privacy settings. Its content hash covers every field and the versions of
    the records it names, so an approval binds to exactly what was approved."""

    title = models.CharField(max_length=200)
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="training_requests")
    intended_use = models.TextField(help_text="What the adapter is for, and who uses it.")
    out_of_scope = models.TextField(blank=True, help_text="Uses the adapter must not be put to.")
    base_model = models.ForeignKey(BaseModel, on_delete=models.PROTECT, related_name="requests")
    datasets = models.ManyToManyField(Dataset, related_name="training_requests")
    compute_target = models.ForeignKey(ComputeTarget, on_delete=models.PROTECT, related_name="requests")
    leak_definition = models.TextField("what counts as a leak", blank=True)
    adversaries = models.JSONField(default=list, blank=True, help_text="Who might try to extract the data.")
    audience = models.CharField("who will query the model", max_length=20, choices=Audience.choices, blank=True)
    settings = models.JSONField(default=dict, blank=True, help_text="Method, DP, redaction and canary settings (RunSettings).")
    audit_thresholds = models.JSONField(default=dict, blank=True,
                                        help_text="Stricter audit limits than the data classes' (never looser).")
    state = models.CharField(max_length=20, choices=RequestState.choices, default=RequestState.DRAFT)
    content_hash = models.CharField(max_length=64, blank=True, help_text="Frozen at submission.")
    findings = models.JSONField(default=list, blank=True, help_text="Policy findings, frozen at submission.")
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    run = models.OneToOneField(TrainingRun, null=True, blank=True, on_delete=models.PROTECT, related_name="request")
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        app_label = "governance"
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["requester", "idempotency_key"], name="one_request_per_idempotency_key")]
        permissions = [("decide_trainingrequest", "Can approve or reject training requests")]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("workflow:request_detail", args=[self.pk])

    @classmethod
    def narrow_visible(cls, queryset, user):
        return queryset.filter(requester=user)

    @classmethod
    def created_with_key(cls, requester, idempotency_key: str | None) -> "TrainingRequest | None":
        """The request a retried create (same person, same idempotency key) must return."""
        if not idempotency_key:
            return None
        return cls.objects.filter(requester=requester, idempotency_key=idempotency_key).first()

    @classmethod
    def can_browse(cls, user) -> bool:
        return user.is_authenticated and (user.has_perm("governance.view_trainingrequest") or user.has_perm("governance.add_trainingrequest"))

    def can_edit(self, user) -> bool:
        return self.requester_id == user.pk and self.state in EDITABLE_REQUEST_STATES

    def can_withdraw(self, user) -> bool:
        return self.requester_id == user.pk and self.state in EDITABLE_REQUEST_STATES + (RequestState.APPROVED,)

    @property
    def is_editable(self) -> bool:
        return self.state in EDITABLE_REQUEST_STATES

    def content(self) -> dict:
        """Everything an approval binds to: the request's fields and the versions of the records it
        names (dataset hashes and classes, the compute target and its DPA, the base weights)."""
        # Read afresh, not from cached relations: the point is to notice a record that changed.
        target = ComputeTarget.objects.select_related("dpa").get(pk=self.compute_target_id)
        dpa = target.dpa
        base = BaseModel.objects.get(pk=self.base_model_id)
        return {
            "title": self.title, "intended_use": self.intended_use, "out_of_scope": self.out_of_scope,
            "base_model": {"name": base.name, "weights": base.weight_hashes, "licence": base.licence},
            "datasets": [
                {"id": d.pk, "sha256": d.sha256, "state": d.state,
                 "data_classes": [{"id": c.pk, "updated_at": c.updated_at.isoformat()} for c in d.data_classes.all().order_by("pk")]}
                for d in self.datasets.all().order_by("pk")
            ],
            "compute_target": {"id": target.pk, "kind": target.kind, "region": target.region, "updated_at": target.updated_at.isoformat(),
                               "dpa": {"id": dpa.pk, "version": dpa.version, "updated_at": dpa.updated_at.isoformat()} if dpa else None},
            "threat_model": {"leak_definition": self.leak_definition, "adversaries": sorted(self.adversaries), "audience": self.audience},
            "settings": self.settings, "audit_thresholds": self.audit_thresholds,
        }

    def compute_content_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.content()).encode()).hexdigest()

    def required_approvals(self) -> dict[str, int]:
        """Legal counsel and the privacy officer always; more for restricted or special-category
        data, or where a data class asks for more."""
        if "datasets" in getattr(self, "_prefetched_objects_cache", {}):  # the inbox prefetches them
            classes = [c for d in self.datasets.all() for c in d.data_classes.all()]
        else:  # one query, however many datasets the request names
            classes = list(DataClass.objects.filter(datasets__training_requests=self).distinct())
        extra = max([c.extra_approvals_required for c in classes] + [1 if any(c.high_risk for c in classes) else 0])
        return {"legal": 1, "privacy": 1, "additional": extra}

    def valid_approvals(self):
        return self.approvals.filter(voided_at__isnull=True, decision=ApprovalDecision.APPROVE, content_hash=self.content_hash)

    def missing_approvals(self, signatures=None) -> dict[str, int]:
        """Approval slots still open on this version. `signatures`: the approvals already loaded
        for this version (the inbox prefetches them), instead of asking the database again."""
        if signatures is None:
            roles = list(self.valid_approvals().values_list("role", flat=True))
        else:
            roles = [s.role for s in signatures if s.voided_at is None and s.decision == ApprovalDecision.APPROVE
                     and s.content_hash == self.content_hash]
        given: dict[str, int] = {}
        for role in roles:
            given[role] = given.get(role, 0) + 1
        return {role: n - given.get(role, 0) for role, n in self.required_approvals().items() if n - given.get(role, 0) > 0}

    @property
    def blockers(self) -> list[dict]:
        return [f for f in self.findings if f.get("severity") == "blocker"]


class ApprovalDecision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"


class ApprovalRole(models.TextChoices):
    LEGAL = "legal", "Legal counsel"
    PRIVACY = "privacy", "Privacy officer"
    ADDITIONAL = "additional", "Additional approver"


class Approval(models.Model):
    """One signature: a decision on exactly one version of a request (its content hash). An edit
    voids it. Unique per person and version among the signatures not voided, so nobody signs twice,
    and a version rejected and then resubmitted unchanged can be signed again."""

    request = models.ForeignKey(TrainingRequest, on_delete=models.CASCADE, related_name="approvals")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approvals")
    role = models.CharField(max_length=20, choices=ApprovalRole.choices)
    decision = models.CharField(max_length=10, choices=ApprovalDecision.choices)
    comment = models.TextField(blank=True)
    conditions = models.TextField(blank=True, help_text="Conditions attached to an approval.")
    content_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=300, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        app_label = "governance"
        ordering = ["created_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["request", "approver", "content_hash"], condition=models.Q(voided_at__isnull=True),
                                               name="one_signature_per_person_and_version")]

    def __str__(self):
        return f"{self.get_decision_display()} by {self.approver} ({self.get_role_display()})"

    @classmethod
    def narrow_visible(cls, queryset, user):
        return queryset.filter(request__requester=user)


# --------------------------------------------------------------------------- model cards


class ModelCardState(models.TextChoices):
    DRAFT = "draft", "Draft"
    APPROVED = "approved", "Approved by the privacy officer"


# The sections of Mitchell et al. 2019, "Model Cards for Model Reporting", plus privacy.
MODEL_CARD_SECTIONS = (
    ("model_details", "Model details"),
    ("intended_use", "Intended use"),
    ("factors", "Factors"),
    ("metrics", "Metrics"),
    ("evaluation_data", "Evaluation data"),
    ("training_data", "Training data"),
    ("quantitative_analyses", "Quantitative analyses"),
    ("ethical_considerations", "Ethical considerations"),
    ("caveats_and_recommendations", "Caveats and recommendations"),
    ("privacy", "Privacy"),
)


class ModelCard(models.Model):
    """One per adapter: drafted from the run (the measured figures are `facts`, which nobody
    edits), its prose edited by the engineer, approved by the privacy officer against its content
    hash. An edit after approval returns it to draft."""

    run = models.OneToOneField(TrainingRun, on_delete=models.CASCADE, related_name="model_card")
    sections = models.JSONField(default=dict, help_text="Section key -> text (Markdown), editable.")
    facts = models.JSONField(default=dict, help_text="Measured figures from the run and its audit; not editable.")
    state = models.CharField(max_length=20, choices=ModelCardState.choices, default=ModelCardState.DRAFT)
    content_hash = models.CharField(max_length=64, blank=True, help_text="What the approval binds to.")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        app_label = "governance"
        permissions = [("approve_modelcard", "Can approve model cards")]

    def __str__(self):
        return f"Model card of run {self.run_id}"

    @classmethod
    def narrow_visible(cls, queryset, user):
        return queryset.filter(run__in=TrainingRun.objects.visible_to(user))

    def compute_content_hash(self) -> str:
        return hashlib.sha256(canonical_json({"sections": self.sections, "facts": self.facts}).encode()).hexdigest()

    # Who may do what with a card: the one place each rule lives. Each says why not ("" when the
    # user may); the pages show or hide their buttons by it, and the actions refuse with the sentence.
    def edit_refusal(self, user) -> str:
        if self.run.created_by_id != user.pk:
            return "Only the engineer who owns the run edits its model card."
        return ""

    def approval_refusal(self, user) -> str:
        if not user.has_perm("governance.approve_modelcard"):
            return "Only the privacy officer approves model cards."
        if self.run.created_by_id == user.pk:
            return "You trained this adapter: someone else must approve its model card."
        return ""
