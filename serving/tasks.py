"""Thin Celery tasks of the serving app, run by Celery beat (CELERY_BEAT_SCHEDULE in settings):
the query log's retention and the scheduled re-audit of every deployed adapter."""

from celery import shared_task


@shared_task(queue="default", acks_late=True, time_limit=1800, soft_time_limit=1700)
def delete_expired_queries() -> dict:
    from serving import monitoring

    return monitoring.delete_expired_queries()


@shared_task(queue="default", acks_late=True, time_limit=600, soft_time_limit=570)
def reaudit_deployed_adapters() -> dict:
    """Queues the audits (each runs on its run's own queue); the verdicts arrive later through
    audits.signals.audit_finished, where serving.monitoring.on_audit_finished suspends what failed."""
    from serving import monitoring

    return monitoring.reaudit_deployed_adapters()
