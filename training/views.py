"""The privacy officer's redaction review queue. Original text is shown to the privacy role only,
with a recent second factor and after a written justification for each item, and each view of it
is an audit event (governance.mfa)."""

from django import forms
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View
from django.views.generic import ListView

from governance import mfa
from governance.roles import role_refusal
from training import actions, run_page, runs
from training.models import ArtifactKind, RedactionReview, ReviewDecision, RunArtifact, TrainingRun


class ReviewQueueView(LoginRequiredMixin, mfa.SecondFactorRequiredMixin, ListView):
    second_factor_methods = None  # reading the queue too
    template_name = "training/review_queue.html"
    paginate_by = 50

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not RedactionReview.can_browse(request.user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def get_queryset(self):
        qs = RedactionReview.objects.visible_to(self.request.user).select_related("dataset")
        decision = self.request.GET.get("decision", ReviewDecision.PENDING)
        return qs.filter(decision=decision) if decision in ReviewDecision.values else qs

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "decisions": ReviewDecision.choices,
                "current": self.request.GET.get("decision", ReviewDecision.PENDING)}


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[c for c in ReviewDecision.choices if c[0] != ReviewDecision.PENDING], widget=forms.RadioSelect)
    extend_to = forms.CharField(required=False, max_length=500, label="Text to redact instead (for “extended”)",
                                help_text="Copy the exact wider text from the snippet; it must contain the detection.")
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("decision") == ReviewDecision.EXTENDED and not cleaned.get("extend_to"):
            self.add_error("extend_to", "Give the wider text to redact.")
        return cleaned


class ReviewDetailView(LoginRequiredMixin, mfa.SecondFactorRequiredMixin, View):
    second_factor_methods = None

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not RedactionReview.can_browse(request.user):
            raise role_refusal(kwargs)
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, pk, form=None):
        item = get_object_or_404(RedactionReview.objects.visible_to(request.user).select_related("dataset"), pk=pk)
        asked = mfa.justification_response(request, item, what=f"the original text around a {item.entity_type} detection in record {item.record_id}")
        if asked is not None:
            return asked
        before, detected, after = actions.view_review_snippet(request.user, item)
        return render(request, "training/review_detail.html", {
            "item": item, "before": before, "detected": detected, "after": after, "form": form or DecisionForm(),
        })

    def post(self, request, pk):
        item = get_object_or_404(RedactionReview.objects.visible_to(request.user), pk=pk)
        if not item.can_decide(request.user):
            raise PermissionDenied
        form = DecisionForm(request.POST)
        if not form.is_valid():
            return self.get(request, pk, form)
        try:
            actions.decide_review(request.user, item, form.cleaned_data["decision"], comment=form.cleaned_data["comment"],
                                  extend_to=form.cleaned_data["extend_to"])
        except ValueError as exc:
            form.add_error("extend_to", str(exc))
            return self.get(request, pk, form)
        messages.success(request, "Decision recorded.")
        following = RedactionReview.objects.visible_to(request.user).filter(decision=ReviewDecision.PENDING).first()
        return redirect(following or "training:review_queue")


# --------------------------------------------------------------------------- training runs

# What the browser may download as a single artifact. The adapter leaves only as a whole, once the
# privacy officer has released it (audits.views.AdapterDownloadView); canary secrets, member and
# holdout records and the PII index never leave through a page.
DOWNLOADABLE_KINDS = {ArtifactKind.CURVE: "image/svg+xml", ArtifactKind.MANIFEST: "application/json"}


class RunAccessMixin(LoginRequiredMixin):
    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not TrainingRun.can_browse(request.user):
            raise role_refusal(kwargs)  # a run's pages: 404, the list: 403
        return super().dispatch(request, *args, **kwargs)

    def get_run(self, pk) -> TrainingRun:
        return get_object_or_404(TrainingRun.objects.visible_to(self.request.user).select_related("base_model", "created_by"), pk=pk)


class RunListView(RunAccessMixin, ListView):
    template_name = "training/run_list.html"
    paginate_by = 50

    def get_queryset(self):
        return TrainingRun.objects.visible_to(self.request.user).select_related("base_model", "created_by")


class RunDetailView(RunAccessMixin, View):
    def get(self, request, pk):
        run = self.get_run(pk)
        context = {"run": run, "stale": run.heartbeat_is_stale()}
        if request.htmx:  # the progress poll: the sections below it do not change every 2 seconds
            return render(request, "training/_run_progress.html", context)
        artifacts = run.artifacts.filter(deleted_at__isnull=True)
        return render(request, "training/run_detail.html", {
            **context, "can_cancel": run.can_cancel(request.user), "artifacts": artifacts,
            "curves": [a for a in artifacts if a.kind == ArtifactKind.CURVE], "downloadable": set(DOWNLOADABLE_KINDS),
            # audits, release, model card, evidence packs: from the apps above training (training.run_page)
            "sections": run_page.render_sections(request, run),
        })


class RunCancelView(RunAccessMixin, View):
    def post(self, request, pk):
        run = self.get_run(pk)
        if not run.can_cancel(request.user):
            raise PermissionDenied
        try:
            runs.request_cancel(request.user, run)
        except ValueError as exc:  # it ended meanwhile
            messages.error(request, str(exc))
            return redirect(run)
        messages.success(request, "Cancellation requested: the run stops at its next step and purges its scratch.")
        return redirect(run)


class RunArtifactView(RunAccessMixin, View):
    def get(self, request, pk, artifact_pk):
        artifact = get_object_or_404(RunArtifact.objects.visible_to(request.user).filter(run_id=pk, deleted_at__isnull=True),
                                     pk=artifact_pk)
        if artifact.kind not in DOWNLOADABLE_KINDS:
            raise PermissionDenied("This artifact is not downloadable from the portal.")
        response = HttpResponse(artifact.read_bytes(), content_type=DOWNLOADABLE_KINDS[artifact.kind])
        disposition = "inline" if artifact.kind == ArtifactKind.CURVE else "attachment"
        response["Content-Disposition"] = f'{disposition}; filename="run-{pk}-{artifact.name.replace("/", "_")}"'
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"  # an SVG may style itself, never script
        response["X-Artifact-SHA256"] = artifact.sha256
        return response
