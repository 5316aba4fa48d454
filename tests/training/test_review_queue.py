"""The review queue: filled by a scan, open to the privacy role only, every view and decision audited."""

from unittest import mock

import pytest
from django.urls import reverse

from governance import models as m
from tests.conftest import client_for, justify, make_dataset, make_record
from training import actions
from training.models import RedactionReview, ReviewDecision

RECORDS = "\n".join([
    '{"text": "Patient Amelia Novak, DOB: 1984-03-12, phone +44 20 7946 0958."}',
    '{"text": "Follow-up for amelia next week; contact jordan at the ward."}',
    '{"text": "No personal data in this line at all."}',
]) + "\n"


@pytest.fixture
def clinical(privacy):
    return make_record(privacy, m.DataClass(name="Clinical", tier=m.Tier.RESTRICTED, max_epsilon=1.0,
                                            categories=[m.DataCategory.PERSONAL, m.DataCategory.SPECIAL]))


@pytest.fixture
def scanned(engineer, privacy, clinical):
    dataset = make_dataset(engineer, RECORDS, name="Ward notes")
    dataset.data_classes.add(clinical)
    summary = actions.scan_for_review(dataset, privacy)
    return dataset, summary


def test_scan_queues_every_detection_of_a_high_risk_class(scanned):
    dataset, summary = scanned
    items = RedactionReview.objects.filter(dataset=dataset)
    assert summary["queued"] == items.count() > 0
    assert {"PERSON", "DATE_OF_BIRTH", "PHONE_NUMBER"} <= set(items.values_list("entity_type", flat=True))
    assert set(items.values_list("reason", flat=True)) <= {"high_risk", "low_confidence"}
    assert m.AuditEvent.objects.filter(action="dataset.review_scanned").count() == 1


def test_scan_of_an_ordinary_class_queues_only_low_confidence_detections(engineer, privacy):
    ordinary = make_record(privacy, m.DataClass(name="Support", max_epsilon=8.0, review_threshold=0.6))
    dataset = make_dataset(engineer, RECORDS, name="Tickets")
    dataset.data_classes.add(ordinary)
    actions.scan_for_review(dataset, privacy)
    items = RedactionReview.objects.filter(dataset=dataset)
    assert all(item.score < 0.6 and item.reason == "low_confidence" for item in items)


def test_snippets_are_sealed_at_rest(scanned):
    dataset, _ = scanned
    item = RedactionReview.objects.filter(dataset=dataset, entity_type="DATE_OF_BIRTH").first()
    assert b"1984-03-12" not in bytes(item.snippet_sealed)
    before, detected, after = item.snippet_parts()
    assert detected == "1984-03-12" and "DOB" in before


def test_rescanning_does_not_duplicate_items(scanned, privacy):
    dataset, _ = scanned
    count = RedactionReview.objects.count()
    assert actions.scan_for_review(dataset, privacy)["queued"] == 0
    assert RedactionReview.objects.count() == count


@pytest.mark.parametrize("persona", ["engineer", "legal", "regulator", "admin_user", "outsider"])
def test_queue_and_items_are_refused_to_everyone_but_privacy(request, scanned, persona):
    client = client_for(request.getfixturevalue(persona))
    item = RedactionReview.objects.first()
    # The queue is a page their role lacks (403); an item is nothing they can see (404), except for
    # a user with no role, who gets the same 403 page everywhere.
    assert client.get(reverse("training:review_queue")).status_code == 403
    refused_item = 403 if persona == "outsider" else 404
    assert client.get(reverse("training:review_detail", args=[item.pk])).status_code == refused_item
    assert client.post(reverse("training:review_detail", args=[item.pk]), {"decision": "rejected"}).status_code == refused_item
    assert not m.AuditEvent.objects.filter(action="redactionreview.viewed").exists()


def test_privacy_officer_sees_the_original_and_each_view_is_audited(scanned, privacy):
    client = client_for(privacy)
    item = RedactionReview.objects.filter(entity_type="DATE_OF_BIRTH").first()
    assert "DATE_OF_BIRTH" in client.get(reverse("training:review_queue")).content.decode()
    justify(client, reverse("training:review_detail", args=[item.pk]))  # governance.mfa: a written reason first
    for _ in range(2):
        page = client.get(reverse("training:review_detail", args=[item.pk])).content.decode()
        assert "<mark>1984-03-12</mark>" in page
    events = m.AuditEvent.objects.filter(action="redactionreview.viewed", object_id=str(item.pk))
    assert events.count() == 2 and "1984-03-12" not in "".join(e.payload + e.summary for e in events)


def test_decisions_are_recorded_and_audited(scanned, privacy):
    client = client_for(privacy)
    item = RedactionReview.objects.filter(entity_type="DATE_OF_BIRTH").first()
    response = client.post(reverse("training:review_detail", args=[item.pk]), {"decision": "rejected", "comment": "a visit date"})
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.decision == ReviewDecision.REJECTED and item.decided_by == privacy
    assert m.AuditEvent.objects.filter(action="redactionreview.rejected", object_id=str(item.pk)).count() == 1


def test_extending_needs_text_that_contains_the_detection(scanned, privacy):
    item = RedactionReview.objects.filter(entity_type="DATE_OF_BIRTH").first()
    client = client_for(privacy)
    justify(client, reverse("training:review_detail", args=[item.pk]))  # the form comes back with the snippet
    response = client.post(reverse("training:review_detail", args=[item.pk]), {"decision": "extended", "extend_to": "not there"})
    assert "must appear in the snippet" in response.content.decode()
    item.refresh_from_db()
    assert item.decision == ReviewDecision.PENDING
    client.post(reverse("training:review_detail", args=[item.pk]), {"decision": "extended", "extend_to": "DOB: 1984-03-12"})
    item.refresh_from_db()
    assert item.decision == ReviewDecision.EXTENDED and item.new_end == item.end and item.new_start == item.start - len("DOB: ")


def test_decisions_feed_the_training_redaction(scanned, privacy):
    dataset, _ = scanned
    item = RedactionReview.objects.filter(entity_type="DATE_OF_BIRTH").first()
    actions.decide_review(privacy, item, ReviewDecision.REJECTED)
    decisions = actions.review_decisions_for(dataset)
    assert [d.verdict for d in decisions[item.record_id]] == ["reject"]


def test_pii_profile_is_computed_and_shown_on_the_dataset_page(engineer, privacy):
    dataset = make_dataset(engineer, RECORDS, name="Ward notes")
    profile = actions.profile_dataset_pii(dataset, sample_size=10)
    assert profile["sampled_records"] == 3 and profile["entities"]["PHONE_NUMBER"]["records_share"] == pytest.approx(1 / 3, abs=0.01)
    page = client_for(privacy).get(reverse("governance:dataset_detail", args=[dataset.pk])).content.decode()
    assert "Personal data profile" in page and "PHONE_NUMBER" in page and "1984-03-12" not in page


def test_upload_enqueues_the_pii_profile_on_the_default_queue_after_commit(engineer, django_capture_on_commit_callbacks):
    with mock.patch("celery.current_app.send_task") as send:
        with django_capture_on_commit_callbacks(execute=True):
            dataset = make_dataset(engineer, RECORDS)
    send.assert_called_once_with("training.tasks.profile_dataset_pii", args=[dataset.pk], queue="default")
    from training.tasks import profile_dataset_pii

    assert profile_dataset_pii.queue == "default"


def test_scan_button_enqueues_a_scan_for_the_owner(engineer, django_capture_on_commit_callbacks):
    dataset = make_dataset(engineer, RECORDS)
    with mock.patch("celery.current_app.send_task") as send:
        with django_capture_on_commit_callbacks(execute=True):
            client_for(engineer).post(reverse("governance:dataset_review_scan", args=[dataset.pk]))
    send.assert_called_once_with("training.tasks.scan_dataset_for_review", args=[dataset.pk, engineer.pk], queue="default")


def test_the_profile_counts_duplicates_over_every_record_for_the_policy(engineer):
    lines = ['{"text": "Refund issued for order 1001."}', '{"text": "refund issued for order 1001"}',
             '{"text": "Refund issued for order 1001."}', '{"text": "Card replaced after the customer called."}']
    dataset = make_dataset(engineer, "\n".join(lines) + "\n", name="Refunds")
    profile = actions.profile_dataset_pii(dataset, sample_size=2)
    assert profile["exact_duplicates"] == 1 and profile["near_duplicates"] == 1
    assert profile["duplicate_share"] == pytest.approx(0.5)
