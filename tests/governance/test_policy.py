"""Policy rules: each fires on the request that breaks it, and stays quiet on one that does not."""

import datetime as dt

import pytest
from django.utils import timezone

from governance import models as m
from workflow import models as wm
from workflow import policy
from tests.conftest import make_dataset, make_dpa
from tests.governance.request_factory import good_data_class, good_dataset, make_good_request, make_succeeded_run
from training.models import BaseModel, RedactionReview, ReviewReason

pytestmark = pytest.mark.django_db


@pytest.fixture
def good_request(engineer):
    """A factory: a request with no finding, with whatever the test changes."""
    return lambda **overrides: make_good_request(engineer, **overrides)


def findings(request, **kwargs):
    return policy.findings_for(request, today=kwargs.pop("today", timezone.localdate()), **kwargs)


def by_code(request, code, **kwargs):
    return [f for f in findings(request, **kwargs) if f.code == code]


def _external(region="eu-west-1", dpa=None, **dpa_fields):
    """An external provider with a DPA (in force unless told otherwise) and a valid SOC 2."""
    processor = m.Processor.objects.create(name="Northwind GPU Cloud")
    today = timezone.localdate()
    m.Attestation.objects.create(processor=processor, kind=m.AttestationKind.SOC2_TYPE2,
                                 issued_on=today - dt.timedelta(days=10), expires_on=today + dt.timedelta(days=300))
    if dpa is None:
        dpa = make_dpa(processor, **dpa_fields)
        dpa.save()
    return m.ComputeTarget.objects.create(name="Northwind A100s", kind=m.ComputeKind.EXTERNAL_PROVIDER, region=region,
                                          processor=processor, dpa=dpa)


# --------------------------------------------------------------------------- the whole


def test_a_good_request_has_no_findings(good_request):
    assert findings(good_request()) == []


def test_rules_are_pure_functions_of_a_context_built_by_hand():
    ctx = policy.PolicyContext(
        datasets=(), settings=None, settings_error="unknown key", base_model="b", base_model_licence="",
        compute=policy.ComputeFacts(name="c", kind=m.ComputeKind.ON_PREMISES, region="r", active=False, processor="", dpa=None,
                                    expired_attestations=()),
        threat=policy.ThreatModel(leak_definition="x", adversaries=("insider",), audience="internal", intended_use="y"),
    )
    codes = [f.code for f in policy.evaluate(ctx)]
    assert codes == ["settings_invalid", "compute_inactive", "base_model_licence_unknown"]


def test_blockers_come_before_warnings(good_request):
    request = good_request(settings={"redaction": False, "canaries": {"count": 0}})
    assert [f.severity for f in findings(request)] == ["blocker", "warning"]


# --------------------------------------------------------------------------- settings and data classes


def test_invalid_stored_settings_block(good_request):
    request = good_request()
    wm.TrainingRequest.objects.filter(pk=request.pk).update(settings={"colour": "blue"})
    request.refresh_from_db()
    assert "colour" in by_code(request, "settings_invalid")[0].message


def test_valid_settings_pass(good_request):
    assert by_code(good_request(), "settings_invalid") == []


def test_an_unclassified_dataset_blocks_until_the_privacy_officer_classifies_it(engineer, good_request):
    dataset = make_dataset(engineer, name="Unclassified tickets")
    [finding] = by_code(good_request(datasets=[dataset]), "dataset_unclassified")
    assert finding.severity == "blocker"
    assert "“Unclassified tickets” has not been classified by the privacy officer" in finding.message


def test_a_classified_dataset_passes_the_unclassified_rule(good_request):
    assert by_code(good_request(), "dataset_unclassified") == []


def test_a_class_forbidding_fine_tuning_blocks(engineer, good_request):
    dataset = good_dataset(engineer, good_data_class(name="HR files", fine_tuning_use=m.FineTuningUse.FORBIDDEN))
    [finding] = by_code(good_request(datasets=[dataset]), "class_forbids_fine_tuning")
    assert finding.severity == "blocker"
    assert finding.message == "The dataset “Good tickets” is in data class “HR files”, which forbids fine-tuning."


def test_a_class_allowing_fine_tuning_passes(good_request):
    assert by_code(good_request(), "class_forbids_fine_tuning") == []


def test_a_dataset_marked_evaluation_only_blocks(engineer, good_request):
    dataset = good_dataset(engineer, segment=m.Segment.EVAL_ONLY)
    [finding] = by_code(good_request(datasets=[dataset]), "eval_only_dataset")
    assert "“Good tickets” is marked for evaluation only" in finding.message


def test_a_class_for_evaluation_only_blocks(engineer, good_request):
    dataset = good_dataset(engineer, good_data_class(name="Benchmarks", fine_tuning_use=m.FineTuningUse.EVAL_ONLY))
    [finding] = by_code(good_request(datasets=[dataset]), "eval_only_dataset")
    assert "“Benchmarks”, which may be used for evaluation only" in finding.message


def test_a_training_dataset_passes_the_evaluation_only_rule(good_request):
    assert by_code(good_request(), "eval_only_dataset") == []


def test_training_without_dp_where_the_class_requires_it_blocks(good_request):
    [finding] = by_code(good_request(settings={"training": {"dp": False}}), "dp_required")
    assert "“Support tickets”, which requires differential privacy" in finding.message


def test_training_without_dp_where_no_class_requires_it_passes(engineer, good_request):
    dataset = good_dataset(engineer, good_data_class(name="Public docs", dp_required=False))
    assert by_code(good_request(datasets=[dataset], settings={"training": {"dp": False}}), "dp_required") == []


def test_epsilon_above_the_class_maximum_blocks(good_request):
    [finding] = by_code(good_request(settings={"training": {"target_epsilon": 9.0}}), "epsilon_above_class_max")
    assert "at most ε = 8; this request targets ε = 9." in finding.message


def test_epsilon_at_the_class_maximum_passes(good_request):
    assert by_code(good_request(settings={"training": {"target_epsilon": 8.0}}), "epsilon_above_class_max") == []


def test_delta_above_the_class_maximum_blocks(engineer, good_request):
    dataset = good_dataset(engineer, good_data_class(max_delta=1e-6))
    [finding] = by_code(good_request(datasets=[dataset], settings={"training": {"target_delta": 1e-5}}), "delta_above_class_max")
    assert "at most δ = 1e-06; this request uses δ = 1e-05." in finding.message


def test_delta_left_to_one_over_n_passes(engineer, good_request):
    dataset = good_dataset(engineer, good_data_class(max_delta=1e-6))
    assert by_code(good_request(datasets=[dataset]), "delta_above_class_max") == []


def test_delta_left_to_the_engine_is_not_checked_against_the_default_ceiling(good_request):
    assert by_code(good_request(), "delta_above_default_max") == []


def test_delta_above_the_default_ceiling_without_a_class_allowing_it_blocks(good_request):
    [finding] = by_code(good_request(settings={"training": {"target_delta": 1e-4}}), "delta_above_default_max")
    assert finding.severity == "blocker"
    assert "uses δ = 0.0001, and no data class of its datasets allows a δ above 1e-05" in finding.message


def test_a_raised_cap_on_the_default_delta_blocks_like_a_delta_asked_for(good_request):
    """`max_delta` raises the cap the engine's default δ = min(cap, 1/(10N)) uses: at 0.5 and N = 30,
    δ would be 0.0033, far above 1e-5, with no class allowing it (outside review of issue 12)."""
    [finding] = by_code(good_request(settings={"training": {"max_delta": 0.5}}), "delta_above_default_max")
    assert finding.severity == "blocker" and "raises the cap on δ to 0.5" in finding.message


def test_a_lowered_cap_on_the_default_delta_passes(good_request):
    assert by_code(good_request(settings={"training": {"max_delta": 1e-6}}), "delta_above_default_max") == []


def test_delta_above_the_default_ceiling_passes_where_a_class_allows_it(engineer, good_request):
    dataset = good_dataset(engineer, good_data_class(max_delta=1e-3))
    request = good_request(datasets=[dataset], settings={"training": {"target_delta": 1e-4}})
    assert by_code(request, "delta_above_default_max") == [] and by_code(request, "delta_above_class_max") == []


def test_delta_not_below_one_over_n_blocks_and_says_why(engineer, good_request):
    """At δ ≥ 1/N a mechanism may publish one record verbatim: ten records, δ = 0.2 is such a δ."""
    content = "".join(f'{{"text": "ticket {i}"}}\n' for i in range(10))
    dataset = good_dataset(engineer, good_data_class(max_delta=0.5), content=content)
    request = good_request(datasets=[dataset], settings={"training": {"target_delta": 0.2}})
    [finding] = by_code(request, "delta_not_below_one_over_n")
    assert finding.severity == "blocker"
    assert "about 9 training records, which is not well below 1/9" in finding.message
    assert "word for word" in finding.message


def test_delta_far_below_one_over_n_passes(engineer, good_request):
    content = "".join(f'{{"text": "ticket {i}"}}\n' for i in range(10))
    dataset = good_dataset(engineer, good_data_class(max_delta=0.5), content=content)
    request = good_request(datasets=[dataset], settings={"training": {"target_delta": 1e-3}})
    assert by_code(request, "delta_not_below_one_over_n") == []


def test_redaction_off_where_the_class_requires_it_blocks(good_request):
    [finding] = by_code(good_request(settings={"redaction": False}), "redaction_required")
    assert "requires redaction of personal data, and this request turns it off." in finding.message


def test_redaction_off_where_no_class_requires_it_passes(engineer, good_request):
    dataset = good_dataset(engineer, good_data_class(redaction_required=False))
    assert by_code(good_request(datasets=[dataset], settings={"redaction": False}), "redaction_required") == []


# --------------------------------------------------------------------------- datasets


def test_a_shredded_dataset_blocks(good_request):
    request = good_request()
    m.Dataset.objects.filter(pk__in=request.datasets.all()).update(state=m.DatasetState.SHREDDED)
    [finding] = by_code(request, "dataset_shredded")
    assert finding.message == "The dataset “Good tickets” was crypto-shredded: its content can no longer be used."


def test_an_active_dataset_passes_the_shredded_rule(good_request):
    assert by_code(good_request(), "dataset_shredded") == []


def _review(dataset, reason, decision="pending", record_id="1"):
    return RedactionReview.objects.create(dataset=dataset, record_id=record_id, entity_type="PERSON", start=0, end=4, score=0.9,
                                          reason=reason, snippet_offset=0, snippet_sealed=b"x", decision=decision)


def test_pending_high_risk_reviews_block(good_request):
    request = good_request()
    _review(request.datasets.get(), ReviewReason.HIGH_RISK)
    [finding] = by_code(request, "pending_high_risk_reviews")
    assert "“Good tickets” has 1 high-risk redaction review item that the privacy officer has not decided" in finding.message


def test_decided_or_low_confidence_reviews_pass(good_request):
    request = good_request()
    _review(request.datasets.get(), ReviewReason.HIGH_RISK, decision="accepted")
    _review(request.datasets.get(), ReviewReason.LOW_CONFIDENCE, record_id="2")
    assert by_code(request, "pending_high_risk_reviews") == []


def test_a_high_duplicate_rate_warns(good_request):
    request = good_request()
    m.Dataset.objects.filter(pk__in=request.datasets.all()).update(pii_profile={"duplicate_share": 0.25})
    [finding] = by_code(request, "high_duplicate_rate")
    assert finding.severity == "warning" and finding.message.startswith("25% of the records of dataset “Good tickets”")


@pytest.mark.parametrize("profile", [{"duplicate_share": 0.05}, {"sampled_records": 10, "total_records": 10, "entities": {}}])
def test_a_low_or_unmeasured_duplicate_rate_passes(good_request, profile):
    request = good_request()
    m.Dataset.objects.filter(pk__in=request.datasets.all()).update(pii_profile=profile)
    assert by_code(request, "high_duplicate_rate") == []


def test_spending_past_the_privacy_budget_blocks_with_the_numbers(engineer, good_request):
    dataset = good_dataset(engineer, good_data_class(max_total_epsilon=10.0))
    make_succeeded_run(engineer, dataset, epsilon=7.0, delta=1e-5)  # no σ/q/steps: basic composition
    [finding] = by_code(good_request(datasets=[dataset]), "privacy_budget_exceeded")
    assert finding.message == ("Data class “Support tickets” caps the total privacy loss on dataset “Good tickets” at ε = 10; "
                               "1 earlier run spent ε = 7 and this request adds up to ε = 4, a total of 11.")


def test_a_past_run_without_dp_exhausts_the_privacy_budget(engineer, good_request):
    dataset = good_dataset(engineer, good_data_class(max_total_epsilon=10.0))
    make_succeeded_run(engineer, dataset, dp=False)
    [finding] = by_code(good_request(datasets=[dataset]), "privacy_budget_exceeded")
    assert "without differential privacy, so its budget is spent" in finding.message


def test_spending_within_the_privacy_budget_passes(engineer, good_request):
    dataset = good_dataset(engineer, good_data_class(max_total_epsilon=12.0))
    make_succeeded_run(engineer, dataset, epsilon=7.0, delta=1e-5)
    assert by_code(good_request(datasets=[dataset]), "privacy_budget_exceeded") == []


# --------------------------------------------------------------------------- compute and contracts


def test_an_external_provider_without_a_dpa_blocks(good_request):
    target = _external()
    m.ComputeTarget.objects.filter(pk=target.pk).update(dpa=None)
    target.refresh_from_db()
    [finding] = by_code(good_request(compute_target=target), "no_dpa_in_force")
    assert "“Northwind A100s” is an external provider, and no data processing agreement covers it" in finding.message


def test_an_external_provider_with_a_lapsed_dpa_blocks_naming_the_reasons(good_request):
    target = _external(expires_on=timezone.localdate() - dt.timedelta(days=1), signed_on=None)
    [finding] = by_code(good_request(compute_target=target), "no_dpa_in_force")
    assert "“Training DPA v1” with Northwind GPU Cloud is not in force today" in finding.message
    assert "it has not been signed" in finding.message and "it expired on" in finding.message


def test_a_dpa_lapsed_at_start_says_since_approval(good_request):
    request = good_request(compute_target=_external())
    later = timezone.localdate() + dt.timedelta(days=400)
    [finding] = by_code(request, "no_dpa_in_force", today=later, at_start=True)
    assert "is not in force since the request was approved" in finding.message


def test_an_external_provider_with_a_dpa_in_force_passes(good_request):
    assert by_code(good_request(compute_target=_external()), "no_dpa_in_force") == []


def test_a_dpa_without_the_no_retention_term_blocks(good_request):
    request = good_request(compute_target=_external(no_retention_of_training_data=False))
    [finding] = by_code(request, "dpa_missing_no_retention")
    assert "does not forbid the processor to retain the training data" in finding.message


def test_a_dpa_without_the_no_training_term_blocks(good_request):
    request = good_request(compute_target=_external(no_training_on_customer_data=False))
    [finding] = by_code(request, "dpa_missing_no_training")
    assert "does not forbid the processor to train its own models on our data" in finding.message


def test_a_dpa_with_both_ai_terms_passes(good_request):
    codes = {f.code for f in findings(good_request(compute_target=_external()))}
    assert not codes & {"dpa_missing_no_retention", "dpa_missing_no_training"}


def test_a_region_outside_the_dpa_blocks(good_request):
    [finding] = by_code(good_request(compute_target=_external(region="us-east-1")), "region_outside_dpa")
    assert "runs in us-east-1, which the data processing agreement" in finding.message


def test_a_region_the_dpa_lists_passes(good_request):
    assert by_code(good_request(compute_target=_external(region="eu-west-1")), "region_outside_dpa") == []


def test_a_region_the_class_does_not_allow_blocks(engineer, good_request):
    dataset = good_dataset(engineer, good_data_class(allowed_regions=["eu-west-1"]))
    [finding] = by_code(good_request(datasets=[dataset]), "region_not_allowed")
    assert "may be processed only in eu-west-1; the compute target “Paris on-prem GPUs” is in on-prem-paris." in finding.message


def test_a_region_the_class_allows_passes(engineer, good_request):
    dataset = good_dataset(engineer, good_data_class(allowed_regions=["eu-west-1", "on-prem-paris"]))
    assert by_code(good_request(datasets=[dataset]), "region_not_allowed") == []


def test_a_compute_kind_the_class_does_not_allow_blocks(engineer, good_request):
    dataset = good_dataset(engineer, good_data_class(allowed_compute_kinds=[m.ComputeKind.PRIVATE_CLOUD]))
    [finding] = by_code(good_request(datasets=[dataset]), "compute_kind_not_allowed")
    assert "may be processed only in a private cloud; the compute target “Paris on-prem GPUs” is on premises." in finding.message


def test_a_compute_kind_the_class_allows_passes(engineer, good_request):
    dataset = good_dataset(engineer, good_data_class(allowed_compute_kinds=[m.ComputeKind.ON_PREMISES]))
    assert by_code(good_request(datasets=[dataset]), "compute_kind_not_allowed") == []


def test_an_inactive_compute_target_blocks(good_request):
    request = good_request()
    m.ComputeTarget.objects.filter(pk=request.compute_target_id).update(active=False)
    request.refresh_from_db()
    [finding] = by_code(request, "compute_inactive")
    assert finding.message == "The compute target “Paris on-prem GPUs” was taken out of service."


def test_an_active_compute_target_passes(good_request):
    assert by_code(good_request(), "compute_inactive") == []


def test_an_expired_attestation_of_the_processor_warns(good_request):
    target = _external()
    today = timezone.localdate()
    m.Attestation.objects.create(processor=target.processor, kind=m.AttestationKind.ISO27001,
                                 issued_on=today - dt.timedelta(days=400), expires_on=today - dt.timedelta(days=5))
    [finding] = by_code(good_request(compute_target=target), "attestation_expired")
    assert finding.severity == "warning"
    assert finding.message == "The ISO/IEC 27001 attestation of Northwind GPU Cloud has expired and has not been renewed."


def test_an_expired_attestation_since_renewed_passes(good_request):
    target = _external()
    today = timezone.localdate()
    m.Attestation.objects.create(processor=target.processor, kind=m.AttestationKind.SOC2_TYPE2,
                                 issued_on=today - dt.timedelta(days=400), expires_on=today - dt.timedelta(days=30))
    assert by_code(good_request(compute_target=target), "attestation_expired") == []


# --------------------------------------------------------------------------- audit, model, threat model


def test_an_audit_weaker_than_the_class_minimum_blocks(engineer, good_request):
    """One candidate makes the exposure test unable to fail: the class's minimum stands."""
    dataset = good_dataset(engineer, good_data_class(audit_min_candidates=1000, audit_min_canaries=5))
    request = good_request(datasets=[dataset], settings={"audit": {"candidates": 1}, "canaries": {"count": 2}})
    found = by_code(request, "audit_weaker_than_class_minimum")
    assert [f.severity for f in found] == ["blocker", "blocker"]
    assert "at least 1000 candidates each canary is ranked among; this request asks for 1." in found[0].message
    assert "at least 5 planted canaries; this request asks for 2." in found[1].message


def test_an_audit_at_or_above_the_class_minimum_passes(engineer, good_request):
    dataset = good_dataset(engineer, good_data_class(audit_min_candidates=1000, audit_min_audit_canaries=64))
    request = good_request(datasets=[dataset], settings={"audit": {"candidates": 5000}, "canaries": {"audit_count": 64}})
    assert by_code(request, "audit_weaker_than_class_minimum") == []


def test_no_canaries_warns(good_request):
    [finding] = by_code(good_request(settings={"canaries": {"count": 0}}), "canaries_off")
    assert finding.severity == "warning" and "memorisation audit will not be able to measure" in finding.message


def test_canaries_planted_pass(good_request):
    assert by_code(good_request(settings={"canaries": {"count": 3}}), "canaries_off") == []


def test_a_base_model_without_a_licence_warns(good_request):
    base = BaseModel.objects.create(name="mystery", source="hub", location="x", architecture="gpt2", parameter_count=1)
    [finding] = by_code(good_request(base_model=base), "base_model_licence_unknown")
    assert finding.severity == "warning" and "“mystery” is not recorded" in finding.message


def test_a_base_model_with_a_licence_passes(good_request):
    assert by_code(good_request(), "base_model_licence_unknown") == []


def test_an_empty_threat_model_blocks_naming_what_is_missing(good_request):
    request = good_request(leak_definition="  ", adversaries=[], audience="", intended_use="")
    [finding] = by_code(request, "threat_model_incomplete")
    assert finding.message == ("The threat model is incomplete: it does not say what counts as a leak, nor who might try "
                               "to extract the data, nor who will query the model, nor what the adapter is for.")


def test_a_threat_model_missing_only_the_audience_names_only_that(good_request):
    [finding] = by_code(good_request(audience=""), "threat_model_incomplete")
    assert finding.message == "The threat model is incomplete: it does not say who will query the model."


def test_a_complete_threat_model_passes(good_request):
    assert by_code(good_request(adversaries=[wm.Adversary.INSIDER, wm.Adversary.PROVIDER_STAFF]), "threat_model_incomplete") == []


def test_every_rule_is_tested_here():
    """The acceptance criterion: a rule added to RULES without tests here fails this test."""
    import pathlib

    source = pathlib.Path(__file__).read_text()
    untested = [rule.__name__ for rule in policy.RULES if source.count(f'"{rule.__name__}"') < 2]
    assert untested == []


def test_queued_and_running_runs_hold_their_target_against_the_budget(engineer, good_request):
    dataset = good_dataset(engineer, good_data_class(max_total_epsilon=10.0))
    queued = make_succeeded_run(engineer, dataset, state="queued")
    type(queued).objects.filter(pk=queued.pk).update(config={"training": {"dp": True, "target_epsilon": 8.0}})
    [finding] = by_code(good_request(datasets=[dataset]), "privacy_budget_exceeded")
    assert "0 earlier runs spent ε = 0, 1 queued or running run holds up to ε = 8, and this request adds up to ε = 4" in finding.message


def test_a_run_checked_at_its_own_start_does_not_hold_against_itself(engineer, good_request):
    dataset = good_dataset(engineer, good_data_class(max_total_epsilon=5.0))
    request = good_request(datasets=[dataset])
    own = make_succeeded_run(engineer, dataset, state="running")
    type(own).objects.filter(pk=own.pk).update(config={"training": {"dp": True, "target_epsilon": 4.0}})
    type(request).objects.filter(pk=request.pk).update(run=own)
    request.refresh_from_db()
    assert [f for f in policy.findings_for(request, at_start=True) if f.code == "privacy_budget_exceeded"] == []
