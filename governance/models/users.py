"""Role grants: who proposed a role for whom, and who confirmed it.

A user's roles are their Django groups (`governance.roles`); this table keeps how each grant came
about. Grants of the roles that read everything or decide (legal, privacy, admin) wait here as
*pending* until a second person confirms them (`governance.users`).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from governance.roles import ROLE_LABELS, ROLES


class RoleGrantState(models.TextChoices):
    PENDING = "pending", "Awaiting a second person"
    GRANTED = "granted", "Granted"
    DECLINED = "declined", "Declined or withdrawn"


class RoleGrant(models.Model):
    """One role given (or proposed) to one user. Changed only by `governance.users`."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="role_grants")
    role = models.CharField(max_length=20, choices=[(role, ROLE_LABELS[role]) for role in ROLES])
    state = models.CharField(max_length=10, choices=RoleGrantState.choices, default=RoleGrantState.PENDING)
    reason = models.CharField(max_length=500, blank=True)
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-proposed_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["user", "role"], condition=models.Q(state="pending"),
                                               name="one_pending_grant_per_user_and_role")]

    def __str__(self):
        return f"{self.get_role_display()} for {self.user}"
