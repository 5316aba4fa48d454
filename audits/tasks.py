"""Thin Celery task: load the audit, run it in this worker process, let Celery keep the result."""

import os
import socket

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError


@shared_task(bind=True, queue="gpu", acks_late=True, reject_on_worker_lost=False,
             time_limit=settings.PROVENANT_AUDIT_TIME_LIMIT, soft_time_limit=settings.PROVENANT_AUDIT_TIME_LIMIT - 60,
             autoretry_for=(ConnectionError, TimeoutError, OperationalError, InterfaceError), retry_backoff=10, max_retries=3)
def run_adapter_audit(self, audit_id: int) -> dict:
    from audits.models import AdapterAudit
    from audits.runner import execute_audit

    item = AdapterAudit.objects.filter(pk=audit_id).first()
    if item is None:
        return {"skipped": "no such audit"}
    item = execute_audit(item, self.request.hostname or f"{socket.gethostname()}:{os.getpid()}")
    return {"audit": item.pk, "state": item.state, "passed": item.passed}
