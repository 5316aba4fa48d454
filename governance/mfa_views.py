"""Pages of the second factor: log in with a code, set up an authenticator (QR code or typed
secret) and its recovery codes, confirm a code again (step-up), give a written justification, and
an administrator's reset of someone else's second factor. Thin: check access, call one action of
`governance.mfa`, respond."""

from __future__ import annotations

from base64 import b32encode

import segno
from django import forms
from django.apps import apps
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views import View

from governance import mfa
from governance.forms import JustificationForm
from governance.models import SecondFactorReset, SecondFactorResetState
from governance.roles import ROLE_LABELS, ROLES, roles_of
from governance.user_views import AdminOnlyMixin


class CodeForm(forms.Form):
    code = forms.CharField(max_length=32, label="Code", strip=True,
                           widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True}),
                           help_text="The six digits your authenticator app shows for Provenant, or one of your recovery codes.")


class EnrolmentCodeForm(forms.Form):
    code = forms.CharField(max_length=10, label="Code from the app", strip=True,
                           widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
                           help_text="After scanning, the app shows six digits that change every 30 seconds: type the current ones.")


class ResetForm(forms.Form):
    reason = forms.CharField(max_length=500, help_text="Why (a lost phone, …). Kept in the audit trail.")


def _next(request, default=None) -> str:
    return mfa.safe_next(request, request.POST.get("next") or request.GET.get("next"), default or reverse("dashboard"))


# --------------------------------------------------------------------------- logging in


class LoginView(auth_views.LoginView):
    """Django's password login, then the second factor: someone with an authenticator is sent to
    the code page (the session opens nothing else until the code is right); someone in a
    privileged role without one is told why to set it up."""

    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        user, target = form.get_user(), self.get_success_url()
        if mfa.begin_login(self.request, user):
            return HttpResponseRedirect(mfa.url_with_next("mfa:verify", target))
        if mfa.requires_second_factor(user):
            messages.warning(self.request, (
                f"Your role ({mfa.privileged_role_labels(user)}) approves, releases and shares only with a second factor. "
                "Set up an authenticator app now, or later from this page before your first such action."))
            return HttpResponseRedirect(mfa.url_with_next("mfa:setup", target))
        return response


class VerifyView(LoginRequiredMixin, View):
    """The code after the password, and the step-up: confirm a code, then go back where you were."""

    template = "governance/mfa/verify.html"

    def get(self, request, form=None, error=""):
        if not mfa.is_enrolled(request.user):
            return redirect(mfa.url_with_next("mfa:setup", _next(request)))
        return render(request, self.template, {
            "form": form or CodeForm(), "error": error, "next": _next(request), "pending": mfa.login_pending(request),
            "verified_at": mfa.verified_at(request), "step_up_minutes": mfa.step_up_seconds() // 60,
        }, status=400 if error else 200)

    def post(self, request):
        form = CodeForm(request.POST)
        if not form.is_valid():
            return self.get(request, form)
        outcome = mfa.verify_code(request, form.cleaned_data["code"], purpose="login" if mfa.login_pending(request) else "step-up")
        if not outcome.ok:
            return self.get(request, CodeForm(), outcome.message)
        if outcome.recovery_code_used:
            (messages.warning if outcome.codes_left < 3 else messages.info)(request, outcome.message + (
                " Make new ones on the second factor page soon." if outcome.codes_left < 3 else ""))
        return redirect(_next(request))


# --------------------------------------------------------------------------- setting up


def _qr_data_uri(device) -> str:
    """The otpauth:// address as a QR code, an SVG inlined as a data: URI (no outside service)."""
    return segno.make(device.config_url, error="m").svg_data_uri(scale=5, border=2, dark="#111", light="#fff")


def _grouped_secret(device) -> str:
    secret = b32encode(device.bin_key).decode()
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


class SetupView(LoginRequiredMixin, View):
    """Your second factor: set up an authenticator (scan the QR code or type the secret, confirm a
    code), see how many recovery codes are left, make new ones (after a fresh code)."""

    template = "governance/mfa/setup.html"

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not (roles_of(request.user) or request.user.is_superuser):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def context(self, request, **extra) -> dict:
        user = request.user
        pending = None if mfa.is_enrolled(user) else mfa.totp_device(user, confirmed=False)
        ctx = {
            "enrolled": mfa.is_enrolled(user), "pending": pending, "codes_left": mfa.recovery_codes_left(user),
            "required": mfa.requires_second_factor(user), "roles": mfa.privileged_role_labels(user),
            "next": _next(request), "form": EnrolmentCodeForm(), "verified_at": mfa.verified_at(request),
            "recovery_code_count": mfa.RECOVERY_CODE_COUNT,
        }
        if pending is not None:
            ctx.update(qr=_qr_data_uri(pending), secret=_grouped_secret(pending), otpauth=pending.config_url)
        return {**ctx, **extra}

    def get(self, request):
        response = render(request, self.template, self.context(request))
        add_never_cache_headers(response)  # it may show the secret
        return response

    def post(self, request):
        action = request.POST.get("action")
        try:
            if action == "start":
                mfa.start_enrolment(request.user)
                return redirect(mfa.url_with_next("mfa:setup", _next(request)))
            if action == "confirm":
                return self.confirm(request)
            if action == "regenerate":
                mfa.require_second_factor(request, everyone=True)  # a fresh code first, whatever the role
                return self.show_codes(request, mfa.regenerate_recovery_codes(request.user), "New recovery codes made: the old ones no longer work.")
        except mfa.SecondFactorRefused as exc:
            messages.error(request, str(exc))
            return redirect(mfa.url_with_next("mfa:setup", _next(request)))
        messages.error(request, "Choose what to do on this page.")
        return redirect("mfa:setup")

    def confirm(self, request):
        form = EnrolmentCodeForm(request.POST)
        if not form.is_valid():
            return render(request, self.template, self.context(request, form=form), status=400)
        outcome, codes = mfa.confirm_enrolment(request.user, form.cleaned_data["code"])
        if not outcome.ok:
            form.add_error("code", outcome.message)
            return render(request, self.template, self.context(request, form=form), status=400)
        mfa.mark_session_verified(request, outcome.device)
        return self.show_codes(request, codes, "Your authenticator app is set up: signing in now asks for a code from it.")

    def show_codes(self, request, codes, sentence):
        response = render(request, "governance/mfa/recovery_codes.html", {"codes": codes, "sentence": sentence, "next": _next(request)})
        add_never_cache_headers(response)  # shown once: not kept in a cache or the browser's history
        return response


# --------------------------------------------------------------------------- justification


class JustifyView(LoginRequiredMixin, View):
    """The answer to `governance.mfa.justification_response`'s form: record why, then go back to the item."""

    def post(self, request):
        try:
            ticket = mfa.read_justification_ticket(request, request.POST.get("ticket", ""))
        except mfa.JustificationRefused as exc:
            messages.error(request, str(exc))
            return redirect("dashboard")
        label, _, pk = ticket["item"].partition(":")
        try:
            item = apps.get_model(label).objects.get(pk=pk)
        except (LookupError, ValueError, ObjectDoesNotExist):
            messages.error(request, "That item no longer exists.")
            return redirect("dashboard")
        form = JustificationForm(request.POST)
        target = mfa.safe_next(request, ticket.get("next"))
        try:
            if not form.is_valid():
                raise mfa.JustificationRefused(" ".join(e for errs in form.errors.values() for e in errs))
            mfa.record_justification(request, item, form.cleaned_data["justification"], what=ticket["what"])
        except mfa.JustificationRefused as exc:
            return render(request, "governance/mfa/justify.html", {
                "what": ticket["what"], "form": form, "ticket": request.POST["ticket"], "error": str(exc),
                "min_chars": mfa.justification_min_chars(), "minutes": mfa.settings.PROVENANT_JUSTIFICATION_SECONDS // 60,
            }, status=400)
        return redirect(target)


# --------------------------------------------------------------------------- an administrator's reset


class UserSecondFactorView(AdminOnlyMixin, mfa.SecondFactorRequiredMixin, View):
    """One account's second factor, for an administrator: whether it is set up, the resets
    proposed and done; propose a reset (at once for engineers and regulators, confirmed by a
    second administrator for legal, privacy and admin)."""

    def get(self, request, pk, form=None):
        subject = self.get_user(pk)
        resets = SecondFactorReset.objects.filter(user=subject).select_related("proposed_by", "decided_by")[:20]
        held = roles_of(subject)
        return render(request, "governance/mfa/user_second_factor.html", {
            "subject": subject, "enrolled": mfa.is_enrolled(subject), "has_factor": mfa.has_second_factor(subject),
            "codes_left": mfa.recovery_codes_left(subject), "resets": resets, "form": form or ResetForm(),
            "is_self": subject.pk == request.user.pk, "needs_second": mfa.needs_second_administrator(subject),
            "held": [ROLE_LABELS[r] for r in ROLES if r in held],
            "confirmable": [r for r in resets if mfa.may_confirm_reset(request.user, r)],
        })

    def post(self, request, pk):
        subject = self.get_user(pk)
        form = ResetForm(request.POST)
        if not form.is_valid():
            return self.get(request, pk, form)
        try:
            reset = mfa.propose_reset(request.user, subject, form.cleaned_data["reason"])
        except mfa.SecondFactorRefused as exc:
            messages.error(request, str(exc))
        except PermissionError as exc:
            raise PermissionDenied(str(exc)) from exc
        else:
            messages.success(request, f"Reset the second factor of {subject.username}: they set it up again at their next sign-in."
                             if reset.state == SecondFactorResetState.DONE else
                             f"Proposed a reset of {subject.username}'s second factor: a second administrator confirms it.")
        return redirect("governance:user_second_factor", pk=subject.pk)


class ResetDecisionView(AdminOnlyMixin, mfa.SecondFactorRequiredMixin, View):
    decision = ""

    def post(self, request, pk):
        reset = get_object_or_404(SecondFactorReset.objects.select_related("user"), pk=pk)
        try:
            if self.decision == "confirm":
                mfa.confirm_reset(request.user, reset)
                messages.success(request, f"Confirmed: {reset.user.username}'s second factor is reset.")
            else:
                mfa.decline_reset(request.user, reset, request.POST.get("reason", "")[:500])
                messages.success(request, f"Declined the reset of {reset.user.username}'s second factor.")
        except mfa.SecondFactorRefused as exc:
            messages.error(request, str(exc))
        except PermissionError as exc:
            raise PermissionDenied(str(exc)) from exc
        return redirect("governance:user_second_factor", pk=reset.user_id)
