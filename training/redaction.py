"""From data classes in the database to the redaction engine's plain settings.

The engine (Presidio, spaCy) is imported inside the functions: loading it takes seconds, and the
web pages that import this module never detect anything themselves."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Iterator

from django.conf import settings

from governance.ingest import iter_field_values, iter_records
from governance.models import DataClass, Dataset, RedactionRuleKind
from governance.vault import text_lines
from training.models import PseudonymKey

if TYPE_CHECKING:  # annotations only: the engine loads inside the functions
    from training.engine.pii.detector import DetectorConfig
    from training.engine.redaction import Record, RedactionPolicy


def detector_config_for(data_classes: Iterable[DataClass]) -> "DetectorConfig":
    from training.engine.pii.detector import AllowRule, CustomPattern, DetectorConfig

    data_classes = list(data_classes)
    deny_lists: dict[str, list[str]] = {}
    patterns = []
    allowed_by_class = []
    for data_class in data_classes:
        allowed = set()
        for rule in data_class.redaction_rules.all():
            if rule.kind == RedactionRuleKind.DENY_LIST:
                deny_lists.setdefault(rule.entity_type, []).extend(rule.term_list())
            elif rule.kind == RedactionRuleKind.ALLOW:
                allowed.add(AllowRule(rule.entity_type, rule.regex, tuple(rule.term_list())))
            else:
                patterns.append(CustomPattern(rule.entity_type, rule.regex, rule.score))
        allowed_by_class.append(allowed)
    # The strictest reading, as for the actions: a dataset of several classes keeps a value only
    # when every one of its classes allows it.
    allow = set.intersection(*allowed_by_class) if allowed_by_class else set()
    return DetectorConfig(ner_model=settings.PROVENANT_NER_MODEL, deny_lists={k: tuple(v) for k, v in deny_lists.items()},
                          patterns=tuple(patterns), allow=tuple(sorted(allow, key=repr)),
                          person_model=settings.PROVENANT_PII_PERSON_MODEL)


def policy_for(data_classes: Iterable[DataClass]) -> "RedactionPolicy":
    from training.engine.redaction import RedactionPolicy

    return RedactionPolicy.strictest(
        RedactionPolicy(actions=dc.redaction_actions or {}, review_threshold=dc.review_threshold, review_all_detections=dc.high_risk)
        for dc in data_classes
    )


def pseudonym_key_for(data_classes: list[DataClass]) -> bytes:
    """The key of the dataset's first data class (by id), so a value gets the same surrogate in
    every dataset of that class; the installation's default key for unclassified data."""
    scope = f"data-class:{min(dc.pk for dc in data_classes)}" if data_classes else "default"
    return PseudonymKey.for_scope(scope)


def dataset_records(dataset: Dataset) -> Iterator["Record"]:
    """The dataset's records, decrypted in memory as they are read."""
    from training.engine.redaction import Record

    key, ciphertext = dataset.open_plaintext()
    with ciphertext, key.decrypting(ciphertext) as plaintext:
        for line, text in iter_records(text_lines(plaintext), dataset.file_format, text_field=dataset.text_field or "text",
                                       csv_column=dataset.csv_column):
            yield Record(f"line-{line}", text)


def dataset_subjects(dataset: Dataset, field: str) -> Iterator[tuple[str, str]]:
    """(record id, subject value) for each record, with the ids of `dataset_records`."""
    key, ciphertext = dataset.open_plaintext()
    with ciphertext, key.decrypting(ciphertext) as plaintext:
        for line, value in iter_field_values(text_lines(plaintext), dataset.file_format, field):
            yield f"line-{line}", value
