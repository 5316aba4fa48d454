"""Pages for governance records. Thin: check access, call one action, respond."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.generic import CreateView, DetailView, UpdateView
from django_filters.views import FilterView

from governance import actions, filters, forms, ingest, tables
from governance import models as m
from governance.audit_export import audit_events_as_jsonl
from governance.uploads import UploadRule, install_encrypting_handler


def dataset_upload_rules():
    return {"file": UploadRule(max_bytes=settings.PROVENANT_MAX_DATASET_BYTES, key_context=m.Dataset.key_context)}


def dpa_document_rules():
    return {"document": UploadRule(
        max_bytes=settings.PROVENANT_MAX_DOCUMENT_BYTES, key_context=lambda blob: f"provenant:dpa-document:{blob}",
        magic=b"%PDF-", text=False,
    )}


class RecordAccessMixin(LoginRequiredMixin):
    """The restricted queryset is the only way in: what a user can't see is a 404."""

    model: type[models.Model]

    def get_queryset(self):
        qs = self.model.objects.visible_to(self.request.user)
        hints = tables.LIST_QUERY_HINTS.get(self.model._meta.model_name, {})
        return qs.select_related(*hints.get("select", [])).prefetch_related(*hints.get("prefetch", []))

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        meta = self.model._meta
        ctx.update(model_name=meta.model_name, verbose_name=meta.verbose_name, verbose_name_plural=meta.verbose_name_plural)
        ctx["can_add"] = self.model.can_add(self.request.user)
        return ctx


class RecordListView(RecordAccessMixin, FilterView):
    template_name = "records/list.html"
    paginate_by = 50

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not self.model.can_browse(request.user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        name = self.model._meta.model_name
        ctx["headings"] = tables.headings(name)
        ctx["rows"] = list(tables.rows(name, ctx["object_list"]))
        return ctx


class RecordDetailView(RecordAccessMixin, DetailView):
    template_name = "records/detail.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["fields"] = describe(self.object)
        ctx["can_change"] = self.object.can_change(self.request.user)
        return ctx


class RecordCreateView(RecordAccessMixin, CreateView):
    template_name = "records/form.html"

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not self.model.can_add(request.user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form):
        self.object = actions.create_record(self.request.user, form)
        messages.success(self.request, f"Created {self.object}.")
        return redirect(self.object)


class RecordUpdateView(RecordAccessMixin, UpdateView):
    template_name = "records/form.html"

    def get_object(self, queryset=None):
        obj = super().get_object(queryset)
        if not obj.can_change(self.request.user):
            raise PermissionDenied
        return obj

    def form_valid(self, form):
        self.object = actions.update_record(self.request.user, self.object, lambda _: form.save())
        messages.success(self.request, f"Saved {self.object}.")
        return redirect(self.object)


def describe(obj) -> list[tuple[str, object]]:
    """(label, value) for each field worth showing on a detail page."""
    skip = {"id", "blob_id", "wrapped_key", "document_blob_id", "document_wrapped_key", "pii_profile"}
    out = []
    for field in obj._meta.concrete_fields:
        if field.name in skip:
            continue
        if field.choices:
            value = getattr(obj, f"get_{field.name}_display")()
        else:
            value = getattr(obj, field.name)
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value) or "—"
        elif isinstance(value, dt.datetime):
            value = value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        elif isinstance(value, dict):
            value = "; ".join(f"{k}: {v}" for k, v in sorted(value.items())) or "defaults"
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        elif value in (None, ""):
            value = "—"
        out.append((field.verbose_name[:1].upper() + field.verbose_name[1:], value))
    for field in obj._meta.many_to_many:
        out.append((field.verbose_name.capitalize(), ", ".join(str(v) for v in getattr(obj, field.name).all()) or "—"))
    return out


# ------------------------------------------------------------------ DPAs: the signed document


@method_decorator(csrf_exempt, name="dispatch")
class EncryptedUploadMixin:
    """Installs the encrypting upload handler before the body is read, then checks CSRF.

    (Django reads the body to check CSRF, so the handler must be in place first: the
    documented pattern is csrf_exempt on dispatch and csrf_protect inside it.)
    """

    def upload_rules(self) -> dict:
        raise NotImplementedError

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:  # refuse before reading (and encrypting) a body
            return self.handle_no_permission()
        install_encrypting_handler(request, self.upload_rules())
        try:
            return csrf_protect(super().dispatch)(request, *args, **kwargs)
        finally:
            discard_unkept_uploads(request)

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "upload_errors": getattr(self.request, "upload_errors", {})}


class DpaDocumentMixin(EncryptedUploadMixin):
    model = m.DataProcessingAgreement
    form_class = forms.DataProcessingAgreementForm

    def upload_rules(self):
        return dpa_document_rules()

    def form_valid(self, form):
        response = super().form_valid(form)
        if form.cleaned_data.get("document"):
            actions.attach_dpa_document(self.request.user, self.object, form.cleaned_data["document"])
        return response


class DpaCreateView(DpaDocumentMixin, RecordCreateView):
    pass


class DpaUpdateView(DpaDocumentMixin, RecordUpdateView):
    pass


class DpaDocumentDownloadView(LoginRequiredMixin, View):
    def get(self, request, pk):
        dpa = get_object_or_404(m.DataProcessingAgreement.objects.visible_to(request.user), pk=pk, document_blob_id__gt="")
        actions.record_download(request.user, dpa, "the signed document")
        return _stream_decrypted(*dpa.open_document(), filename=dpa.document_name, content_type="application/pdf")


# ------------------------------------------------------------------ datasets


class DatasetUploadView(EncryptedUploadMixin, RecordCreateView):
    model = m.Dataset
    form_class = forms.DatasetUploadForm
    template_name = "governance/dataset_upload.html"

    def upload_rules(self):
        return dataset_upload_rules()

    def get_context_data(self, **kwargs):
        from django.template.defaultfilters import filesizeformat

        return {**super().get_context_data(**kwargs), "max_upload": filesizeformat(settings.PROVENANT_MAX_DATASET_BYTES)}

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "user": self.request.user}

    def form_valid(self, form):
        try:
            self.object = actions.upload_dataset(
                self.request.user, form.cleaned_data["file"], data_classes=form.cleaned_data.get("data_classes", ()),
                **form.dataset_fields(),
            )
        except ingest.IngestError as exc:
            form.add_error("file", str(exc))
            return self.render_to_response(self.get_context_data(form=form))
        messages.success(self.request, f"Uploaded {self.object}: {self.object.record_count} records, encrypted at rest.")
        return redirect(self.object)


# Functions of a dataset returning context for its page, registered by the apps above (the
# workflow adds the privacy budget, which its runs spend): this layer does not import them.
DATASET_PAGE_CONTRIBUTORS: list = []


class DatasetDetailView(RecordDetailView):
    model = m.Dataset
    template_name = "governance/dataset_detail.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        user, dataset = self.request.user, self.object
        ctx["can_shred"] = dataset.can_shred(user)
        ctx["can_share"] = dataset.can_share(user)
        if ctx["can_share"]:
            from guardian.shortcuts import get_users_with_perms

            # One query: asking for each user's permissions (attach_perms) cost one per colleague.
            ctx["shared_with"] = list(get_users_with_perms(dataset, only_with_perms_in=["view_dataset"], with_group_users=False))
            ctx["share_form"] = forms.ShareDatasetForm()
        if ctx["can_shred"]:
            ctx["shred_form"] = forms.ShredDatasetForm(dataset=dataset)
        ctx["pii_profile"] = sorted((dataset.pii_profile or {}).get("entities", {}).items(),
                                    key=lambda item: -item[1]["records_share"])
        ctx["reviews_pending"] = dataset.redaction_reviews.filter(decision="pending").count()
        for contribute in DATASET_PAGE_CONTRIBUTORS:  # the layers above add what they know (the privacy budget)
            ctx.update(contribute(dataset))
        return ctx


class DatasetReviewScanView(LoginRequiredMixin, View):
    def post(self, request, pk):
        dataset = get_object_or_404(m.Dataset.objects.visible_to(request.user), pk=pk)
        if not dataset.can_shred(request.user):  # the owner or a privacy officer
            raise PermissionDenied
        actions.request_review_scan(request.user, dataset)
        messages.success(request, "A review scan is queued; detections that need a person will appear in the review queue.")
        return redirect(dataset)


class DatasetUpdateView(RecordUpdateView):
    model = m.Dataset
    form_class = forms.DatasetEditForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "user": self.request.user}

    def form_valid(self, form):
        self.object = actions.edit_dataset(self.request.user, self.object, lambda _: form.save(),
                                           data_classes=form.classes_given)
        messages.success(self.request, f"Saved {self.object}.")
        return redirect(self.object)


class DatasetShareView(LoginRequiredMixin, View):
    def post(self, request, pk):
        dataset = get_object_or_404(m.Dataset.objects.visible_to(request.user), pk=pk)
        if not dataset.can_share(request.user):
            raise PermissionDenied
        form = forms.ShareDatasetForm(request.POST)
        if form.is_valid():
            actions.share_dataset(request.user, dataset, form.cleaned_data["username"])
            messages.success(request, f"Shared with {form.cleaned_data['username']}.")
        else:
            messages.error(request, " ".join(form.errors["username"]))
        return redirect(dataset)


class DatasetShredView(LoginRequiredMixin, View):
    def post(self, request, pk):
        dataset = get_object_or_404(m.Dataset.objects.visible_to(request.user), pk=pk)
        if not dataset.can_shred(request.user):
            raise PermissionDenied
        form = forms.ShredDatasetForm(request.POST, dataset=dataset)
        if not form.is_valid():
            messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
            return redirect(dataset)
        actions.shred_dataset(request.user, dataset, form.cleaned_data["reason"])
        messages.success(request, f"“{dataset}” was crypto-shredded: its data key is destroyed.")
        return redirect(dataset)


# ------------------------------------------------------------------ audit trail


class AuditTrailView(LoginRequiredMixin, FilterView):
    model = m.AuditEvent
    filterset_class = filters.AuditEventFilter
    template_name = "governance/audit_trail.html"
    paginate_by = 100

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not m.AuditEvent.can_browse(request.user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def get_queryset(self):
        return m.AuditEvent.objects.visible_to(self.request.user)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        if self.request.GET.get("verify"):
            ctx["verification"] = m.AuditEvent.verify_chain()
        return ctx


class AuditTrailExportView(LoginRequiredMixin, View):
    def get(self, request):
        if not m.AuditEvent.can_browse(request.user):
            raise PermissionDenied
        filterset = filters.AuditEventFilter(request.GET, queryset=m.AuditEvent.objects.visible_to(request.user))
        # Export what existed when asked: the export's own event is not part of its file.
        last = m.AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0
        events = filterset.qs.filter(sequence__lte=last).order_by("sequence")
        actions.record_audit_export(request.user, {k: v for k, v in request.GET.items()}, events.count())
        response = StreamingHttpResponse(audit_events_as_jsonl(events), content_type="application/x-ndjson")
        response["Content-Disposition"] = 'attachment; filename="provenant-audit-trail.jsonl"'
        return response


# ------------------------------------------------------------------ helpers


def discard_unkept_uploads(request) -> None:
    """A refused or failed request keeps nothing: remove the ciphertext of any file not stored."""
    for upload in getattr(request, "_files", {}).values():
        if hasattr(upload, "discard") and not upload.kept:
            upload.discard()


def _stream_decrypted(key, ciphertext, *, filename: str, content_type: str):
    def chunks():
        with ciphertext, key.decrypting(ciphertext) as plaintext:
            while chunk := plaintext.read(1 << 16):
                yield chunk

    response = StreamingHttpResponse(chunks(), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename.replace(chr(34), "")}"'
    return response


def record_views(model, form_class, filterset_class):
    """The list, detail, create and edit views of one governance record type."""
    attrs = {"model": model}
    return {
        "list": RecordListView.as_view(filterset_class=filterset_class, **attrs),
        "detail": RecordDetailView.as_view(**attrs),
        "create": RecordCreateView.as_view(form_class=form_class, **attrs),
        "edit": RecordUpdateView.as_view(form_class=form_class, **attrs),
    }
