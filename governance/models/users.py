"""Role grants: who proposed a role for whom, and who confirmed it.

A user's roles are their Django groups (`governance.roles`); this table keeps how each grant came
about. Grants of the roles that read everything or decide (legal, privacy, admin) wait here as
*pending* until a second person confirms them (`governance.users`). API tokens live here too: a
user's token, kept hashed.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

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


class ApiTokenQuerySet(models.QuerySet):
    def issue(self, user, days: int, *, with_second_factor: bool = False) -> tuple["ApiToken", str]:
        """A new token for `user`, replacing any old one, and its secret: the only time the secret
        exists outside the caller's hands. Call through `governance.users.rotate_api_token`, which
        writes the trail (tests and the load bench call this directly to stand up clients).
        `with_second_factor`: made from a session verified with a second factor (governance.mfa)."""
        secret = secrets.token_urlsafe(32)  # 256 random bits: a plain SHA-256 is as good as a slow hash
        self.filter(user=user).delete()
        token = self.create(user=user, prefix=secret[:ApiToken.PREFIX_LENGTH], digest=ApiToken.digest_of(secret),
                            expires_at=timezone.now() + timedelta(days=days), issued_with_second_factor=with_second_factor)
        return token, secret


class ApiToken(models.Model):
    """A user's API token (at most one), sent as `Authorization: Token <secret>`. Only the SHA-256
    of the secret is kept, so reading this table does not let anyone act as its owners; the first
    characters (`prefix`) are kept to tell tokens apart, which is no help in guessing the rest.
    Changed only by `governance.users`; looked up by `portal.permissions.RoleTokenAuthentication`."""

    PREFIX_LENGTH = 6

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_token")
    prefix = models.CharField(max_length=PREFIX_LENGTH)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Made from a session verified with a second factor: only such a token may approve, release or
    # share for a privileged role (governance.mfa.require_second_factor). Cleared when the owner's
    # second factor is reset.
    issued_with_second_factor = models.BooleanField(default=False)

    objects = ApiTokenQuerySet.as_manager()

    def __str__(self):
        return f"{self.prefix}… for {self.user}"

    @staticmethod
    def digest_of(secret: str) -> str:
        return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()

    def has_expired(self, now=None) -> bool:
        return (now or timezone.now()) >= self.expires_at

    def note_use(self, now) -> None:
        """Record when the token was last used, at most once a minute: a script calling the API in
        a loop writes a row a minute, not one per request. Bookkeeping, not a change of state, so
        no trail event."""
        if self.last_used_at is None or now - self.last_used_at >= timedelta(minutes=1):
            ApiToken.objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now
