"""The second factor on every page request (after django-otp's OTPMiddleware).

- A session whose password was accepted but whose code was not yet given (`governance.mfa.begin_login`)
  opens only the verification page, logging out and the password-reset pages.
- `SecondFactorRequired`, raised by `governance.mfa.require_second_factor` in a page, becomes:
  for someone without an authenticator, a redirect to set one up (with a sentence saying why and
  a way back); for a session not verified recently, the step-up prompt — a redirect to the
  verification page for a GET, and for a POST the prompt itself, which re-sends the form with the
  code so the action goes on once the code is right. The API answers it itself (DRF: a 403).
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve

from governance import mfa


class SecondFactorMiddleware:
    OPEN_URL_NAMES = {"mfa:verify", "logout", "login", "health", "password_reset_confirm", "password_reset_complete"}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated and mfa.login_pending(request):
            try:
                match = resolve(request.path_info)
                name = f"{match.namespace}:{match.url_name}" if match.namespace else match.url_name
            except Resolver404:
                name = None
            if name not in self.OPEN_URL_NAMES:
                if request.path_info.startswith("/api/"):
                    return JsonResponse({"detail": "Finish signing in: enter the code from your authenticator app "
                                                   f"at {mfa.url_with_next('mfa:verify', '/')}."}, status=403)
                return HttpResponseRedirect(mfa.url_with_next("mfa:verify", mfa.safe_next(request, request.get_full_path())))
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, mfa.SecondFactorRequired):
            return None
        if exception.reason == mfa.NOT_ENROLLED:
            messages.warning(request, exception.message)
            return HttpResponseRedirect(mfa.url_with_next("mfa:setup", mfa.page_to_return_to(request)))
        if request.method == "GET":
            messages.info(request, exception.message)
            return HttpResponseRedirect(mfa.url_with_next("mfa:verify", request.get_full_path()))
        # A POST: ask for the code on the spot and send the same form again with it.
        fields = [(name, value) for name, values in request.POST.lists()
                  if name not in ("csrfmiddlewaretoken", mfa.CODE_FIELD) for value in values]
        return render(request, "governance/mfa/step_up.html", {
            "message": exception.message, "error": exception.error, "fields": fields, "action": request.get_full_path(),
            "code_field": mfa.CODE_FIELD, "back": mfa.page_to_return_to(request),
        }, status=403)
