"""Every state change of the story above the apps: training requests, their approvals and
dispatch, and model cards. Atomic; each writes its trail event in the same transaction and
enqueues work with `transaction.on_commit`. What happens when a run or an audit changes is in
`workflow.lifecycle`.
"""

from __future__ import annotations

import hashlib

from django.db import transaction
from django.utils import timezone

from governance.models import Dataset
from training.models import may_cancel_runs_of
from governance.trail import record_event
from workflow.models import AWAITING_DECISION_STATES, RequestState

# --------------------------------------------------------------------------- training requests


class RequestRefused(ValueError):
    """Why a request cannot move as asked, in a sentence for the person who asked."""


REQUEST_FIELDS = ("title", "intended_use", "out_of_scope", "base_model", "compute_target", "leak_definition", "adversaries",
                  "audience", "settings", "audit_thresholds")


def _apply_request_fields(request, data: dict) -> None:
    from training.runs import InvalidRunSettings, RunSettings

    for name in REQUEST_FIELDS:
        if name in data:
            setattr(request, name, data[name])
    try:
        request.settings = RunSettings.from_dict(request.settings).as_dict()
    except InvalidRunSettings as exc:
        raise RequestRefused(f"The method and privacy settings are not valid: {exc}") from None


def _check_datasets(actor, datasets) -> list:
    datasets = list(datasets)
    if not datasets:
        raise RequestRefused("Name at least one dataset to train on.")
    visible = set(Dataset.objects.visible_to(actor).filter(pk__in=[d.pk for d in datasets]).values_list("pk", flat=True))
    if visible != {d.pk for d in datasets}:
        raise PermissionError("You can only request training on datasets you own or that are shared with you.")
    return datasets


@transaction.atomic
def create_request(actor, data: dict, datasets, *, idempotency_key: str | None = None):
    """A draft request. The same idempotency key from the same person returns the first request
    instead of creating a second (a retried API call)."""
    from workflow.models import TrainingRequest

    existing = TrainingRequest.created_with_key(actor, idempotency_key)
    if existing is not None:
        return existing
    request = TrainingRequest(requester=actor, idempotency_key=idempotency_key or None)
    _apply_request_fields(request, data)
    datasets = _check_datasets(actor, datasets)
    request.save()
    request.datasets.set(datasets)
    record_event(actor, "trainingrequest.created", request, f"{actor} drafted training request “{request}”",
                 {"content": request.content()})
    return request


@transaction.atomic
def update_request(actor, request, data: dict, datasets=None):
    """Any edit returns the request to draft and voids its approvals: they bound to what it was."""
    from workflow.models import TrainingRequest

    request = TrainingRequest.objects.select_for_update().get(pk=request.pk)
    if request.requester_id != actor.pk:
        raise PermissionError("Only the requester edits a request.")
    if not request.is_editable:
        raise RequestRefused(f"The request is {request.get_state_display().lower()}: it can no longer be edited. "
                             "Withdraw it and draft a new one.")
    before = request.content()
    _apply_request_fields(request, data)
    if datasets is not None:
        request.datasets.set(_check_datasets(actor, datasets))
    after = request.content()
    if after == before:
        return request
    voided = void_approvals(request, "the request was edited")
    request.state, request.content_hash, request.findings, request.updated_at = RequestState.DRAFT, "", [], timezone.now()
    request.save()
    record_event(actor, "trainingrequest.edited", request, f"{actor} edited training request “{request}”; back to draft"
                 + (f", {voided} approval(s) voided" if voided else ""),
                 {"changed": sorted(k for k in after if after[k] != before.get(k)), "voided_approvals": voided})
    return request


def void_approvals(request, reason: str) -> int:
    return request.approvals.filter(voided_at__isnull=True).update(voided_at=timezone.now(), void_reason=reason)


@transaction.atomic
def submit_request(actor, request):
    """Freeze the content hash and the policy findings; the approvers take it from here. A request
    with a blocker finding cannot be submitted: nothing trains while a blocker stands."""
    from workflow import policy
    from workflow.models import TrainingRequest

    request = TrainingRequest.objects.select_for_update().get(pk=request.pk)
    if request.requester_id != actor.pk:
        raise PermissionError("Only the requester submits a request.")
    if request.state not in (RequestState.DRAFT, RequestState.REJECTED):
        raise RequestRefused(f"The request is {request.get_state_display().lower()}, not a draft.")
    findings = [f.as_dict() for f in policy.findings_for(request)]
    blockers = [f for f in findings if f["severity"] == "blocker"]
    if blockers:
        raise RequestRefused("The request cannot be submitted while these stand: " + " ".join(f["message"] for f in blockers))
    request.findings, request.content_hash = findings, request.compute_content_hash()
    request.state, request.submitted_at, request.updated_at = RequestState.SUBMITTED, timezone.now(), timezone.now()
    request.save()
    record_event(actor, "trainingrequest.submitted", request, f"{actor} submitted training request “{request}” for approval",
                 {"content_hash": request.content_hash, "findings": findings, "required_approvals": request.required_approvals()})
    return request


def _approval_role(request, actor) -> str:
    """The slot this person's signature fills: their own role's first, then an additional one."""
    from governance.roles import ADMIN, LEGAL, PRIVACY, roles_of

    roles = roles_of(actor)
    missing = request.missing_approvals()
    for role in (PRIVACY, LEGAL):
        if role in roles and missing.get(role):
            return role
    if roles & {LEGAL, PRIVACY, ADMIN} and missing.get("additional"):
        return "additional"
    if roles & {LEGAL, PRIVACY}:
        raise RequestRefused("Every approval your role can give on this request has been given.")
    raise PermissionError("Only legal counsel, the privacy officer (and administrators, as additional approvers) decide requests.")


@transaction.atomic
def decide_request(actor, request, decision: str, *, comment: str = "", conditions: str = ""):
    """Approve or reject the submitted version. The last approval dispatches the run, exactly once."""
    from workflow.models import Approval, ApprovalDecision, TrainingRequest

    request = TrainingRequest.objects.select_for_update().get(pk=request.pk)
    if request.state not in AWAITING_DECISION_STATES:
        raise RequestRefused(f"The request is {request.get_state_display().lower()}: there is nothing to decide.")
    if request.requester_id == actor.pk:
        raise PermissionError("You requested this training: someone else must decide it.")
    current = request.compute_content_hash()
    if current != request.content_hash:
        raise RequestRefused("The records this request names changed since it was submitted (a dataset, data class, compute "
                             "target or DPA): the requester must review and resubmit it.")
    # A voided signature (the request was rejected or edited since) does not count: after an
    # unchanged resubmission the same person may sign the same version again.
    if request.approvals.filter(approver=actor, content_hash=current, voided_at__isnull=True).exists():
        raise RequestRefused("You have already signed this version of the request.")
    if decision == ApprovalDecision.REJECT and not comment.strip():
        raise RequestRefused("Give the reasons for rejecting: the requester reads them.")
    role = _approval_role(request, actor)
    approval = Approval.objects.create(request=request, approver=actor, role=role, decision=decision, comment=comment,
                                       conditions=conditions, content_hash=current)
    if decision == ApprovalDecision.REJECT:
        request.state, request.decided_at = RequestState.REJECTED, timezone.now()
        void_approvals(request, "the request was rejected")
    else:
        request.state = RequestState.IN_REVIEW
    request.updated_at = timezone.now()
    request.save()
    verb = "approved" if decision == ApprovalDecision.APPROVE else "rejected"
    record_event(actor, f"trainingrequest.{verb}", request, f"{actor} ({approval.get_role_display()}) {verb} training request “{request}”",
                 {"content_hash": current, "role": role, "comment": comment, "conditions": conditions})
    if decision == ApprovalDecision.APPROVE and not request.missing_approvals():
        _dispatch(request)
    return approval


def _dispatch(request) -> None:
    """Approved: create the run and queue it (training, then audits) once the transaction commits.
    The conditional update makes this happen once, even if two last approvals race."""
    from workflow import policy
    from workflow.models import TrainingRequest
    from training.runs import create_run

    claimed = TrainingRequest.objects.filter(pk=request.pk, run__isnull=True, state=RequestState.IN_REVIEW).update(
        state=RequestState.APPROVED, decided_at=timezone.now())
    if not claimed:
        return
    request.refresh_from_db()
    record_event(None, "trainingrequest.fully_approved", request, f"Training request “{request}” has every approval it needs",
                 {"content_hash": request.content_hash, "approvals": list(request.valid_approvals().values_list("approver__username", flat=True))})
    blockers = [f for f in policy.findings_for(request) if f.severity == "blocker"]
    if blockers:  # something lapsed while the approvers read it: approved, but it does not train
        record_event(None, "trainingrequest.dispatch_refused", request, f"Training request “{request}” was not dispatched: a rule is broken",
                     {"blockers": [f.as_dict() for f in blockers]})
        return
    run = create_run(request.requester, request.base_model, request.datasets.all(), request.settings, queue=request.compute_target.celery_queue)
    TrainingRequest.objects.filter(pk=request.pk).update(run=run, state=RequestState.QUEUED)
    record_event(None, "trainingrequest.dispatched", request, f"Training request “{request}” queued as run {run.pk}", {"run": run.pk})


@transaction.atomic
def withdraw_request(actor, request, reason: str = ""):
    from workflow.models import TrainingRequest

    request = TrainingRequest.objects.select_for_update().get(pk=request.pk)
    if not request.can_withdraw(actor):
        raise RequestRefused("Only the requester withdraws a request, and only before it is queued.")
    void_approvals(request, "the request was withdrawn")
    request.state, request.updated_at = RequestState.WITHDRAWN, timezone.now()
    request.save()
    record_event(actor, "trainingrequest.withdrawn", request, f"{actor} withdrew training request “{request}”", {"reason": reason})
    return request


def cancel_request(actor, request):
    """Cancel a dispatched request's run: the requester or whoever may cancel any run. A request
    without a run is withdrawn instead. The run's own action records the cancellation."""
    from training import runs

    if request.run is None:
        if not may_cancel_runs_of(actor, request.requester_id):
            raise PermissionError("Only the requester, or a privacy officer, cancels a request's run.")
        raise RequestRefused(f"Request {request.pk} has no run yet (it is {request.get_state_display().lower()}): withdraw it instead.")
    try:
        return runs.request_cancel(actor, request.run)
    except ValueError as exc:  # it has ended: request_cancel says so
        raise RequestRefused(str(exc)) from None


# --------------------------------------------------------------------------- model cards


class ModelCardRefused(ValueError):
    """Why a model card cannot be drafted, edited or approved as asked, in a sentence."""


@transaction.atomic
def draft_model_card(run, actor=None):
    """The run's model card: drafted from the run, its request and its latest completed audit, or,
    if it exists, its facts refreshed. Called after an audit completes (actor None) and on demand
    from the run page. Sections nobody edited follow the new facts; edited ones are kept. New
    facts return an approved card to draft: the approval bound to the old ones."""
    from workflow import model_cards
    from workflow.models import ModelCard, ModelCardState
    from training.models import RunState, TrainingRun

    run = TrainingRun.objects.select_for_update().select_related("base_model", "created_by").get(pk=run.pk)
    if run.state != RunState.SUCCEEDED:
        raise ModelCardRefused(f"Run {run.pk} has no adapter to describe ({run.get_state_display().lower()}).")
    facts = model_cards.facts_for(run)
    who = f"{actor}" if actor else "The pipeline"
    card = ModelCard.objects.select_for_update().filter(run=run).first()
    if card is None:
        card = ModelCard.objects.create(run=run, facts=facts, sections=model_cards.draft_sections(run, facts))
        record_event(actor, "modelcard.drafted", card, f"{who} drafted the model card of run {run.pk}",
                     {"run": run.pk, "audit": (facts["audit"] or {}).get("id"), "content_hash": card.compute_content_hash()})
        return card
    if card.facts == facts:
        return card
    old_draft = model_cards.draft_sections(run, card.facts)
    new_draft = model_cards.draft_sections(run, facts)
    kept = sorted(k for k in model_cards.SECTION_KEYS if card.sections.get(k, "") != old_draft.get(k, ""))
    card.sections = {k: (card.sections.get(k, "") if k in kept else new_draft[k]) for k in model_cards.SECTION_KEYS}
    card.facts = facts
    was_approved = card.state == ModelCardState.APPROVED
    card.state, card.approved_by, card.approved_at, card.content_hash = ModelCardState.DRAFT, None, None, ""
    card.updated_at = timezone.now()
    card.save()
    record_event(actor, "modelcard.facts_refreshed", card,
                 f"{who} refreshed the figures of the model card of run {run.pk}" + ("; its approval is void" if was_approved else ""),
                 {"run": run.pk, "audit": (facts["audit"] or {}).get("id"), "edited_sections_kept": kept,
           "approval_voided": was_approved, "content_hash": card.compute_content_hash()})
    return card


@transaction.atomic
def edit_model_card(actor, card, sections: dict):
    """The run's engineer rewrites the prose; the facts stay as measured. An edit after approval
    returns the card to draft and clears the approval."""
    from workflow import model_cards
    from workflow.models import ModelCard, ModelCardState

    card = ModelCard.objects.select_for_update().select_related("run").get(pk=card.pk)
    if refusal := card.edit_refusal(actor):
        raise PermissionError(refusal)
    unknown = set(sections) - set(model_cards.SECTION_KEYS)
    if unknown:
        raise ModelCardRefused(f"A model card has no section {', '.join(sorted(unknown))}.")
    new = {k: str(sections.get(k, card.sections.get(k, ""))).replace("\r\n", "\n").strip() for k in model_cards.SECTION_KEYS}
    too_long = [model_cards.SECTION_LABELS[k] for k, v in new.items() if len(v) > model_cards.MAX_SECTION_CHARS]
    if too_long:
        raise ModelCardRefused(f"Keep each section under {model_cards.MAX_SECTION_CHARS} characters: {', '.join(too_long)}.")
    changed = sorted(k for k in new if new[k] != card.sections.get(k, ""))
    if not changed:
        return card
    was_approved = card.state == ModelCardState.APPROVED
    card.sections = new
    card.state, card.approved_by, card.approved_at, card.content_hash = ModelCardState.DRAFT, None, None, ""
    card.updated_at = timezone.now()
    card.save()
    record_event(actor, "modelcard.edited", card,
                 f"{actor} edited the model card of run {card.run_id} ({', '.join(model_cards.SECTION_LABELS[k] for k in changed)})"
                 + ("; back to draft, its approval is void" if was_approved else ""),
                 {"changed": changed, "approval_voided": was_approved, "content_hash": card.compute_content_hash()})
    return card


@transaction.atomic
def approve_model_card(actor, card, seen_hash: str):
    """The privacy officer approves exactly the version they read: `seen_hash` is the content hash
    the page showed them. A card that changed since is refused, and the approval binds the hash."""
    from workflow.models import ModelCard, ModelCardState

    card = ModelCard.objects.select_for_update().select_related("run").get(pk=card.pk)
    if refusal := card.approval_refusal(actor):
        raise PermissionError(refusal)
    current = card.compute_content_hash()
    if (seen_hash or "").strip().lower() != current:
        raise ModelCardRefused("The model card changed since you opened it: read the current version and approve that.")
    if card.state == ModelCardState.APPROVED and card.content_hash == current:
        raise ModelCardRefused("This version of the model card is already approved.")
    if not card.facts.get("audit"):
        raise ModelCardRefused("The adapter has not been audited: approve its model card once the audit's figures are in it.")
    card.state, card.content_hash, card.approved_by, card.approved_at = ModelCardState.APPROVED, current, actor, timezone.now()
    card.updated_at = card.approved_at
    card.save()
    record_event(actor, "modelcard.approved", card, f"{actor} approved the model card of run {card.run_id}",
                 {"content_hash": current, "run": card.run_id, "audit": card.facts["audit"].get("id")})
    return card


# --------------------------------------------------------------------------- evidence packs


def build_pack(actor, run):
    """Render, sign and encrypt an evidence pack of the run's latest completed audit (outside any
    transaction: it takes seconds), then record it and its audit event in one transaction. `actor`
    None: built by the pipeline."""
    from audits.models import EvidencePack
    from workflow import evidence

    if actor is not None and not actor.has_perm("audits.add_evidencepack"):
        raise PermissionError("Only the privacy officer builds evidence packs.")
    audit_item, rendered, seconds = evidence.timed_render(run)
    blob_id, wrapped = evidence.store_zip(rendered.zip_bytes)
    try:
        with transaction.atomic():
            pack = EvidencePack.objects.create(
                run=run, audit=audit_item, created_by=actor, sha256=hashlib.sha256(rendered.zip_bytes).hexdigest(),
                size_bytes=len(rendered.zip_bytes), blob_id=blob_id, wrapped_key=wrapped, manifest=rendered.manifest,
                signature=rendered.signature_hex, public_key_fingerprint=rendered.fingerprint, pages=rendered.pages,
                seconds=round(seconds, 3))
            who = f"{actor} built" if actor else "Built after the audit:"
            record_event(actor, "evidencepack.built", pack, f"{who} evidence pack {pack.pk} of run {run.pk} (audit {audit_item.pk})",
                         {"run": run.pk, "audit": audit_item.pk, "sha256": pack.sha256, "manifest_sha256":
                         hashlib.sha256(rendered.manifest_bytes).hexdigest(), "files": rendered.manifest["files"],
                         "signature": pack.signature, "public_key_sha256": pack.public_key_fingerprint, "pages": pack.pages})
    except BaseException:
        from governance.keys import blob_store

        blob_store().delete(blob_id)
        raise
    return pack

