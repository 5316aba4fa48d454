"""The demo's story, end to end on the tiny base: seeded, approved, trained and audited by the real
pipeline (in-process here; by the worker under `make run`), card approved, pack built and shared."""

import io

import pytest
from django.core.management import call_command

pytest.importorskip("torch")

from audits.models import EvidencePack  # noqa: E402
from governance.models import AuditEvent  # noqa: E402
from workflow.models import TrainingRequest  # noqa: E402
from workflow.models import ModelCard, RequestState
from portal import demo  # noqa: E402
from tests.training.test_runs import _quiet_heartbeat, tiny_base_dir  # noqa: E402,F401
from training.engine.model_files import describe_model  # noqa: E402
from training.models import BaseModel  # noqa: E402


@pytest.fixture
def seeded(transactional_db, tiny_base_dir, settings):
    """Committed, not inside the test's transaction: the story ends with a call through the gateway,
    whose model server (a thread here, as `run_model_server` is a process under `make run`) reads
    the deployment on its own database connection."""
    settings.PROVENANT_AUDIT_CANDIDATES = 500
    call_command("seed_demo", stdout=io.StringIO())
    BaseModel.objects.create(name="tiny-demo", source="local_directory", location=str(tiny_base_dir), licence="Apache-2.0",
                             **describe_model(tiny_base_dir))


def test_the_demo_story_goes_all_the_way_and_is_shared_with_the_demo_regulator(seeded):
    out = io.StringIO()
    call_command("demo_story", "--base", "tiny-demo", "--in-process", stdout=out, verbosity=0)
    assert "Demo story complete" in out.getvalue()
    request = TrainingRequest.objects.get(title=demo.DEMO_REQUEST_TITLE)
    assert request.state in (RequestState.RELEASED, RequestState.BLOCKED)
    run = request.run
    assert run.state == "succeeded" and run.audits.get().state == "completed"
    assert ModelCard.objects.get(run=run).state == "approved"
    # The audit's own pack (built on commit, before the card was approved) and the one holding the approved card, shared.
    pack = EvidencePack.objects.get(run=run, shares__isnull=False)
    packs = EvidencePack.objects.count()
    rory = pack.shares.get().regulator
    assert rory.username == "rory" and list(EvidencePack.objects.visible_to(rory)) == [pack]
    assert demo.demo_story_finished() and AuditEvent.verify_chain().ok
    # The story goes on at the gateway only for a released adapter: deployed, and one request answered
    # through /v1/ (key, model server, output filter, query log); a blocked adapter is never deployed.
    from serving.models import Deployment, QueryOutcome, QueryRecord

    if request.state == RequestState.RELEASED:
        deployment = Deployment.objects.get(run=run, name=demo.DEMO_DEPLOYMENT)
        assert deployment.keys.get().consumer == demo.DEMO_CONSUMER
        assert [q.outcome for q in QueryRecord.objects.filter(deployment=deployment)] in (
            [QueryOutcome.ANSWERED], [QueryOutcome.MASKED])
        assert "Deployed as 'support-drafts'" in out.getvalue()
    else:
        assert not Deployment.objects.exists() and "not deployed" in out.getvalue()
    again = io.StringIO()
    call_command("demo_story", "--base", "tiny-demo", "--in-process", stdout=again)
    assert "already" in again.getvalue() or "complete" in again.getvalue()
    assert EvidencePack.objects.count() == packs and TrainingRequest.objects.count() == 1


def test_waiting_for_the_worker_follows_the_run_then_its_audit_and_reports_a_failure(seeded):
    from django.contrib.auth import get_user_model
    from django.core.management.base import CommandError

    from audits.models import AdapterAudit
    from portal.management.commands.demo_story import Command
    from tests.training.test_runs import queued_run

    engineer = get_user_model().objects.get(username="erin")  # the demo's engineer
    run = queued_run(engineer, BaseModel.objects.get(name="tiny-demo"))
    type(run).objects.filter(pk=run.pk).update(state="succeeded", step=3, total_steps=3)
    AdapterAudit.objects.create(run=run, state="completed", done=5, total=5)
    Command()._wait_for_worker(run, timeout=10, quiet=True)  # returns: trained and audited
    failed = queued_run(engineer, BaseModel.objects.get(name="tiny-demo"))
    type(failed).objects.filter(pk=failed.pk).update(state="failed", failure_reason="the worker died")
    with pytest.raises(CommandError, match="the worker died"):
        Command()._wait_for_worker(failed, timeout=10, quiet=True)
