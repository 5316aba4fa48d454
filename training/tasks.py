"""Thin Celery tasks: load the record, call the action, let Celery keep the result."""

import os
import socket

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from governance.models import Dataset, DatasetState


@shared_task(queue="default", acks_late=True, time_limit=3600, soft_time_limit=3500)
def profile_dataset_pii(dataset_id: int) -> dict:
    from training import actions

    dataset = Dataset.objects.filter(pk=dataset_id, state=DatasetState.ACTIVE).first()
    if dataset is None:  # shredded or deleted since it was queued: nothing to profile
        return {"skipped": True}
    return actions.profile_dataset_pii(dataset)


@shared_task(bind=True, queue="default", acks_late=True, time_limit=6 * 3600, soft_time_limit=6 * 3600 - 60)
def scan_dataset_for_review(self, dataset_id: int, actor_id: int | None = None) -> dict:
    from django.contrib.auth import get_user_model

    from training import actions

    dataset = Dataset.objects.filter(pk=dataset_id, state=DatasetState.ACTIVE).first()
    if dataset is None:
        return {"skipped": True}
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None

    def progress(done, total):
        self.update_state(state="PROGRESS", meta={"done": done, "total": total})

    return actions.scan_for_review(dataset, actor, progress)


# Transient errors: the database or broker blinked before the run started. Anything else is a
# failure of the run, which the pipeline records on the run itself (never retried: a half-done
# training cannot resume, and its plaintext is already purged).
_TRANSIENT = (ConnectionError, TimeoutError)


@shared_task(bind=True, queue="gpu", acks_late=True, reject_on_worker_lost=False,
             time_limit=settings.PROVENANT_TRAINING_TIME_LIMIT, soft_time_limit=settings.PROVENANT_TRAINING_TIME_LIMIT - 120,
             autoretry_for=_TRANSIENT + (OperationalError, InterfaceError), retry_backoff=10, max_retries=3)
def run_training(self, run_id: int) -> dict:
    """One training run, start to end, in this worker process (one at a time: prefetch 1)."""
    from training.models import TrainingRun
    from training.pipeline import execute_run

    run = TrainingRun.objects.filter(pk=run_id).first()
    if run is None:
        return {"skipped": "no such run"}
    worker = self.request.hostname or f"{socket.gethostname()}:{os.getpid()}"
    run = execute_run(run, worker)
    return {"run": run.pk, "state": run.state, "epsilon": run.epsilon_spent}
