"""Datasets: uploaded, encrypted at rest, classified by the privacy officer."""

from __future__ import annotations


from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from governance.keys import blob_store, master_key

from governance.models.base import GovernanceRecord
from governance.models.records import DataClass


class LawfulBasis(models.TextChoices):
    CONSENT = "consent", "Consent — Art. 6(1)(a)"
    CONTRACT = "contract", "Contract — Art. 6(1)(b)"
    LEGAL_OBLIGATION = "legal_obligation", "Legal obligation — Art. 6(1)(c)"
    VITAL_INTERESTS = "vital_interests", "Vital interests — Art. 6(1)(d)"
    PUBLIC_TASK = "public_task", "Public task — Art. 6(1)(e)"
    LEGITIMATE_INTERESTS = "legitimate_interests", "Legitimate interests — Art. 6(1)(f)"
    NOT_PERSONAL = "not_personal", "Not personal data"


class Segment(models.TextChoices):
    TRAIN = "train", "Training"
    EVAL_ONLY = "eval_only", "Evaluation only"


class DatasetFormat(models.TextChoices):
    JSONL = "jsonl", "JSON Lines (one object per line)"
    CSV = "csv", "CSV with a header row"
    TEXT = "text", "Plain text, one record per line"


class DatasetState(models.TextChoices):
    ACTIVE = "active", "Active"
    SHREDDED = "shredded", "Shredded"


class DatasetShredded(Exception):
    pass


class Dataset(GovernanceRecord):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="datasets")
    file_format = models.CharField(max_length=10, choices=DatasetFormat.choices)
    text_field = models.CharField(max_length=100, default="text", blank=True, help_text="JSONL: the field holding the text.")
    csv_column = models.CharField(max_length=100, blank=True, help_text="CSV: the column holding the text.")
    data_classes = models.ManyToManyField(DataClass, blank=True, related_name="datasets")
    source = models.CharField(max_length=300, help_text="Where the data came from (system, export, vendor).")
    lawful_basis = models.CharField(max_length=30, choices=LawfulBasis.choices)
    segment = models.CharField(max_length=20, choices=Segment.choices, default=Segment.TRAIN)
    state = models.CharField(max_length=20, choices=DatasetState.choices, default=DatasetState.ACTIVE, editable=False)
    original_filename = models.CharField(max_length=255, editable=False)
    sha256 = models.CharField("SHA-256 of the plaintext", max_length=64, editable=False)
    size_bytes = models.PositiveBigIntegerField(editable=False)
    record_count = models.PositiveIntegerField(editable=False)
    blob_id = models.CharField(max_length=36, editable=False, unique=True)
    wrapped_key = models.BinaryField(null=True, editable=False)
    shredded_at = models.DateTimeField(null=True, editable=False)
    pii_profile = models.JSONField(default=dict, blank=True, editable=False)
    pii_profiled_at = models.DateTimeField(null=True, editable=False)

    audit_exclude = ("wrapped_key", "pii_profile")

    class Meta:
        ordering = ["-created_at"]
        permissions = [("classify_dataset", "Can classify any dataset")]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("governance:dataset_detail", args=[self.pk])

    @classmethod
    def narrow_visible(cls, queryset, user):
        from guardian.shortcuts import get_objects_for_user

        shared = get_objects_for_user(
            user, "governance.view_dataset", klass=cls, with_superuser=False, accept_global_perms=False
        )
        return queryset.filter(Q(owner=user) | Q(pk__in=shared.values("pk")))

    @classmethod
    def can_browse(cls, user) -> bool:
        return super().can_browse(user) or cls.can_add(user)

    def can_change(self, user) -> bool:
        return self.state == DatasetState.ACTIVE and (self.owner_id == user.pk or user.has_perm("governance.classify_dataset"))

    def can_shred(self, user) -> bool:
        return self.state == DatasetState.ACTIVE and (self.owner_id == user.pk or user.has_perm("governance.delete_dataset"))

    def can_share(self, user) -> bool:
        return self.state == DatasetState.ACTIVE and self.owner_id == user.pk

    @property
    def awaiting_classification(self) -> bool:
        return self.state == DatasetState.ACTIVE and not self.data_classes.exists()

    @staticmethod
    def key_context(blob_id: str) -> str:
        return f"provenant:dataset:{blob_id}"

    def open_plaintext(self):
        """Return (data key, ciphertext file): decrypt with `key.decrypting(file)`, in memory only."""
        if self.state == DatasetState.SHREDDED or not self.wrapped_key:
            raise DatasetShredded(f"Dataset {self.pk} was crypto-shredded on {self.shredded_at:%Y-%m-%d}.")
        key = master_key().unwrap(self.wrapped_key, self.key_context(self.blob_id))
        return key, blob_store().open(self.blob_id)


# --------------------------------------------------------------------------- audit trail
