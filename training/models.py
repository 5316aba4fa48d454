"""Redaction keys and the privacy officer's review queue."""

from __future__ import annotations

import os
import uuid

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.urls import reverse
from django.utils import timezone

from governance.models import Dataset, RestrictedQuerySet
from portal.keys import master_key


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
