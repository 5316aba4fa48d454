"""Audit reports, their charts and JSON export, re-running an audit, and the release decision."""

import io
import json
import zipfile

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View

from audits import actions
from audits.models import AdapterAudit, AdapterRelease
from governance.mfa import SecondFactorRequiredMixin
from training.models import ArtifactKind, RunState, TrainingRun
from training.views import RunAccessMixin


def can_request_audit(user, run: TrainingRun) -> bool:
    return not actions.audit_request_refusal(user, run)


def can_download_adapter(user, run: TrainingRun) -> bool:
    return not actions.download_refusal(user, run)


# Sections of the training run's page (training.run_page; registered in audits.apps): a run is
# audited, released and packed only once it has trained.

def run_audits_section(request, run: TrainingRun) -> dict | None:
    if run.state != RunState.SUCCEEDED:
        return None
    return {"audits": run.audits.select_related("requested_by"), "latest_release": AdapterRelease.latest_for(run),
            "can_request_audit": can_request_audit(request.user, run),
            "can_download_adapter": can_download_adapter(request.user, run)}


def run_evidence_packs_section(request, run: TrainingRun) -> dict | None:
    return {} if run.state == RunState.SUCCEEDED else None


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("release", "Release the adapter"), ("block", "Block the adapter")], widget=forms.RadioSelect)
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=5000,
                                    help_text="Required to block, and to release an adapter whose audit failed (an override).")


class AuditAccessMixin(RunAccessMixin):
    def get_audit(self, pk) -> AdapterAudit:
        return get_object_or_404(AdapterAudit.objects.visible_to(self.request.user).select_related("run", "run__base_model"), pk=pk)


class AuditDetailView(AuditAccessMixin, View):
    def get(self, request, pk):
        item = self.get_audit(pk)
        template = "audits/_audit_progress.html" if request.htmx else "audits/audit_detail.html"
        run = item.run
        return render(request, template, {
            "audit": item, "run": run, "report": item.report, "latest_release": AdapterRelease.latest_for(run),
            "can_decide": request.user.has_perm("audits.release_adapter") and item.state == "completed" and item == AdapterAudit.latest_completed(run),
            "form": DecisionForm(), "curves": run.artifacts.filter(kind=ArtifactKind.CURVE, deleted_at__isnull=True),
        })


class AuditReportJsonView(AuditAccessMixin, View):
    def get(self, request, pk):
        item = self.get_audit(pk)
        body = {"audit": item.pk, "run": item.run_id, "state": item.state, "passed": item.passed, "verdict": item.verdict,
                "thresholds": item.thresholds, "report": item.report}
        response = JsonResponse(body, json_dumps_params={"indent": 2, "sort_keys": True})
        response["Content-Disposition"] = f'attachment; filename="audit-{item.pk}-run-{item.run_id}.json"'
        return response


class AuditChartView(AuditAccessMixin, View):
    def get(self, request, pk, name):
        item = self.get_audit(pk)
        if name not in item.charts:
            raise Http404("No such chart.")
        response = HttpResponse(item.charts[name], content_type="image/svg+xml")
        response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"  # an SVG may style itself, never script
        response["X-Content-Type-Options"] = "nosniff"
        return response


class AuditRequestView(RunAccessMixin, View):
    def post(self, request, pk):
        run = self.get_run(pk)
        if not can_request_audit(request.user, run):
            raise PermissionDenied
        try:
            item = actions.queue_audit(request.user, run)
        except ValueError as exc:
            messages.error(request, str(exc))
            return redirect(run)
        messages.success(request, "Audit queued: it runs on a GPU worker.")
        return redirect(item)


class ReleaseDecisionView(RunAccessMixin, SecondFactorRequiredMixin, View):
    """Release or block: the privacy officer, with a recent second factor (governance.mfa)."""

    def post(self, request, pk):
        run = self.get_run(pk)
        if not request.user.has_perm("audits.release_adapter"):
            raise PermissionDenied
        form = DecisionForm(request.POST)
        latest = AdapterAudit.latest_completed(run)
        if not form.is_valid():
            messages.error(request, "Choose to release or to block.")
            return redirect(latest or run)
        try:
            if form.cleaned_data["decision"] == "release":
                actions.release_adapter(request.user, run, form.cleaned_data["justification"])
                messages.success(request, "Adapter released.")
            else:
                actions.block_adapter(request.user, run, form.cleaned_data["justification"])
                messages.success(request, "Adapter blocked.")
        except actions.ReleaseRefused as exc:
            messages.error(request, str(exc))
        return redirect(latest or run)


# Files other apps put beside the adapter in its zip: each a function of the run giving
# {file name: text}. The model card's README comes from the workflow app, which sits above audits
# and so registers it here (workflow.apps) rather than being imported.
ADAPTER_ZIP_FILES: list = []


def register_adapter_zip_files(files_for_run) -> None:
    if files_for_run not in ADAPTER_ZIP_FILES:
        ADAPTER_ZIP_FILES.append(files_for_run)


class AdapterDownloadView(RunAccessMixin, View):
    """The released adapter in PEFT format, as a zip; every download is an audit event."""

    def get(self, request, pk):
        run = self.get_run(pk)
        if refusal := actions.download_refusal(request.user, run):
            raise PermissionDenied(refusal)
        buffer = io.BytesIO()
        files = run.artifacts.filter(kind=ArtifactKind.ADAPTER, deleted_at__isnull=True)
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for artifact in files:
                archive.writestr(f"adapter/{artifact.name}", artifact.read_bytes())
            archive.writestr("adapter/SHA256SUMS", "".join(f"{a.sha256}  {a.name}\n" for a in files))
            archive.writestr("adapter/base_model.json", json.dumps({"name": run.base_model.name, "weights": run.base_model.weight_hashes},
                                                                   indent=2, sort_keys=True))
            for files_for_run in ADAPTER_ZIP_FILES:
                for name, text in files_for_run(run).items():
                    archive.writestr(f"adapter/{name}", text)
        actions.record_adapter_download(request.user, run)
        response = HttpResponse(buffer.getvalue(), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-adapter.zip"'
        return response
