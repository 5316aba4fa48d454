"""The history of the portal's evidence-pack signing keys: which key was current when.

A regulator holds packs signed years ago; after the signing key is rotated they must still
verify. Each key the portal has signed with keeps a row here (its public half only), with the
period it was valid; the public-key page lists them all, and online verification picks the key by
the fingerprint a pack names and checks the pack was signed within that key's period.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from governance.models.base import RestrictedQuerySet


class SigningKey(models.Model):
    """One Ed25519 public key the portal signed evidence packs with. `valid_until` is empty while
    it is the current key. Rows change only through `governance.signing_keys`, which holds a lock
    while it closes one period and opens the next, so at most one row is current."""

    fingerprint = models.CharField(max_length=64, unique=True, help_text="SHA-256 (hex) of the raw 32-byte public key.")
    public_key_pem = models.TextField(help_text="SubjectPublicKeyInfo PEM.")
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField(null=True, blank=True)
    retired_reason = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                   help_text="Who rotated to this key (empty: recorded by the portal when it first used it).")
    retired_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-valid_from", "-pk"]
        constraints = [
            models.CheckConstraint(condition=models.Q(valid_until__isnull=True) | models.Q(valid_until__gte=models.F("valid_from")),
                                   name="signing_key_valid_until_after_valid_from"),
        ]
        # The one permission for both rotations (the master key has no row of its own).
        permissions = [("rotate_keys", "Can rotate the master key and the evidence-pack signing key")]

    def __str__(self):
        return f"Signing key {self.fingerprint[:16]}…"

    @classmethod
    def narrow_visible(cls, queryset, user):
        return queryset  # public keys: anyone logged in may read the history

    @property
    def is_current(self) -> bool:
        return self.valid_until is None

    def valid_at(self, moment) -> bool:
        return self.valid_from <= moment and (self.valid_until is None or moment <= self.valid_until)

    def audit_snapshot(self) -> dict:
        return {"fingerprint": self.fingerprint, "valid_from": self.valid_from, "valid_until": self.valid_until,
                "retired_reason": self.retired_reason}

    @classmethod
    def current(cls) -> "SigningKey | None":
        return cls.objects.filter(valid_until__isnull=True).first()

    def period_text(self) -> str:
        until = f"{self.valid_until:%Y-%m-%d %H:%M:%S} UTC" if self.valid_until else "now (current)"
        return f"{self.valid_from:%Y-%m-%d %H:%M:%S} UTC – {until}"
