"""Every state change of a deployment, its consumer keys and its flagged outputs. Atomic; each
writes its trail event in the same transaction. Secrets (a consumer key, the watermark key, a
flagged original) never go into the trail."""

from __future__ import annotations

import os

from django.db import transaction
from django.utils import timezone

from audits.actions import adapter_is_released
from audits.models import AdapterRelease, ReleaseDecision
from governance.keys import master_key
from governance.trail import record_event
from serving.models import (ConsumerKey, Deployment, DeploymentState, FilterMode, FlaggedOutput, FlaggedOutputState,
                            QueryRecord)
from training.models import ArtifactKind, TrainingRun

DEPLOY_PERMISSION = "serving.deploy_adapter"
MAX_KEY_DAYS = 366
MAX_OUTPUT_TOKENS = 4096
WATERMARK_KEY_BYTES = 8  # the watermark's hashing key is a 64-bit integer (transformers' WatermarkingConfig)


class DeploymentRefused(ValueError):
    """Why a deployment change cannot be made now, in a sentence for the privacy officer."""


def _require(actor, what: str) -> None:
    if actor is None or not actor.has_perm(DEPLOY_PERMISSION):
        raise PermissionError(f"Only the privacy officer {what}.")


def _locked(deployment: Deployment) -> Deployment:
    return Deployment.objects.select_for_update().get(pk=deployment.pk)


def _policy(deployment: Deployment) -> dict:
    return {"name": deployment.name, "run": deployment.run_id, "release": deployment.release_id, "purpose": deployment.purpose,
            "max_output_tokens": deployment.max_output_tokens, "filter_mode": deployment.filter_mode,
            "log_prompts": deployment.log_prompts}


@transaction.atomic
def deploy_adapter(actor, run: TrainingRun, *, name: str, purpose: str = "", max_output_tokens: int = 256,
                   filter_mode: str = FilterMode.MASK, log_prompts: bool = False) -> Deployment:
    """Serve a released adapter under `name`. Refused for an adapter whose latest release decision
    is not `released` (never released, or blocked since), and for anyone but the privacy officer."""
    _require(actor, "deploys adapters")
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    latest = AdapterRelease.latest_for(run)
    if latest is None:
        raise DeploymentRefused(f"The adapter of run {run.pk} has not been released: only a released adapter can be deployed. "
                                "Release it on its audit's evidence first.")
    if not adapter_is_released(run):
        raise DeploymentRefused(f"The adapter of run {run.pk} is {latest.get_decision_display().lower()} "
                                f"({latest.justification or 'no reason given'}): a blocked adapter cannot be deployed.")
    if not run.artifacts.filter(kind=ArtifactKind.ADAPTER, deleted_at__isnull=True).exists():
        raise DeploymentRefused(f"Run {run.pk} kept no adapter files: there is nothing to serve.")
    name = (name or "").strip()
    if not name:
        raise DeploymentRefused("Give the deployment a name: clients send it as `model` in their requests.")
    if Deployment.objects.filter(name=name).exists():
        raise DeploymentRefused(f"A deployment named '{name}' exists already: names are what clients ask for, so each is used once.")
    if not 1 <= int(max_output_tokens) <= MAX_OUTPUT_TOKENS:
        raise DeploymentRefused(f"The maximum output length must be between 1 and {MAX_OUTPUT_TOKENS} tokens, got {max_output_tokens}.")
    if filter_mode not in FilterMode.values:
        raise DeploymentRefused(f"The output filter's mode must be one of {', '.join(FilterMode.values)}, got '{filter_mode}'.")
    deployment = Deployment(name=name, run=run, release=latest, purpose=purpose or "", max_output_tokens=int(max_output_tokens),
                            filter_mode=filter_mode, log_prompts=bool(log_prompts), created_by=actor)
    deployment.full_clean(exclude=["run", "release", "created_by"])
    deployment.save()
    # The key exists only sealed: the context names this deployment, so it opens for no other.
    watermark_key = int.from_bytes(os.urandom(WATERMARK_KEY_BYTES), "big") or 1  # the key is positive
    deployment.watermark_key_sealed = master_key().seal(str(watermark_key).encode(), deployment.watermark_context())
    deployment.save(update_fields=["watermark_key_sealed"])
    record_event(actor, "deployment.created", deployment, f"{actor} deployed the adapter of run {run.pk} as '{name}'",
                 {**_policy(deployment), "adapter": {a.name: a.sha256 for a in run.artifacts.filter(kind=ArtifactKind.ADAPTER,
                                                                                                    deleted_at__isnull=True)}})
    return deployment


def watermark_key_of(deployment: Deployment) -> int | None:
    """The deployment's watermark key, unsealed (for the model server and the detector only)."""
    if not deployment.watermark_key_sealed:
        return None
    return int(master_key().open(deployment.watermark_key_sealed, deployment.watermark_context()).decode())


def _change_state(actor, deployment: Deployment, state: str, reason: str, verb: str, allowed_from: tuple) -> Deployment:
    deployment = _locked(deployment)
    reason = (reason or "").strip()
    if deployment.state not in allowed_from:
        raise DeploymentRefused(f"The deployment '{deployment.name}' is {deployment.get_state_display().lower()}: "
                                f"it cannot be {verb}.")
    if not reason:
        raise DeploymentRefused(f"Say why the deployment is {verb}: the trail keeps it.")
    before = deployment.state
    deployment.state, deployment.state_reason, deployment.state_changed_at = state, reason, timezone.now()
    deployment.save(update_fields=["state", "state_reason", "state_changed_at"])
    who = actor or "The portal"
    record_event(actor, f"deployment.{verb}", deployment, f"{who} {verb} the deployment '{deployment.name}': {reason}"[:500],
                 {"from": before, "to": state, "reason": reason})
    return deployment


@transaction.atomic
def suspend_deployment(actor, deployment: Deployment, reason: str) -> Deployment:
    """Refuse every call until resumed. `actor` None: the portal itself (a blocked release, a re-audit)."""
    if actor is not None:
        _require(actor, "suspends deployments")
    return _change_state(actor, deployment, DeploymentState.SUSPENDED, reason, "suspended", (DeploymentState.ACTIVE,))


@transaction.atomic
def resume_deployment(actor, deployment: Deployment, reason: str) -> Deployment:
    _require(actor, "resumes deployments")
    if not adapter_is_released(deployment.run):
        raise DeploymentRefused(f"The adapter of run {deployment.run_id} is no longer released: the deployment cannot resume.")
    return _change_state(actor, deployment, DeploymentState.ACTIVE, reason, "resumed", (DeploymentState.SUSPENDED,))


@transaction.atomic
def retire_deployment(actor, deployment: Deployment, reason: str) -> Deployment:
    """For good: every key still valid is revoked with it."""
    if actor is not None:
        _require(actor, "retires deployments")
    deployment = _change_state(actor, deployment, DeploymentState.RETIRED, reason, "retired",
                               (DeploymentState.ACTIVE, DeploymentState.SUSPENDED))
    for key in deployment.keys.select_for_update().filter(revoked_at__isnull=True):
        _revoke(actor, key, f"The deployment was retired: {reason}")
    return deployment


@transaction.atomic
def issue_consumer_key(actor, deployment: Deployment, consumer: str, days: int = 90, requests_per_minute: int = 60,
                       tokens_per_day: int = 100_000) -> tuple[ConsumerKey, str]:
    """A key for one consumer of one deployment: (the key, its secret). The secret is returned this
    once; only its SHA-256 is stored."""
    _require(actor, "issues consumer keys")
    deployment = _locked(deployment)
    if deployment.state == DeploymentState.RETIRED:
        raise DeploymentRefused(f"The deployment '{deployment.name}' is retired: it gets no new keys.")
    consumer = (consumer or "").strip()
    if not consumer:
        raise DeploymentRefused("Name the consumer (an application or a team): the key is issued to someone.")
    if len(consumer) > 120:
        raise DeploymentRefused("The consumer's name is at most 120 characters long.")
    for label, value, top in (("validity (days)", days, MAX_KEY_DAYS), ("requests per minute", requests_per_minute, 100_000),
                              ("tokens per day", tokens_per_day, 100_000_000)):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= top:
            raise DeploymentRefused(f"The key's {label} must be a whole number from 1 to {top}, got {value!r}.")
    key, secret = ConsumerKey.objects.issue(deployment, consumer=consumer, created_by=actor, days=days,
                                            requests_per_minute=requests_per_minute, tokens_per_day=tokens_per_day)
    record_event(actor, "consumerkey.issued", key, f"{actor} issued key {key.prefix}… of '{deployment.name}' to {consumer}",
                 {"deployment": deployment.pk, "consumer": consumer, "prefix": key.prefix, "expires_at": key.expires_at.isoformat(),
                  "requests_per_minute": requests_per_minute, "tokens_per_day": tokens_per_day})
    return key, secret


def _revoke(actor, key: ConsumerKey, reason: str) -> ConsumerKey:
    key.revoked_at, key.revoked_reason = timezone.now(), reason
    key.save(update_fields=["revoked_at", "revoked_reason"])
    record_event(actor, "consumerkey.revoked", key, f"{actor or 'The portal'} revoked key {key.prefix}… of "
                 f"'{key.deployment.name}' ({key.consumer}): {reason}"[:500],
                 {"deployment": key.deployment_id, "consumer": key.consumer, "prefix": key.prefix, "reason": reason})
    return key


@transaction.atomic
def revoke_consumer_key(actor, key: ConsumerKey, reason: str) -> ConsumerKey:
    if actor is not None:
        _require(actor, "revokes consumer keys")
    key = ConsumerKey.objects.select_for_update().select_related("deployment").get(pk=key.pk)
    if key.revoked_at is not None:
        raise DeploymentRefused(f"Key {key.prefix}… was revoked already ({key.revoked_reason}).")
    reason = (reason or "").strip()
    if not reason:
        raise DeploymentRefused("Say why the key is revoked: the trail keeps it.")
    return _revoke(actor, key, reason)


@transaction.atomic
def read_flagged_original(actor, flagged: FlaggedOutput) -> str:
    """The original answer the filter changed, for the privacy officer. The page asks for a written
    justification first (governance.mfa keeps it in the trail); each reading is an event of its own.
    The text itself never enters the trail."""
    _require(actor, "reads flagged outputs")
    text = master_key().open(flagged.sealed_output, flagged.seal_context()).decode()
    record_event(actor, "flaggedoutput.opened", flagged, f"{actor} read the original answer of flagged output {flagged.pk}",
                 {"deployment": flagged.deployment_id, "query": flagged.query_id})
    return text


@transaction.atomic
def review_flagged_output(actor, flagged: FlaggedOutput, note: str) -> FlaggedOutput:
    _require(actor, "reviews flagged outputs")
    flagged = FlaggedOutput.objects.select_for_update().get(pk=flagged.pk)
    if flagged.state == FlaggedOutputState.REVIEWED:
        raise DeploymentRefused(f"Flagged output {flagged.pk} was reviewed already by {flagged.reviewed_by}.")
    note = (note or "").strip()
    if not note:
        raise DeploymentRefused("Write what you found and did: the review note is the record of the review.")
    flagged.state, flagged.reviewed_by, flagged.reviewed_at, flagged.review_note = (FlaggedOutputState.REVIEWED, actor,
                                                                                     timezone.now(), note)
    flagged.save(update_fields=["state", "reviewed_by", "reviewed_at", "review_note"])
    record_event(actor, "flaggedoutput.reviewed", flagged, f"{actor} reviewed flagged output {flagged.pk}: {note}"[:500],
                 {"deployment": flagged.deployment_id, "query": flagged.query_id, "note": note})
    return flagged


@transaction.atomic
def flag_output(record: QueryRecord, original: str) -> FlaggedOutput:
    """File an answer the filter masked or withheld for review, the original sealed at rest."""
    flagged = FlaggedOutput.objects.create(query=record, deployment_id=record.deployment_id, findings=record.findings,
                                           original_hits=record.original_hits)
    flagged.sealed_output = master_key().seal(original.encode(), flagged.seal_context())
    flagged.save(update_fields=["sealed_output"])
    record_event(None, "flaggedoutput.filed", flagged, f"The output filter {record.get_outcome_display().lower()} an answer of "
                 f"'{record.deployment.name}' (query {record.pk}): filed for review",
                 {"deployment": record.deployment_id, "query": record.pk, "findings": record.findings,
                  "original_hits": record.original_hits})
    return flagged


def suspend_after_block(run: TrainingRun, decision: AdapterRelease) -> list[int]:
    """A blocked release suspends the adapter's active deployments (the receiver of
    audits.signals.release_decided; in the transaction of the decision)."""
    if decision.decision != ReleaseDecision.BLOCKED:
        return []
    suspended = []
    for deployment in Deployment.objects.filter(run=run, state=DeploymentState.ACTIVE):
        suspend_deployment(None, deployment, f"The adapter's release was blocked by {decision.decided_by}: "
                                             f"{decision.justification}")
        suspended.append(deployment.pk)
    return suspended
