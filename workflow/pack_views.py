"""Evidence pack pages: build (privacy officer), detail, download (audited), the portal's public
signing key, and a verification page where anyone logged in checks a pack zip."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.core.files.uploadhandler import SkipFile, TemporaryFileUploadHandler
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from audits import pack_records, sharing, verify
from workflow import actions, evidence
from audits.models import EvidencePack
from governance.keys import public_key_fingerprint, public_key_pem
from governance.signing_keys import key_history
from training.views import RunAccessMixin

PACK_FIELD = "pack"


def max_pack_bytes() -> int:
    return settings.PROVENANT_MAX_PACK_BYTES


class PackBuildView(RunAccessMixin, View):
    def post(self, request, pk):
        run = self.get_run(pk)
        if not request.user.has_perm("audits.add_evidencepack"):
            raise PermissionDenied
        try:
            pack = actions.build_pack(request.user, run)
        except evidence.PackRefused as exc:
            messages.error(request, str(exc))
            return redirect(run)
        messages.success(request, f"Evidence pack {pack.pk} built and signed ({pack.pages} pages, {pack.seconds:.1f} s).")
        return redirect(pack)


class PackAccessMixin(LoginRequiredMixin):
    def get_pack(self, pk) -> EvidencePack:
        return get_object_or_404(EvidencePack.objects.visible_to(self.request.user).select_related("run", "audit", "created_by"), pk=pk)


class PackListView(PackAccessMixin, View):
    def get(self, request):
        packs = EvidencePack.objects.visible_to(request.user).select_related("run", "audit", "created_by")[:200]
        return render(request, "audits/pack/pack_list.html", {"packs": packs})


class PackDetailView(PackAccessMixin, View):
    def get(self, request, pk):
        pack = self.get_pack(pk)
        sharing.record_pack_viewed(request.user, pack)  # anyone's opening is recorded, a regulator's above all
        manifest = pack.manifest or {}
        return render(request, "audits/pack/pack_detail.html", {
            "pack": pack, "files": sorted((manifest.get("files") or {}).items()), "manifest": manifest,
            "current_fingerprint": public_key_fingerprint(),
            "signing_key": next((k for k in key_history() if k.fingerprint == pack.public_key_fingerprint), None),
        })


class PackDownloadView(PackAccessMixin, View):
    """The zip, decrypted as it streams; every download is an audit event."""

    def get(self, request, pk):
        pack = self.get_pack(pk)
        sharing.record_pack_downloaded(request.user, pack)
        response = StreamingHttpResponse(evidence.iter_pack_bytes(pack), content_type="application/zip")
        response["Content-Length"] = str(pack.size_bytes)
        response["Content-Disposition"] = f'attachment; filename="evidence-pack-{pack.pk}-run-{pack.run_id}.zip"'
        return response


class PublicKeyView(LoginRequiredMixin, View):
    """The current signing key and every past one, with the period each was valid; `?format=json`
    downloads them as the keyring `python -m audits.verify PACK.zip --keyring FILE` reads."""

    def get(self, request):
        keys = key_history()
        if request.GET.get("format") == "json":
            response = HttpResponse(verify.keyring_json(keys), content_type="application/json")
            response["Content-Disposition"] = 'attachment; filename="provenant-signing-keys.json"'
            return response
        return render(request, "audits/pack/public_key.html", {"pem": public_key_pem(), "fingerprint": public_key_fingerprint(),
                                                               "keys": keys})


class PublicKeyPemView(LoginRequiredMixin, View):
    """The current key's PEM, or a past key's with `?fingerprint=`."""

    def get(self, request):
        wanted = request.GET.get("fingerprint")
        if wanted:
            key = next((k for k in key_history() if k.fingerprint == wanted), None)
            if key is None:
                raise Http404("No signing key with that fingerprint.")
            pem, name = key.public_key_pem, f"provenant-signing-key-{wanted[:16]}.pem"
        else:
            pem, name = public_key_pem(), "provenant-signing-key.pem"
        response = HttpResponse(pem, content_type="application/x-pem-file")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class SizeLimitedPackUploadHandler(TemporaryFileUploadHandler):
    """A plain temporary file for the one field this page takes, refused past the size limit.
    A pack holds no personal data in the clear (it is what a regulator receives), so the
    encrypting handler the rest of the portal uses is not needed here."""

    def __init__(self, request=None, max_bytes: int = 0):
        super().__init__(request)
        self.max_bytes, self.received = max_bytes, 0

    def _refuse(self, text: str):
        if not hasattr(self.request, "upload_errors"):
            self.request.upload_errors = {}
        self.request.upload_errors[self.field_name] = text
        if getattr(self, "file", None) is not None:
            self.file.close()  # the temporary file is removed on close
            del self.file  # Django's parser closes the files of handlers that still have one
        raise SkipFile()

    def new_file(self, field_name, file_name, content_type, content_length, charset=None, content_type_extra=None):
        self.field_name = field_name
        if field_name != PACK_FIELD:
            self._refuse("This page takes one file, the pack.")
        if content_length and content_length > self.max_bytes:
            self._refuse(f"The file is larger than the limit of {self.max_bytes // 1024**2} MiB.")
        super().new_file(field_name, file_name, content_type, content_length, charset, content_type_extra)

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.max_bytes:
            self._refuse(f"The file is larger than the limit of {self.max_bytes // 1024**2} MiB.")
        return super().receive_data_chunk(raw_data, start)


@method_decorator(csrf_exempt, name="dispatch")
class VerifyPackView(LoginRequiredMixin, View):
    """Upload a pack, see VALID or INVALID with the file at fault. Checked against the portal's
    own public key (the same check `python -m audits.verify` does offline)."""

    template = "audits/pack/verify.html"

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:  # refuse before reading a body
            return self.handle_no_permission()
        request.upload_handlers = [SizeLimitedPackUploadHandler(request, max_pack_bytes())]
        return csrf_protect(super().dispatch)(request, *args, **kwargs)

    def get(self, request):
        return render(request, self.template, self._context())

    def post(self, request):
        upload = request.FILES.get(PACK_FIELD)
        errors = getattr(request, "upload_errors", {})
        context = self._context()
        if upload is None:
            context["error"] = errors.get(PACK_FIELD) or next(iter(errors.values()), "Choose a pack (zip) to verify.")
            return render(request, self.template, context, status=400)
        try:
            path = upload.temporary_file_path() if hasattr(upload, "temporary_file_path") else upload
            # The key the pack names, from the history; signed while it was current, by the portal's records.
            result = verify.verify_pack_with_keys(path, key_history(), recorded_at=pack_records.recorded_at)
        except verify.PackUnreadable as exc:
            context["error"] = str(exc).replace(str(getattr(upload, "temporary_file_path", lambda: "")()), upload.name)
            return render(request, self.template, context, status=400)
        finally:
            upload.close()
        context.update(result=result, filename=upload.name, files=sorted(result.files.items()))
        return render(request, self.template, context)

    def _context(self) -> dict:
        return {"fingerprint": public_key_fingerprint(), "max_mib": max_pack_bytes() // 1024**2}
