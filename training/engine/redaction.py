"""Redaction pipeline: stream records in, de-duplicate, detect, apply each entity type's action,
stream redacted records out atomically, and report what happened. No Django import.

    python -m training.engine.redaction INPUT.jsonl --out OUTPUT.jsonl --key-file KEY [--spans S] [--report R]

Actions per entity type (from the data class rules): `pseudonymize` (HMAC-keyed surrogate of the
same shape; the default), `mask` ("[EMAIL_ADDRESS]"), `drop_record`, or `keep`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import re
import sys
import tempfile
import time
import unicodedata
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from vocab.pii import ACTIONS, DROP_RECORD, ENTITY_TYPES, KEEP, MASK, PSEUDONYMIZE  # noqa: F401 - re-exported
from training.engine.pii.detector import AllowRule, CustomPattern, Detection, DetectorConfig, PiiDetector
from training.engine.pii.surrogates import SurrogateGenerator

# When spans of different types overlap, or several data classes disagree, the most protective wins.
_PROTECTION = {KEEP: 0, PSEUDONYMIZE: 1, MASK: 2, DROP_RECORD: 3}


class MalformedInput(ValueError):
    def __init__(self, problems: list[tuple[int, str]]):
        self.problems = problems
        shown = "; ".join(f"line {n}: {why}" for n, why in problems[:20])
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} malformed input line(s), nothing was written: {shown}{more}")


@dataclass(frozen=True)
class RedactionPolicy:
    actions: dict[str, str] = field(default_factory=dict)  # entity type -> action; missing types are pseudonymized
    review_threshold: float = 0.6  # detections scoring below this go to the review queue
    review_all_detections: bool = False  # high-risk classes: every record with a detection is reviewed
    default_action: str = PSEUDONYMIZE  # for types the actions do not name

    def action_for(self, entity_type: str) -> str:
        return self.actions.get(entity_type, self.default_action)

    @staticmethod
    def strictest(policies: Iterable["RedactionPolicy"]) -> "RedactionPolicy":
        """One policy for a dataset with several data classes: per type, the most protective action."""
        policies = list(policies)
        if not policies:
            return RedactionPolicy()
        actions = {}
        for entity in {e for p in policies for e in p.actions} | set(ENTITY_TYPES):
            actions[entity] = max((p.action_for(entity) for p in policies), key=_PROTECTION.__getitem__)
        return RedactionPolicy(actions, max(p.review_threshold for p in policies), any(p.review_all_detections for p in policies))


@dataclass(frozen=True)
class Record:
    id: str
    text: str


@dataclass(frozen=True)
class AppliedSpan:
    start: int  # offsets into the original text
    end: int
    type: str
    score: float
    action: str


@dataclass
class RedactedRecord:
    id: str
    text: str  # redacted
    spans: list[AppliedSpan]
    dropped: bool
    review: list[Detection]  # low-confidence detections, or all of them for a high-risk class


@dataclass
class RedactionReport:
    records_in: int = 0
    records_out: int = 0
    records_changed: int = 0
    records_dropped: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    entities: dict[str, dict[str, int]] = field(default_factory=dict)  # type -> action -> count
    review_candidates: int = 0
    output_sha256: str = ""
    sample: list[dict] = field(default_factory=list)  # redacted records only, never originals
    seconds: float = 0.0
    ner_model: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------- de-duplication

_PUNCT = re.compile(r"[^\w\s]")
_DIGITS = re.compile(r"\d")


def normalise_for_dedup(text: str) -> str:
    """Case, accents, punctuation, digits and spacing do not make a record new."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(_DIGITS.sub("0", _PUNCT.sub(" ", text)).split())


class Deduplicator:
    """Exact duplicates (same text) and near duplicates (same after normalisation). A record
    repeated many times defeats per-example DP, and a repeated record can land on both sides of a
    train/holdout split, so only the first copy is kept. One instance holds every text it has
    seen: share it across the datasets of a run to catch the same record in two of them."""

    def __init__(self):
        self._exact: set[bytes] = set()
        self._near: set[bytes] = set()
        self.exact = self.near = 0

    def is_duplicate(self, text: str) -> bool:
        exact = hashlib.blake2b(text.encode(), digest_size=16).digest()
        if exact in self._exact:
            self.exact += 1
            return True
        near = hashlib.blake2b(normalise_for_dedup(text).encode(), digest_size=16).digest()
        self._exact.add(exact)
        if near in self._near:
            self.near += 1
            return True
        self._near.add(near)
        return False


# ---------------------------------------------------------------------------- applying actions


def merge_detections(detections: list[Detection], policy: RedactionPolicy) -> list[AppliedSpan]:
    """Overlapping detections become one span: the union of their extents, the type of the most
    confident, and the most protective action among them."""
    spans: list[AppliedSpan] = []
    for d in sorted(detections, key=lambda d: (d.start, -d.end)):
        action = policy.action_for(d.type)
        if spans and d.start < spans[-1].end:
            last = spans[-1]
            best_type, best_score = (d.type, d.score) if d.score > last.score else (last.type, last.score)
            strongest = max(last.action, action, key=_PROTECTION.__getitem__)
            spans[-1] = AppliedSpan(last.start, max(last.end, d.end), best_type, best_score, strongest)
        else:
            spans.append(AppliedSpan(d.start, d.end, d.type, d.score, action))
    return spans


def apply_spans(text: str, spans: list[AppliedSpan], surrogates: SurrogateGenerator) -> tuple[str, bool]:
    """The redacted text, and whether the record must be dropped."""
    if any(s.action == DROP_RECORD for s in spans):
        return "", True
    pieces, cursor = [], 0
    for span in spans:
        pieces.append(text[cursor:span.start])
        value = text[span.start:span.end]
        if span.action == PSEUDONYMIZE:
            pieces.append(surrogates.surrogate(span.type, value))
        elif span.action == MASK:
            pieces.append(f"[{span.type}]")
        else:
            pieces.append(value)
        cursor = span.end
    pieces.append(text[cursor:])
    return "".join(pieces), False


@dataclass(frozen=True)
class ReviewOverride:
    """A privacy officer's decision on one detection: reject it (not personal data, keep the
    text) or extend it to other offsets. Accepting needs no entry: detections apply by default."""

    start: int
    end: int
    verdict: str  # "reject" | "extend"
    new_start: int | None = None
    new_end: int | None = None
    type: str = ""


class Redactor:
    """Detection plus actions, for one process."""

    def __init__(self, detector_config: DetectorConfig, policy: RedactionPolicy, key: bytes,
                 decisions: dict[str, list[ReviewOverride]] | None = None):
        self.detector = PiiDetector(detector_config)
        self.policy = policy
        self.surrogates = SurrogateGenerator(key)
        self.decisions = decisions or {}

    def redact(self, records: list[Record]) -> list[RedactedRecord]:
        out = []
        for record, detections in zip(records, self.detector.detect([r.text for r in records])):
            detections = self._apply_decisions(record.id, detections)
            spans = merge_detections(detections, self.policy)
            text, dropped = apply_spans(record.text, spans, self.surrogates)
            review = [d for d in detections if d.score < self.policy.review_threshold or self.policy.review_all_detections]
            out.append(RedactedRecord(record.id, text, spans, dropped, review))
        return out

    def _apply_decisions(self, record_id: str, detections: list[Detection]) -> list[Detection]:
        decisions = self.decisions.get(record_id)
        if not decisions:
            return detections
        rejected = {(d.start, d.end) for d in decisions if d.verdict == "reject"}
        kept = [d for d in detections if (d.start, d.end) not in rejected]
        for d in decisions:
            if d.verdict == "extend" and d.new_start is not None and d.new_end is not None:
                kept = [x for x in kept if (x.start, x.end) != (d.start, d.end)]
                kept.append(Detection(d.new_start, d.new_end, d.type or "PERSON", 1.0, "ReviewOverride"))
        return kept


# ---------------------------------------------------------------------------- worker processes

_WORKER: Redactor | None = None


def _init_worker(detector_config, policy, key, decisions):
    global _WORKER
    _WORKER = Redactor(detector_config, policy, key, decisions)


def _redact_in_worker(batch: list[Record]) -> list[RedactedRecord]:
    return _WORKER.redact(batch)


def _batches(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    batch = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class WorkerPool:
    """Processes that each hold a loaded `Redactor`; reusable across runs with the same settings."""

    def __init__(self, workers: int, detector_config: DetectorConfig, policy: RedactionPolicy, key: bytes, decisions=None):
        context = multiprocessing.get_context("spawn")  # no fork of a process holding spaCy and threads
        self.pool = context.Pool(workers, initializer=_init_worker, initargs=(detector_config, policy, key, decisions))
        self.workers = workers

    def imap(self, batches):
        return self.pool.imap(_redact_in_worker, batches, chunksize=1)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.pool.terminate()
        self.pool.join()


def redact_records(records: Iterable[Record], *, detector_config: DetectorConfig, policy: RedactionPolicy, key: bytes,
                   workers: int | WorkerPool = 1, batch_size: int = 64, decisions=None) -> Iterator[RedactedRecord]:
    """Redact in order, on `workers` processes (1: in this process; needed inside daemonic
    processes such as Celery's prefork workers, which may not have children)."""
    if isinstance(workers, WorkerPool):
        for redacted in workers.imap(_batches(records, batch_size)):
            yield from redacted
        return
    if workers > 1 and multiprocessing.current_process().daemon:
        workers = 1
    if workers <= 1:
        redactor = Redactor(detector_config, policy, key, decisions)
        for batch in _batches(records, batch_size):
            yield from redactor.redact(batch)
        return
    with WorkerPool(workers, detector_config, policy, key, decisions) as pool:
        yield from redact_records(records, detector_config=detector_config, policy=policy, key=key, workers=pool,
                                  batch_size=batch_size)


# ---------------------------------------------------------------------------- files


def read_jsonl_records(path: Path) -> tuple[list[Record], list[tuple[int, str]]]:
    """Records with `id` and `text`, and the problems of the lines that are not."""
    records, problems, ids = [], [], set()
    with open(path, encoding="utf-8", errors="strict") as handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as exc:
                    problems.append((number, f"not valid JSON ({exc.msg}, column {exc.colno})"))
                    continue
                if not isinstance(value, dict) or not isinstance(value.get("text"), str):
                    problems.append((number, 'needs an object with a "text" string'))
                    continue
                record_id = str(value.get("id", number))
                if record_id in ids:
                    problems.append((number, f'duplicate id "{record_id}"'))
                    continue
                ids.add(record_id)
                records.append(Record(record_id, value["text"]))
        except UnicodeDecodeError as exc:
            problems.append((len(records) + len(problems) + 1, f"not UTF-8 ({exc.reason})"))
    return records, problems


class AtomicWriter:
    """Write to a temporary file beside the target; rename into place only on success."""

    def __init__(self, target: Path | None):
        self.target = Path(target) if target else None
        self.handle = None
        self.sha256 = hashlib.sha256()

    def __enter__(self):
        if self.target:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            fd, self._tmp = tempfile.mkstemp(prefix=f".{self.target.name}.", dir=self.target.parent)
            self.handle = os.fdopen(fd, "w", encoding="utf-8")
        return self

    def write_line(self, obj) -> None:
        line = json.dumps(obj, ensure_ascii=False) + "\n"
        self.sha256.update(line.encode())
        if self.handle:
            self.handle.write(line)

    def __exit__(self, exc_type, exc, tb):
        if not self.handle:
            return
        self.handle.close()
        if exc_type is None:
            os.replace(self._tmp, self.target)
        else:
            os.unlink(self._tmp)


def run_redaction(records: Iterable[Record], *, out: Path | None, spans_out: Path | None = None,
                  detector_config: DetectorConfig, policy: RedactionPolicy, key: bytes, workers: int | WorkerPool = 1,
                  batch_size: int = 64, decisions=None, total: int | None = None,
                  progress: Callable[[int, int | None], None] | None = None,
                  review_sink: Callable[[Record, RedactedRecord], None] | None = None, sample_size: int = 5,
                  deduplicate: bool = True, dedup: Deduplicator | None = None) -> RedactionReport:
    """The whole pipeline over an iterable of records; returns the report. Nothing is left at
    `out` or `spans_out` unless the run completes. `dedup`, when given, carries the texts already
    seen (other datasets of the same run); the report counts the duplicates found in these records."""
    if dedup is not None and not deduplicate:
        raise ValueError("A shared de-duplicator was given with de-duplication turned off.")
    started = time.perf_counter()
    report = RedactionReport(ner_model=detector_config.resolved_model())
    dedup = dedup if dedup is not None else Deduplicator()
    exact_before, near_before = dedup.exact, dedup.near
    counts: dict[str, Counter] = defaultdict(Counter)
    originals: dict[str, Record] = {}

    def unique(source):
        for record in source:
            report.records_in += 1
            if not deduplicate or not dedup.is_duplicate(record.text):
                if review_sink:
                    originals[record.id] = record
                yield record

    done = 0
    with AtomicWriter(out) as writer, AtomicWriter(spans_out) as spans_writer:
        for result in redact_records(unique(records), detector_config=detector_config, policy=policy, key=key,
                                     workers=workers, batch_size=batch_size, decisions=decisions):
            done += 1
            for span in result.spans:
                counts[span.type][span.action] += 1
            if spans_out:
                spans_writer.write_line({"id": result.id, "spans": [
                    {"start": s.start, "end": s.end, "type": s.type, "score": s.score, "action": s.action} for s in result.spans]})
            if review_sink:
                original = originals.pop(result.id)
                if result.review:
                    review_sink(original, result)
                    report.review_candidates += len(result.review)
            if result.dropped:
                report.records_dropped += 1
            else:
                writer.write_line({"id": result.id, "text": result.text})
                report.records_out += 1
                if result.spans and any(s.action != KEEP for s in result.spans):
                    report.records_changed += 1
                    if len(report.sample) < sample_size:
                        report.sample.append({"id": result.id, "text": result.text[:500]})
            if progress and (done % 50 == 0):
                progress(report.records_in, total)
        if progress:  # inside the writers: a failure here must still leave no output
            progress(report.records_in, total)
    report.exact_duplicates, report.near_duplicates = dedup.exact - exact_before, dedup.near - near_before
    report.entities = {t: dict(c) for t, c in sorted(counts.items())}
    report.output_sha256 = writer.sha256.hexdigest()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def policy_from_json(data: dict) -> tuple[DetectorConfig, RedactionPolicy]:
    """The detector settings and policy of a data class, as `manage.py redact` exports them."""
    detector = DetectorConfig(
        ner_model=data.get("ner_model", ""),
        person_model=data.get("person_model", ""),
        deny_lists={k: tuple(v) for k, v in data.get("deny_lists", {}).items()},
        patterns=tuple(CustomPattern(**p) for p in data.get("patterns", [])),
        allow=tuple(AllowRule(a["entity"], a.get("regex", ""), tuple(a.get("terms", ()))) for a in data.get("allow", [])),
    )
    policy = RedactionPolicy(actions=data.get("actions", {}), review_threshold=data.get("review_threshold", 0.6),
                             review_all_detections=data.get("review_all_detections", False))
    return detector, policy


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.engine.redaction", description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--spans", type=Path)
    parser.add_argument("--report", type=Path)
    parser.add_argument("--key-file", type=Path, required=True, help="at least 16 bytes of secret key material")
    parser.add_argument("--policy", type=Path, help="JSON: actions, deny_lists, patterns, allow, review_threshold, ner_model, person_model")
    parser.add_argument("--workers", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    args = parser.parse_args(argv)
    records, problems = read_jsonl_records(args.input)
    if problems:
        print(MalformedInput(problems), file=sys.stderr)
        return 2
    detector, policy = policy_from_json(json.loads(args.policy.read_text()) if args.policy else {})
    from tqdm import tqdm

    with tqdm(total=len(records), unit="rec", desc="redacting") as bar:
        report = run_redaction(records, out=args.out, spans_out=args.spans, detector_config=detector, policy=policy,
                               key=args.key_file.read_bytes(), workers=args.workers, total=len(records),
                               progress=lambda done, total: bar.update(done - bar.n))
    if args.report:
        with AtomicWriter(args.report) as writer:
            writer.write_line(report.as_dict())
    print(json.dumps({k: v for k, v in report.as_dict().items() if k != "sample"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
