from django.urls import reverse
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.permissions import BasePermission

from governance.models import ApiToken
from governance.roles import roles_of

NO_ROLE = "You have no role yet — ask an administrator."


class HasAnyRole(BasePermission):
    """An authenticated user with no role (an outsider) is refused everything, docs included."""

    def has_permission(self, request, view):
        return bool(roles_of(request.user)) or request.user.is_superuser


class RoleTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>` with the key from the API token page. The key is looked up by
    its SHA-256 (governance.models.ApiToken keeps no key); an expired key is refused with a sentence
    that says where to make a new one. A token of a user with no role opens nothing: every endpoint,
    the API root included, answers 403 with the sentence the pages show
    (portal.middleware.NoRoleMiddleware)."""

    model = ApiToken

    def authenticate_credentials(self, key):
        token = ApiToken.objects.select_related("user").filter(digest=ApiToken.digest_of(key)).first()
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid token.")
        now = timezone.now()
        if token.has_expired(now):
            raise exceptions.AuthenticationFailed(
                f"This API token expired on {token.expires_at:%Y-%m-%d}; make a new one on the API token page "
                f"({reverse('api_token')}).")
        user = token.user
        if not user.is_superuser and not roles_of(user):
            raise exceptions.PermissionDenied(NO_ROLE)
        token.note_use(now)
        return user, token
