import os

from celery import Celery
from celery.signals import celeryd_init, worker_ready
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("provenant")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue("default"), Queue("gpu")]
app.autodiscover_tasks()


def ensure_broker_folders() -> None:
    """kombu's filesystem transport expects its folders to exist before the first message."""
    from pathlib import Path

    for folder in (app.conf.broker_transport_options or {}).values():
        if isinstance(folder, str) and "/" in folder:
            Path(folder).mkdir(parents=True, exist_ok=True)


@worker_ready.connect
def _reap_and_sweep(sender=None, **kwargs):
    """A worker that was killed (SIGKILL, OOM, power loss) could not clean up: at the next start,
    fail the runs and audits it left `running` and remove the plaintext scratch they left behind."""
    from audits.actions import reap_dead_audits
    from audits.models import ACTIVE_AUDIT_STATES, AdapterAudit
    from training.runs import sweep_scratch_at_worker_start

    hostname = getattr(sender, "hostname", None)
    reap_dead_audits(hostname)
    # Runs and audits share the scratch root: an active audit's directory is not stale.
    audits_live = AdapterAudit.objects.filter(state__in=ACTIVE_AUDIT_STATES).values_list("job_id", flat=True)
    outcome = sweep_scratch_at_worker_start(hostname, also_live=list(audits_live))
    if outcome["reaped"] or outcome["swept"]:
        import logging

        logging.getLogger(__name__).warning("worker start: failed dead runs %s, swept scratch %s", outcome["reaped"], outcome["swept"])


@celeryd_init.connect
def _broker_folders(**kwargs):
    ensure_broker_folders()
