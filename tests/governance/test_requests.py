"""Training requests: submission freezes what is approved, approvals bind to it, the last one
dispatches the run exactly once, and the rules are checked again when the job starts."""

import datetime as dt
import json
import threading

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import timezone

from workflow import actions
from governance import models as m
from governance.models import AuditEvent
from workflow.models import Approval, RequestState, TrainingRequest
from governance import roles
from tests.conftest import make_record


@pytest.fixture
def base_model(db):
    from training.models import BaseModel

    return BaseModel.objects.create(name="tiny", source="local_directory", location="/nowhere", architecture="gpt2",
                                    parameter_count=1, licence="Apache-2.0")


@pytest.fixture
def setup(records, privacy, base_model):
    records["dataset"].data_classes.add(records["dataclass"])
    external = make_record(privacy, m.ComputeTarget(name="Northwind A100", kind=m.ComputeKind.EXTERNAL_PROVIDER, region="eu-west-1",
                                                    processor=records["processor"], dpa=records["dataprocessingagreement"]))
    return {**records, "base_model": base_model, "external": external}


def request_data(setup, **overrides):
    data = dict(title="Support reply drafts", intended_use="Suggest replies to support agents, who edit them before sending.",
                out_of_scope="Any customer-facing use without an agent.", base_model=setup["base_model"],
                compute_target=setup["computetarget"], leak_definition="A customer's name, contact details or ticket text reproduced.",
                adversaries=["external_attacker", "insider"], audience="internal",
                settings={"training": {"epochs": 1, "batch_size": 8, "max_length": 32, "target_epsilon": 8.0, "accountant": "rdp"},
                          "canaries": {"count": 2, "length": 6}})
    data.update(overrides)
    return data


def submitted(engineer, setup, **overrides):
    request = actions.create_request(engineer, request_data(setup, **overrides), [setup["dataset"]])
    return actions.submit_request(engineer, request)


def test_submitting_freezes_the_content_hash_and_the_findings(engineer, setup):
    request = submitted(engineer, setup)
    assert request.state == RequestState.SUBMITTED and len(request.content_hash) == 64
    assert request.content_hash == request.compute_content_hash()
    assert AuditEvent.objects.filter(action="trainingrequest.submitted", object_id=str(request.pk)).exists()


def test_the_content_hash_covers_the_versions_of_the_records_it_names(engineer, setup, legal):
    request = submitted(engineer, setup, compute_target=setup["external"])
    before = request.compute_content_hash()
    dpa = setup["dataprocessingagreement"]
    m.DataProcessingAgreement.objects.filter(pk=dpa.pk).update(version=2, updated_at=timezone.now())
    assert request.compute_content_hash() != before


def test_an_edit_returns_the_request_to_draft_and_voids_its_approvals(engineer, legal, setup):
    request = submitted(engineer, setup)
    actions.decide_request(legal, request, "approve", comment="Contract allows it.")
    assert request.approvals.filter(voided_at__isnull=True).count() == 1
    request = actions.update_request(engineer, request, {"intended_use": "Suggest replies and summarise tickets for agents."})
    assert request.state == RequestState.DRAFT and request.content_hash == ""
    approval = request.approvals.get()
    assert approval.voided_at is not None and approval.void_reason == "the request was edited"
    request = actions.submit_request(engineer, request)
    assert request.valid_approvals().count() == 0 and request.missing_approvals() == {"legal": 1, "privacy": 1}


def test_the_requester_cannot_approve_their_own_request(setup, db):
    from tests.conftest import _make_user

    both = _make_user("pat", roles.ENGINEER)
    both.groups.add(Group.objects.get(name=roles.PRIVACY))
    setup["dataset"].owner = both
    setup["dataset"].save()
    request = submitted(both, setup)
    with pytest.raises(PermissionError, match="someone else"):
        actions.decide_request(both, request, "approve")
    assert not Approval.objects.exists()


def test_nobody_signs_the_same_version_twice(engineer, legal, setup):
    request = submitted(engineer, setup)
    actions.decide_request(legal, request, "approve")
    with pytest.raises(actions.RequestRefused, match="already signed"):
        actions.decide_request(legal, request, "approve")
    assert Approval.objects.count() == 1


def test_a_rejected_request_resubmitted_unchanged_can_be_signed_again_by_those_who_rejected_it(engineer, legal, setup):
    request = submitted(engineer, setup)
    actions.decide_request(legal, request, "reject", comment="Ask the customer team first.")
    request = actions.submit_request(engineer, request)  # unchanged: the same content hash
    approval = actions.decide_request(legal, request, "approve", comment="The customer team agreed.")
    assert approval.content_hash == request.content_hash and approval.voided_at is None
    assert request.approvals.filter(approver=legal).count() == 2
    assert request.missing_approvals() == {"privacy": 1}


def test_a_rejection_needs_reasons_and_ends_the_review(engineer, legal, setup):
    request = submitted(engineer, setup)
    with pytest.raises(actions.RequestRefused, match="reasons"):
        actions.decide_request(legal, request, "reject")
    actions.decide_request(legal, request, "reject", comment="The contract does not cover model training.")
    request.refresh_from_db()
    assert request.state == RequestState.REJECTED and request.run is None


def test_the_last_approval_dispatches_the_run_on_its_compute_queue_after_commit(engineer, legal, privacy, setup, monkeypatch,
                                                                                django_capture_on_commit_callbacks):
    from training import runs

    queued = []
    monkeypatch.setattr(runs, "enqueue_run", lambda run, queue="gpu": queued.append((run.pk, queue)))
    request = submitted(engineer, setup)
    actions.decide_request(legal, request, "approve")
    request.refresh_from_db()
    assert request.state == RequestState.IN_REVIEW and request.run is None
    with django_capture_on_commit_callbacks(execute=True):
        actions.decide_request(privacy, request, "approve", conditions="Internal use only.")
    request.refresh_from_db()
    assert request.state == RequestState.QUEUED and request.run is not None
    assert queued == [(request.run.pk, "gpu")]
    assert request.run.config == request.settings and request.run.created_by == engineer
    actions_logged = set(AuditEvent.objects.filter(object_id=str(request.pk), object_type="governance.trainingrequest")
                         .values_list("action", flat=True))
    assert {"trainingrequest.fully_approved", "trainingrequest.dispatched"} <= actions_logged


def test_restricted_data_needs_an_additional_approver(engineer, legal, privacy, admin_user, setup):
    m.DataClass.objects.filter(pk=setup["dataclass"].pk).update(tier=m.Tier.RESTRICTED)
    request = submitted(engineer, setup)
    assert request.required_approvals() == {"legal": 1, "privacy": 1, "additional": 1}
    actions.decide_request(legal, request, "approve")
    actions.decide_request(privacy, request, "approve")
    request.refresh_from_db()
    assert request.run is None and request.missing_approvals() == {"additional": 1}
    actions.decide_request(admin_user, request, "approve")
    request.refresh_from_db()
    assert request.run is not None


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_final_approvals_create_exactly_one_run(engineer, legal, privacy, setup, monkeypatch):
    from training import runs
    from training.models import TrainingRun

    monkeypatch.setattr(runs, "enqueue_run", lambda run, queue="gpu": None)
    request = submitted(engineer, setup)
    barrier, errors = threading.Barrier(2), []

    def approve(user):
        try:
            barrier.wait(timeout=10)
            actions.decide_request(user, TrainingRequest.objects.get(pk=request.pk), "approve")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(user,)) for user in (legal, privacy)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    request.refresh_from_db()
    assert TrainingRun.objects.count() == 1 and request.run == TrainingRun.objects.get()
    assert request.state == RequestState.QUEUED


def test_a_dpa_lapsing_between_approval_and_job_start_stops_the_job_with_its_reason(engineer, legal, privacy, setup, monkeypatch):
    from training import runs
    from training.models import RunState
    from training.pipeline import execute_run

    monkeypatch.setattr(runs, "enqueue_run", lambda run, queue="gpu": None)
    request = submitted(engineer, setup, compute_target=setup["external"])
    actions.decide_request(legal, request, "approve")
    actions.decide_request(privacy, request, "approve")
    request.refresh_from_db()
    assert request.run is not None
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    m.DataProcessingAgreement.objects.filter(pk=setup["dataprocessingagreement"].pk).update(terminated_on=yesterday)
    ended = execute_run(request.run, "test-worker")
    assert ended.state == RunState.FAILED
    assert "terminated on" in ended.failure_reason and "Northwind" in ended.failure_reason
    request.refresh_from_db()
    assert request.state == RequestState.FAILED


def test_the_same_idempotency_key_twice_creates_one_request(engineer, setup):
    first = actions.create_request(engineer, request_data(setup), [setup["dataset"]], idempotency_key="k-123")
    again = actions.create_request(engineer, request_data(setup), [setup["dataset"]], idempotency_key="k-123")
    other = actions.create_request(engineer, request_data(setup), [setup["dataset"]], idempotency_key="k-456")
    assert first.pk == again.pk != other.pk and TrainingRequest.objects.count() == 2


def test_invalid_settings_are_refused_with_what_is_wrong(engineer, setup):
    with pytest.raises(actions.RequestRefused, match="accountant"):
        actions.create_request(engineer, request_data(setup, settings={"training": {"accountant": "gdp"}}), [setup["dataset"]])
    assert not TrainingRequest.objects.exists()


def test_a_withdrawn_request_cannot_be_approved(engineer, legal, setup):
    request = submitted(engineer, setup)
    actions.withdraw_request(engineer, request, "Not needed any more.")
    with pytest.raises(actions.RequestRefused, match="nothing to decide"):
        actions.decide_request(legal, request, "approve")
    payload = json.loads(AuditEvent.objects.get(action="trainingrequest.withdrawn").payload)
    assert payload == {"reason": "Not needed any more."}
