"""Deployments of released adapters and what happens at the gateway.

A deployment serves one released adapter under a name (the `model` a client asks for), with a
policy: who may call it (consumer keys), how much (limits per key), how long an answer may be, what
the output filter does, and whether prompts are kept. Everything that changes a deployment goes
through `serving.actions`, which writes the trail.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from audits.models import AdapterRelease
from governance.models.base import RestrictedQuerySet
from training.models import TrainingRun


class DeploymentState(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"  # refuses every call until resumed
    RETIRED = "retired", "Retired"  # for good: its keys are revoked


class FilterMode(models.TextChoices):
    MASK = "mask", "Mask personal data in answers"
    WITHHOLD = "withhold", "Withhold any answer that contains personal data"


class Deployment(models.Model):
    """A released adapter served at the gateway. Only the privacy officer deploys, and only an
    adapter whose latest release decision is `released` (checked in `serving.actions`)."""

    name = models.SlugField(max_length=64, unique=True, help_text="What clients name as `model` in their requests.")
    run = models.ForeignKey(TrainingRun, on_delete=models.PROTECT, related_name="deployments")
    release = models.ForeignKey(AdapterRelease, on_delete=models.PROTECT, related_name="deployments",
                                help_text="The release decision the deployment was made on.")
    purpose = models.TextField(blank=True)
    state = models.CharField(max_length=20, choices=DeploymentState.choices, default=DeploymentState.ACTIVE)
    max_output_tokens = models.PositiveIntegerField(default=256)
    filter_mode = models.CharField(max_length=20, choices=FilterMode.choices, default=FilterMode.MASK)
    log_prompts = models.BooleanField(default=False, help_text="Keep prompts (redacted) in the query log.")
    # The watermark's secret key, sealed with the master key: the gateway passes it to the model
    # server; it never leaves the portal otherwise.
    watermark_key_sealed = models.BinaryField(null=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    state_changed_at = models.DateTimeField(default=timezone.now)
    state_reason = models.TextField(blank=True, help_text="Why it was last suspended, resumed or retired.")

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [("deploy_adapter", "Can deploy adapters, manage their consumer keys and review flagged outputs")]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("serving:deployment_detail", args=[self.pk])

    @classmethod
    def narrow_visible(cls, queryset, user):
        """Engineers see the deployments of their own runs."""
        return queryset.filter(run__in=TrainingRun.objects.visible_to(user))

    @property
    def is_active(self) -> bool:
        return self.state == DeploymentState.ACTIVE

    def watermark_context(self) -> str:
        return f"provenant:deployment-watermark:{self.pk}"


class ConsumerKeyQuerySet(RestrictedQuerySet):
    def issue(self, deployment: Deployment, *, consumer: str, created_by, days: int, requests_per_minute: int,
              tokens_per_day: int) -> tuple["ConsumerKey", str]:
        """A new key and its secret, the only time the secret exists outside the caller's hands.
        Call through `serving.actions.issue_consumer_key`, which writes the trail."""
        secret = ConsumerKey.SECRET_PREFIX + secrets.token_urlsafe(32)
        key = self.create(deployment=deployment, consumer=consumer, prefix=secret[:ConsumerKey.PREFIX_LENGTH],
                          digest=ConsumerKey.digest_of(secret), created_by=created_by,
                          expires_at=timezone.now() + timedelta(days=days), requests_per_minute=requests_per_minute,
                          tokens_per_day=tokens_per_day)
        return key, secret

    def by_secret(self, secret: str) -> "ConsumerKey | None":
        return self.select_related("deployment").filter(digest=ConsumerKey.digest_of(secret)).first()


class ConsumerKey(models.Model):
    """One consumer's key to one deployment, sent as `Authorization: Bearer <secret>`. Only the
    SHA-256 of the secret is kept (256 random bits: a plain hash is as good as a slow one)."""

    SECRET_PREFIX = "pvk_"
    PREFIX_LENGTH = 10

    deployment = models.ForeignKey(Deployment, on_delete=models.PROTECT, related_name="keys")
    consumer = models.CharField(max_length=120, help_text="Who calls with this key: an application or a team.")
    prefix = models.CharField(max_length=PREFIX_LENGTH)
    digest = models.CharField(max_length=64, unique=True)
    requests_per_minute = models.PositiveIntegerField(default=60)
    tokens_per_day = models.PositiveIntegerField(default=100_000)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.TextField(blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ConsumerKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.prefix}… for {self.consumer}"

    @classmethod
    def narrow_visible(cls, queryset, user):
        return queryset.none()  # keys are the privacy officer's (view_consumerkey), not the run's engineer's

    @staticmethod
    def digest_of(secret: str) -> str:
        return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()

    def refusal(self, now=None) -> str | None:
        """Why this key may not call now, in a sentence for the client, or None."""
        now = now or timezone.now()
        if self.revoked_at is not None:
            return "This API key was revoked. Ask the deployment's owner for a new one."
        if now >= self.expires_at:
            return "This API key has expired. Ask the deployment's owner for a new one."
        if self.deployment.state != DeploymentState.ACTIVE:
            return f"The deployment '{self.deployment.name}' is {self.deployment.get_state_display().lower()}: it answers no calls."
        return None


class QueryOutcome(models.TextChoices):
    ANSWERED = "answered", "Answered"
    MASKED = "masked", "Answered with personal data masked"
    WITHHELD = "withheld", "Withheld by the output filter"
    LIMITED = "limited", "Refused: a limit was reached"
    REFUSED = "refused", "Refused: bad request"
    FAILED = "failed", "Failed in the model server"


class QueryRecord(models.Model):
    """One call at the gateway. The consumer is pseudonymised (HMAC of the key under a portal
    secret); prompt and output are kept only redacted, the prompt only when the deployment logs
    prompts. Deleted after `PROVENANT_QUERY_LOG_DAYS` by the retention task."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="queries")
    key = models.ForeignKey(ConsumerKey, null=True, on_delete=models.SET_NULL, related_name="queries")
    consumer_pseudonym = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    endpoint = models.CharField(max_length=40)
    outcome = models.CharField(max_length=20, choices=QueryOutcome.choices)
    prompt_redacted = models.TextField(blank=True)
    output_redacted = models.TextField(blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    temperature = models.FloatField(null=True)
    streamed = models.BooleanField(default=False)
    findings = models.JSONField(default=dict, help_text="Personal data the output filter found, counted by type.")
    original_hits = models.PositiveIntegerField(default=0, help_text="Values from the run's index of original personal data.")
    # What the extraction detectors need of the prompt, without its text: keyed digests of its
    # opening words and a MinHash signature for near-duplicate bursts.
    prompt_signature = models.JSONField(default=dict)
    latency_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["deployment", "consumer_pseudonym", "created_at"])]


class AlertKind(models.TextChoices):
    CANARY_PREFIX = "canary_prefix", "A prompt reproduces a canary's prefix"
    TRAINING_OPENING = "training_opening", "A prompt reproduces a training record's opening"
    NEAR_DUPLICATE_BURST = "near_duplicate_burst", "A burst of near-duplicate prompts"
    HIGH_TEMPERATURE_VOLUME = "high_temperature_volume", "Sampling at high temperature in volume"
    ORIGINAL_VALUE_OUTPUT = "original_value_output", "An answer contained an original personal value"
    REAUDIT_FAILED = "reaudit_failed", "A scheduled re-audit did not pass"


class AlertSeverity(models.TextChoices):
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class Alert(models.Model):
    """Something at the gateway that looks like an extraction attempt or a leak. Raised by
    `serving.actions.raise_alert` (trail event in the same transaction); shown on the dashboard
    until acknowledged; an incident may be opened from it."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=40, choices=AlertKind.choices)
    severity = models.CharField(max_length=20, choices=AlertSeverity.choices)
    summary = models.TextField()
    details = models.JSONField(default=dict)
    consumer_pseudonym = models.CharField(max_length=64, blank=True)
    key = models.ForeignKey(ConsumerKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    query = models.ForeignKey(QueryRecord, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    created_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.get_severity_display()} alert on {self.deployment}: {self.get_kind_display()}"

    @classmethod
    def narrow_visible(cls, queryset, user):
        return queryset.none()  # alerts are the privacy officer's (view_alert)


class FlaggedOutputState(models.TextChoices):
    OPEN = "open", "Awaiting review"
    REVIEWED = "reviewed", "Reviewed"


class FlaggedOutput(models.Model):
    """An answer the output filter changed or withheld, for the privacy officer's review queue. The
    original answer is sealed with the master key (as the redaction review's snippets are) and opened
    only with a written justification, which the trail keeps."""

    query = models.OneToOneField(QueryRecord, on_delete=models.CASCADE, related_name="flag")
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="flagged_outputs")
    created_at = models.DateTimeField(default=timezone.now)
    findings = models.JSONField(default=dict)
    original_hits = models.PositiveIntegerField(default=0)
    sealed_output = models.BinaryField(null=True, editable=False)
    state = models.CharField(max_length=20, choices=FlaggedOutputState.choices, default=FlaggedOutputState.OPEN)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    @classmethod
    def narrow_visible(cls, queryset, user):
        return queryset.none()

    def seal_context(self) -> str:
        return f"provenant:flagged-output:{self.query_id}"


class UsageWindow(models.TextChoices):
    MINUTE = "minute", "Requests in one minute"
    DAY = "day", "Tokens in one day (UTC)"


class UsageCounter(models.Model):
    """How much one key used in one fixed window (a minute of requests, a UTC day of tokens), when
    the limits are counted in the database (no Redis configured). One row per key, window and
    start; increments are single `UPDATE … SET used = used + n` statements, so they hold across
    processes and workers without a lock held between reading and writing (`serving.limits`)."""

    key = models.ForeignKey(ConsumerKey, on_delete=models.CASCADE, related_name="usage")
    window = models.CharField(max_length=10, choices=UsageWindow.choices)
    starts_at = models.DateTimeField()
    used = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "window", "starts_at"], name="serving_usage_one_row_per_window")]
