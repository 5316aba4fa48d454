"""The story's reactions live in workflow.lifecycle: every signal the apps below announce has its
receiver there, and every way a run or an audit can end reaches the request that started it."""

import pytest
from django.dispatch import Signal

from audits import actions as audit_actions
from audits import signals as audit_signals
from audits.models import AdapterAudit, AuditState
from governance import signals as governance_signals
from training import runs
from training import signals as training_signals
from workflow import lifecycle
from workflow.models import RequestState
from tests.audits.pack_factory import approved_request, complete_audit, finish_run, store_artifact
from training.models import ArtifactKind

pytestmark = pytest.mark.django_db


def _announced(module) -> list[Signal]:
    return [value for value in vars(module).values() if isinstance(value, Signal)]


@pytest.mark.parametrize("module", [governance_signals, training_signals, audit_signals], ids=lambda m: m.__name__)
def test_every_signal_the_apps_announce_has_its_receiver_in_the_lifecycle(module):
    connected = {signal for signal, _ in lifecycle.RECEIVERS}
    for signal in _announced(module):
        assert signal in connected, f"{module.__name__}: a signal nobody above reacts to"
        assert signal.has_listeners(), "declared in RECEIVERS but not connected at start-up"


def test_the_workflow_registers_policy_as_a_start_check():
    assert lifecycle.start_check in runs.START_CHECKS


@pytest.fixture
def dispatched(engineer, legal, privacy):
    request = approved_request(engineer, [legal, privacy])
    return request


def _state(request):
    request.refresh_from_db()
    return request.state


@pytest.mark.parametrize("ending, expected", [
    (runs.RunState.FAILED, RequestState.FAILED),
    (runs.RunState.CANCELLED, RequestState.CANCELLED),
])
def test_a_run_that_ends_without_an_adapter_reaches_its_request(dispatched, ending, expected):
    run = dispatched.run
    assert runs.mark_started(run, "test-worker")
    assert _state(dispatched) == RequestState.RUNNING
    runs.finish_run(run, ending, reason="stopped")
    assert _state(dispatched) == expected


def test_a_run_reaped_after_its_worker_died_reaches_its_request(dispatched):
    run = dispatched.run
    runs.mark_started(run, "test-worker")
    assert runs.fail_dead_run(run, "the worker was killed")
    assert _state(dispatched) == RequestState.FAILED


def test_a_run_that_trained_queues_its_audit_and_the_request_waits_for_it(dispatched, settings):
    settings.PROVENANT_AUDIT_AFTER_TRAINING = True
    run = dispatched.run
    runs.mark_started(run, "test-worker")
    store_artifact(run, ArtifactKind.ADAPTER, "adapter_model.safetensors", b"weights")
    runs.finish_run(run, runs.RunState.SUCCEEDED, result={"epsilon": 1.0, "delta": 1e-5})
    assert _state(dispatched) == RequestState.RUNNING  # trained; its audit runs next
    assert run.audits.filter(state=AuditState.QUEUED).count() == 1


def test_an_audit_that_crashes_reaches_its_request(dispatched):
    """It stayed “Running” forever: fail_audit never followed the run."""
    run = finish_run(dispatched.run)
    item = AdapterAudit.objects.create(run=run, state=AuditState.RUNNING)
    audit_actions.fail_audit(item, "RuntimeError: out of memory")
    assert _state(dispatched) == RequestState.AUDIT_FAILED


def test_a_completed_audit_then_a_release_decision_reach_the_request(dispatched, privacy):
    run = finish_run(dispatched.run)
    complete_audit(run, True)
    assert _state(dispatched) == RequestState.AUDITED
    audit_actions.block_adapter(privacy, run, "Not for release before the DPIA is signed.")
    assert _state(dispatched) == RequestState.BLOCKED
