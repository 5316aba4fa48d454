"""Thin Celery tasks: load the record, call the action, let Celery keep the result."""

from celery import shared_task

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
