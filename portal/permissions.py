from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.permissions import BasePermission

from governance.roles import roles_of

NO_ROLE = "You have no role yet — ask an administrator."


class HasAnyRole(BasePermission):
    """An authenticated user with no role (an outsider) is refused everything, docs included."""

    def has_permission(self, request, view):
        return bool(roles_of(request.user)) or request.user.is_superuser


class RoleTokenAuthentication(TokenAuthentication):
    """A token of a user with no role opens nothing: every endpoint, the API root included,
    answers 403 with the sentence the pages show (portal.middleware.NoRoleMiddleware)."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if not user.is_superuser and not roles_of(user):
            raise exceptions.PermissionDenied(NO_ROLE)
        return user, token
