"""State changes of redaction work: profiles, review scans and review decisions, each audited."""

from __future__ import annotations

import random
from collections import Counter
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from governance.trail import record_event
from governance.models import Dataset
from training import redaction
from training.models import RedactionReview, ReviewDecision, ReviewReason

if TYPE_CHECKING:  # annotations only: the engine loads inside the functions
    from training.engine.redaction import RedactedRecord, Record


def profile_dataset_pii(dataset: Dataset, sample_size: int | None = None, seed: int = 0) -> dict:
    """Estimate how much personal data a dataset holds, from a random sample of its records, and
    count its exact and near duplicates over all records.

    Reservoir sampling reads the dataset once, in memory, whatever its size. The profile keeps
    counts only, never values.
    """
    from training.engine.redaction import Deduplicator

    sample_size = sample_size or settings.PROVENANT_PII_PROFILE_SAMPLE
    rng, sample, seen, dedup = random.Random(seed), [], 0, Deduplicator()
    for record in redaction.dataset_records(dataset):
        seen += 1
        dedup.is_duplicate(record.text)  # over every record: the policy warns about a high duplicate rate
        if len(sample) < sample_size:
            sample.append(record.text)
        elif (j := rng.randrange(seen)) < sample_size:
            sample[j] = record.text
    data_classes = list(dataset.data_classes.all())
    from training.engine.pii.detector import PiiDetector  # seconds to load: only where detection runs

    detections = PiiDetector(redaction.detector_config_for(data_classes)).detect(sample)
    records_with, spans, chars = Counter(), Counter(), sum(len(t) for t in sample) or 1
    for found in detections:
        for entity in {d.type for d in found}:
            records_with[entity] += 1
        spans.update(d.type for d in found)
    profile = {
        "sampled_records": len(sample),
        "total_records": seen,
        "exact_duplicates": dedup.exact,
        "near_duplicates": dedup.near,
        "duplicate_share": round((dedup.exact + dedup.near) / seen, 4) if seen else 0.0,
        "entities": {
            entity: {"records_share": round(records_with[entity] / len(sample), 4),
                     "per_1000_chars": round(spans[entity] * 1000 / chars, 3), "spans": spans[entity]}
            for entity in sorted(spans)
        },
    }
    with transaction.atomic():
        Dataset.objects.filter(pk=dataset.pk).update(pii_profile=profile, pii_profiled_at=timezone.now())
        record_event(None, "dataset.pii_profiled", dataset, f"Personal data profile of “{dataset}” from {len(sample)} sampled records",
                     {"sampled_records": len(sample), "entity_types": sorted(spans)})
    return profile


def scan_for_review(dataset: Dataset, actor=None, progress=None) -> dict:
    """Run the full detector over a dataset and queue for review what a person must see:
    low-confidence detections, and every detection in a high-risk class."""
    data_classes = list(dataset.data_classes.all())
    policy = redaction.policy_for(data_classes)
    limit = settings.PROVENANT_REVIEW_QUEUE_LIMIT
    queued = []

    def collect(original: Record, result: RedactedRecord) -> None:
        for detection in result.review:
            if len(queued) >= limit:
                return
            reason = ReviewReason.LOW_CONFIDENCE if detection.score < policy.review_threshold else ReviewReason.HIGH_RISK
            queued.append(_review_item(dataset, original, detection, reason))

    from training.engine.redaction import run_redaction

    report = run_redaction(redaction.dataset_records(dataset), out=None, detector_config=redaction.detector_config_for(data_classes),
                           policy=policy, key=redaction.pseudonym_key_for(data_classes), total=dataset.record_count,
                           progress=progress, review_sink=collect, sample_size=0)
    with transaction.atomic():
        existing = set(RedactionReview.objects.filter(dataset=dataset).values_list("record_id", "start", "end"))
        new = [item for item in queued if (item.record_id, item.start, item.end) not in existing]
        RedactionReview.objects.bulk_create(new)
        summary = {"records": report.records_in, "queued": len(new), "detections": report.entities,
                   "exact_duplicates": report.exact_duplicates, "near_duplicates": report.near_duplicates}
        record_event(actor, "dataset.review_scanned", dataset, f"Review scan of “{dataset}”: {len(new)} detections queued for review", summary)
    return summary


def _review_item(dataset, record: Record, detection, reason) -> RedactionReview:
    margin = RedactionReview.SNIPPET_MARGIN
    offset = max(0, detection.start - margin)
    item = RedactionReview(dataset=dataset, record_id=record.id, entity_type=detection.type, start=detection.start,
                           end=detection.end, score=detection.score, recognizer=detection.source[:100], reason=reason,
                           snippet_offset=offset)
    item.snippet_sealed = RedactionReview.seal_snippet(item.snippet_id, record.text[offset:detection.end + margin])
    return item


@transaction.atomic
def view_review_snippet(actor, item: RedactionReview) -> tuple[str, str, str]:
    """Open the original text around a detection; the opening itself is an audit event."""
    record_event(actor, "redactionreview.viewed", item, f"{actor} viewed the original text of review item {item.pk} ({item.entity_type})",
                 {"dataset_id": item.dataset_id, "record_id": item.record_id})
    return item.snippet_parts()


@transaction.atomic
def decide_review(actor, item: RedactionReview, decision: str, *, comment: str = "", extend_to: str = "") -> RedactionReview:
    """Accept, reject or extend a detection. Extending takes the exact text to redact, which
    must contain the detection and lie within the snippet."""
    item = RedactionReview.objects.select_for_update().get(pk=item.pk)
    if decision == ReviewDecision.EXTENDED:
        before, detected, after = item.snippet_parts()
        snippet = before + detected + after
        position = _find_covering(snippet, extend_to, len(before), len(before) + len(detected))
        if position is None:
            raise ValueError("The extended text must appear in the snippet and contain the detected text.")
        item.new_start, item.new_end = item.snippet_offset + position, item.snippet_offset + position + len(extend_to)
    item.decision, item.comment = decision, comment
    item.decided_by, item.decided_at = actor, timezone.now()
    item.save()
    record_event(actor, f"redactionreview.{decision}", item, f"{actor} {decision} the {item.entity_type} detection in record {item.record_id}",
                 {"dataset_id": item.dataset_id, "record_id": item.record_id, "start": item.start, "end": item.end,
           "new_start": item.new_start, "new_end": item.new_end, "comment": comment})
    return item


def _find_covering(snippet: str, wanted: str, start: int, end: int) -> int | None:
    if not wanted:
        return None
    position = snippet.find(wanted)
    while position != -1:
        if position <= start and position + len(wanted) >= end:
            return position
        position = snippet.find(wanted, position + 1)
    return None


def review_decisions_for(dataset: Dataset) -> dict:
    """The decisions the training pipeline applies when it redacts this dataset."""
    from training.engine.redaction import ReviewOverride

    decisions: dict[str, list] = {}
    for item in RedactionReview.objects.filter(dataset=dataset, decision__in=[ReviewDecision.REJECTED, ReviewDecision.EXTENDED]):
        verdict = "reject" if item.decision == ReviewDecision.REJECTED else "extend"
        decisions.setdefault(item.record_id, []).append(
            ReviewOverride(item.start, item.end, verdict, item.new_start, item.new_end, item.entity_type))
    return decisions
