"""Classification is the privacy officer's decision: an engineer cannot choose the rules her own
request is held to, an unclassified dataset cannot train, and a change re-opens the requests that
name the dataset."""

import io
import json

import pytest

from governance import actions

from workflow import actions as workflow_actions

from workflow import policy
from governance import models as m
from workflow.models import ApprovalDecision, RequestState
from tests.conftest import api_client_for, client_for, make_dataset, upload_rule
from tests.governance.request_factory import good_data_class, make_good_request
from governance.uploads import encrypt_stream

pytestmark = pytest.mark.django_db


@pytest.fixture
def public_class(db):
    return good_data_class(name="Public docs", tier=m.Tier.PUBLIC, categories=[], dp_required=False, max_epsilon=None)


@pytest.fixture
def clinical_class(db):
    return good_data_class(name="Clinical notes", redaction_required=True, dp_required=True, max_epsilon=1.0)


def test_an_engineer_cannot_reclassify_her_own_dataset_through_the_api(engineer, clinical_class, public_class):
    dataset = make_dataset(engineer, data_classes=[clinical_class])
    response = api_client_for(engineer).patch(f"/api/datasets/{dataset.pk}/", {"data_classes": [public_class.pk]}, format="json")
    assert response.status_code == 403
    assert "Only the privacy officer classifies datasets" in response.json()["detail"]
    assert list(dataset.data_classes.all()) == [clinical_class]


def test_an_engineer_still_edits_the_description_of_her_dataset_through_the_api(engineer, clinical_class):
    dataset = make_dataset(engineer, data_classes=[clinical_class])
    response = api_client_for(engineer).patch(f"/api/datasets/{dataset.pk}/", {"description": "Q3 export"}, format="json")
    assert response.status_code == 200
    dataset.refresh_from_db()
    assert dataset.description == "Q3 export" and list(dataset.data_classes.all()) == [clinical_class]


def test_the_edit_page_gives_an_engineer_no_classification_and_ignores_one_posted(engineer, clinical_class, public_class):
    dataset = make_dataset(engineer, data_classes=[clinical_class])
    client = client_for(engineer)
    page = client.get(f"/governance/datasets/{dataset.pk}/edit/").content.decode()
    assert 'name="data_classes"' not in page
    response = client.post(f"/governance/datasets/{dataset.pk}/edit/", {
        "name": dataset.name, "description": "", "source": "x", "lawful_basis": dataset.lawful_basis,
        "segment": dataset.segment, "data_classes": [public_class.pk]})
    assert response.status_code == 302
    assert list(dataset.data_classes.all()) == [clinical_class]


def test_an_engineer_uploading_with_data_classes_is_refused_and_nothing_is_kept(engineer, public_class, data_dir):
    upload = encrypt_stream(io.BytesIO(b'{"text": "hello"}\n'), upload_rule(), "x.jsonl")
    with pytest.raises(actions.ClassificationRefused):
        actions.upload_dataset(engineer, upload, data_classes=[public_class], name="x", file_format="jsonl",
                               text_field="text", source="s", lawful_basis=m.LawfulBasis.CONTRACT)
    assert not m.Dataset.objects.exists()
    assert not any(p.is_file() for p in (data_dir / "blobs").rglob("*")) if (data_dir / "blobs").exists() else True


def test_the_privacy_officer_classifies_through_the_edit_page(engineer, privacy, clinical_class):
    dataset = make_dataset(engineer)
    response = client_for(privacy).post(f"/governance/datasets/{dataset.pk}/edit/", {
        "name": dataset.name, "description": "", "source": "x", "lawful_basis": dataset.lawful_basis,
        "segment": dataset.segment, "data_classes": [clinical_class.pk]})
    assert response.status_code == 302
    assert list(dataset.data_classes.all()) == [clinical_class]
    event = m.AuditEvent.objects.filter(action="dataset.classified").get()
    assert json.loads(event.payload) == {"before": [], "after": ["Clinical notes"]}


def test_a_reclassification_reopens_the_requests_awaiting_approval(engineer, legal, privacy, clinical_class, public_class):
    dataset = make_dataset(engineer, data_classes=[public_class])
    request = make_good_request(engineer, datasets=[dataset])
    workflow_actions.submit_request(engineer, request)
    workflow_actions.decide_request(legal, request, ApprovalDecision.APPROVE)
    actions.classify_dataset(privacy, dataset, [clinical_class])
    request.refresh_from_db()
    assert request.state == RequestState.DRAFT and request.content_hash == ""
    assert request.valid_approvals().count() == 0
    assert m.AuditEvent.objects.filter(action="trainingrequest.reopened", object_id=str(request.pk)).exists()


def test_an_unclassified_dataset_with_personal_data_cannot_be_submitted(engineer):
    """The reviewer's case: no class, names everywhere, DP and redaction off, an external GPU."""
    dataset = make_dataset(engineer, name="Unclassified export")
    m.Dataset.objects.filter(pk=dataset.pk).update(pii_profile={"total_records": 1, "entities": {
        "PERSON": {"records": 1, "records_share": 1.0}}})
    request = make_good_request(engineer, datasets=[dataset], settings={"redaction": False, "training": {"dp": False}})
    with pytest.raises(workflow_actions.RequestRefused, match="has not been classified by the privacy officer"):
        workflow_actions.submit_request(engineer, request)


def test_a_dataset_unclassified_after_approval_stops_the_job_at_its_start(engineer, privacy, public_class):
    dataset = make_dataset(engineer, data_classes=[public_class])
    request = make_good_request(engineer, datasets=[dataset])
    dataset.data_classes.clear()  # as if a classification vanished after the approvals
    codes = [f.code for f in policy.findings_for(request, at_start=True) if f.severity == "blocker"]
    assert "dataset_unclassified" in codes
