"""Resets of a user's second factor that wait for a second administrator.

The devices themselves are django-otp's (TOTP and static recovery codes); `governance.mfa` changes
them. Resetting the second factor of someone who holds a role that reads everything or decides
(legal, privacy, admin) follows the rule of role grants (`governance.users`): one administrator
proposes it and a second one confirms it, so no single administrator can strip that protection
from a colleague's account.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class SecondFactorResetState(models.TextChoices):
    PENDING = "pending", "Awaiting a second administrator"
    DONE = "done", "Done"
    DECLINED = "declined", "Declined or withdrawn"


class SecondFactorReset(models.Model):
    """One proposed reset of one user's second factor. Changed only by `governance.mfa`."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="second_factor_resets")
    state = models.CharField(max_length=10, choices=SecondFactorResetState.choices, default=SecondFactorResetState.PENDING)
    reason = models.CharField(max_length=500)
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-proposed_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["user"], condition=models.Q(state="pending"),
                                               name="one_pending_second_factor_reset_per_user")]

    def __str__(self):
        return f"Second factor reset for {self.user}"
