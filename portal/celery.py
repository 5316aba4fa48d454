import os

from celery import Celery
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
