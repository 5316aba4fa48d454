from django.http import JsonResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve

from governance.roles import roles_of
from portal.permissions import NO_ROLE


class PermissionsPolicyMiddleware:
    """The portal needs no camera, microphone, location or payment API; say so to the browser."""

    HEADER = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", self.HEADER)
        response.setdefault("Cache-Control", "no-store" if request.user.is_authenticated else "private")
        return response


def has_no_role(user) -> bool:
    """Signed in, but given no role yet (a superuser, made on the command line, passes)."""
    return user.is_authenticated and not user.is_superuser and not roles_of(user)


class NoRoleMiddleware:
    """A signed-in user with no role sees one page that says so, and nothing else: not the pack
    list, the signing key, the verify page or the API root, which need no role-specific permission
    and would otherwise open. The home page answers 200 with it; every other URL 403 (the API
    with the same sentence in JSON). API tokens are checked by portal.permissions.RoleTokenAuthentication."""

    # What a role-less user still needs: to leave, and to set the password an administrator's
    # reset link lets them choose.
    OPEN_URL_NAMES = {"login", "logout", "password_reset_confirm", "password_reset_complete", "health"}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not has_no_role(request.user):
            return self.get_response(request)
        try:
            name = resolve(request.path_info).url_name
        except Resolver404:
            name = None
        if name in self.OPEN_URL_NAMES:
            return self.get_response(request)
        if request.path_info.startswith("/api/"):
            return JsonResponse({"detail": NO_ROLE}, status=403)
        return render(request, "registration/no_role.html", {"message": NO_ROLE}, status=200 if name == "dashboard" else 403)
