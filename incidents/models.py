"""An incident: a suspected leak or extraction attempt, from the moment it is opened (from alerts
or by hand) through containment to its post-mortem. Its timeline is the audit trail: every
action of `incidents.actions` writes an event naming the incident."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from governance.models import RestrictedQuerySet
from serving.models import Alert, Deployment


class IncidentSeverity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class IncidentState(models.TextChoices):
    OPEN = "open", "Open"
    CONTAINED = "contained", "Contained"  # a containment action was taken
    CLOSED = "closed", "Closed"  # with a post-mortem


class Incident(models.Model):
    """Only the privacy officer opens, contains and closes incidents; an administrator may read
    them (`incidents.access`)."""

    MIN_POST_MORTEM = 80

    title = models.CharField(max_length=200)
    severity = models.CharField(max_length=20, choices=IncidentSeverity.choices, default=IncidentSeverity.HIGH)
    state = models.CharField(max_length=20, choices=IncidentState.choices, default=IncidentState.OPEN)
    description = models.TextField(blank=True)
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    opened_at = models.DateTimeField(default=timezone.now)
    alerts = models.ManyToManyField(Alert, blank=True, related_name="incidents")
    deployments = models.ManyToManyField(Deployment, blank=True, related_name="incidents")
    contained_at = models.DateTimeField(null=True, blank=True)
    notification_draft = models.TextField(blank=True, help_text="GDPR Art. 33 notification, drafted from the record, edited by hand.")
    notification_updated_at = models.DateTimeField(null=True, blank=True)
    post_mortem = models.TextField(blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at", "-pk"]

    def __str__(self):
        return f"Incident {self.pk}: {self.title}"

    def get_absolute_url(self):
        return reverse("incidents:incident_detail", args=[self.pk])

    @classmethod
    def narrow_visible(cls, queryset, user):
        from incidents.access import may_read_incidents

        return queryset if may_read_incidents(user) else queryset.none()

    @property
    def is_closed(self) -> bool:
        return self.state == IncidentState.CLOSED

    def runs(self):
        from training.models import TrainingRun

        return TrainingRun.objects.filter(deployments__in=self.deployments.all()).distinct().order_by("pk")


class IncidentPack(models.Model):
    """The incident's evidence pack: a zip laid out as the run packs are (report.pdf, results.json
    with the trail excerpt, public_key.pem, README.txt, manifest.json, signature.sig), so
    `python -m audits.verify` and the portal's verify page check it. Stored encrypted; its hash
    and manifest are kept here."""

    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="packs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the zip.")
    size_bytes = models.PositiveBigIntegerField()
    blob_id = models.CharField(max_length=36, unique=True)
    wrapped_key = models.BinaryField(null=True)
    manifest = models.JSONField(default=dict)
    signature = models.CharField(max_length=128)
    public_key_fingerprint = models.CharField(max_length=64)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"Evidence pack {self.pk} of incident {self.incident_id}"

    @classmethod
    def narrow_visible(cls, queryset, user):
        return queryset.filter(incident__in=Incident.objects.visible_to(user))

    @staticmethod
    def key_context(blob_id: str) -> str:
        return f"provenant:incident-pack:{blob_id}"
