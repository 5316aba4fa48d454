import datetime as dt

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Q
from django.http import JsonResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.generic import TemplateView

from governance import mfa, users
from governance.roles import roles_of
from governance.models import ApiToken, Attestation, DataProcessingAgreement, Dataset, DatasetState
from workflow.request_views import awaiting_decision_by

EXPIRY_HORIZON_DAYS = 30


class DashboardView(LoginRequiredMixin, TemplateView):
    """What awaits this user: renewals coming due and datasets nobody has classified yet."""

    template_name = "dashboard.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        user, today = self.request.user, timezone.localdate()
        horizon = today + dt.timedelta(days=EXPIRY_HORIZON_DAYS)
        ctx["horizon_days"] = EXPIRY_HORIZON_DAYS
        # A DPA stops being in force when it ends or when a required attestation expires.
        in_force = (
            DataProcessingAgreement.objects.visible_to(user).filter(Q(terminated_on__isnull=True) | Q(terminated_on__gt=today))
            .select_related("processor").prefetch_related("processor__attestations")
        ) if DataProcessingAgreement.can_browse(user) else []
        ctx["expiring_dpas"] = sorted(
            ((dpa, ends) for dpa in in_force if dpa.in_force_on(today) and (ends := dpa.next_expiry(today)) and ends <= horizon),
            key=lambda pair: pair[1],
        )
        ctx["expiring_attestations"] = (
            Attestation.objects.visible_to(user).filter(expires_on__gte=today, expires_on__lte=horizon)
            .select_related("processor").order_by("expires_on")
        ) if Attestation.can_browse(user) else []
        ctx["expired_attestations"] = (
            Attestation.objects.visible_to(user).filter(expires_on__lt=today, expires_on__gte=today - dt.timedelta(days=90))
            .select_related("processor").order_by("-expires_on")
        ) if Attestation.can_browse(user) else []
        ctx["unclassified_datasets"] = (
            Dataset.objects.visible_to(user).filter(state=DatasetState.ACTIVE, data_classes__isnull=True)
            .select_related("owner").order_by("created_at")
        ) if Dataset.can_browse(user) else []
        ctx["pending_approvals"] = awaiting_decision_by(user)
        ctx.update(monitoring_context(user))
        return ctx


def monitoring_context(user) -> dict:
    """The privacy officer's share of the dashboard: alerts not yet acknowledged, incidents not closed."""
    from incidents.access import may_read_incidents, may_see_alerts
    from incidents.models import Incident, IncidentState
    from serving.models import Alert

    ctx = {}
    if may_see_alerts(user):
        waiting = Alert.objects.filter(acknowledged_at__isnull=True).select_related("deployment")
        ctx["open_alerts"], ctx["open_alert_count"] = list(waiting[:10]), waiting.count()
        ctx["shows_alerts"] = True
    if may_read_incidents(user):
        ctx["open_incidents"] = list(Incident.objects.visible_to(user).exclude(state=IncidentState.CLOSED)[:20])
        ctx["shows_incidents"] = True
    return ctx


class ApiTokenView(LoginRequiredMixin, TemplateView):
    """The user's API token: create or rotate it (POST), when its secret is shown, once, in the
    answer to that POST and never again (only its hash is kept); or revoke it (POST `revoke`).
    Only users with a role. Someone with an authenticator confirms a recent code first, and the
    token then carries the second factor (what a privileged role's approvals through the API need)."""

    template_name = "registration/api_token.html"

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not roles_of(request.user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def post(self, request):
        if "revoke" in request.POST:
            try:
                users.revoke_api_token(request.user)
                messages.success(request, "Your API token is revoked: it no longer works.")
            except users.UserActionRefused as exc:
                messages.error(request, str(exc))
            return redirect("api_token")
        if mfa.is_enrolled(request.user):
            mfa.require_second_factor(request, everyone=True)  # the step-up prompt if the last code is old
        _, secret = users.rotate_api_token(request.user, with_second_factor=mfa.session_is_fresh(request))
        response = self.render_to_response(self.get_context_data(secret=secret))
        add_never_cache_headers(response)  # the secret must not stay in a cache or the browser's history
        return response

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["token"] = ApiToken.objects.filter(user=self.request.user).first()
        ctx["token_days"] = settings.PROVENANT_API_TOKEN_DAYS
        ctx["second_factor_required"] = mfa.requires_second_factor(self.request.user)
        ctx["enrolled"] = mfa.is_enrolled(self.request.user)
        return ctx


def health(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """The one-time link an administrator issues (governance.users.issue_password_reset): the user
    chooses their own password, and the trail records that they did."""

    template_name = "registration/password_reset_confirm.html"

    def form_valid(self, form):
        # Django's own form_valid saves the password outside our action; do its steps around it.
        user = users.set_password_from_reset_link(form)
        del self.request.session[auth_views.INTERNAL_RESET_SESSION_TOKEN]
        if self.post_reset_login:
            auth_login(self.request, user, self.post_reset_login_backend)
        return redirect(self.get_success_url())


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "registration/password_reset_complete.html"
