"""Audits in the portal: queued after training, run from the encrypted artifacts, judged by the data
classes' thresholds; the release they gate, its override, and the adapter download."""

import io
import json
import secrets
import tempfile
import time
import zipfile

import pytest

pytest.importorskip("torch")

from audits import actions  # noqa: E402
from audits.models import AdapterAudit, AdapterRelease, AuditState  # noqa: E402
from audits.runner import execute_audit, thresholds_for, verdict_for  # noqa: E402
from governance.models import AuditEvent, DataClass  # noqa: E402
from tests.conftest import client_for  # noqa: E402
from tests.training.test_runs import FAST, _quiet_heartbeat, base_model, files_holding, queued_run, tiny_base_dir  # noqa: E402,F401
from training.models import ArtifactKind, RunState  # noqa: E402
from training.pipeline import execute_run  # noqa: E402


@pytest.fixture(autouse=True)
def _small_audit(settings):
    settings.PROVENANT_AUDIT_CANDIDATES = 1000


def completed_audit(run, passed: bool) -> AdapterAudit:
    """An audit as the runner leaves it, without the minutes of attacks."""
    checks = [{"code": "canary_exposure", "label": "Canary exposure (highest)", "value": 9.0 if not passed else 1.0, "limit": 3.0,
               "passed": passed, "critical": False, "advisory": False, "reason": "…"}]
    return AdapterAudit.objects.create(run=run, state=AuditState.COMPLETED, passed=passed,
                                       verdict={"passed": passed, "checks": checks})


@pytest.fixture
def trained_run(engineer, base_model):
    run = queued_run(engineer, base_model)
    # looks trained: release is about the decision; the attacks themselves run in the test below
    type(run).objects.filter(pk=run.pk).update(state=RunState.SUCCEEDED)
    run.refresh_from_db()
    return run


def test_thresholds_are_the_strictest_of_the_runs_data_classes_and_name_them(engineer, base_model):
    run = queued_run(engineer, base_model)
    dataset = run.datasets.first()
    assert thresholds_for(run)["max_mia_auc"] == {"value": 0.6, "from": ["the portal's defaults (no data class)"]}
    dataset.data_classes.add(DataClass.objects.create(name="Chats", max_epsilon=8, audit_max_exposure_bits=4.0, audit_max_mia_auc=0.55),
                             DataClass.objects.create(name="Health", max_epsilon=1, audit_max_exposure_bits=1.5,
                                                      audit_max_mia_auc=None, audit_max_tpr_at_1pct_fpr=None))
    thresholds = thresholds_for(run)
    assert thresholds["max_exposure_bits"] == {"value": 1.5, "from": ["Health"]}
    assert thresholds["max_mia_auc"] == {"value": 0.55, "from": ["Chats"]}
    assert thresholds["max_tpr_at_1pct_fpr"] == {"value": 0.05, "from": ["Chats"]}


def test_the_verdict_applies_the_data_class_limits(engineer, base_model):
    run = queued_run(engineer, base_model)
    report = {"canaries": [{"exposure_bits": 2.0, "max_bits": 13.29}], "membership": {"attacks": {
        "loss": {"auc": 0.58, "tpr_at_1pct_fpr": 0.02, "epsilon_lower_bound": {"epsilon": 0.1}}}}}
    assert verdict_for(report, thresholds_for(run), 8.0)["outcome"] != "fail"
    run.datasets.first().data_classes.add(DataClass.objects.create(name="Health", max_epsilon=8, audit_max_exposure_bits=1.5,
                                                                   audit_max_mia_auc=0.55))
    verdict = verdict_for(report, thresholds_for(run), 8.0)
    failed = {c["code"] for c in verdict["checks"] if c["outcome"] == "failed"}
    assert verdict["outcome"] == "fail" and failed == {"canary_exposure", "mia_auc"}


def test_a_passed_audit_lets_the_privacy_officer_release(privacy, trained_run):
    completed_audit(trained_run, passed=True)
    decision = actions.release_adapter(privacy, trained_run)
    assert decision.decision == "released" and not decision.override
    assert actions.adapter_is_released(trained_run)


def test_a_failed_audit_cannot_be_released_without_a_written_justification(privacy, trained_run):
    completed_audit(trained_run, passed=False)
    with pytest.raises(actions.ReleaseRefused, match="override"):
        actions.release_adapter(privacy, trained_run, "ok")
    assert not actions.adapter_is_released(trained_run)
    why = "Canary exposure is from a synthetic canary format unrelated to customer data; accepted for internal use only."
    decision = actions.release_adapter(privacy, trained_run, why)
    assert decision.override
    event = AuditEvent.objects.get(action="adapter.released")
    payload = json.loads(event.payload)
    assert payload["override"] is True and payload["justification"] == why and event.actor == privacy


def test_only_the_privacy_officer_releases_and_nothing_is_released_before_an_audit(engineer, privacy, trained_run):
    with pytest.raises(actions.ReleaseRefused, match="no completed audit"):
        actions.release_adapter(privacy, trained_run)
    completed_audit(trained_run, passed=True)
    with pytest.raises(PermissionError):
        actions.release_adapter(engineer, trained_run)


def test_blocking_needs_a_reason_and_the_latest_decision_stands(privacy, trained_run):
    completed_audit(trained_run, passed=True)
    with pytest.raises(actions.ReleaseRefused):
        actions.block_adapter(privacy, trained_run, " ")
    actions.release_adapter(privacy, trained_run)
    actions.block_adapter(privacy, trained_run, "The customer withdrew consent for this dataset.")
    assert not actions.adapter_is_released(trained_run)
    assert AdapterRelease.latest_for(trained_run).decision == "blocked"


def test_the_release_form_refuses_an_override_without_justification(privacy, trained_run):
    audit = completed_audit(trained_run, passed=False)
    response = client_for(privacy).post(f"/audits/runs/{trained_run.pk}/decision/", {"decision": "release", "justification": ""},
                                        follow=True)
    assert "Releasing anyway is an override" in response.content.decode()
    assert not AdapterRelease.objects.exists()
    page = client_for(privacy).get(audit.get_absolute_url()).content.decode()
    assert "This audit failed" in page


def test_a_trained_run_is_audited_from_its_encrypted_artifacts_and_purges_its_scratch(engineer, base_model, data_dir, privacy):
    marker = f"quokka{secrets.token_hex(5)}"
    content_phone = "+44 20 7946 0958"
    since = time.time() - 1
    run = queued_run(engineer, base_model, FAST, marker)
    run = execute_run(run, "test-worker")
    assert run.state == RunState.SUCCEEDED, run.failure_reason
    kinds = set(run.artifacts.values_list("kind", flat=True))
    assert {ArtifactKind.MEMBERS, ArtifactKind.PII_INDEX} <= kinds
    item = run.audits.get()
    assert item.state == AuditState.QUEUED and item.requested_by is None  # queued by the pipeline
    ended = execute_audit(item, "test-worker")
    assert ended.state == AuditState.COMPLETED, ended.failure_reason
    report = ended.report
    assert {"canaries", "extraction", "pii", "membership", "utility"} <= set(report)
    assert len(report["canaries"]) == FAST["canaries"]["count"] and report["canaries"][0]["candidates"] == 1000
    assert set(report["membership"]["attacks"]) == {"loss", "zlib", "min_k", "reference"}
    assert report["utility"]["base_perplexity"] > 1
    assert ended.passed is not None and {c["code"] for c in ended.verdict["checks"]} >= {"canary_exposure", "mia_auc"}
    assert ended.outcome in ("pass", "fail", "inconclusive") and ended.passed == (ended.outcome == "pass")
    # Scored as trained: the run's max_length (32), never the engine's default of 128.
    assert report["config"]["max_length"] == FAST["training"]["max_length"] == 32
    assert report["config"]["prefix_tokens"] + report["config"]["continuation_tokens"] <= 32
    assert set(ended.charts) == {"roc", "exposure"} and ended.charts["roc"].startswith("<?xml")
    assert ended.purged_at is not None and not any((data_dir / "scratch").iterdir())
    secrets_ = [c["secret"] for c in json.loads(run.artifacts.get(kind=ArtifactKind.CANARIES, name="canaries.json").read_bytes())]
    stored = json.dumps([report, ended.verdict, ended.charts])
    assert marker not in stored and not any(s in stored for s in secrets_) and content_phone not in stored
    assert files_holding(marker, [data_dir, tempfile.gettempdir()], since) == []
    events = list(AuditEvent.objects.filter(object_type="audits.adapteraudit", object_id=str(item.pk)).order_by("pk").values_list("action", flat=True))
    assert events == ["adapteraudit.queued", "adapteraudit.started", "adapteraudit.purged", "adapteraudit.completed"]
    page = client_for(privacy).get(ended.get_absolute_url()).content.decode()
    assert "Membership inference" in page and "Canaries" in page and "Verdict" in page
    exported = client_for(engineer).get(f"/audits/{ended.pk}/report.json").json()
    assert exported["report"]["membership"]["members"] == report["membership"]["members"]


def test_an_audit_can_be_rerun_on_demand_but_not_twice_at_once(engineer, other_engineer, trained_run):
    response = client_for(engineer).post(f"/audits/runs/{trained_run.pk}/audit/")
    queued = trained_run.audits.get()
    assert response.status_code == 302 and response["Location"] == queued.get_absolute_url()
    assert queued.requested_by == engineer
    with pytest.raises(ValueError, match="already queued"):
        actions.queue_audit(engineer, trained_run)
    assert client_for(other_engineer).post(f"/audits/runs/{trained_run.pk}/audit/").status_code == 404


def test_the_adapter_downloads_only_once_released_and_each_download_is_audited(engineer, privacy, trained_run, tmp_path):
    from training.pipeline import _store_file

    (tmp_path / "adapter_config.json").write_text('{"r": 8}')
    stored = _store_file(trained_run, ArtifactKind.ADAPTER, tmp_path / "adapter_config.json", "adapter_config.json")
    url = f"/audits/runs/{trained_run.pk}/adapter.zip"
    assert client_for(engineer).get(url).status_code == 403
    completed_audit(trained_run, passed=True)
    actions.release_adapter(privacy, trained_run)
    response = client_for(engineer).get(url)
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.read("adapter/adapter_config.json") == b'{"r": 8}'
    assert f"{stored.sha256}  adapter_config.json" in archive.read("adapter/SHA256SUMS").decode()
    assert AuditEvent.objects.filter(action="adapter.downloaded", actor=engineer).count() == 1


def test_a_request_may_tighten_the_audit_limits_but_never_loosen_them(engineer, base_model):
    from workflow.models import TrainingRequest
    from governance.models import ComputeTarget

    run = queued_run(engineer, base_model)
    target = ComputeTarget.objects.create(name="Paris", kind="on_premises", region="on-prem-paris")
    request = TrainingRequest.objects.create(title="t", requester=engineer, intended_use="u", base_model=base_model,
                                             compute_target=target, run=run,
                                             audit_thresholds={"max_exposure_bits": 1.0, "max_mia_auc": 0.9})
    thresholds = thresholds_for(run)
    assert thresholds["max_exposure_bits"] == {"value": 1.0, "from": [f"training request “{request}”"]}
    assert thresholds["max_mia_auc"]["value"] == 0.6  # looser than the default: ignored


def test_a_run_may_carry_its_own_audit_settings_and_unknown_ones_are_refused(engineer, base_model):
    from training import runs

    run = queued_run(engineer, base_model, {**FAST, "audit": {"candidates": 500, "mia_sample": 40}})
    type(run).objects.filter(pk=run.pk).update(state=RunState.SUCCEEDED)
    item = actions.queue_audit(None, run, enqueue=False)
    assert item.config["candidates"] == 500 and item.config["mia_sample"] == 40 and item.config["bootstrap"] == 1000
    with pytest.raises(runs.InvalidRunSettings, match="unknown audit settings: candidate"):
        runs.RunSettings.from_dict({"audit": {"candidate": 5}})


def test_a_worker_restart_fails_its_audits_and_an_audit_past_the_time_limit_anywhere(trained_run, settings):
    import datetime as dt

    from django.utils import timezone

    settings.PROVENANT_AUDIT_TIME_LIMIT = 60
    mine = AdapterAudit.objects.create(run=trained_run, state=AuditState.RUNNING, worker="w1", started_at=timezone.now())
    lost = AdapterAudit.objects.create(run=trained_run, state=AuditState.RUNNING, worker="w2",
                                       started_at=timezone.now() - dt.timedelta(hours=1))
    alive = AdapterAudit.objects.create(run=trained_run, state=AuditState.RUNNING, worker="w3", started_at=timezone.now())
    assert sorted(actions.reap_dead_audits("w1")) == sorted([mine.pk, lost.pk])
    for item, state in ((mine, AuditState.FAILED), (lost, AuditState.FAILED), (alive, AuditState.RUNNING)):
        item.refresh_from_db()
        assert item.state == state
    assert "time limit" in lost.failure_reason and "stopped while" in mine.failure_reason


def test_the_actions_refuse_what_the_pages_hide(engineer, other_engineer, trained_run):
    """Each permission rule lives once (issue 13): the action refuses an outsider the same way the
    page does, whoever calls it."""
    with pytest.raises(PermissionError, match="Only the run's engineer or the privacy officer queues"):
        actions.queue_audit(other_engineer, trained_run)
    with pytest.raises(PermissionError, match="Only the run's engineer or the privacy officer downloads"):
        actions.record_adapter_download(other_engineer, trained_run)
    with pytest.raises(PermissionError, match="only once the privacy officer has released it"):
        actions.record_adapter_download(engineer, trained_run)
    assert not trained_run.audits.exists()
