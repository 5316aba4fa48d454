"""Training runs through the portal's pipeline: accounted, canaried, encrypted, purged, cancellable."""

import json
import os
import secrets
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

from governance.models import AuditEvent  # noqa: E402
from tests.conftest import client_for, make_dataset  # noqa: E402
from training import runs  # noqa: E402
from training.engine.model_files import describe_model  # noqa: E402
from training.engine.tiny_base import build_tiny_base, generate_corpus  # noqa: E402
from training.models import ArtifactKind, BaseModel, BaseModelSource, RunState, TrainingRun  # noqa: E402
from training.pipeline import execute_run  # noqa: E402

FAST = {"training": {"epochs": 1, "batch_size": 8, "max_length": 32, "accountant": "rdp", "target_epsilon": 8.0},
        "canaries": {"count": 2, "repetitions": 1, "length": 6}, "holdout_fraction": 0.2}


@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory):
    return build_tiny_base(tmp_path_factory.mktemp("run-tiny-base"), seed=0)


@pytest.fixture(autouse=True)
def _quiet_heartbeat(settings):
    """The side-thread heartbeat would hold a second SQLite writer inside the test's transaction."""
    settings.PROVENANT_HEARTBEAT_SECONDS = 3600


@pytest.fixture
def base_model(db, tiny_base_dir):
    facts = describe_model(tiny_base_dir)
    return BaseModel.objects.create(name="tiny", source=BaseModelSource.LOCAL_DIRECTORY, location=str(tiny_base_dir),
                                    licence="Apache-2.0", **facts)


def corpus_with_marker(marker: str, lines: int = 48) -> str:
    texts = generate_corpus(lines, seed=5)
    texts = [f"{t} Reference {marker}." if i % 3 == 0 else t for i, t in enumerate(texts)]
    return "".join(json.dumps({"text": t}) + "\n" for t in texts)


def queued_run(engineer, base_model, config=FAST, marker=None):
    dataset = make_dataset(engineer, corpus_with_marker(marker or secrets.token_hex(6)), name="Support chats")
    return runs.create_run(engineer, base_model, [dataset], config, enqueue=False)


def files_holding(marker: str, roots, since: float) -> list[Path]:
    needle = marker.encode()
    found = []
    for root in roots:
        # os.walk, not rglob: other processes (a second suite, a worker) remove their own temporary
        # directories while we walk the shared temp dir, and os.walk skips what vanished.
        for folder, _, names in os.walk(root):
            for name in names:
                path = Path(folder) / name
                try:
                    if path.is_file() and path.stat().st_mtime >= since and needle in path.read_bytes():
                        found.append(path)
                except OSError:
                    continue
    return found


def test_a_run_trains_an_encrypted_adapter_and_records_every_hash(engineer, base_model, data_dir):
    run = execute_run(queued_run(engineer, base_model), "test-worker")
    assert run.state == RunState.SUCCEEDED, run.failure_reason
    kinds = set(run.artifacts.values_list("kind", flat=True))
    assert {ArtifactKind.ADAPTER, ArtifactKind.CANARIES, ArtifactKind.HOLDOUT, ArtifactKind.CURVE, ArtifactKind.MANIFEST} <= kinds
    adapter_names = set(run.artifacts.filter(kind=ArtifactKind.ADAPTER).values_list("name", flat=True))
    assert {"adapter_config.json", "adapter_model.safetensors"} <= adapter_names
    import hashlib

    for artifact in run.artifacts.all():
        ciphertext = Path(data_dir / "blobs" / artifact.blob_id[:2] / f"{artifact.blob_id}.tink").read_bytes()
        plaintext = artifact.read_bytes()
        assert hashlib.sha256(plaintext).hexdigest() == artifact.sha256
        assert plaintext[:64] not in ciphertext  # encrypted at rest
    assert run.manifest["hashes"]["adapter"]["adapter_model.safetensors"] == \
        run.artifacts.get(kind=ArtifactKind.ADAPTER, name="adapter_model.safetensors").sha256
    assert run.manifest["hashes"]["base_model_weights"] == base_model.weight_hashes
    assert run.manifest["run"]["datasets"] == {str(d.pk): d.sha256 for d in run.datasets.all()}
    assert "noise_seed" not in json.dumps(run.manifest)
    assert run.purged_at and run.purge_report["removed"] and run.purge_report["files"] > 0
    assert not any((data_dir / "scratch").iterdir())
    actions = list(AuditEvent.objects.filter(object_id=str(run.pk), object_type="training.trainingrun").order_by("pk").values_list("action", flat=True))
    assert actions == ["trainingrun.created", "trainingrun.started", "trainingrun.purged", "trainingrun.succeeded"]


def test_recorded_epsilon_equals_an_independent_accountant_and_stays_under_target(engineer, base_model):
    from opacus.accountants import RDPAccountant

    run = execute_run(queued_run(engineer, base_model), "test-worker")
    result = run.result
    accountant = RDPAccountant()
    accountant.history = [(result["noise_multiplier"], result["sample_rate"], result["steps"])]
    assert run.epsilon_spent == pytest.approx(accountant.get_epsilon(result["delta"]), rel=1e-9)
    assert run.epsilon_spent <= FAST["training"]["target_epsilon"]
    # δ far below 1/N by default, and never above 1e-5 unless a data class allows it
    assert result["delta"] == pytest.approx(min(1e-5, 1 / (10 * result["records"])))


def test_the_reloaded_adapter_from_encrypted_artifacts_gives_the_logits_of_training(engineer, base_model, tmp_path, tiny_base_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run = execute_run(queued_run(engineer, base_model, {**FAST, "training": {**FAST["training"], "learning_rate": 0.05}}), "w")
    out = tmp_path / "adapter"
    out.mkdir()
    for artifact in run.artifacts.filter(kind=ArtifactKind.ADAPTER):
        (out / artifact.name).write_bytes(artifact.read_bytes())
    base = AutoModelForCausalLM.from_pretrained(tiny_base_dir).eval()
    ids = torch.tensor([[1, 2, 3, 4, 5, 6]])
    base_logits = base(input_ids=ids).logits
    adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base_dir), out).eval()
    assert not torch.allclose(adapted(input_ids=ids).logits, base_logits)  # the adapter changes the model
    again = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base_dir), out).eval()
    torch.testing.assert_close(again(input_ids=ids).logits, adapted(input_ids=ids).logits)


def _run_and_scan(engineer, base_model, data_dir, config, marker, echo=None):
    since = time.time() - 1
    run = execute_run(queued_run(engineer, base_model, config, marker), "test-worker", echo=echo)
    assert not any((data_dir / "scratch").iterdir())
    assert files_holding(marker, [data_dir, tempfile.gettempdir()], since) == []
    return run


def test_no_plaintext_marker_remains_on_disk_after_success(engineer, base_model, data_dir):
    marker = f"zebra{secrets.token_hex(5)}"
    run = _run_and_scan(engineer, base_model, data_dir, FAST, marker)
    assert run.state == RunState.SUCCEEDED
    assert marker in run.artifacts.get(kind=ArtifactKind.HOLDOUT).read_bytes().decode()  # it was there, sealed


def test_no_plaintext_marker_remains_on_disk_after_failure(engineer, base_model, data_dir):
    marker = f"zebra{secrets.token_hex(5)}"
    broken = {**FAST, "training": {**FAST["training"], "target_modules": ["no_such_module"]}}
    run = _run_and_scan(engineer, base_model, data_dir, broken, marker)
    assert run.state == RunState.FAILED and "no_such_module" in run.failure_reason
    assert run.purge_report["files"] > 0  # the redacted data had reached the scratch before the failure
    assert not run.artifacts.filter(deleted_at__isnull=True).exists()


def test_no_plaintext_marker_remains_on_disk_after_cancel(engineer, base_model, data_dir, monkeypatch):
    from training import pipeline

    monkeypatch.setattr(pipeline, "CANCEL_CHECK_SECONDS", 0.0)
    marker = f"zebra{secrets.token_hex(5)}"
    long = {**FAST, "training": {**FAST["training"], "epochs": 20}}

    def cancel_after_first_step(state):
        if state["step"] == 1:
            runs.request_cancel(engineer, TrainingRun.objects.get())

    run = _run_and_scan(engineer, base_model, data_dir, long, marker, echo=cancel_after_first_step)
    assert run.state == RunState.CANCELLED
    assert 1 <= run.step < run.total_steps
    assert not run.artifacts.filter(deleted_at__isnull=True).exists()
    assert run.purged_at is not None


def test_a_queued_run_cancelled_before_start_never_trains(engineer, base_model):
    run = queued_run(engineer, base_model)
    runs.request_cancel(engineer, run)
    ended = execute_run(run, "test-worker")
    assert ended.state == RunState.CANCELLED and ended.started_at is None


@pytest.mark.parametrize("data_class, training, expected", [
    (dict(dp_required=True, max_epsilon=8.0), dict(dp=False), "requires differential privacy"),
    (dict(dp_required=True, max_epsilon=2.0), dict(target_epsilon=8.0), "at most ε = 2; this run targets ε = 8"),
    (dict(fine_tuning_use="forbidden", max_epsilon=8.0), {}, "forbids fine-tuning"),
    (dict(fine_tuning_use="eval_only", max_epsilon=8.0), {}, "evaluation only"),
])
def test_a_run_the_data_class_forbids_stops_before_training(engineer, base_model, data_class, training, expected):
    from governance.models import DataClass

    config = {**FAST, "training": {**FAST["training"], **training}}
    run = queued_run(engineer, base_model, config)
    run.datasets.first().data_classes.add(DataClass.objects.create(name="Chats", **data_class))
    ended = execute_run(run, "test-worker")
    assert ended.state == RunState.FAILED and expected in ended.failure_reason
    assert ended.step == 0 and not ended.artifacts.exists()


def test_a_run_the_data_class_allows_is_not_stopped(engineer, base_model):
    from governance.models import DataClass

    run = queued_run(engineer, base_model)
    run.datasets.first().data_classes.add(DataClass.objects.create(name="Chats", dp_required=True, max_epsilon=8.0))
    assert runs.start_blockers(run) == []


def test_pending_high_risk_review_items_stop_the_run(engineer, base_model):
    from training.models import RedactionReview, ReviewReason

    run = queued_run(engineer, base_model)
    dataset = run.datasets.first()
    RedactionReview.objects.create(dataset=dataset, record_id="line-1", entity_type="PERSON", start=0, end=4, score=0.9,
                                   reason=ReviewReason.HIGH_RISK, snippet_offset=0, snippet_sealed=b"x")
    ended = execute_run(run, "test-worker")
    assert ended.state == RunState.FAILED and "high-risk redaction review" in ended.failure_reason


def test_run_settings_refuse_unknown_keys_and_a_fixed_noise_seed():
    with pytest.raises(runs.InvalidRunSettings, match="epoch"):
        runs.RunSettings.from_dict({"training": {"epoch": 3}})
    with pytest.raises(runs.InvalidRunSettings, match="noise seed"):
        runs.RunSettings.from_dict({"training": {"noise_seed": 1}})
    with pytest.raises(runs.InvalidRunSettings, match="accountant"):
        runs.RunSettings.from_dict({"training": {"accountant": "gdp"}})


def test_run_settings_refuse_a_noise_multiplier_set_by_hand():
    """σ = 0.05 at a target of ε = 1 is ε ≈ 8,000, and policy, the budget and the verdict read the target."""
    with pytest.raises(runs.InvalidRunSettings, match="noise multiplier cannot be set"):
        runs.RunSettings.from_dict({"training": {"target_epsilon": 1.0, "noise_multiplier": 0.05}})


def test_stored_run_settings_never_carry_a_noise_multiplier():
    stored = runs.RunSettings.from_dict({"training": {"target_epsilon": 1.0}}).as_dict()
    assert "noise_multiplier" not in stored["training"]
    assert runs.RunSettings.from_dict(stored).training.noise_multiplier is None


def test_run_settings_refuse_a_canary_format_with_too_few_distinct_secrets():
    """A one-character alphabet once made canary generation loop forever on the GPU worker."""
    with pytest.raises(runs.InvalidRunSettings, match="alphabet of 1 distinct character"):
        runs.RunSettings.from_dict({"canaries": {"alphabet": "a"}})


def test_an_engineer_cannot_train_on_a_dataset_not_shared_with_them(engineer, other_engineer, base_model):
    dataset = make_dataset(other_engineer, corpus_with_marker("x"))
    with pytest.raises(PermissionError):
        runs.create_run(engineer, base_model, [dataset], FAST, enqueue=False)


def test_creating_a_run_enqueues_it_on_the_gpu_queue_after_commit(engineer, base_model, monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    from celery import current_app

    monkeypatch.setattr(current_app, "send_task", lambda name, args, queue: sent.append((name, args, queue)) or type("R", (), {"id": "t-1"})())
    dataset = make_dataset(engineer, corpus_with_marker("y"))
    with django_capture_on_commit_callbacks(execute=True):
        run = runs.create_run(engineer, base_model, [dataset], FAST)
    assert sent == [("training.tasks.run_training", [run.pk], "gpu")]
    assert TrainingRun.objects.get(pk=run.pk).celery_task_id == "t-1"


# --------------------------------------------------------------------------- pages


def test_run_pages_show_progress_to_the_owner_and_privacy_and_refuse_others(engineer, other_engineer, privacy, regulator, outsider, base_model):
    run = execute_run(queued_run(engineer, base_model), "test-worker")
    url = run.get_absolute_url()
    for user in (engineer, privacy):
        page = client_for(user).get(url)
        assert page.status_code == 200 and "ε spent" in page.content.decode()
        assert client_for(user).get(url, HTTP_HX_REQUEST="true").content.startswith(b'<section id="run-progress"')
    assert client_for(other_engineer).get(url).status_code == 404
    # A run is no regulator's to see (404), the run list not their role's (403); no role: 403 everywhere.
    assert client_for(regulator).get(url).status_code == 404
    assert client_for(regulator).get("/training/runs/").status_code == 403
    for page in (url, "/training/runs/"):
        assert client_for(outsider).get(page).status_code == 403
    assert client_for(None).get(url).status_code == 302


def test_curves_and_manifest_download_but_canaries_and_holdout_never_do(engineer, other_engineer, base_model):
    run = execute_run(queued_run(engineer, base_model), "test-worker")
    owner = client_for(engineer)
    curve = run.artifacts.get(name="loss.svg")
    response = owner.get(f"/training/runs/{run.pk}/artifacts/{curve.pk}/")
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml" and b"<svg" in response.content
    assert response["X-Artifact-SHA256"] == curve.sha256
    for kind in (ArtifactKind.CANARIES, ArtifactKind.HOLDOUT, ArtifactKind.ADAPTER):
        artifact = run.artifacts.filter(kind=kind).first()
        assert owner.get(f"/training/runs/{run.pk}/artifacts/{artifact.pk}/").status_code == 403
    assert client_for(other_engineer).get(f"/training/runs/{run.pk}/artifacts/{curve.pk}/").status_code == 404


def test_only_the_owner_or_privacy_can_cancel(engineer, other_engineer, privacy, base_model):
    run = queued_run(engineer, base_model)
    assert client_for(other_engineer).post(f"/training/runs/{run.pk}/cancel/").status_code == 404
    assert client_for(privacy).post(f"/training/runs/{run.pk}/cancel/").status_code == 302
    assert TrainingRun.objects.get(pk=run.pk).state == RunState.CANCELLED
    assert AuditEvent.objects.filter(action="trainingrun.cancel_requested", actor=privacy).exists()


@pytest.mark.parametrize("keep", [False, True])
def test_intermediate_checkpoints_are_encrypted_and_deleted_at_the_end_unless_kept(engineer, base_model, data_dir, settings, keep):
    settings.PROVENANT_KEEP_CHECKPOINTS = keep
    config = {**FAST, "training": {**FAST["training"], "epochs": 2, "checkpoint_every": 2}}
    run = execute_run(queued_run(engineer, base_model, config), "test-worker")
    checkpoints = run.artifacts.filter(kind=ArtifactKind.CHECKPOINT)
    assert checkpoints.filter(name__startswith="step-2/").exists()
    live = checkpoints.filter(deleted_at__isnull=True)
    assert live.count() == (checkpoints.count() if keep else 0)
    for artifact in checkpoints.filter(deleted_at__isnull=False):
        assert not (data_dir / "blobs" / artifact.blob_id[:2] / f"{artifact.blob_id}.tink").exists()
        assert artifact.wrapped_key is None


SUBJECT_LEVEL = {**FAST, "subject_field": "customer_id",
                 "training": {**FAST["training"], "privacy_unit": "subject", "max_records_per_subject": 4}}


def test_a_subject_level_run_accounts_per_customer_and_never_writes_the_customer_ids(engineer, base_model, data_dir):
    texts = generate_corpus(48, seed=5)
    ids = [f"CUST-{secrets.token_hex(4)}" for _ in range(12)]
    content = "".join(json.dumps({"text": t, "customer_id": ids[i % 12]}) + "\n" for i, t in enumerate(texts))
    run = runs.create_run(engineer, base_model, [make_dataset(engineer, content)], SUBJECT_LEVEL, enqueue=False)
    since = time.time() - 1
    ended = execute_run(run, "test-worker")
    assert ended.state == RunState.SUCCEEDED, ended.failure_reason
    assert ended.result["privacy_unit"] == "subject"
    # 12 customers, a fifth of them held out whole; the 2 canaries are subjects of their own
    # and each audit canary that training saw, once, a subject of its own
    included = sum(c["included"] for c in json.loads(ended.artifacts.get(name="audit_canaries.json").read_bytes()))
    assert ended.manifest["records"]["subjects"] == 10 + 2 + included and ended.redaction_report["subjects"] == 12
    assert ended.result["delta"] == pytest.approx(min(1e-5, 1 / (10 * ended.result["subjects"])))
    assert not any(files_holding(customer, [data_dir, tempfile.gettempdir()], since) for customer in ids)
    assert not any(customer in json.dumps(ended.manifest) for customer in ids)


def test_a_record_without_its_subject_fails_the_run_naming_the_line(engineer, base_model):
    content = "".join(json.dumps({"text": t, **({"customer_id": "C1"} if i != 7 else {})}) + "\n"
                      for i, t in enumerate(generate_corpus(24, seed=5)))
    run = runs.create_run(engineer, base_model, [make_dataset(engineer, content)], SUBJECT_LEVEL, enqueue=False)
    ended = execute_run(run, "test-worker")
    assert ended.state == RunState.FAILED and "Line 8 has no “customer_id” value" in ended.failure_reason
    assert not ended.artifacts.exists()


def test_a_plain_text_dataset_cannot_train_at_subject_level(engineer, base_model):
    dataset = make_dataset(engineer, "\n".join(generate_corpus(12, seed=5)) + "\n", file_format="text")
    run = runs.create_run(engineer, base_model, [dataset], SUBJECT_LEVEL, enqueue=False)
    assert any("has no field to name each record's subject" in reason for reason in runs.start_blockers(run))


@pytest.mark.parametrize("change, message", [
    ({"subject_field": ""}, "needs subject_field"),
    ({"training": {**SUBJECT_LEVEL["training"], "grad_sample_mode": "ghost"}}, "not ghost"),
    ({"training": {**SUBJECT_LEVEL["training"], "privacy_unit": "household"}}, "privacy_unit"),
])
def test_run_settings_refuse_subject_level_dp_without_what_it_needs(change, message):
    with pytest.raises(runs.InvalidRunSettings, match=message):
        runs.RunSettings.from_dict({**SUBJECT_LEVEL, **change})


def test_the_default_delta_never_exceeds_the_data_class_maximum(engineer, base_model):
    from governance.models import DataClass

    run = queued_run(engineer, base_model)  # 48 records: 1/N would be about 0.026
    run.datasets.first().data_classes.add(DataClass.objects.create(name="Chats", max_epsilon=8.0, max_delta=1e-3))
    ended = execute_run(run, "test-worker")
    assert ended.state == RunState.SUCCEEDED, ended.failure_reason
    assert ended.result["delta"] == pytest.approx(1e-3)


def test_queued_runs_are_sent_again_to_the_queue_they_were_dispatched_to_and_only_by_its_workers(engineer, base_model, monkeypatch):
    """A broker that lost its queues: each worker re-sends the queued runs of the queues it
    consumes, each to its own compute target's queue, never to another region's workers."""
    import celery

    from portal.celery import resend_queued_jobs

    sent = []
    monkeypatch.setattr(celery.current_app, "send_task", lambda name, args, queue: sent.append((args[0], queue)) or
                        type("Result", (), {"id": f"task-{len(sent)}"})())
    dataset = make_dataset(engineer, corpus_with_marker("routing"), name="Support chats")
    in_eu = runs.create_run(engineer, base_model, [dataset], FAST, queue="eu-gpu")
    default = runs.create_run(engineer, base_model, [dataset], FAST)
    for run in (in_eu, default):
        runs.enqueue_run(run)
    assert sent == [(in_eu.pk, "eu-gpu"), (default.pk, "gpu")]

    from audits.models import AdapterAudit

    audit = AdapterAudit.objects.create(run=in_eu, requested_by=engineer, config={}, celery_task_id="lost")
    AdapterAudit.objects.create(run=default, requested_by=engineer, config={}, celery_task_id="lost")
    sent.clear()
    assert resend_queued_jobs({"eu-gpu", "default"}) == [f"run {in_eu.pk}", f"audit {audit.pk}"]
    assert sent == [(in_eu.pk, "eu-gpu"), (audit.pk, "eu-gpu")]
