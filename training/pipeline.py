"""The private pipeline of one run, from encrypted datasets to encrypted artifacts.

decrypt → redact (with the privacy officer's review decisions) → de-duplicate → split
train/holdout → plant canaries → DP-LoRA → encrypt every artifact (SHA-256 recorded) → purge.

Plaintext exists only inside the run's scratch directory (mode 0700), which `job_scratch`
removes in `finally` on success, failure and cancel; a worker killed outright leaves it behind,
and the next worker start sweeps it (`runs.sweep_scratch_at_worker_start`).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from governance.keys import blob_store, master_key
from governance.vault import BlobDamaged, WrongMasterKey
from training import redaction, runs
from training.engine import train as engine_train
from training.engine.model_files import sha256_file
from governance.ingest import IngestError
from training.engine.prepare import job_scratch
from training.engine.redaction import Deduplicator, run_redaction
from training.models import ArtifactKind, RunArtifact, RunState, TrainingRun

log = logging.getLogger(__name__)

# The database blinked: a dropped connection (PostgreSQL restarted, the backend terminated) or a
# write that waited out its lock (SQLite). Telemetry survives it; the run's own records retry.
DATABASE_BLINKS = (OperationalError, InterfaceError)


def _after_database_error() -> None:
    """Drop this thread's connection if the error broke it, so the next query opens a new one.
    Never inside a transaction (a caller's, as in a test): closing there would lose its work."""
    if connection.in_atomic_block:
        return
    try:
        connection.close_if_unusable_or_obsolete()
    except DATABASE_BLINKS:
        connection.close()


class Heartbeat:
    """Writes the run's heartbeat from a side thread, so a long phase without steps (loading a
    big model, redacting) still shows the worker is alive. Its own database connection."""

    def __init__(self, run: TrainingRun, every: float):
        self.run, self.every, self._stop = run, every, threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-run-{run.pk}", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self):
        try:
            while not self._stop.wait(self.every):
                try:
                    runs.record_progress(self.run)
                except DATABASE_BLINKS as exc:  # the next beat tries again on a fresh connection
                    log.warning("heartbeat of run %s not recorded, the database is unavailable: %s", self.run.pk, exc)
                    _after_database_error()
        except Exception:  # a missed heartbeat is reported by the reaper, never fatal to training
            log.exception("heartbeat of run %s failed", self.run.pk)
        finally:
            connection.close()


class ProgressReporter:
    """Turns the engine's per-step callbacks into a database write at most every few seconds."""

    def __init__(self, run: TrainingRun, every: float, echo: Callable[[dict], None] | None = None):
        self.run, self.every, self.echo = run, every, echo
        self.started = self.last_write = None
        self.last_epsilon = None

    def __call__(self, state: dict) -> None:
        now = time.monotonic()
        self.started = self.started or now
        if state.get("epsilon") is not None:
            self.last_epsilon = state["epsilon"]
        if self.echo:
            self.echo(state)
        final = state["step"] >= state["steps"]
        if self.last_write is not None and now - self.last_write < self.every and not final:
            return
        self.last_write = now
        per_step = (now - self.started) / max(1, state["step"] - 1) if state["step"] > 1 else None
        eta = int(per_step * (state["steps"] - state["step"])) if per_step is not None else None
        try:
            runs.record_progress(self.run, phase="training", step=state["step"], total_steps=state["steps"],
                                 epoch=state.get("epoch"), loss=state.get("loss"), epsilon_spent=self.last_epsilon,
                                 eta_seconds=eta, progress_at=timezone.now())
        except DATABASE_BLINKS as exc:
            # Progress is telemetry: losing one write must not throw away the training. The next
            # write (a fresh connection if this one broke) brings the page up to date.
            log.warning("progress of run %s not recorded, the database is unavailable: %s; training continues", self.run.pk, exc)
            _after_database_error()


CANCEL_CHECK_SECONDS = 1.0


class CancelCheck:
    """The flag in the database, read at most once a second between steps."""

    def __init__(self, run: TrainingRun):
        self.run, self.checked_at, self.cancelled = run, 0.0, False

    def __call__(self) -> bool:
        if not self.cancelled and time.monotonic() - self.checked_at >= CANCEL_CHECK_SECONDS:
            self.checked_at = time.monotonic()
            try:
                self.cancelled = runs.cancel_requested(self.run)
            except DATABASE_BLINKS as exc:  # asked again a second later
                log.warning("cancel flag of run %s not read, the database is unavailable: %s", self.run.pk, exc)
                _after_database_error()
        return self.cancelled


class RunFailure(Exception):
    """A failure of the run whose message is already the sentence its page shows."""


def execute_run(run: TrainingRun, worker: str, echo: Callable[[dict], None] | None = None) -> TrainingRun:
    """Run the pipeline for a queued run in this process. Never raises for a failure of the run
    itself: the run ends `failed` with the reason. Returns the run as it ended."""
    if not runs.mark_started(run, worker):
        return TrainingRun.objects.get(pk=run.pk)
    purge: dict = {}
    outcome: dict = {"state": RunState.FAILED, "reason": "The pipeline stopped without a result."}
    try:
        with Heartbeat(run, settings.PROVENANT_HEARTBEAT_SECONDS):
            blockers = runs.start_blockers(run)
            if blockers:
                outcome = {"state": RunState.FAILED, "reason": "Stopped before training: " + " ".join(blockers)}
            else:
                _check_master_key(run)  # before anything is decrypted, or sealed with the wrong key
                with job_scratch(TrainingRun.scratch_root(), str(run.job_id), on_purge=purge.update) as scratch:
                    outcome = _train_in(scratch, run, echo)
    except Exception as exc:  # the run fails with its reason; the worker stays up
        log.exception("training run %s failed", run.pk)
        if isinstance(exc, DATABASE_BLINKS):
            _after_database_error()
        outcome = {"state": RunState.FAILED, "reason": failure_reason(exc)}
    finally:
        if purge:
            _durably(lambda: runs.record_purge(run, purge, how="removed by the run in finally"), run, "its purge")
    if outcome["state"] != RunState.SUCCEEDED:
        _durably(lambda: _delete_artifacts(run, kinds=None), run, "the deletion of its artifacts")
    elif not settings.PROVENANT_KEEP_CHECKPOINTS:
        _durably(lambda: _delete_artifacts(run, kinds=[ArtifactKind.CHECKPOINT]), run, "the deletion of its checkpoints")
    # The run's end is announced (training.signals.run_changed): the workflow queues its audit.
    state = outcome.pop("state")
    return _durably(lambda: runs.finish_run(run, state, **outcome), run, "its end")


DURABLE_ATTEMPTS = 5


def _durably(write, run: TrainingRun, what: str):
    """The run's last records must reach the database even when it blinks (a restart, a dropped
    connection, a lock held for a while): a few attempts on a fresh connection, backing off."""
    for attempt in range(DURABLE_ATTEMPTS):
        try:
            return write()
        except DATABASE_BLINKS as exc:
            if attempt == DURABLE_ATTEMPTS - 1:
                raise
            log.warning("run %s: %s not recorded, the database is unavailable (%s); trying again", run.pk, what, exc)
            _after_database_error()
            time.sleep(2 ** attempt)


def failure_reason(exc: BaseException) -> str:
    """What the run's page says when an error ends the run: what happened and what to do."""
    if isinstance(exc, (SubjectFieldError, RunFailure)):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        root = TrainingRun.scratch_root()
        where = exc.filename or ""
        place = (f"the run's scratch directory ({root})" if not where or str(where).startswith(str(root))
                 else f"the folder {Path(where).parent}")
        return (f"The disk ran out of space while the run was writing to {place}: no space left on the device. "
                "The run's plaintext was removed. Free space there (or move PROVENANT_DATA_DIR to a larger disk) "
                "and queue the run again.")
    if isinstance(exc, DATABASE_BLINKS):
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return (f"The database could not be reached while the run was working ({first_line}). The run's plaintext "
                "was removed and nothing was kept; queue the run again once the database answers.")
    if isinstance(exc, BlobDamaged):
        return ("An encrypted file the run had to read is damaged (authentication failed): its bytes were changed "
                "or cut short on disk, so nothing was trained on it. Restore it from a backup or upload it again, "
                "then queue the run again.")
    if isinstance(exc, WrongMasterKey):
        return f"An encrypted key could not be opened: {exc} Start the worker with the portal's master key and queue the run again."
    return f"{type(exc).__name__}: {exc}"


def _check_master_key(run: TrainingRun) -> None:
    """A worker started with another master key than the portal's fails the run at once, before
    it decrypts anything or seals a new pseudonym key or artifact under a key nobody else has."""
    for dataset in run.datasets.all().order_by("pk"):
        if not dataset.wrapped_key:
            continue  # shredded: the start checks and the reading say so
        try:
            master_key().unwrap(dataset.wrapped_key, dataset.key_context(dataset.blob_id))
        except WrongMasterKey:
            raise RunFailure(
                f"This worker's master key cannot open the data key of dataset “{dataset}”: the worker was started with "
                "a different master key than the portal that encrypted the data. Nothing was decrypted. Start the worker "
                "with the portal's master key (PROVENANT_MASTER_KEY or PROVENANT_MASTER_KEY_FILE) and queue the run again."
            ) from None


def _train_in(scratch: Path, run: TrainingRun, echo) -> dict:
    run_settings = runs.RunSettings.from_dict(run.config)
    runs.record_progress(run, phase="redacting")
    data_path, redaction_report = _prepare_records(scratch, run, run_settings)
    if redaction_report.get("records_out", 0) < 2:
        return {"state": RunState.FAILED, "reason": "Fewer than two records remain after redaction and de-duplication.",
                "redaction_report": redaction_report}
    runs.record_progress(run, phase="loading the base model")
    cancel = CancelCheck(run)
    out = scratch / "out"
    stored = run_settings.as_dict()  # without the noise seed, and with the one top-level seed
    caps = [dc.max_delta for d in run.datasets.all() for dc in d.data_classes.all() if dc.max_delta is not None]
    if caps:  # δ = min(cap, 1/(10·N)) by default, the cap never above what a data class allows
        stored["training"]["max_delta"] = min(caps + [stored["training"]["max_delta"] or 1.0])
    config = {"base_model": run.base_model.location, "data": str(data_path), "out": str(out), "seed": run_settings.seed,
              "holdout_fraction": run_settings.holdout_fraction, "canaries": stored["canaries"], "training": stored["training"]}
    manifest = engine_train.run(config, progress=ProgressReporter(run, settings.PROVENANT_PROGRESS_SECONDS, echo),
                                should_stop=cancel, on_checkpoint=lambda step, path: _seal_checkpoint(run, step, path))
    if cancel.cancelled:
        return {"state": RunState.CANCELLED, "reason": "Cancelled at the owner's request.", "redaction_report": redaction_report}
    runs.record_progress(run, phase="encrypting artifacts")
    manifest["run"] = {"id": run.pk, "job_id": str(run.job_id), "base_model": run.base_model.name,
                       "datasets": {str(d.pk): d.sha256 for d in run.datasets.all()}}
    manifest["redaction"] = {k: v for k, v in redaction_report.items() if k != "samples"}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    _store_tree(run, ArtifactKind.ADAPTER, out / "adapter")
    if (scratch / "pii_index.json").exists():
        _store_file(run, ArtifactKind.PII_INDEX, scratch / "pii_index.json", "pii_index.json")
    _write_probe_index(data_path, out / "canaries.json", scratch / "probe_index.json")
    _store_file(run, ArtifactKind.PROBE_INDEX, scratch / "probe_index.json", "probe_index.json")
    for kind, name in ((ArtifactKind.CANARIES, "canaries.json"), (ArtifactKind.CANARIES, "audit_canaries.json"),
                       (ArtifactKind.HOLDOUT, "holdout.jsonl"),
                       (ArtifactKind.MEMBERS, "members.jsonl"),
                       (ArtifactKind.CURVE, "loss.svg"), (ArtifactKind.CURVE, "epsilon.svg"), (ArtifactKind.MANIFEST, "manifest.json")):
        _store_file(run, kind, out / name, name)
    return {"state": RunState.SUCCEEDED, "result": manifest["result"], "manifest": manifest, "redaction_report": redaction_report}


def _prepare_records(scratch: Path, run: TrainingRun, run_settings) -> tuple[Path, dict]:
    """Redacted records of every dataset of the run, in one JSONL file inside the scratch. For
    subject-level DP each record also carries an opaque subject number: the same value of the
    subject field in any dataset of the run is the same subject, and the value itself is never written.

    De-duplication spans the whole run, redaction on or off: one record twice in the training data
    counts twice against per-record DP, and may sit on both sides of the holdout split. The first
    copy (by dataset, then line) is kept, with its own subject."""
    combined = scratch / "redacted.jsonl"
    reports = {}
    by_subject = run_settings.training.dp and run_settings.training.privacy_unit == "subject"
    subject_numbers: dict[str, str] = {}
    index = PersonalValueIndex() if run_settings.redaction else None
    dedup = Deduplicator()  # one for the run: it remembers the texts of the datasets before
    with open(combined, "w", encoding="utf-8") as sink:
        for dataset in run.datasets.all().order_by("pk"):
            try:
                _prepare_dataset(dataset, scratch, sink, run_settings, dedup, index, reports, subject_numbers, by_subject)
            except BlobDamaged:
                raise RunFailure(
                    f"The encrypted file of dataset “{dataset}” is damaged (authentication failed): its bytes were changed "
                    "or cut short on disk, so the run stopped before training on it and removed what it had decrypted. "
                    "Restore the file from a backup or upload the dataset again, then queue the run again.") from None
    if index is not None:
        index.save(scratch / "pii_index.json")
    summary = {"datasets": reports, "records_out": sum(r["records_out"] for r in reports.values()),
               "exact_duplicates": dedup.exact, "near_duplicates": dedup.near}
    if by_subject:
        summary["subjects"] = len(subject_numbers)
    return combined, summary


def _prepare_dataset(dataset, scratch: Path, sink, run_settings, dedup, index, reports: dict, subject_numbers: dict,
                     by_subject: bool) -> None:
    """One dataset of the run: redacted (or only de-duplicated) into `sink`, its report in `reports`."""
    from training.actions import review_decisions_for

    part = scratch / f"redacted-{dataset.pk}.jsonl"
    if run_settings.redaction:
        classes = list(dataset.data_classes.all())
        key = redaction.pseudonym_key_for(classes)
        spans = scratch / f"spans-{dataset.pk}.jsonl"
        report = run_redaction(redaction.dataset_records(dataset), out=part, spans_out=spans,
                               detector_config=redaction.detector_config_for(classes), policy=redaction.policy_for(classes),
                               key=key, decisions=review_decisions_for(dataset), total=dataset.record_count, sample_size=0,
                               dedup=dedup)
        reports[str(dataset.pk)] = report.as_dict()
        index.add_dataset(redaction.dataset_records(dataset), spans, key)
        spans.unlink()
    else:
        exact_before, near_before = dedup.exact, dedup.near
        with open(part, "w", encoding="utf-8") as raw:
            count = kept = 0
            for record in redaction.dataset_records(dataset):
                count += 1
                if not dedup.is_duplicate(record.text):
                    raw.write(json.dumps({"id": record.id, "text": record.text}) + "\n")
                    kept += 1
        reports[str(dataset.pk)] = {"records_in": count, "records_out": kept, "redaction": "off",
                                    "exact_duplicates": dedup.exact - exact_before, "near_duplicates": dedup.near - near_before}
    if by_subject:
        try:
            value_of = dict(redaction.dataset_subjects(dataset, run_settings.subject_field))
        except IngestError as exc:
            raise SubjectFieldError(f"Dataset “{dataset}”: {exc} Subject-level DP needs the subject of every record.") from None
        with open(part, encoding="utf-8") as source:
            for line in source:
                record = json.loads(line)
                # Numbered as their records survive: a subject whose records were all dropped is not counted.
                subject = subject_numbers.setdefault(value_of[record["id"]], f"subject-{len(subject_numbers)}")
                sink.write(json.dumps({"text": record["text"], "subject": subject}) + "\n")
    else:
        with open(part, encoding="utf-8") as source:
            shutil.copyfileobj(source, sink)
    part.unlink()


class SubjectFieldError(ValueError):
    pass


class PersonalValueIndex:
    """HMAC digests of every personal value the redaction found (the originals) and of the
    surrogates it put in their place, under a key of this run only. The leakage audit looks for
    them in generated text without the originals ever being stored in the clear or in a report."""

    def __init__(self):
        from training.engine.pii.value_index import ValueIndex

        self.key = os.urandom(32)
        self.originals, self.surrogates = ValueIndex(self.key), ValueIndex(self.key)

    def add_dataset(self, records, spans_path: Path, pseudonym_key: bytes) -> None:
        from training.engine.pii.surrogates import SurrogateGenerator

        found = {}
        with open(spans_path, encoding="utf-8") as source:
            for line in source:
                row = json.loads(line)
                if row["spans"]:
                    found[row["id"]] = row["spans"]
        surrogates = SurrogateGenerator(pseudonym_key)
        for record in records:
            for span in found.get(record.id, ()):
                value = record.text[span["start"]:span["end"]]
                self.originals.add(value)
                if span["action"] == "pseudonymize":
                    self.surrogates.add(surrogates.surrogate(span["type"], value))

    def save(self, path: Path) -> None:
        data = {"key": self.key.hex(), "originals": self.originals.to_dict(), "surrogates": self.surrogates.to_dict()}
        path.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")


def _write_probe_index(records_path: Path, canaries_path: Path, destination: Path) -> None:
    """The gateway's extraction detector reads this (serving.monitoring): keyed digests of the opening
    words of every record prepared for the run (training split and holdout alike: both are the
    datasets' records, as the model was given them, redacted) and of each canary's prefix. No text."""
    from training.engine.probes import ProbeIndexBuilder

    index = ProbeIndexBuilder()
    with open(records_path, encoding="utf-8") as source:
        for line in source:
            if line.strip():
                index.add_record(json.loads(line)["text"])
    for canary in json.loads(canaries_path.read_text(encoding="utf-8")):
        index.add_canary_prefix(canary["prefix"])
    index.save(destination)


def _store_tree(run: TrainingRun, kind: str, directory: Path, prefix: str = "") -> None:
    for path in sorted(p for p in Path(directory).rglob("*") if p.is_file()):
        _store_file(run, kind, path, prefix + str(path.relative_to(directory)))


def _seal_checkpoint(run: TrainingRun, step: int, directory: Path) -> None:
    """The plaintext checkpoint goes as soon as it is sealed."""
    _store_tree(run, ArtifactKind.CHECKPOINT, directory, f"step-{step}/")
    shutil.rmtree(directory, ignore_errors=True)


def _store_file(run: TrainingRun, kind: str, path: Path, name: str) -> RunArtifact:
    """Encrypt one file into the blob store under its own data key; record its SHA-256 first."""
    blob_id = str(uuid.uuid4())
    key, wrapped = master_key().new_data_key(RunArtifact.key_context(blob_id))
    digest = sha256_file(path)
    with blob_store().writing(blob_id) as destination, key.encrypting(destination) as stream, open(path, "rb") as source:
        shutil.copyfileobj(source, stream, 1 << 20)
    with transaction.atomic():
        return RunArtifact.objects.create(run=run, kind=kind, name=name, sha256=digest, size_bytes=os.path.getsize(path),
                                          blob_id=blob_id, wrapped_key=wrapped)


def _delete_artifacts(run: TrainingRun, kinds) -> None:
    """A failed or cancelled run keeps nothing; a finished one drops its checkpoints (crypto-shredded)."""
    artifacts = RunArtifact.objects.filter(run=run, deleted_at__isnull=True)
    if kinds:
        artifacts = artifacts.filter(kind__in=kinds)
    for artifact in artifacts:
        blob_store().delete(artifact.blob_id)
    artifacts.update(wrapped_key=None, deleted_at=timezone.now())
