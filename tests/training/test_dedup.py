"""De-duplication over a whole run: the same record in two datasets, or twice in one, is trained on
once, whether redaction is on or off; the report counts what was dropped; at subject level the copy
kept keeps its own subject."""

import json

import pytest

pytest.importorskip("torch")

from tests.conftest import make_dataset  # noqa: E402
from tests.training.test_runs import FAST, SUBJECT_LEVEL, base_model, tiny_base_dir  # noqa: E402,F401 (fixtures)
from training import runs  # noqa: E402
from training.engine.tiny_base import generate_corpus  # noqa: E402
from training.pipeline import _prepare_records  # noqa: E402

SHARED = "Refunds are issued within five working days of the returned parcel arriving at the warehouse."
NEAR_COPY = "REFUNDS are issued within five working days of the returned parcel arriving at the warehouse!"


def jsonl(texts, **fields) -> str:
    return "".join(json.dumps({"text": t, **fields}) + "\n" for t in texts)


def prepared(run, scratch) -> tuple[list[dict], dict]:
    """The records the run would train on (before the split), and the redaction report."""
    scratch.mkdir()
    path, report = _prepare_records(scratch, run, runs.RunSettings.from_dict(run.config))
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()], report


@pytest.mark.parametrize("redaction", [True, False], ids=["redaction-on", "redaction-off"])
@pytest.mark.parametrize("copy, kind", [(SHARED, "exact_duplicates"), (NEAR_COPY, "near_duplicates")], ids=["exact", "near"])
def test_a_record_in_two_datasets_of_a_run_is_trained_on_once(engineer, base_model, tmp_path, redaction, copy, kind):
    first = make_dataset(engineer, jsonl([SHARED, *generate_corpus(6, seed=1)]), name="Support chats")
    second = make_dataset(engineer, jsonl([*generate_corpus(6, seed=2), copy]), name="Support chats, later export")
    run = runs.create_run(engineer, base_model, [first, second], {**FAST, "redaction": redaction}, enqueue=False)
    records, report = prepared(run, tmp_path / "scratch")
    copies = [r["text"] for r in records if r["text"].casefold().rstrip(".!") == SHARED.casefold().rstrip(".!")]
    assert copies == [SHARED]  # the first dataset's
    # The copy is counted where it was dropped, and for the run.
    assert report["datasets"][str(first.pk)][kind] == 0 and report["datasets"][str(second.pk)][kind] == 1
    assert report[kind] == 1 and report["records_out"] == len(records) == 7 + 7 - 1


def test_a_record_repeated_inside_one_dataset_is_trained_on_once_with_redaction_off(engineer, base_model, tmp_path):
    texts = generate_corpus(8, seed=3)
    dataset = make_dataset(engineer, jsonl([SHARED, *texts[:4], SHARED, *texts[4:], NEAR_COPY]))
    run = runs.create_run(engineer, base_model, [dataset], {**FAST, "redaction": False}, enqueue=False)
    records, report = prepared(run, tmp_path / "scratch")
    assert [r["text"] for r in records] == [SHARED, *texts]
    part = report["datasets"][str(dataset.pk)]
    assert part["records_in"] == 11 and part["records_out"] == 9 and part["exact_duplicates"] == 1 and part["near_duplicates"] == 1


def test_at_subject_level_the_copy_kept_keeps_its_own_subject(engineer, base_model, tmp_path):
    first = make_dataset(engineer, jsonl([SHARED, *generate_corpus(3, seed=1)], customer_id="CUST-A"), name="Chats of A")
    # CUST-X's one record is the copy: dropped, CUST-X no longer trains and is not counted.
    second = make_dataset(engineer, jsonl([SHARED], customer_id="CUST-X") + jsonl(generate_corpus(3, seed=2), customer_id="CUST-B"),
                          name="Chats of B")
    run = runs.create_run(engineer, base_model, [first, second], {**SUBJECT_LEVEL, "redaction": False}, enqueue=False)
    records, report = prepared(run, tmp_path / "scratch")
    subject_of = {r["text"]: r["subject"] for r in records}
    assert [r["text"] for r in records].count(SHARED) == 1
    assert {r["subject"] for r in records[:4]} == {subject_of[SHARED]}  # CUST-A's
    assert {r["subject"] for r in records[4:]} != {subject_of[SHARED]} and report["subjects"] == 2
