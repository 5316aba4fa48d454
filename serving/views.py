"""Deployment pages: the list, one deployment (policy, state, keys, counts, alerts, flagged
outputs), the deploy form reached from a released run, keys issued (the secret shown once),
state changes, and the privacy officer's review queue of flagged outputs.

Who sees what: the privacy officer everything; legal and admin the deployments (not their keys,
query log or flagged outputs); an engineer the deployments of their own runs. Pages naming an
object answer 404 to a role without it, pages without one 403 (`governance.roles.role_refusal`).
Every write, and the review queue, needs the second factor (`governance.mfa`).
"""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View
from django.views.generic import ListView

from audits.actions import adapter_is_released
from governance import mfa
from governance.roles import ENGINEER, LEGAL, PRIVACY, ADMIN, has_role, role_refusal
from serving import actions
from serving.forms import DeployForm, IssueKeyForm, ReasonForm, ReviewForm
from serving.models import ConsumerKey, Deployment, DeploymentState, FlaggedOutput, FlaggedOutputState
from training.models import TrainingRun


def can_manage(user) -> bool:
    return user.is_authenticated and user.has_perm(actions.DEPLOY_PERMISSION)


class DeploymentAccessMixin(LoginRequiredMixin):
    """Roles that may see deployments at all: privacy, legal, admin (all of them) and engineers
    (their own runs')."""

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not has_role(request.user, PRIVACY, LEGAL, ADMIN, ENGINEER):
            raise role_refusal(kwargs)
        return super().dispatch(request, *args, **kwargs)

    def get_deployment(self, pk) -> Deployment:
        return get_object_or_404(Deployment.objects.visible_to(self.request.user).select_related("run", "release", "created_by"), pk=pk)


class ManageMixin(mfa.SecondFactorRequiredMixin, LoginRequiredMixin):
    """The privacy officer's writes: others answer 404 on the URL of an object they do not see, 403
    on one they see but may not act on (an engineer's own deployment) and on a page without one
    (README, *Who sees what*); a second factor is required."""

    named_model, named_kwarg = None, "pk"  # the object the URL names, looked up through visible_to

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not can_manage(request.user):
            if kwargs and self.named_model is not None and \
                    self.named_model.objects.visible_to(request.user).filter(pk=kwargs[self.named_kwarg]).exists():
                raise PermissionDenied
            raise role_refusal(kwargs)
        return super().dispatch(request, *args, **kwargs)


class DeploymentListView(DeploymentAccessMixin, ListView):
    template_name = "serving/deployment_list.html"
    paginate_by = 50

    def get_queryset(self):
        return (Deployment.objects.visible_to(self.request.user).select_related("run", "created_by")
                .annotate(query_count=Count("queries", distinct=True)).order_by("-created_at", "-pk"))


class DeploymentDetailView(DeploymentAccessMixin, View):
    def get(self, request, pk):
        deployment = self.get_deployment(pk)
        context = {"deployment": deployment, "can_manage": can_manage(request.user), "states": DeploymentState}
        if request.user.has_perm("serving.view_consumerkey"):  # keys, query log, alerts, flagged outputs: privacy only
            outcomes = dict(deployment.queries.values_list("outcome").annotate(n=Count("pk")).values_list("outcome", "n"))
            from serving.models import QueryOutcome

            from serving.monitoring import probe_detection_note

            context.update(
                probe_note=probe_detection_note(deployment),
                keys=deployment.keys.select_related("created_by"),
                outcomes=[(label, outcomes.get(value, 0)) for value, label in QueryOutcome.choices],
                total_queries=sum(outcomes.values()),
                alerts=deployment.alerts.all()[:50],
                flagged=deployment.flagged_outputs.select_related("query")[:50],
                key_form=IssueKeyForm(), reason_form=ReasonForm())
        return render(request, "serving/deployment_detail.html", context)


class DeployView(ManageMixin, View):
    """The deploy form, reached from a released run's page."""

    named_model, named_kwarg = TrainingRun, "run_pk"

    def get_run(self, run_pk) -> TrainingRun:
        return get_object_or_404(TrainingRun.objects.visible_to(self.request.user), pk=run_pk)

    def get(self, request, run_pk, form=None):
        run = self.get_run(run_pk)
        return render(request, "serving/deploy_form.html", {"run": run, "form": form or DeployForm(initial={"name": f"run-{run.pk}"}),
                                                            "released": adapter_is_released(run)})

    def post(self, request, run_pk):
        run = self.get_run(run_pk)
        form = DeployForm(request.POST)
        if not form.is_valid():
            return self.get(request, run_pk, form)
        try:
            deployment = actions.deploy_adapter(request.user, run, **form.cleaned_data)
        except actions.DeploymentRefused as exc:
            form.add_error(None, str(exc))
            return self.get(request, run_pk, form)
        messages.success(request, f"Deployed as '{deployment.name}'. Issue a key to each consumer below.")
        return redirect(deployment)


class IssueKeyView(ManageMixin, View):
    named_model = Deployment

    def post(self, request, pk):
        deployment = get_object_or_404(Deployment.objects.visible_to(request.user), pk=pk)
        form = IssueKeyForm(request.POST)
        if form.is_valid():
            try:
                key, secret = actions.issue_consumer_key(request.user, deployment, **form.cleaned_data)
            except actions.DeploymentRefused as exc:
                form.add_error(None, str(exc))
            else:
                # Shown in the answer to this POST, never stored: reloading the page does not show it again.
                response = render(request, "serving/key_issued.html", {"deployment": deployment, "key": key, "secret": secret})
                response["Cache-Control"] = "no-store"
                return response
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return redirect(deployment)


class RevokeKeyView(ManageMixin, View):
    def post(self, request, pk):
        key = get_object_or_404(ConsumerKey.objects.visible_to(request.user).select_related("deployment"), pk=pk)
        form = ReasonForm(request.POST)
        try:
            actions.revoke_consumer_key(request.user, key, form.data.get("reason", ""))
        except actions.DeploymentRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Key {key.prefix}… of {key.consumer} revoked: it is refused from now on.")
        return redirect(key.deployment)


class StateChangeView(ManageMixin, View):
    """Suspend, resume or retire, with a reason."""

    named_model = Deployment

    verbs = {"suspend": actions.suspend_deployment, "resume": actions.resume_deployment, "retire": actions.retire_deployment}

    def post(self, request, pk, verb):
        deployment = get_object_or_404(Deployment.objects.visible_to(request.user), pk=pk)
        if verb not in self.verbs:
            raise PermissionDenied
        try:
            deployment = self.verbs[verb](request.user, deployment, request.POST.get("reason", ""))
        except actions.DeploymentRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"'{deployment.name}' is {deployment.get_state_display().lower()}.")
        return redirect(deployment)


class FlaggedQueueView(ManageMixin, ListView):
    """Flagged outputs to review (privacy only; the queue needs the second factor to open)."""

    second_factor_methods = None
    template_name = "serving/flagged_queue.html"
    paginate_by = 50

    def get_queryset(self):
        state = self.request.GET.get("state", FlaggedOutputState.OPEN)
        qs = FlaggedOutput.objects.visible_to(self.request.user).select_related("deployment", "query")
        return qs.filter(state=state) if state in FlaggedOutputState.values else qs

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "states": FlaggedOutputState.choices,
                "current": self.request.GET.get("state", FlaggedOutputState.OPEN)}


class FlaggedDetailView(ManageMixin, View):
    """One flagged output. Its original answer opens only after a written justification (kept in
    the trail by governance.mfa), and each opening is itself a trail event."""

    second_factor_methods = None

    def get_item(self, pk) -> FlaggedOutput:
        return get_object_or_404(FlaggedOutput.objects.visible_to(self.request.user).select_related("deployment", "query"), pk=pk)

    def get(self, request, pk, form=None):
        item = self.get_item(pk)
        gate = mfa.justification_response(request, item, what=f"the original answer of flagged output {item.pk}")
        if gate is not None:
            return gate
        original = actions.read_flagged_original(request.user, item)
        response = render(request, "serving/flagged_detail.html", {"item": item, "original": original, "form": form or ReviewForm()})
        response["Cache-Control"] = "no-store"
        return response

    def post(self, request, pk):
        item = self.get_item(pk)
        form = ReviewForm(request.POST)
        if not form.is_valid():
            return self.get(request, pk, form)
        try:
            actions.review_flagged_output(request.user, item, form.cleaned_data["note"])
        except actions.DeploymentRefused as exc:
            messages.error(request, str(exc))
            return redirect("serving:flagged_detail", pk)
        messages.success(request, "Review recorded.")
        following = FlaggedOutput.objects.visible_to(request.user).filter(state=FlaggedOutputState.OPEN).first()
        return redirect("serving:flagged_detail", following.pk) if following else redirect("serving:flagged_queue")


def run_deployments_section(request, run: TrainingRun) -> dict | None:
    """The run page's section (training.run_page): the run's deployments, and the deploy button
    for the privacy officer when the adapter is released."""
    if not has_role(request.user, PRIVACY, LEGAL, ADMIN, ENGINEER):
        return None
    deployments = Deployment.objects.visible_to(request.user).filter(run=run)
    released = adapter_is_released(run)
    if not deployments.exists() and not released:
        return None
    return {"deployments": deployments, "can_deploy": released and can_manage(request.user)}
