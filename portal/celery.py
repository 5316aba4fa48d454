import os

from celery import Celery, bootsteps
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


def resend_queued_jobs(queues=("gpu",)) -> list[str]:
    """Send again the message of every run and audit the database holds as queued (enqueued, not started).

    A broker that restarts without persistence (Redis without AOF, as on the CI machine) or loses
    its disk forgets its queues: a run queued there would wait forever with no reason shown. The
    database is the record of what must run, so the worker re-sends from it. A run whose first
    message survived gets two: the first trains it, the second finds it no longer queued
    (`runs.mark_started` claims a run under a row lock) and does nothing, so no run trains twice."""
    from audits.actions import enqueue_audit
    from audits.models import AdapterAudit, AuditState
    from training.models import RunState, TrainingRun
    from training.runs import enqueue_run

    resent = []
    # Each to the queue it was dispatched to, and only the queues this worker consumes: the workers of
    # another compute target (another region) re-send their own.
    queued = TrainingRun.objects.filter(state=RunState.QUEUED, celery_queue__in=list(queues)).exclude(celery_task_id="")
    for run in queued.order_by("pk"):
        enqueue_run(run)
        resent.append(f"run {run.pk}")
    # Audits the same way (`mark_audit_started` claims an audit under a row lock, too).
    audits = AdapterAudit.objects.filter(state=AuditState.QUEUED, run__celery_queue__in=list(queues)).exclude(celery_task_id="")
    for item in audits.select_related("run").order_by("pk"):
        enqueue_audit(item)
        resent.append(f"audit {item.pk}")
    return resent


class ResendQueuedJobs(bootsteps.StartStopStep):
    """Runs when the worker's consumer starts: at worker start and after every reconnection to the
    broker (Celery restarts the consumer when the broker connection is lost)."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def start(self, consumer):
        import logging

        queues = {queue.name for queue in getattr(consumer.task_consumer, "queues", ())}
        try:
            resent = resend_queued_jobs(queues)
        except Exception:  # the database may be down too; the next reconnection tries again
            logging.getLogger(__name__).exception("could not re-send the queued training runs and audits")
            return
        if resent:
            logging.getLogger(__name__).warning("connected to the broker: sent again the queued %s "
                                                "(a message the broker lost trains; a duplicate does nothing)", resent)


app.steps["consumer"].add(ResendQueuedJobs)
