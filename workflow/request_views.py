"""Pages for training requests: draft and edit (with live policy findings), submit, withdraw,
approve or reject, the approver's inbox. Thin: check access, call one action, respond."""

from __future__ import annotations


from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models import F, Prefetch, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View
from django.views.generic import ListView

from workflow import actions

from workflow import policy
from governance import models as m
from governance.mfa import SecondFactorRequiredMixin
from governance.roles import role_refusal
from workflow import models as wm
from workflow.request_forms import DecisionForm, TrainingRequestForm, WithdrawForm


# ------------------------------------------------------------------ who may do what


def can_decide(request: wm.TrainingRequest, user) -> bool:
    """The user may still sign this version: awaiting decision, not theirs, not yet signed by them,
    and a slot their role can fill (the action's own rule)."""
    if request.state not in wm.AWAITING_DECISION_STATES or request.requester_id == user.pk:
        return False
    if request.approvals.filter(approver=user, content_hash=request.content_hash).exists():
        return False
    try:
        actions._approval_role(request, user)
    except (actions.RequestRefused, PermissionError):
        return False
    return True


class _Tallied:
    """A request as `workflow.actions._approval_role` reads it, its missing approvals counted from
    signatures already loaded rather than asked of the database again."""

    def __init__(self, request: wm.TrainingRequest, missing: dict[str, int]):
        self._request, self._missing = request, missing

    def missing_approvals(self) -> dict[str, int]:
        return self._missing

    def __getattr__(self, name):
        return getattr(self._request, name)


def awaiting_decision_by(user) -> list[wm.TrainingRequest]:
    """The approver's inbox (its page and the dashboard): the requests this user can still sign,
    oldest submission first, in a fixed number of queries however many wait. The
    signatures on each candidate's current version come in one query, its data classes in a
    prefetch, and the slot the user's role would fill is decided by the action's own rule."""
    if not user.has_perm("governance.decide_trainingrequest"):
        return []
    on_current_version = wm.Approval.objects.filter(content_hash=F("request__content_hash"))
    candidates = (wm.TrainingRequest.objects.visible_to(user).filter(state__in=wm.AWAITING_DECISION_STATES)
                  .exclude(requester=user).select_related("requester").order_by("submitted_at")
                  .prefetch_related("datasets__data_classes", Prefetch("approvals", on_current_version, to_attr="signatures")))
    awaiting = []
    for request in candidates:
        if any(s.approver_id == user.pk for s in request.signatures):
            continue  # one signature per person and version, a voided one included
        missing = request.missing_approvals(request.signatures)
        try:
            actions._approval_role(_Tallied(request, missing), user)
        except (actions.RequestRefused, PermissionError):
            continue
        awaiting.append(request)
    return awaiting


class DraftRequest:
    """An unsaved request for `policy.findings_for`: the model's attributes, with `datasets.all()`
    answering from the form's choice instead of the many-to-many table it has no row in yet."""

    class _Datasets:
        def __init__(self, datasets):
            self.pks = [d.pk for d in datasets]

        def all(self):
            return m.Dataset.objects.filter(pk__in=self.pks)

    def __init__(self, user, form: TrainingRequestForm):
        data = form.request_data()
        self._request = wm.TrainingRequest(requester=user, **data)
        self.datasets = self._Datasets(form.cleaned_data["datasets"])

    def __getattr__(self, name):
        return getattr(self._request, name)


def live_findings(user, form: TrainingRequestForm) -> dict:
    """What the findings panel shows for the form as typed so far."""
    needed = ("base_model", "datasets", "compute_target")
    form.is_valid()
    if any(not form.cleaned_data.get(name) for name in needed):
        return {"waiting": "Choose a base model, at least one dataset and a compute target to see what policy says."}
    if set(form.errors) - {"title", "intended_use", "out_of_scope"}:
        return {"invalid": [form[name].label if name != "__all__" else "Settings" for name in form.errors
                            if name not in ("title", "intended_use", "out_of_scope")]}
    return {"findings": [f.as_dict() for f in policy.findings_for(DraftRequest(user, form))]}


# ------------------------------------------------------------------ pages


class RequestAccessMixin(LoginRequiredMixin):
    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not wm.TrainingRequest.can_browse(request.user):
            raise role_refusal(kwargs)  # a request's pages: 404, the list: 403
        return super().dispatch(request, *args, **kwargs)

    def get_request(self, pk) -> wm.TrainingRequest:
        return get_object_or_404(wm.TrainingRequest.objects.visible_to(self.request.user), pk=pk)


class RequestListView(RequestAccessMixin, ListView):
    template_name = "governance/requests/list.html"
    paginate_by = 50

    def get_queryset(self):
        qs = wm.TrainingRequest.objects.visible_to(self.request.user).select_related("requester", "run")
        state = self.request.GET.get("state")
        return qs.filter(state=state) if state in wm.RequestState.values else qs

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "states": wm.RequestState.choices, "current": self.request.GET.get("state", ""),
                "can_add": self.request.user.has_perm("governance.add_trainingrequest")}


class RequestInboxView(LoginRequiredMixin, View):
    def get(self, request):
        if not request.user.has_perm("governance.decide_trainingrequest"):
            raise PermissionDenied
        return render(request, "governance/requests/inbox.html", {"awaiting": awaiting_decision_by(request.user)})


class RequestFormView(LoginRequiredMixin, View):
    """Draft a request (no pk) or edit one's own (pk)."""

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not request.user.has_perm("governance.add_trainingrequest"):
            # Someone who can read the request but not edit it: 403; anyone else: 404.
            if kwargs.get("pk") is not None:
                get_object_or_404(wm.TrainingRequest.objects.visible_to(request.user), pk=kwargs["pk"])
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def get_instance(self, pk):
        if pk is None:
            return None
        instance = get_object_or_404(wm.TrainingRequest.objects.visible_to(self.request.user), pk=pk)
        if not instance.can_edit(self.request.user):
            raise PermissionDenied
        return instance

    def get(self, request, pk=None):
        instance = self.get_instance(pk)
        form = TrainingRequestForm(user=request.user, instance=instance)
        panel = {"findings": [f.as_dict() for f in policy.findings_for(instance)]} if instance else \
            {"waiting": "Choose a base model, at least one dataset and a compute target to see what policy says."}
        return self.render(form, instance, panel)

    def post(self, request, pk=None):
        instance = self.get_instance(pk)
        form = TrainingRequestForm(request.POST, user=request.user, instance=instance)
        if form.is_valid():
            try:
                if instance is None:
                    saved = actions.create_request(request.user, form.request_data(), form.cleaned_data["datasets"])
                    messages.success(request, f"Drafted “{saved}”. Submit it when the findings show no blocker.")
                else:
                    voided = instance.approvals.filter(voided_at__isnull=True).count()
                    saved = actions.update_request(request.user, instance, form.request_data(), form.cleaned_data["datasets"])
                    messages.success(request, f"Saved “{saved}”." + (f" {voided} approval(s) voided: submit it again." if voided else ""))
                return redirect(saved)
            except actions.RequestRefused as exc:
                form.add_error(None, str(exc))
        return self.render(form, instance, live_findings(request.user, form))

    def render(self, form, instance, panel):
        return render(self.request, "governance/requests/form.html", {"form": form, "object": instance, **panel})


class RequestFindingsView(LoginRequiredMixin, View):
    """The findings panel for the form as typed (htmx, on every change)."""

    def post(self, request):
        if not request.user.has_perm("governance.add_trainingrequest"):
            raise PermissionDenied
        return render(request, "governance/requests/_findings.html",
                      live_findings(request.user, TrainingRequestForm(request.POST, user=request.user)))


class RequestDetailView(RequestAccessMixin, View):
    def get(self, request, pk):
        obj = self.get_request(pk)
        user = request.user
        ctx = {
            "object": obj, "approvals": obj.approvals.select_related("approver"), "required": _slots(obj.required_approvals()),
            "missing": _slots(obj.missing_approvals()) if obj.state in wm.AWAITING_DECISION_STATES else "",
            "timeline": timeline(obj), "can_edit": obj.can_edit(user), "can_withdraw": obj.can_withdraw(user),
            "can_submit": obj.requester_id == user.pk and obj.state in (wm.RequestState.DRAFT, wm.RequestState.REJECTED),
            "can_decide": can_decide(obj, user),
            "adversaries": [wm.Adversary(a).label for a in obj.adversaries if a in wm.Adversary.values],
        }
        if obj.state in (wm.RequestState.DRAFT, wm.RequestState.REJECTED):
            ctx["current_findings"] = [f.as_dict() for f in policy.findings_for(obj)]
        if ctx["can_decide"]:
            ctx["decision_form"] = DecisionForm()
        if ctx["can_withdraw"]:
            ctx["withdraw_form"] = WithdrawForm()
        if obj.run_id:
            ctx.update(run=obj.run, stale=obj.run.heartbeat_is_stale())
        return render(request, "governance/requests/detail.html", ctx)


def _slots(counts: dict[str, int]) -> str:
    """{"legal": 1, "additional": 2} -> "1 legal counsel, 2 additional approvers"."""
    return ", ".join(f"{n} {wm.ApprovalRole(role).label.lower()}{'s' if n > 1 else ''}" for role, n in counts.items() if n)


def timeline(obj: wm.TrainingRequest):
    """The audit events of the request, of its run and of the run's audits, in order. Seen through
    the request: whoever may read the request reads its history."""
    from audits.models import AdapterAudit

    where = Q(object_type="governance.trainingrequest", object_id=str(obj.pk))
    if obj.run_id:
        audits = [str(pk) for pk in AdapterAudit.objects.filter(run_id=obj.run_id).values_list("pk", flat=True)]
        where |= Q(object_type="training.trainingrun", object_id=str(obj.run_id)) | Q(object_type="audits.adapteraudit", object_id__in=audits)
    return m.AuditEvent.objects.filter(where).order_by("sequence")


class RequestSubmitView(RequestAccessMixin, View):
    def post(self, request, pk):
        obj = self.get_request(pk)
        try:
            actions.submit_request(request.user, obj)
            messages.success(request, "Submitted: the approvers have it now. Any edit voids their approvals.")
        except PermissionError:
            raise PermissionDenied
        except actions.RequestRefused as exc:
            messages.error(request, str(exc))
        return redirect(obj)


class RequestWithdrawView(RequestAccessMixin, View):
    def post(self, request, pk):
        obj = self.get_request(pk)
        if not obj.can_withdraw(request.user):
            raise PermissionDenied
        form = WithdrawForm(request.POST)
        actions.withdraw_request(request.user, obj, form.cleaned_data["reason"] if form.is_valid() else "")
        messages.success(request, "Withdrawn.")
        return redirect(obj)


class RequestDecideView(RequestAccessMixin, SecondFactorRequiredMixin, View):
    def post(self, request, pk):
        obj = self.get_request(pk)
        if obj.requester_id == request.user.pk or not request.user.has_perm("governance.decide_trainingrequest"):
            raise PermissionDenied
        form = DecisionForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Choose approve or reject.")
            return redirect(obj)
        try:
            approval = actions.decide_request(request.user, obj, form.cleaned_data["decision"],
                                              comment=form.cleaned_data["comment"], conditions=form.cleaned_data["conditions"])
        except PermissionError:
            raise PermissionDenied
        except actions.RequestRefused as exc:
            messages.error(request, str(exc))
            return redirect(obj)
        verb = "approved" if approval.decision == wm.ApprovalDecision.APPROVE else "rejected"
        messages.success(request, f"You {verb} “{obj}” as {approval.get_role_display().lower()}.")
        return redirect(obj)
