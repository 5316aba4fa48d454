"""Pages of a run's model card: read it (facts and sections), edit its prose (the run's engineer),
approve the version on the screen (the privacy officer), download it as README.md. Thin: check
access, call one action, respond."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views import View

from governance import actions
from governance.mfa import SecondFactorRequiredMixin

from workflow import actions as workflow_actions

from workflow import model_cards
from workflow.models import MODEL_CARD_SECTIONS, ModelCard
from training.views import RunAccessMixin


def card_url(run_pk: int) -> str:
    return reverse("workflow:model_card", args=[run_pk])


def can_edit_card(user, card: ModelCard) -> bool:
    return not card.edit_refusal(user)


def can_approve_card(user, card: ModelCard) -> bool:
    return not card.approval_refusal(user)


def can_draft_card(user, run) -> bool:
    return run.created_by_id == user.pk or user.has_perm("governance.approve_modelcard")


class ModelCardForm(forms.Form):
    def __init__(self, *args, card: ModelCard, **kwargs):
        super().__init__(*args, **kwargs)
        for key, label in MODEL_CARD_SECTIONS:
            self.fields[key] = forms.CharField(label=label, required=False, max_length=model_cards.MAX_SECTION_CHARS,
                                               initial=card.sections.get(key, ""), widget=forms.Textarea(attrs={"rows": 6}))


class CardMixin(RunAccessMixin):
    def get_card(self, pk) -> ModelCard:
        run = self.get_run(pk)
        return get_object_or_404(ModelCard.objects.visible_to(self.request.user).select_related("run", "run__created_by", "approved_by"),
                                 run=run)


class ModelCardView(CardMixin, View):
    def get(self, request, pk):
        card = self.get_card(pk)
        current = card.compute_content_hash()
        sections = [(key, label, card.sections.get(key, "")) for key, label in MODEL_CARD_SECTIONS]
        return render(request, "governance/model_card.html", {
            "card": card, "run": card.run, "sections": sections, "facts": model_cards.fact_rows(card.facts),
            "current_hash": current, "approval_current": card.state == "approved" and card.content_hash == current,
            "can_edit": can_edit_card(request.user, card), "can_approve": can_approve_card(request.user, card),
        })


class ModelCardEditView(CardMixin, View):
    def _card(self, pk) -> ModelCard:
        card = self.get_card(pk)
        if not can_edit_card(self.request.user, card):
            raise PermissionDenied("Only the engineer who owns the run edits its model card.")
        return card

    def get(self, request, pk, form=None):
        card = self._card(pk)
        return render(request, "governance/model_card_form.html", {"card": card, "run": card.run,
                                                                   "form": form or ModelCardForm(card=card)})

    def post(self, request, pk):
        card = self._card(pk)
        form = ModelCardForm(request.POST, card=card)
        if not form.is_valid():
            return self.get(request, pk, form)
        was_approved = card.state == "approved"
        try:
            card = workflow_actions.edit_model_card(request.user, card, form.cleaned_data)
        except workflow_actions.ModelCardRefused as exc:
            form.add_error(None, str(exc))
            return self.get(request, pk, form)
        if was_approved and card.state != "approved":
            messages.warning(request, "Model card saved. It is a draft again: the privacy officer approves the new version.")
        else:
            messages.success(request, "Model card saved.")
        return redirect(card_url(card.run_id))


class ModelCardApproveView(CardMixin, SecondFactorRequiredMixin, View):
    def post(self, request, pk):
        card = self.get_card(pk)
        if not can_approve_card(request.user, card):
            raise PermissionDenied("Only the privacy officer approves model cards, and not of an adapter they trained.")
        try:
            workflow_actions.approve_model_card(request.user, card, request.POST.get("content_hash", ""))
        except workflow_actions.ModelCardRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Model card approved.")
        return redirect(card_url(card.run_id))


class ModelCardDraftView(RunAccessMixin, View):
    """Draft the card now (or refresh its figures), from the run page."""

    def post(self, request, pk):
        run = self.get_run(pk)
        if not can_draft_card(request.user, run):
            raise PermissionDenied
        try:
            workflow_actions.draft_model_card(run, actor=request.user)
        except workflow_actions.ModelCardRefused as exc:
            messages.error(request, str(exc))
            return redirect(run)
        return redirect(card_url(run.pk))


class ModelCardReadmeView(CardMixin, View):
    def get(self, request, pk):
        card = self.get_card(pk)
        text = model_cards.model_card_readme(card)
        actions.record_download(request.user, card, "README.md")
        response = HttpResponse(text.encode(), content_type="text/markdown; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="run-{card.run_id}-README.md"'
        response["X-Content-Type-Options"] = "nosniff"
        return response
