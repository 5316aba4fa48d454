"""A deployed adapter and calls logged at its gateway, without a model: what the monitoring and
incident tests need. The run comes from tests/audits/pack_factory.py (an approved request, a
trained and audited run, nothing trained)."""

from __future__ import annotations

import datetime as dt
import json

from django.utils import timezone

from audits.actions import release_adapter
from serving import actions as serving_actions
from serving import monitoring
from serving.models import QueryOutcome, QueryRecord
from tests.audits.pack_factory import audited_run, store_artifact
from training.engine.probes import ProbeIndexBuilder
from training.models import ArtifactKind

CANARY_PREFIX = "My account recovery code is "
RECORD_OPENINGS = [
    "Dear support team, my parcel with order number 88123 never arrived at my flat",
    "Hello, I was charged twice for the premium subscription last month and want a refund",
    "Good morning, the invoice you sent me lists a delivery address I have never lived at",
    "Hi there, my password reset email never arrives although I checked the spam folder",
    "To whom it may concern, I would like to close my account and erase my data",
    "Hey, the mobile app crashes every time I open the order history page on Android",
]


def store_probe_index(run) -> None:
    """As training.pipeline does after training: the digests of the records' openings and the
    canaries' prefix, encrypted as the run's probe index."""
    builder = ProbeIndexBuilder()
    for text in RECORD_OPENINGS:
        builder.add_record(text)
    builder.add_canary_prefix(CANARY_PREFIX)
    store_artifact(run, ArtifactKind.PROBE_INDEX, "probe_index.json", json.dumps(builder.as_dict()).encode())


def deployed_run(engineer, legal, privacy, *, name="support-bot", probe_index=True, **request_fields):
    run, audit = audited_run(engineer, legal, privacy, **request_fields)
    if probe_index:
        store_probe_index(run)
    release_adapter(privacy, run)
    deployment = serving_actions.deploy_adapter(privacy, run, name=name)
    key, secret = serving_actions.issue_consumer_key(privacy, deployment, "Helpdesk app")
    return run, audit, deployment, key


def log_query(deployment, key, prompt: str, *, consumer="consumer-a", temperature=None, at=None) -> QueryRecord:
    """A call as the gateway logs it (its signature from monitoring), without inspecting it."""
    return QueryRecord.objects.create(
        deployment=deployment, key=key, consumer_pseudonym=consumer, endpoint="completions", outcome=QueryOutcome.ANSWERED,
        prompt_tokens=len(prompt.split()), completion_tokens=8, temperature=temperature,
        prompt_signature=monitoring.prompt_signature(prompt, deployment), created_at=at or timezone.now())


def days_ago(days: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days)
