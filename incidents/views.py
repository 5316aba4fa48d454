"""Alerts, incidents and watermark detection: the privacy officer's pages (an administrator may read
incidents). Pages naming an object answer 404 to a role without it, pages without one 403
(`governance.roles.role_refusal`); every write needs the second factor (`governance.mfa`)."""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View
from django.views.generic import ListView

from governance import mfa
from governance.key_rotation import KeyRotationFailed, KeyRotationIncomplete, KeyRotationRefused
from governance.models import AuditEvent
from governance.roles import role_refusal
from incidents import actions, evidence, watermarks
from incidents.access import may_read_incidents, may_respond, may_see_alerts
from incidents.forms import AcknowledgeForm, NotificationForm, OpenIncidentForm, PostMortemForm, RotationForm, WatermarkForm
from incidents.models import Incident, IncidentPack, IncidentState
from serving.models import Alert, Deployment, DeploymentState
from training.models import TrainingRun

REFUSALS = (actions.IncidentRefused, PermissionError, KeyRotationRefused, KeyRotationFailed, KeyRotationIncomplete)


class ReadMixin(LoginRequiredMixin):
    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not may_read_incidents(request.user):
            raise role_refusal(kwargs)
        return super().dispatch(request, *args, **kwargs)

    def get_incident(self, pk) -> Incident:
        return get_object_or_404(Incident.objects.visible_to(self.request.user), pk=pk)


class RespondMixin(mfa.SecondFactorRequiredMixin, LoginRequiredMixin):
    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not may_respond(request.user):
            if "pk" in kwargs and Incident.objects.visible_to(request.user).filter(pk=kwargs["pk"]).exists():
                raise PermissionDenied  # an administrator reads the incident but may not act on it: 403, not 404
            raise role_refusal(kwargs)
        return super().dispatch(request, *args, **kwargs)

    def get_incident(self, pk) -> Incident:
        return get_object_or_404(Incident.objects.visible_to(self.request.user), pk=pk)


class AlertMixin(mfa.SecondFactorRequiredMixin, LoginRequiredMixin):
    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not (may_see_alerts(request.user) and may_respond(request.user)):
            raise role_refusal(kwargs)
        return super().dispatch(request, *args, **kwargs)


# --------------------------------------------------------------------------- alerts


class AlertListView(AlertMixin, ListView):
    template_name = "incidents/alert_list.html"
    paginate_by = 50

    def get_queryset(self):
        alerts = Alert.objects.select_related("deployment", "acknowledged_by").prefetch_related("incidents")
        return alerts if self.request.GET.get("state") == "all" else alerts.filter(acknowledged_at__isnull=True)

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "showing_all": self.request.GET.get("state") == "all"}


class AlertAcknowledgeView(AlertMixin, View):
    def post(self, request, pk):
        alert = get_object_or_404(Alert, pk=pk)
        form = AcknowledgeForm(request.POST)
        try:
            actions.acknowledge_alert(request.user, alert, form.data.get("note", "")[:1000])
            messages.success(request, f"Alert {alert.pk} acknowledged.")
        except REFUSALS as exc:
            messages.error(request, str(exc))
        return redirect("incidents:alert_list")


# --------------------------------------------------------------------------- incidents


class IncidentListView(ReadMixin, ListView):
    template_name = "incidents/incident_list.html"
    paginate_by = 50

    def get_queryset(self):
        return Incident.objects.visible_to(self.request.user).select_related("opened_by").prefetch_related("deployments")

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "can_respond": may_respond(self.request.user)}


class IncidentOpenView(RespondMixin, View):
    template = "incidents/incident_form.html"

    def get(self, request):
        alerts = Alert.objects.filter(pk__in=request.GET.getlist("alert"))
        initial = {"alerts": alerts, "deployments": Deployment.objects.filter(alerts__in=alerts).distinct()}
        if alerts:
            first = alerts.first()
            initial["title"] = f"{first.get_kind_display()} on {first.deployment.name}"[:200]
            initial["severity"] = "critical" if any(a.severity == "critical" for a in alerts) else "high"
        return render(request, self.template, {"form": OpenIncidentForm(initial=initial, picked=list(alerts))})

    def post(self, request):
        form = OpenIncidentForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                incident = actions.open_incident(request.user, data["title"], data["severity"], alerts=data["alerts"],
                                                 deployments=data["deployments"], description=data["description"])
                messages.success(request, f"Incident {incident.pk} opened.")
                return redirect(incident)
            except REFUSALS as exc:
                form.add_error(None, str(exc))
        return render(request, self.template, {"form": form}, status=400)


class IncidentDetailView(ReadMixin, View):
    def get(self, request, pk):
        incident = self.get_incident(pk)
        can_respond = may_respond(request.user) and incident.state != IncidentState.CLOSED
        impact = actions.impact(incident)
        timeline = AuditEvent.objects.filter(object_type="incidents.incident", object_id=str(incident.pk)).order_by("sequence")
        from audits.actions import adapter_is_released

        runs = [{"run": r["run"], "released": adapter_is_released(r["run"]), "deployments": r["deployments"]} for r in impact.runs]
        return render(request, "incidents/incident_detail.html", {
            "incident": incident, "impact": impact, "timeline": timeline, "runs": runs, "can_respond": can_respond,
            "may_respond": may_respond(request.user),
            "deployments": incident.deployments.select_related("run").prefetch_related("keys"),
            "alerts": incident.alerts.select_related("deployment"), "packs": incident.packs.select_related("created_by"),
            "notification_form": NotificationForm(initial={"text": incident.notification_draft
                                                           or actions.draft_notification(incident, request.user)}),
            "post_mortem_form": PostMortemForm(), "rotation_form": RotationForm(), "active": DeploymentState.ACTIVE,
            "retired": DeploymentState.RETIRED,
        })


class IncidentContainView(RespondMixin, View):
    """One button per containment: suspend or retire a deployment with its keys, revoke a run's
    release, rotate the master key, rotate the signing key."""

    def post(self, request, pk, what):
        incident = self.get_incident(pk)
        reason = RotationForm(request.POST).data.get("reason", "")[:1000]
        try:
            if what in actions.CONTAINMENTS:
                deployment = get_object_or_404(incident.deployments.all(), pk=request.POST.get("deployment"))
                outcome = actions.contain_deployment(request.user, incident, deployment, what)
                messages.success(request, f"'{deployment.name}' is {outcome['to']}; {len(outcome['keys_revoked'])} key(s) revoked.")
            elif what == "revoke-release":
                run = get_object_or_404(TrainingRun, pk=request.POST.get("run"))
                actions.revoke_release(request.user, incident, run)
                messages.success(request, f"The release of run {run.pk} is revoked (blocked); its deployments are suspended.")
            elif what == "rotate-master-key":
                messages.success(request, actions.rotate_master_key(request.user, incident, reason).summary())
            elif what == "rotate-signing-key":
                messages.success(request, actions.rotate_signing_key(request.user, incident, reason).summary())
            else:
                return HttpResponse(status=404)
        except REFUSALS as exc:
            messages.error(request, str(exc))
        return redirect(incident)


class IncidentNotificationView(RespondMixin, View):
    def post(self, request, pk):
        incident = self.get_incident(pk)
        form = NotificationForm(request.POST)
        try:
            if not form.is_valid():
                raise actions.IncidentRefused("The notification is empty or too long (at most 50,000 characters).")
            actions.save_notification(request.user, incident, form.cleaned_data["text"])
            messages.success(request, "Notification draft saved.")
        except REFUSALS as exc:
            messages.error(request, str(exc))
        return redirect(incident)


class IncidentCloseView(RespondMixin, View):
    def post(self, request, pk):
        incident = self.get_incident(pk)
        try:
            actions.close_incident(request.user, incident, request.POST.get("post_mortem", ""))
            messages.success(request, f"Incident {incident.pk} closed.")
        except REFUSALS as exc:
            messages.error(request, str(exc))
        return redirect(incident)


class IncidentPackBuildView(RespondMixin, View):
    def post(self, request, pk):
        incident = self.get_incident(pk)
        try:
            pack = actions.build_incident_pack(request.user, incident)
            messages.success(request, f"Evidence pack {pack.pk} built and signed.")
        except REFUSALS as exc:
            messages.error(request, str(exc))
        return redirect(incident)


class IncidentPackDownloadView(ReadMixin, View):
    def get(self, request, pk, pack_pk):
        incident = self.get_incident(pk)
        pack = get_object_or_404(IncidentPack.objects.filter(incident=incident), pk=pack_pk)
        data = evidence.read_pack_bytes(pack)
        actions.record_pack_download(request.user, pack)
        response = HttpResponse(data, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="incident-{incident.pk}-pack-{pack.pk}.zip"'
        return response


# --------------------------------------------------------------------------- watermark detection


class WatermarkDetectView(RespondMixin, View):
    template = "incidents/watermark.html"

    def get(self, request):
        return render(request, self.template, {"form": WatermarkForm()})

    def post(self, request):
        form = WatermarkForm(request.POST)
        context = {"form": form}
        if form.is_valid():
            try:
                context["outcome"] = watermarks.detect_text(request.user, form.cleaned_data["text"])
            except watermarks.DetectionRefused as exc:
                form.add_error("text", str(exc))
        return render(request, self.template, context, status=200 if form.is_valid() and not form.errors else 400)
