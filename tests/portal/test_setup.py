"""The embedded default works as the README promises: demo data, Celery queues, health."""

import json

from django.contrib.auth import get_user_model
from django.core.management import call_command

from governance import models as m
from portal.celery import app


def test_seed_demo_creates_a_user_per_role_and_records_through_actions(db, data_dir, capsys):
    call_command("seed_demo")
    out = capsys.readouterr().out
    users = get_user_model().objects.filter(username__in=["erin", "lena", "priya", "rory", "adam"])
    assert {g for u in users for g in u.groups.values_list("name", flat=True)} == {"engineer", "legal", "privacy", "regulator", "admin"}
    passwords = json.loads((data_dir / "keys" / "demo-users.json").read_text())
    for username, password in passwords.items():
        assert password in out
        assert get_user_model().objects.get(username=username).check_password(password)
    assert m.Dataset.objects.count() == 2 and m.DataProcessingAgreement.objects.count() == 1
    assert m.AuditEvent.verify_chain().ok and m.AuditEvent.objects.count() > 10
    call_command("seed_demo")  # idempotent
    assert m.Dataset.objects.count() == 2


def test_celery_has_the_default_and_gpu_queues_and_results_in_the_database(settings):
    assert {q.name for q in app.conf.task_queues} == {"default", "gpu"}
    assert app.conf.result_backend == "django-db"
    assert app.conf.task_acks_late is True


def test_health_endpoint(client, db):
    assert client.get("/healthz").json() == {"status": "ok"}
