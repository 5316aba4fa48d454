"""Redaction keys and the privacy officer's review queue."""

from __future__ import annotations

import os
import uuid

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.urls import reverse
from django.utils import timezone

from governance.models import Dataset, RestrictedQuerySet
from governance.keys import master_key


class PseudonymKey(models.Model):
    """The HMAC key behind stable surrogates, one per scope (a data class, or the default),
    stored only sealed by the master key. Same key: same surrogates, run after run."""

    scope = models.CharField(max_length=80, unique=True)
    sealed = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    @classmethod
    def for_scope(cls, scope: str) -> bytes:
        context = f"provenant:pseudonym-key:{scope}"
        key = cls.objects.filter(scope=scope).first()
        if key is None:
            try:
                with transaction.atomic():
                    key = cls.objects.create(scope=scope, sealed=master_key().seal(os.urandom(32), context))
            except IntegrityError:  # created concurrently: use theirs
                key = cls.objects.get(scope=scope)
        return master_key().open(key.sealed, context)


class ReviewReason(models.TextChoices):
    LOW_CONFIDENCE = "low_confidence", "Low-confidence detection"
    HIGH_RISK = "high_risk", "High-risk data class"


class ReviewDecision(models.TextChoices):
    PENDING = "pending", "Awaiting review"
    ACCEPTED = "accepted", "Accepted: redact as detected"
    REJECTED = "rejected", "Rejected: not personal data, keep the text"
    EXTENDED = "extended", "Extended: redact a wider span"


class RedactionReview(models.Model):
    """One detection a person must look at before the dataset trains. The surrounding text is
    sealed by the master key; only the privacy role may open it, and every opening is audited."""

    SNIPPET_MARGIN = 120

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="redaction_reviews")
    record_id = models.CharField(max_length=200)
    entity_type = models.CharField(max_length=40)
    start = models.PositiveIntegerField(help_text="Offset of the detection in the record.")
    end = models.PositiveIntegerField()
    score = models.FloatField()
    recognizer = models.CharField(max_length=100, blank=True)
    reason = models.CharField(max_length=20, choices=ReviewReason.choices)
    snippet_offset = models.PositiveIntegerField(help_text="Where the sealed snippet starts in the record.")
    snippet_sealed = models.BinaryField()
    snippet_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    decision = models.CharField(max_length=20, choices=ReviewDecision.choices, default=ReviewDecision.PENDING)
    new_start = models.PositiveIntegerField(null=True, blank=True)
    new_end = models.PositiveIntegerField(null=True, blank=True)
    comment = models.TextField(blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["decision", "score", "pk"]
        constraints = [models.UniqueConstraint(fields=["dataset", "record_id", "start", "end"], name="one_review_per_detection")]

    def __str__(self):
        return f"{self.entity_type} in record {self.record_id} of {self.dataset}"

    def get_absolute_url(self):
        return reverse("training:review_detail", args=[self.pk])

    @classmethod
    def narrow_visible(cls, queryset, user):
        return queryset.none()

    @classmethod
    def can_browse(cls, user) -> bool:
        return user.is_authenticated and user.has_perm("training.view_redactionreview")

    def can_decide(self, user) -> bool:
        return user.has_perm("training.change_redactionreview")

    @property
    def context(self) -> str:
        return f"provenant:review-snippet:{self.snippet_id}"

    @classmethod
    def seal_snippet(cls, snippet_id, text: str) -> bytes:
        return master_key().seal(text.encode(), f"provenant:review-snippet:{snippet_id}")

    def open_snippet(self) -> str:
        return master_key().open(self.snippet_sealed, self.context).decode()

    def snippet_parts(self) -> tuple[str, str, str]:
        """(before, detected, after) within the snippet, for highlighting."""
        snippet = self.open_snippet()
        start, end = self.start - self.snippet_offset, self.end - self.snippet_offset
        return snippet[:start], snippet[start:end], snippet[end:]


class BaseModelSource(models.TextChoices):
    LOCAL_DIRECTORY = "local_directory", "Local Hugging Face directory"
    GGUF = "gguf", "GGUF file (converted to safetensors once)"
    HUB = "hub", "Hub id (hosts with network only)"


class BaseModel(models.Model):
    """A base model runs can adapt: where its weights are, what it is, and the SHA-256 of each
    weight file, so a run's manifest names exactly the weights it started from."""

    name = models.CharField(max_length=200, unique=True)
    source = models.CharField(max_length=20, choices=BaseModelSource.choices)
    location = models.CharField(max_length=500, help_text="Directory (or GGUF file, or hub id) of the weights.")
    architecture = models.CharField(max_length=100)
    parameter_count = models.PositiveBigIntegerField()
    licence = models.CharField(max_length=100, blank=True, help_text="Empty: unknown, which policy flags.")
    weight_hashes = models.JSONField(default=dict, help_text="File name -> SHA-256.")
    created_at = models.DateTimeField(default=timezone.now)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @classmethod
    def narrow_visible(cls, queryset, user):
        return queryset.none()


class RunState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Trained"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_RUN_STATES = (RunState.QUEUED, RunState.RUNNING)


def may_cancel_runs_of(user, starter_id) -> bool:
    """The cancel rule's who: whoever started the run (for a request's run, its requester), or
    whoever may cancel any run (the privacy officer, administrators)."""
    return starter_id == user.pk or user.has_perm("training.cancel_any_run")


class TrainingRun(models.Model):
    """One execution of the private pipeline: redact, split, plant canaries, train DP-LoRA, encrypt
    the artifacts, purge the plaintext. The run owns its live progress, its heartbeat (so a dead
    worker is noticed) and what it purged."""

    job_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, help_text="Names the run's scratch directory.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="training_runs")
    base_model = models.ForeignKey(BaseModel, on_delete=models.PROTECT, related_name="runs")
    datasets = models.ManyToManyField(Dataset, related_name="training_runs")
    config = models.JSONField(help_text="Training, canary and split settings, as validated by RunSettings.")
    state = models.CharField(max_length=20, choices=RunState.choices, default=RunState.QUEUED)
    phase = models.CharField(max_length=40, blank=True, help_text="What the run is doing now, in words.")
    failure_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Live progress, written at most every few seconds by the worker.
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(null=True, blank=True)
    epoch = models.FloatField(null=True, blank=True)
    loss = models.FloatField(null=True, blank=True)
    epsilon_spent = models.FloatField(null=True, blank=True, help_text="ε by the accountant for the steps taken so far.")
    eta_seconds = models.PositiveIntegerField(null=True, blank=True)
    progress_at = models.DateTimeField(null=True, blank=True)
    # Liveness and control.
    worker = models.CharField(max_length=200, blank=True, help_text="Celery node (or host:pid) running it.")
    celery_task_id = models.CharField(max_length=255, blank=True)
    # The compute target's queue it was dispatched to: a message sent again (a broker that lost its
    # queues) must reach the same target, never another region's workers.
    celery_queue = models.CharField(max_length=100, default="gpu")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Outcome.
    result = models.JSONField(default=dict, blank=True, help_text="Steps, ε, δ, σ, sample rate, accountant, device.")
    redaction_report = models.JSONField(default=dict, blank=True)
    manifest = models.JSONField(default=dict, blank=True)
    purged_at = models.DateTimeField(null=True, blank=True)
    purge_report = models.JSONField(default=dict, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        permissions = [("cancel_any_run", "Can cancel any training run")]

    def __str__(self):
        return f"Run {self.pk} on {self.base_model}"

    def get_absolute_url(self):
        return reverse("training:run_detail", args=[self.pk])

    @classmethod
    def narrow_visible(cls, queryset, user):
        return queryset.filter(created_by=user)

    @classmethod
    def can_browse(cls, user) -> bool:
        return user.is_authenticated and (user.has_perm("training.view_trainingrun") or user.has_perm("governance.add_dataset"))

    def may_be_cancelled_by(self, user) -> bool:
        return may_cancel_runs_of(user, self.created_by_id)

    def can_cancel(self, user) -> bool:
        """Whether the page shows the button (the rule itself: training.runs.check_cancel)."""
        return self.is_active and self.may_be_cancelled_by(user)

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_RUN_STATES

    @property
    def percent(self) -> int:
        if self.state == RunState.SUCCEEDED:
            return 100
        return int(100 * self.step / self.total_steps) if self.total_steps else 0

    def heartbeat_is_stale(self, now=None) -> bool:
        now = now or timezone.now()
        timeout = settings.PROVENANT_HEARTBEAT_TIMEOUT_SECONDS
        last = self.heartbeat_at or self.started_at
        return self.state == RunState.RUNNING and last is not None and (now - last).total_seconds() > timeout

    @staticmethod
    def scratch_root():
        """Where runs' plaintext scratch directories live on this host."""
        from pathlib import Path

        return Path(settings.PROVENANT_DATA_DIR) / "scratch"


class ArtifactKind(models.TextChoices):
    ADAPTER = "adapter", "Adapter file (PEFT)"
    CHECKPOINT = "checkpoint", "Intermediate checkpoint file"
    CANARIES = "canaries", "Canary secrets"
    HOLDOUT = "holdout", "Holdout records (non-members for the audits)"
    MEMBERS = "members", "Sample of training records (members for the audits)"
    PII_INDEX = "pii_index", "HMAC index of the original and surrogate personal data (for the leakage audit)"
    PROBE_INDEX = "probe_index", "HMAC index of record openings and canary prefixes (for the gateway's extraction detector)"
    CURVE = "curve", "Chart (SVG)"
    MANIFEST = "manifest", "Run manifest"


class RunArtifact(models.Model):
    """A file a run produced, encrypted at rest with its own data key; the SHA-256 of its plaintext
    is recorded before anyone can download it."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="artifacts")
    kind = models.CharField(max_length=20, choices=ArtifactKind.choices)
    name = models.CharField(max_length=300, help_text="Path inside the kind, e.g. adapter_model.safetensors.")
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField()
    blob_id = models.CharField(max_length=36, unique=True)
    wrapped_key = models.BinaryField(null=True)
    created_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["kind", "name"]
        constraints = [models.UniqueConstraint(fields=["run", "kind", "name"], name="one_artifact_per_name")]

    def __str__(self):
        return f"{self.get_kind_display()} {self.name}"

    @classmethod
    def narrow_visible(cls, queryset, user):
        return queryset.filter(run__in=TrainingRun.objects.visible_to(user))

    @staticmethod
    def key_context(blob_id: str) -> str:
        return f"provenant:run-artifact:{blob_id}"

    def read_bytes(self) -> bytes:
        from governance.keys import blob_store

        key = master_key().unwrap(self.wrapped_key, self.key_context(self.blob_id))
        with blob_store().open(self.blob_id) as ciphertext, key.decrypting(ciphertext) as plaintext:
            return plaintext.read()
