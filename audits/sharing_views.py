"""Pages for sharing evidence packs: the privacy officer's share form and revocations on a pack,
and the regulator's "Shared with me". Thin: check access, call one action, respond."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views import View

from audits import sharing
from audits.models import EvidencePack, PackShare
from governance.mfa import SecondFactorRequiredMixin
from governance.roles import REGULATOR, has_role


class ShareForm(forms.Form):
    regulator = forms.ModelChoiceField(queryset=None, empty_label=None, help_text="Users with the regulator role.")
    expires_on = forms.DateField(required=False, label="Access until (inclusive)", widget=forms.DateInput(attrs={"type": "date"}),
                                 help_text="Empty: until revoked. Access ends at the end of that day, UTC.")
    note = forms.CharField(required=False, max_length=300, help_text="Why, or the case reference (kept in the audit trail).")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["regulator"].queryset = sharing.regulators()

    def clean_expires_on(self):
        day = self.cleaned_data.get("expires_on")
        today = timezone.now().date()
        if day is not None and day < today:
            raise forms.ValidationError("This date has passed.")
        if day is not None and day > sharing.latest_expiry_day(today):
            raise forms.ValidationError(
                f"A share can run for at most {sharing.MAX_SHARE_YEARS} years (until {sharing.latest_expiry_day(today):%Y-%m-%d}): "
                "choose an earlier date, or leave it empty to share until revoked.")
        return day


class ShareAccessMixin(LoginRequiredMixin):
    def get_pack(self, pk) -> EvidencePack:
        pack = get_object_or_404(EvidencePack.objects.visible_to(self.request.user), pk=pk)
        if not self.request.user.has_perm("audits.share_evidencepack"):
            raise PermissionDenied("Only the privacy officer shares evidence packs.")
        return pack


class PackSharesView(ShareAccessMixin, SecondFactorRequiredMixin, View):
    """Who can read this pack, until when; share it with a regulator (with a recent second factor); revoke a share."""

    def get(self, request, pk, form=None):
        pack = self.get_pack(pk)
        now = timezone.now()
        shares = [(s, s.in_force(now)) for s in pack.shares.select_related("regulator", "shared_by")]
        return render(request, "audits/pack_shares.html", {"pack": pack, "shares": shares,
                                                           "form": form or ShareForm(), "has_regulators": sharing.regulators().exists()})

    def post(self, request, pk):
        pack = self.get_pack(pk)
        form = ShareForm(request.POST)
        if not form.is_valid():
            return self.get(request, pk, form)
        day = form.cleaned_data["expires_on"]
        try:
            sharing.share_pack(request.user, pack, form.cleaned_data["regulator"], expires_at=sharing.end_of_day(day) if day else None,
                               note=form.cleaned_data["note"])
        except sharing.ShareRefused as exc:
            form.add_error(None, str(exc))
            return self.get(request, pk, form)
        messages.success(request, f"Pack {pack.pk} shared with {form.cleaned_data['regulator']}.")
        return redirect("audits:pack_shares", pack.pk)


class ShareRevokeView(LoginRequiredMixin, SecondFactorRequiredMixin, View):
    def post(self, request, pk):
        share = get_object_or_404(PackShare.objects.visible_to(request.user).filter(
            pack__in=EvidencePack.objects.visible_to(request.user)), pk=pk)
        if not request.user.has_perm("audits.share_evidencepack"):
            raise PermissionDenied("Only the privacy officer revokes a share.")
        try:
            sharing.revoke_share(request.user, share)
        except sharing.ShareRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{share.regulator} can no longer open pack {share.pack_id}.")
        return redirect("audits:pack_shares", share.pack_id)


class SharedWithMeView(LoginRequiredMixin, View):
    """A regulator's packs: those in force open; expired or revoked ones listed, not openable."""

    def get(self, request):
        if not has_role(request.user, REGULATOR):
            raise PermissionDenied("This page lists the evidence packs shared with a regulator.")
        now = timezone.now()
        rows = []
        for share in PackShare.objects.filter(regulator=request.user).select_related("pack", "pack__run", "shared_by"):
            status = "revoked" if share.revoked_at else ("in force" if share.in_force(now) else "expired")
            rows.append({"share": share, "pack": share.pack, "status": status,
                         "url": share.pack.get_absolute_url() if status == "in force" else None})
        return render(request, "audits/shared_with_me.html", {"rows": rows})
