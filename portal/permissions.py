from rest_framework.permissions import BasePermission

from governance.roles import roles_of


class HasAnyRole(BasePermission):
    """An authenticated user with no role (an outsider) is refused everything, docs included."""

    def has_permission(self, request, view):
        return bool(roles_of(request.user)) or request.user.is_superuser
