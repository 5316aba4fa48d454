"""Training-request pages: the form drafts and edits through the actions, live findings follow the
form, approvers find what awaits them and decide on the page, the detail page tells the story."""

import pytest
from django.urls import reverse

from workflow import actions
from workflow.models import Approval, RequestState, TrainingRequest
from tests.conftest import client_for
from tests.governance.request_factory import good_base_model, good_compute_target, good_dataset, make_good_request


@pytest.fixture
def choices(engineer):
    return {"base_model": good_base_model(), "dataset": good_dataset(engineer), "compute_target": good_compute_target()}


def form_data(choices, **overrides):
    """What the engineer types into the request form: a request policy passes."""
    data = {
        "title": "Support reply drafts", "intended_use": "Drafting replies to support tickets, reviewed by an agent.",
        "out_of_scope": "Sending replies without review.", "base_model": choices["base_model"].pk, "datasets": [choices["dataset"].pk],
        "leak_definition": "Any customer name or account number appearing in output.", "adversaries": ["external_attacker"],
        "audience": "internal", "lora_r": 8, "lora_alpha": 16, "target_modules": "", "epochs": 0.5, "learning_rate": 0.001,
        "batch_size": 16, "max_length": 64, "dp": "on", "target_epsilon": 4, "target_delta": "", "max_grad_norm": 1.0,
        "accountant": "prv", "privacy_unit": "record", "subject_field": "", "compute_target": choices["compute_target"].pk,
        "redaction": "on", "canary_count": 10, "canary_repetitions": 1, "canary_length": 8,
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def submitted(engineer, **fields):
    return actions.submit_request(engineer, make_good_request(engineer, **fields))


def test_the_form_drafts_a_request_with_its_settings(engineer, choices):
    response = client_for(engineer).post(reverse("workflow:request_create"), form_data(choices, target_modules="c_attn, c_proj"))
    request = TrainingRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == request.get_absolute_url()
    assert request.state == RequestState.DRAFT and request.requester == engineer
    assert list(request.datasets.all()) == [choices["dataset"]]
    training = request.settings["training"]
    assert (training["dp"], training["target_epsilon"], training["target_delta"]) == (True, 4.0, None)
    assert training["target_modules"] == ["c_attn", "c_proj"] and request.settings["canaries"]["count"] == 10


def test_editing_a_submitted_request_on_the_page_voids_its_approvals(engineer, legal, choices):
    request = submitted(engineer, datasets=[choices["dataset"]], base_model=choices["base_model"], compute_target=choices["compute_target"])
    actions.decide_request(legal, request, "approve")
    edited = form_data(choices, intended_use="Drafting replies and summarising tickets for agents.")
    response = client_for(engineer).post(reverse("workflow:request_edit", args=[request.pk]), edited)
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.state == RequestState.DRAFT and request.intended_use.startswith("Drafting replies and summarising")
    assert Approval.objects.get().void_reason == "the request was edited"


def test_live_findings_name_the_blocker_when_dp_is_off_for_a_class_that_requires_it(engineer, choices):
    client, url = client_for(engineer), reverse("workflow:request_findings")
    without_dp = client.post(url, form_data(choices, dp=None), HTTP_HX_REQUEST="true").content.decode()
    assert "requires differential privacy, and this request trains without it" in without_dp
    fixed = client.post(url, form_data(choices), HTTP_HX_REQUEST="true").content.decode()
    assert "requires differential privacy" not in fixed and "No blocker and no warning" in fixed
    assert not TrainingRequest.objects.exists()


def test_the_inbox_shows_a_submitted_request_to_legal_and_privacy_only(engineer, legal, privacy, regulator):
    request = submitted(engineer)
    url = reverse("workflow:request_inbox")
    for approver in (legal, privacy):
        assert request.title in client_for(approver).get(url).content.decode()
    assert client_for(engineer).get(url).status_code == 403
    assert client_for(regulator).get(url).status_code == 403
    actions.decide_request(legal, request, "approve")
    assert request.title not in client_for(legal).get(url).content.decode()  # signed: nothing left for legal
    assert "Pending approvals (1)" in client_for(privacy).get(reverse("dashboard")).content.decode()


def test_the_detail_page_shows_the_timeline_of_the_request(engineer, legal):
    request = submitted(engineer)
    actions.decide_request(legal, request, "reject", comment="The contract does not cover training.")
    page = client_for(engineer).get(request.get_absolute_url()).content.decode()
    for sentence in ("drafted training request", "submitted training request", "rejected training request",
                     "The contract does not cover training.", "the request was rejected"):
        assert sentence in page


def test_an_approver_approves_on_the_page_and_the_requester_cannot(engineer, legal):
    request = submitted(engineer)
    url = reverse("workflow:request_decide", args=[request.pk])
    assert client_for(engineer).post(url, {"decision": "approve"}).status_code == 403
    assert "Your decision" in client_for(legal).get(request.get_absolute_url()).content.decode()
    response = client_for(legal).post(url, {"decision": "approve", "comment": "Covered by contract.", "conditions": "Internal use only."})
    assert response.status_code == 302
    approval = Approval.objects.get()
    assert (approval.approver, approval.role, approval.conditions) == (legal, "legal", "Internal use only.")
    request.refresh_from_db()
    assert request.state == RequestState.IN_REVIEW
    assert "Your decision" not in client_for(legal).get(request.get_absolute_url()).content.decode()
