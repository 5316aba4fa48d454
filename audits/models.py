"""Audits of a trained adapter, and the privacy officer's release decision that they gate."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from governance.models import RestrictedQuerySet
from training.models import TrainingRun


class AuditState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


ACTIVE_AUDIT_STATES = (AuditState.QUEUED, AuditState.RUNNING)


class AuditOutcome(models.TextChoices):
    """The verdict of a completed audit (audits.engine.audit.evaluate_verdict)."""

    PASS = "pass", "Passed"
    FAIL = "fail", "Failed"
    INCONCLUSIVE = "inconclusive", "Inconclusive"


class AdapterAudit(models.Model):
    """One run of the memorisation and privacy attacks against a run's adapter: canary exposure,
    verbatim extraction, PII leakage, membership inference, the DP claim tested, utility. The
    report holds figures only, never a record, a secret or an original value. The verdict is the
    report judged against the thresholds of the data classes the run trained on: it passes only
    when every check those classes require ran and passed, fails when one failed, and is
    inconclusive when a required check did not run. `passed` is True only on a pass."""

    job_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, help_text="Names the audit's scratch directory.")
    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="audits")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                     help_text="Empty: queued automatically after training.")
    state = models.CharField(max_length=20, choices=AuditState.choices, default=AuditState.QUEUED)
    phase = models.CharField(max_length=60, blank=True)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    celery_task_id = models.CharField(max_length=255, blank=True)
    config = models.JSONField(default=dict, blank=True, help_text="AuditConfig of the engine.")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.TextField(blank=True)
    report = models.JSONField(default=dict, blank=True)
    thresholds = models.JSONField(default=dict, blank=True, help_text="The limits the verdict applied, and where they came from.")
    verdict = models.JSONField(default=dict, blank=True)
    passed = models.BooleanField(null=True, help_text="True only when the verdict is a pass.")
    outcome = models.CharField(max_length=20, choices=AuditOutcome.choices, blank=True,
                               help_text="The verdict: pass, fail or inconclusive. Empty until the audit completes.")
    charts = models.JSONField(default=dict, blank=True, help_text="Chart name -> SVG text (figures only).")
    purged_at = models.DateTimeField(null=True, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Audit {self.pk} of run {self.run_id}"

    def get_absolute_url(self):
        return reverse("audits:audit_detail", args=[self.pk])

    @classmethod
    def narrow_visible(cls, queryset, user):
        return queryset.filter(run__in=TrainingRun.objects.visible_to(user))

    @classmethod
    def latest_completed(cls, run) -> "AdapterAudit | None":
        """The audit the run is judged on: of its completed audits, the one that finished last.
        The one definition: release, model card, evidence pack and pages all ask here."""
        return run.audits.filter(state=AuditState.COMPLETED).order_by("-finished_at", "-created_at", "-pk").first()

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_AUDIT_STATES

    @property
    def percent(self) -> int:
        if self.state == AuditState.COMPLETED:
            return 100
        return int(100 * self.done / self.total) if self.total else 0

    def save(self, *args, **kwargs):
        # The outcome follows the stored verdict (one stored before verdicts had three outcomes
        # reads as pass or fail), and `passed` follows the outcome.
        if self.state == AuditState.COMPLETED and self.verdict:
            from audits.engine.audit import verdict_outcome

            self.outcome = verdict_outcome(self.verdict)
            self.passed = self.outcome == AuditOutcome.PASS
        super().save(*args, **kwargs)

    @property
    def failed_checks(self) -> list[dict]:
        from audits.engine.audit import FAILED, check_outcome

        return [c for c in self.verdict.get("checks", []) if check_outcome(c) == FAILED and not c.get("advisory")]

    @property
    def untested_checks(self) -> list[dict]:
        """The checks the verdict required that did not run: why it is inconclusive."""
        from audits.engine.audit import NOT_TESTED, check_outcome

        return [c for c in self.verdict.get("checks", []) if check_outcome(c) == NOT_TESTED and c.get("required", True)
                and not c.get("advisory")]


class ReleaseDecision(models.TextChoices):
    RELEASED = "released", "Released"
    BLOCKED = "blocked", "Blocked"


class AdapterRelease(models.Model):
    """The privacy officer's decision on an adapter, taken on one audit. Releasing an adapter
    whose audit failed is an override and needs a written justification; both are audited. The
    latest decision on a run stands."""

    MIN_JUSTIFICATION = 40

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="release_decisions")
    audit = models.ForeignKey(AdapterAudit, on_delete=models.PROTECT, related_name="release_decisions")
    decision = models.CharField(max_length=20, choices=ReleaseDecision.choices)
    override = models.BooleanField(default=False, help_text="Released although the audit did not pass (failed or inconclusive).")
    justification = models.TextField(blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(default=timezone.now)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-decided_at", "-pk"]
        permissions = [("release_adapter", "Can release or block an adapter")]

    def __str__(self):
        return f"{self.get_decision_display()} run {self.run_id}"

    @classmethod
    def narrow_visible(cls, queryset, user):
        return queryset.filter(run__in=TrainingRun.objects.visible_to(user))

    @classmethod
    def latest_for(cls, run: TrainingRun) -> "AdapterRelease | None":
        return cls.objects.filter(run=run).first()


class EvidencePack(models.Model):
    """What leaves the building: a zip of the PDF report, the machine-readable results, a manifest
    with the SHA-256 of every file, and an Ed25519 signature over the manifest. The zip is stored
    encrypted; its hash and the manifest are kept here so anyone can check a copy."""

    run = models.ForeignKey(TrainingRun, on_delete=models.PROTECT, related_name="evidence_packs")
    audit = models.ForeignKey(AdapterAudit, null=True, blank=True, on_delete=models.PROTECT, related_name="evidence_packs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the zip.")
    size_bytes = models.PositiveBigIntegerField()
    blob_id = models.CharField(max_length=36, unique=True)
    wrapped_key = models.BinaryField(null=True)
    manifest = models.JSONField(default=dict)
    signature = models.CharField(max_length=128, help_text="Ed25519 signature over the manifest, hex.")
    public_key_fingerprint = models.CharField(max_length=64)
    pages = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        permissions = [("share_evidencepack", "Can share evidence packs with regulators")]

    def __str__(self):
        return f"Evidence pack {self.pk} of run {self.run_id}"

    def get_absolute_url(self):
        return reverse("packs:pack_detail", args=[self.pk])

    @classmethod
    def narrow_visible(cls, queryset, user):
        """Engineers see the packs of their runs; a regulator only those shared with them and in force."""
        now = timezone.now()
        shared = PackShare.objects.filter(regulator=user, revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)).values("pack")
        return queryset.filter(models.Q(run__in=TrainingRun.objects.visible_to(user)) | models.Q(pk__in=shared))

    @staticmethod
    def key_context(blob_id: str) -> str:
        return f"provenant:evidence-pack:{blob_id}"


class PackShare(models.Model):
    """A regulator's read access to one pack, until an optional expiry or a revocation. It is the
    object permission for packs: django-guardian has no expiry, and a share must be able to end."""

    pack = models.ForeignKey(EvidencePack, on_delete=models.CASCADE, related_name="shares")
    regulator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="pack_shares")
    shared_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    shared_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=300, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-shared_at"]

    def __str__(self):
        return f"Pack {self.pack_id} shared with {self.regulator}"

    @classmethod
    def narrow_visible(cls, queryset, user):
        return queryset.filter(regulator=user)

    def in_force(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
