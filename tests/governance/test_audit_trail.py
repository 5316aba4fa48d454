"""The audit trail: every change writes a linked event; tampering is detected and named."""

import io
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from governance import actions, audit_triggers
from governance import models as m
from tests.conftest import client_for, make_dataset, make_record


@pytest.fixture
def trail(privacy, engineer):
    make_record(privacy, m.DataClass(name="A", max_epsilon=4.0))
    make_record(privacy, m.DataClass(name="B", max_epsilon=2.0))
    dataset = make_dataset(engineer)
    actions.shred_dataset(engineer, dataset, "test")
    return list(m.AuditEvent.objects.order_by("sequence"))


def test_each_action_writes_one_linked_event(trail):
    assert [e.action for e in trail] == ["dataclass.created", "dataclass.created", "dataset.uploaded", "dataset.shredded"]
    assert trail[0].prev_hash == m.AuditEvent.GENESIS
    for before, after in zip(trail, trail[1:]):
        assert after.prev_hash == before.hash
        assert after.sequence == before.sequence + 1


def test_intact_chain_verifies(trail):
    result = m.AuditEvent.verify_chain()
    assert result.ok and result.checked == 4
    out = io.StringIO()
    call_command("verify_audit_trail", stdout=out)
    assert "intact: 4 events" in out.getvalue()


def test_trigger_refuses_update_and_delete(trail):
    for sql in ("UPDATE governance_auditevent SET summary = 'x' WHERE sequence = 2",
                "DELETE FROM governance_auditevent WHERE sequence = 2"):
        with pytest.raises(DatabaseError, match="append-only"):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql)
    assert m.AuditEvent.verify_chain().ok


def test_orm_update_of_an_event_is_refused(trail):
    with pytest.raises(DatabaseError):
        with transaction.atomic():
            m.AuditEvent.objects.filter(sequence=1).update(summary="rewritten")


def _tamper(sql):
    audit_triggers.drop(connection)
    with connection.cursor() as cursor:
        cursor.execute(sql)
    audit_triggers.install(connection)


def _verify_command_fails_with(text):
    with pytest.raises(CommandError) as failure:
        call_command("verify_audit_trail")
    assert text in str(failure.value)


def test_changed_payload_is_detected_and_named(trail):
    _tamper("UPDATE governance_auditevent SET payload = '{\"reason\":\"nothing to see\"}' WHERE sequence = 4")
    result = m.AuditEvent.verify_chain()
    assert not result.ok and result.broken_sequence == 4
    _verify_command_fails_with("event #4 (dataset.shredded")


def test_changed_actor_is_detected(trail):
    _tamper("UPDATE governance_auditevent SET actor_username = 'someone-else' WHERE sequence = 2")
    _verify_command_fails_with("event #2")


def test_deleted_middle_row_is_detected_and_named(trail):
    _tamper("DELETE FROM governance_auditevent WHERE sequence = 2")
    result = m.AuditEvent.verify_chain()
    assert not result.ok and result.broken_sequence == 2
    _verify_command_fails_with("event #2 is missing")


def test_deleted_last_row_is_detected(trail):
    _tamper("DELETE FROM governance_auditevent WHERE sequence = 4")
    _verify_command_fails_with("the chain ends at event #3 but its head records #4")


def test_rehashed_forgery_breaks_the_next_link(trail):
    """Rewriting an event and recomputing its own hash still breaks the link to the next one."""
    event = m.AuditEvent.objects.get(sequence=2)
    event.summary = "forged"
    forged_hash = event.compute_hash()
    _tamper(f"UPDATE governance_auditevent SET summary = 'forged', hash = '{forged_hash}' WHERE sequence = 2")
    result = m.AuditEvent.verify_chain()
    assert not result.ok and result.broken_sequence == 3


@pytest.mark.django_db(transaction=True)
def test_events_must_be_written_inside_a_transaction(engineer):
    with pytest.raises(RuntimeError, match="inside the transaction"):
        m.AuditEvent.append(actor=engineer, action="x", object_type="y", object_id=1, summary="", payload={})


def test_a_failed_change_leaves_no_event(privacy):
    before = m.AuditEvent.objects.count()
    with pytest.raises(Exception):
        make_record(privacy, m.DataClass(name="", max_epsilon=1.0))  # invalid: full_clean refuses
    assert m.AuditEvent.objects.count() == before


def test_update_records_before_and_after(privacy):
    import json

    data_class = make_record(privacy, m.DataClass(name="C", max_epsilon=4.0))

    def lower_epsilon(instance):
        instance.max_epsilon = 1.0
        instance.save()

    actions.update_record(privacy, data_class, lower_epsilon)
    event = m.AuditEvent.objects.order_by("-sequence").first()
    assert event.action == "dataclass.updated"
    assert json.loads(event.payload)["changes"]["max_epsilon"] == {"before": 4.0, "after": 1.0}


def test_trail_page_filters_and_verifies(trail, privacy):
    client = client_for(privacy)
    page = client.get(reverse("governance:audit_trail"), {"action": "shredded"}).content.decode()
    assert "dataset.shredded" in page and "dataclass.created" not in page
    assert "The chain verifies: 4 events" in client.get(reverse("governance:audit_trail"), {"verify": 1}).content.decode()


def test_jsonl_export_holds_every_hashed_field_and_is_itself_audited(trail, legal):
    import json

    response = client_for(legal).get(reverse("governance:audit_trail_export"))
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert [line["sequence"] for line in lines] == [1, 2, 3, 4]
    assert lines[2]["hash"] == trail[2].hash and lines[3]["prev_hash"] == trail[2].hash
    assert m.AuditEvent.objects.order_by("-sequence").first().action == "audit_trail.exported"


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_form_one_chain(transactional_db, privacy):
    """Two writers at once still give one unbroken line of events (the head row serialises them)."""
    errors = []

    def write(n):
        try:
            for i in range(5):
                make_record(privacy, m.Processor(name=f"P{n}-{i}"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert m.AuditEvent.objects.count() == 10
    assert m.AuditEvent.verify_chain().ok
