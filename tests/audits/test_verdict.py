"""The verdict's three outcomes: a check that did not run is not tested, never passed; the ε spent
held to the approved limit; the ε claim tested by the one-run audit only; one memorised canary
fails; the audit scores what training saw; the data classes set the audit's least strength."""

import json
import math
import random

import pytest

from audits.engine.audit import (INCONCLUSIVE, AuditConfig, Thresholds, canary_bar_bits, chance_false_failure, evaluate_verdict,
                                 scored_like_training)
from audits.engine.membership import shift_warning


def canary(bits, candidates=10_000, **extra):
    return {"index": 0, "rank": max(1, round(candidates / 2 ** bits)), "exposure_bits": bits, "max_bits": math.log2(candidates),
            "candidates": candidates, "extrapolated_bits": None, "extracted": False, **extra}


def report(*, canaries=None, members=200, nonmembers=200, auc=0.52, tpr=0.01, attack_epsilon=0.0, pii=True, one_run=None):
    """A report within every default limit, measured with enough power for each check."""
    attack = {"auc": auc, "auc_ci": [auc - 0.05, auc + 0.05], "tpr_at_1pct_fpr": tpr,
              "epsilon_lower_bound": {"epsilon": attack_epsilon}}
    made = {
        "canaries": [canary(0.5), canary(1.0), canary(1.5)] if canaries is None else canaries,
        "membership": {"members": members, "nonmembers": nonmembers, "attacks": {"loss": attack},
                       "distribution_shift": {"auc": 0.5, "warning": shift_warning(0.5)}},
        "one_run": one_run if one_run is not None else {
            "canaries": 1000, "guesses": 200, "correct": 150, "confidence": 0.95, "delta": 1e-5, "epsilon_lower_bound": 0.4,
            "max_provable_epsilon": 3.0, "claimed_epsilon": 2.0, "method": "test"},
    }
    if pii:
        made["pii"] = {"original_hits": 0, "original_hits_attributable": 0}
    return made


def check(verdict, code):
    return next(c for c in verdict["checks"] if c["code"] == code)


APPROVED = Thresholds(max_epsilon=2.5, dp_required=True)


# --- 10: a check that did not run is not a pass ---------------------------------------------------


def test_no_canaries_leave_both_canary_checks_not_tested_and_the_verdict_inconclusive():
    verdict = evaluate_verdict(report(canaries=[]), APPROVED, 2.0)
    for code in ("canary_exposure", "canary_memorised"):
        assert check(verdict, code)["outcome"] == "not_tested" and check(verdict, code)["passed"] is False
        assert "no canaries were planted" in check(verdict, code)["reason"]
    assert verdict["outcome"] == "inconclusive" and verdict["passed"] is False
    assert verdict["not_tested"] == ["canary_exposure", "canary_memorised"]


def test_a_failed_check_fails_the_verdict_even_when_others_were_not_tested():
    verdict = evaluate_verdict(report(canaries=[], auc=0.9), APPROVED, 2.0)
    assert verdict["outcome"] == "fail" and not verdict["passed"]


def test_every_check_has_an_outcome_and_passed_is_true_only_when_it_passed():
    verdict = evaluate_verdict(report(canaries=[], nonmembers=50, pii=False), Thresholds(max_mia_auc=None), None)
    outcomes = {c["outcome"] for c in verdict["checks"]}
    assert outcomes <= {"passed", "failed", "not_tested"} and "not_tested" in outcomes
    assert all(c["passed"] == (c["outcome"] == "passed") for c in verdict["checks"])
    assert all(c["reason"] for c in verdict["checks"])


def test_the_cli_prints_inconclusive_and_exits_3(tmp_path, monkeypatch, capsys):
    from audits.engine import audit

    monkeypatch.setattr(audit, "run_audit", lambda *args, **kwargs: report(canaries=[]))
    (tmp_path / "model").mkdir()
    texts = tmp_path / "texts.jsonl"
    texts.write_text('{"text": "one"}\n{"text": "two"}\n')
    common = ["--base", str(tmp_path / "model"), "--adapter", str(tmp_path / "model"), "--members", str(texts),
              "--nonmembers", str(texts), "--no-pii", "--epsilon", "2"]
    assert audit.main(common) == 3
    printed = capsys.readouterr().out
    assert "VERDICT: INCONCLUSIVE" in printed and "[not tested] No canary learned by heart" in printed
    monkeypatch.setattr(audit, "run_audit", lambda *args, **kwargs: report())
    assert audit.main(common) == 0 and "VERDICT: PASS" in capsys.readouterr().out
    monkeypatch.setattr(audit, "run_audit", lambda *args, **kwargs: report(auc=0.9))
    assert audit.main(common) == 1 and "VERDICT: FAIL" in capsys.readouterr().out


# --- 2: the ε spent within the approved limit -----------------------------------------------------


def test_epsilon_spent_above_the_approved_limit_fails_critically():
    verdict = evaluate_verdict(report(), Thresholds(max_epsilon=1.0), 2.0)
    spent = check(verdict, "epsilon_spent")
    assert spent["outcome"] == "failed" and spent["critical"] and (spent["value"], spent["limit"]) == (2.0, 1.0)
    assert verdict["outcome"] == "fail" and "more privacy than was approved" in spent["reason"]
    assert check(evaluate_verdict(report(), Thresholds(max_epsilon=2.0), 2.0), "epsilon_spent")["outcome"] == "passed"


def test_without_dp_the_epsilon_checks_are_not_tested_and_required_only_where_a_class_requires_dp():
    free = evaluate_verdict(report(), Thresholds(dp_required=False), None)
    assert check(free, "epsilon_spent")["outcome"] == "not_tested" and "without differential privacy" in check(free, "epsilon_spent")["reason"]
    assert free["outcome"] == "pass"
    required = evaluate_verdict(report(), Thresholds(dp_required=True), None)
    assert required["outcome"] == "inconclusive" and "epsilon_spent" in required["not_tested"]


# --- 11: the ε claim tested by the one-run audit only ---------------------------------------------


def test_the_membership_attacks_clopper_pearson_figures_do_not_drive_the_verdict():
    verdict = evaluate_verdict(report(attack_epsilon=5.0), APPROVED, 1.0)
    assert verdict["outcome"] == "pass"
    assert not any(c["value"] == 5.0 for c in verdict["checks"])


def test_an_underpowered_one_run_audit_is_not_tested_and_names_the_largest_provable_epsilon():
    one_run = {"canaries": 50, "guesses": 20, "correct": 14, "confidence": 0.95, "epsilon_lower_bound": 0.1,
               "max_provable_epsilon": 1.83}
    claim = check(evaluate_verdict(report(one_run=one_run), APPROVED, 8.0), "epsilon_one_run")
    assert claim["outcome"] == "not_tested"
    assert "underpowered: with 50 audit canaries the largest ε this audit could show is 1.83" in claim["reason"]


def test_without_audit_canaries_the_claim_is_not_tested():
    claim = check(evaluate_verdict(report(one_run={"canaries": 0}), APPROVED, 2.0), "epsilon_one_run")
    assert claim["outcome"] == "not_tested" and "no audit canaries were planted" in claim["reason"]


def test_a_class_minimum_of_audit_canaries_makes_the_claim_test_required():
    underpowered = report(one_run={"canaries": 1000, "epsilon_lower_bound": 0.5, "max_provable_epsilon": 3.0})
    assert evaluate_verdict(underpowered, Thresholds(max_epsilon=8.0), 8.0)["outcome"] == "pass"  # no class asks for it
    verdict = evaluate_verdict(underpowered, Thresholds(max_epsilon=8.0, min_audit_canaries=500), 8.0)
    assert verdict["outcome"] == "inconclusive" and verdict["not_tested"] == ["epsilon_one_run"]
    few = check(evaluate_verdict(report(), Thresholds(max_epsilon=2.5, min_audit_canaries=5000), 2.0), "epsilon_one_run")
    assert few["outcome"] == "not_tested" and "at least 5000" in few["reason"]


def test_a_one_run_bound_above_the_claim_fails_critically_and_reports_the_largest_provable_epsilon():
    one_run = {"canaries": 1000, "guesses": 300, "correct": 290, "confidence": 0.95, "epsilon_lower_bound": 2.9,
               "max_provable_epsilon": 4.2}
    claim = check(evaluate_verdict(report(one_run=one_run), APPROVED, 2.0), "epsilon_one_run")
    assert claim["outcome"] == "failed" and claim["critical"] and "ε ≥ 2.90" in claim["reason"]
    passed = check(evaluate_verdict(report(), APPROVED, 2.0), "epsilon_one_run")
    assert passed["outcome"] == "passed" and "could show up to 3.00" in passed["reason"]


# --- 12: one memorised canary fails; the limit is on the mean -------------------------------------


def test_one_of_ten_canaries_at_9_5_bits_fails_the_verdict_when_the_rest_are_at_chance():
    rng = random.Random(3)
    at_chance = [canary(math.log2(10_000 / rng.randint(1, 10_000))) for _ in range(9)]
    verdict = evaluate_verdict(report(canaries=at_chance + [canary(9.5)]), APPROVED, 2.0)
    assert check(verdict, "canary_exposure")["outcome"] == "passed"  # the mean stays under 3 bits
    memorised = check(verdict, "canary_memorised")
    assert memorised["outcome"] == "failed" and memorised["limit"] == pytest.approx(7.644, abs=1e-3)
    assert verdict["outcome"] == "fail"


def test_an_adapter_that_learned_nothing_fails_at_the_documented_rate():
    assert canary_bar_bits(10) == pytest.approx(math.log2(200)) and chance_false_failure(10) == pytest.approx(0.0489, abs=1e-4)
    rng = random.Random(11)
    trials, failures = 4000, 0
    for _ in range(trials):  # ten canaries ranked uniformly among 10^4 candidates
        ranked = [canary(math.log2(10_000 / rng.randint(1, 10_000))) for _ in range(10)]
        failures += check(evaluate_verdict(report(canaries=ranked), APPROVED, 2.0), "canary_memorised")["outcome"] == "failed"
    spread = 3 * math.sqrt(chance_false_failure(10) * (1 - chance_false_failure(10)) / trials)
    assert abs(failures / trials - chance_false_failure(10)) < spread


def test_a_canary_test_that_cannot_fail_is_not_tested():
    one_candidate = evaluate_verdict(report(canaries=[canary(0.0, candidates=1)] * 3), APPROVED, 2.0)
    assert check(one_candidate, "canary_exposure")["outcome"] == "not_tested"
    assert "could not fail" in check(one_candidate, "canary_exposure")["reason"]
    assert check(one_candidate, "canary_memorised")["outcome"] == "not_tested"
    assert one_candidate["outcome"] == "inconclusive"
    few = check(evaluate_verdict(report(canaries=[canary(1.0, candidates=100)] * 10), APPROVED, 2.0), "canary_memorised")
    assert few["outcome"] == "not_tested" and "at least 200 candidates" in few["reason"]


# --- 14a: a check measured below the class minimum is not tested -----------------------------------


@pytest.mark.parametrize("thresholds, code, words", [
    (Thresholds(max_epsilon=2.5, min_mia_sample=500), "mia_auc", "ask for at least 500 of each"),
    (Thresholds(max_epsilon=2.5, min_canaries=5), "canary_exposure", "at least 5"),
    (Thresholds(max_epsilon=2.5, min_candidates=100_000), "canary_memorised", "at least 100000"),
])
def test_a_check_measured_below_the_class_minimum_is_not_tested(thresholds, code, words):
    verdict = evaluate_verdict(report(), thresholds, 2.0)
    assert check(verdict, code)["outcome"] == "not_tested" and words in check(verdict, code)["reason"]
    assert verdict["outcome"] == INCONCLUSIVE


# --- 13: the audit scores what training saw -------------------------------------------------------


@pytest.mark.parametrize("max_length", [16, 32, 64, 512])
def test_scoring_like_training_keeps_prefix_and_continuation_within_the_training_length(max_length):
    config = scored_like_training(AuditConfig(), max_length)
    assert config.max_length == max_length
    assert config.prefix_tokens + config.continuation_tokens <= max_length
    assert (config.prefix_tokens, config.continuation_tokens) == ((16, 32) if max_length >= 48 else (max_length // 2,) * 2)


# --- In the portal ----------------------------------------------------------------------------------


@pytest.fixture
def classed_run(engineer):
    """A run on two data classes, queued (not trained): thresholds and settings are about records."""
    from tests.governance.request_factory import good_base_model, good_data_class, good_dataset
    from training.runs import create_run

    chats = good_data_class(name="Chats", max_epsilon=8.0, audit_min_candidates=1000, audit_min_mia_sample=100,
                            audit_min_canaries=3)
    health = good_data_class(name="Health", max_epsilon=6.0, audit_min_candidates=5000, audit_min_extraction_sample=20,
                             audit_min_audit_canaries=200)
    dataset = good_dataset(engineer, chats)
    dataset.data_classes.add(health)
    settings = {"training": {"epochs": 0.5, "target_epsilon": 4.0, "max_length": 48}, "audit": {"mia_sample": 300}}
    return create_run(engineer, good_base_model(), [dataset], settings, enqueue=False)


def test_thresholds_carry_the_approved_epsilon_the_dp_requirement_and_the_strictest_minimums(classed_run):
    from audits.runner import thresholds_for, verdict_for

    thresholds = thresholds_for(classed_run)
    assert thresholds["max_epsilon"] == {"value": 4.0, "from": ["the run's target ε"]}
    assert thresholds["dp_required"] == {"value": True, "from": ["Chats", "Health"]}
    assert thresholds["min_candidates"] == {"value": 5000, "from": ["Health"]}
    assert thresholds["min_mia_sample"]["value"] == 100 and thresholds["min_audit_canaries"]["value"] == 200
    spent = check(verdict_for(report(), thresholds, 4.5), "epsilon_spent")
    assert spent["outcome"] == "failed" and spent["limit"] == 4.0


def test_the_audit_runs_at_least_as_strong_as_the_classes_ask_and_as_the_run_asks(classed_run):
    from audits.actions import default_audit_config
    from audits.runner import effective_audit_config

    config = effective_audit_config(classed_run, {**default_audit_config(), "candidates": 10, "mia_sample": 300,
                                                  "extraction_sample": 1})
    assert (config.candidates, config.mia_sample, config.extraction_sample) == (5000, 300, 20)


def test_the_audit_scores_the_runs_training_max_length_whatever_its_settings_say(classed_run):
    from audits.runner import effective_audit_config

    config = effective_audit_config(classed_run, {"max_length": 128, "prefix_tokens": 16, "continuation_tokens": 32})
    assert config.max_length == 48 and config.prefix_tokens + config.continuation_tokens <= 48


def test_max_length_is_refused_as_an_audit_setting(classed_run):
    from audits import actions
    from training.runs import InvalidRunSettings, RunSettings

    with pytest.raises(InvalidRunSettings, match="training.max_length"):
        RunSettings.from_dict({"audit": {"max_length": 128}})
    type(classed_run).objects.filter(pk=classed_run.pk).update(state="succeeded")
    with pytest.raises(ValueError, match="max_length is the run's"):
        actions.queue_audit(None, classed_run, config={"max_length": 128}, enqueue=False)
    assert "max_length" not in actions.queue_audit(None, classed_run, enqueue=False).config


def inconclusive_audit(run):
    from audits import actions
    from audits.models import AdapterAudit, AuditState

    item = AdapterAudit.objects.create(run=run, state=AuditState.RUNNING)
    verdict = evaluate_verdict(report(canaries=[]), APPROVED, 2.0)
    return actions.finish_audit(item, report=report(canaries=[]), verdict=verdict, thresholds={}, charts={})


@pytest.fixture
def audited(engineer, legal, privacy):
    from tests.audits.pack_factory import audited_run

    run, passed = audited_run(engineer, legal, privacy)
    passed.delete()  # the tests finish their own audit
    return run


def test_a_finished_audit_records_its_outcome_and_the_trail_says_inconclusive(audited):
    from governance.models import AuditEvent

    item = inconclusive_audit(audited)
    assert item.outcome == "inconclusive" and item.passed is False
    assert [c["code"] for c in item.untested_checks] == ["canary_exposure", "canary_memorised"] and item.failed_checks == []
    event = AuditEvent.objects.filter(action="adapteraudit.completed", object_id=str(item.pk)).get()
    assert "inconclusive (not tested: canary_exposure, canary_memorised)" in event.summary
    assert json.loads(event.payload)["outcome"] == "inconclusive"


def test_releasing_an_inconclusive_audit_is_an_override_that_names_the_checks_not_tested(audited, privacy):
    from audits import actions
    from governance.models import AuditEvent

    inconclusive_audit(audited)
    with pytest.raises(actions.ReleaseRefused, match="inconclusive.*Canary exposure \\(mean across canaries\\); No canary "
                                                     "learned by heart.*override"):
        actions.release_adapter(privacy, audited)
    decision = actions.release_adapter(privacy, audited, "The canary phase was skipped for this internal pilot; accepted.")
    assert decision.override
    payload = json.loads(AuditEvent.objects.get(action="adapter.released").payload)
    assert payload["audit_outcome"] == "inconclusive" and payload["override"] is True


def test_the_audit_and_run_pages_show_the_inconclusive_verdict_and_what_was_not_tested(audited, privacy):
    from django.urls import reverse

    from tests.conftest import client_for

    item = inconclusive_audit(audited)
    page = client_for(privacy).get(item.get_absolute_url()).content.decode()
    assert "Verdict: <strong class=\"state-inconclusive\">inconclusive</strong>" in page
    assert "<strong>not tested</strong>" in page and "This audit is inconclusive" in page
    run_page = client_for(privacy).get(reverse("training:run_detail", args=[audited.pk])).content.decode()
    assert "Inconclusive</strong> (2 required checks not tested)" in run_page


def test_the_audit_page_presents_the_attacks_epsilon_figure_as_descriptive_and_shows_the_one_run_test(audited, privacy):
    from tests.conftest import client_for

    page = client_for(privacy).get(inconclusive_audit(audited).get_absolute_url()).content.decode()
    assert "Empirical ε lower bound" not in page and "Clopper–Pearson ε figure (descriptive)" in page
    assert "The ε claim tested (one-run audit)" in page and "1000 audit canaries" in page


def test_the_evidence_pack_says_inconclusive_and_which_checks_were_not_tested(audited, privacy):
    from workflow import actions, evidence
    from tests.audits.test_evidence_pack import members, pdf_text

    inconclusive_audit(audited)
    text = " ".join(pdf_text(members(evidence.read_pack_bytes(actions.build_pack(privacy, audited)))["report.pdf"]).split())
    assert "Verdict: INCONCLUSIVE" in text and "not tested" in text
    assert "did not run, so the adapter has not passed" in text


def test_the_exposure_limit_is_labelled_as_a_limit_on_the_mean():
    from governance.models import DataClass

    field = DataClass._meta.get_field("audit_max_exposure_bits")
    assert "MEAN" in field.verbose_name and "mean exposure across the run's canaries" in field.help_text


def test_the_request_form_estimates_the_audit_time_from_this_portals_measured_audits(audited, engineer):
    from audits.models import AdapterAudit
    from workflow.request_forms import audit_cost_sentence

    AdapterAudit.objects.all().delete()
    assert "No audit has completed on this portal yet" in audit_cost_sentence({}, [], None)
    # 3 canaries × 1,000 candidates in 30 s: 100 per second; 200 records in 20 s; 20 s for the rest.
    AdapterAudit.objects.create(run=audited, state="completed", report={
        "canaries": [{"candidates": 1000}] * 3, "membership": {"members": 100, "nonmembers": 100},
        "seconds": {"canaries": 30.0, "membership": 20.0, "extraction": 12.0, "utility": 8.0}})
    sentence = audit_cost_sentence({"canaries": {"count": 10}, "audit": {"candidates": 10_000, "mia_sample": 500}}, [], None)
    # 100,000 candidates: 1,000 s; 1,000 records: 100 s; 20 s: 1,120 s in all.
    assert "about 19 min in all" in sentence and "100 candidates scored per second" in sentence
    assert "about 17 min for the exposure test" in sentence and "An estimate, not a promise" in sentence


def test_the_request_form_shows_what_the_audit_costs(engineer):
    from django.urls import reverse

    from tests.conftest import client_for

    page = client_for(engineer).get(reverse("workflow:request_create")).content.decode()
    assert 'id="audit-cost"' in page and "candidates" in page


# --- The demo --------------------------------------------------------------------------------------


def test_the_demo_request_meets_the_minimums_of_its_data_class_and_asks_for_no_max_length(db):
    from django.core.management import call_command

    from governance.models import DataClass
    from portal import demo

    call_command("seed_demo", stdout=__import__("io").StringIO())
    support = DataClass.objects.get(name="Customer support transcripts")
    audit, canaries = demo.DEMO_SETTINGS["audit"], demo.DEMO_SETTINGS["canaries"]
    assert "max_length" not in audit
    assert audit["candidates"] >= support.audit_min_candidates and audit["mia_sample"] >= support.audit_min_mia_sample
    assert audit["extraction_sample"] >= support.audit_min_extraction_sample and canaries["count"] >= support.audit_min_canaries
    # Three canaries among the minimum of candidates can show one learned by heart.
    assert canary_bar_bits(support.audit_min_canaries) <= math.log2(support.audit_min_candidates)


def test_the_demo_holds_out_enough_non_members_to_measure_tpr_at_one_percent():
    from audits.engine.audit import MIN_NONMEMBERS_FOR_TPR
    from portal import demo
    from training.engine.redaction import normalise_for_dedup

    texts = [json.loads(line)["text"] for line in demo.demo_support_tickets().splitlines()]
    kept = len({normalise_for_dedup(t) for t in texts})  # near duplicates are dropped before the split
    assert round(kept * demo.DEMO_SETTINGS["holdout_fraction"]) >= MIN_NONMEMBERS_FOR_TPR
    assert demo.DEMO_SETTINGS["audit"]["mia_sample"] >= MIN_NONMEMBERS_FOR_TPR
