"""Model cards: drafted from the run and its audit, edited by the engineer, approved by the privacy
officer against a content hash, exported as a Hugging Face README.md beside the adapter."""

import io
import json
import tempfile
import zipfile
from pathlib import Path

import pytest
import yaml
from django.urls import reverse
from django.utils import timezone

from audits.models import AdapterAudit, AdapterRelease, AuditState
from workflow import actions
from workflow.model_cards import SECTION_KEYS, model_card_readme
from governance.models import AuditEvent
from workflow.models import MODEL_CARD_SECTIONS, ModelCard, TrainingRequest
from tests.conftest import client_for
from tests.governance.request_factory import good_base_model, make_good_request
from training.models import ArtifactKind, RunState
from training.runs import create_run

RESULT = {"steps": 120, "epochs": 2.0, "epsilon": 3.2, "delta": 1e-5, "noise_multiplier": 0.93, "sample_rate": 0.0125,
          "accountant": "rdp", "records": 1600, "seconds": 42.0, "device": "cpu", "privacy_unit": "record", "subjects": None}
REDACTION = {"records_out": 1590, "datasets": {"1": {
    "records_in": 1620, "records_out": 1590, "records_changed": 410, "records_dropped": 12, "exact_duplicates": 15,
    "near_duplicates": 3, "entities": {"PERSON": {"pseudonymize": 300}, "EMAIL_ADDRESS": {"pseudonymize": 120, "mask": 5}}}}}
REPORT = {
    "canaries": [{"exposure_bits": 1.25}, {"exposure_bits": 2.5}],
    "membership": {"attacks": {"loss": {"auc": 0.53, "tpr_at_1pct_fpr": 0.012, "epsilon_lower_bound": {"epsilon": 0.4}},
                               "zlib": {"auc": 0.55, "tpr_at_1pct_fpr": 0.02, "epsilon_lower_bound": {"epsilon": 0.7}}}},
    "utility": {"texts": 160, "tokens": 9000, "base_perplexity": 31.5, "adapter_perplexity": 18.25, "ratio": 0.58},
    "pii": {"original_hits": 0, "original_hits_attributable": 0, "surrogate_hits": 2},
    "one_run": {"canaries": 1000, "guesses": 300, "correct": 200, "confidence": 0.95, "delta": 1e-5,
                "epsilon_lower_bound": 0.3, "max_provable_epsilon": 4.1, "claimed_epsilon": 3.2, "method": "Steinke et al. 2023"},
}
BASE_WEIGHTS = {"model.safetensors": "b" * 64}


def completed_audit(run, report=REPORT, passed=True) -> AdapterAudit:
    checks = [{"code": "canary_exposure", "label": "Canary exposure (highest)", "value": 2.5, "limit": 3.0, "passed": passed,
               "advisory": False}]
    return AdapterAudit.objects.create(run=run, state=AuditState.COMPLETED, passed=passed, finished_at=timezone.now(),
                                       report=report, verdict={"passed": passed, "checks": checks})


def store_adapter(run, content=b"adapter weights") -> None:
    from training.pipeline import _store_file

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "adapter_model.safetensors"
        path.write_bytes(content)
        _store_file(run, ArtifactKind.ADAPTER, path, "adapter_model.safetensors")


@pytest.fixture
def trained_run(engineer):
    """A run that looks trained and audited, from an approved request, without the minutes of work."""
    base = good_base_model(name="SmolLM2-135M-Instruct", architecture="llama", parameter_count=134_515_008,
                           weight_hashes=BASE_WEIGHTS)
    request = make_good_request(engineer, base_model=base, out_of_scope="Medical or legal advice to customers.",
                                settings={"training": {"accountant": "rdp", "max_grad_norm": 0.8}})
    run = create_run(engineer, base, request.datasets.all(), request.settings, enqueue=False)
    type(run).objects.filter(pk=run.pk).update(
        state=RunState.SUCCEEDED, finished_at=timezone.now(), result=RESULT, redaction_report=REDACTION,
        manifest={"records": {"train": 1430, "holdout": 160, "canaries": 4, "canary_repetitions": 2}})
    TrainingRequest.objects.filter(pk=request.pk).update(run=run)
    run.refresh_from_db()
    store_adapter(run)
    completed_audit(run)
    return run


@pytest.fixture
def card(trained_run):
    return actions.draft_model_card(trained_run)


def test_drafted_facts_match_the_run_and_its_audit(card, trained_run):
    facts = card.facts
    assert facts["base_model"] == {"name": "SmolLM2-135M-Instruct", "architecture": "llama", "parameters": 134_515_008,
                                   "licence": "Apache-2.0", "weights": BASE_WEIGHTS}
    adapter = trained_run.artifacts.get(kind=ArtifactKind.ADAPTER)
    assert facts["adapter"]["files"] == {"adapter_model.safetensors": adapter.sha256}
    assert facts["privacy"] == {"dp": True, "epsilon": 3.2, "delta": 1e-5, "target_epsilon": 4.0, "accountant": "rdp",
                                "sampling": "poisson", "sample_rate": 0.0125, "clipping_norm": 0.8, "noise_multiplier": 0.93,
                                "steps": 120, "unit": "record", "subjects": None, "max_records_per_subject": None}
    redaction = facts["redaction"]
    assert (redaction["records_in"], redaction["records_dropped"], redaction["deduplicated"]) == (1620, 12, 18)
    assert redaction["entities"] == {"EMAIL_ADDRESS": 125, "PERSON": 300}
    audit = facts["audit"]
    assert audit["passed"] is True and audit["max_canary_exposure_bits"] == 2.5
    assert (audit["best_mia_auc"], audit["best_mia_tpr_at_1pct_fpr"]) == (0.55, 0.02)
    # The ε claim is the one-run audit's, never the membership attacks' Clopper–Pearson figures (0.7).
    assert (audit["epsilon_lower_bound"], audit["max_provable_epsilon"], audit["audit_canaries"]) == (0.3, 4.1, 1000)
    assert (audit["holdout_perplexity_base"], audit["holdout_perplexity_adapter"]) == (31.5, 18.25)


def test_the_privacy_section_states_the_guarantee_in_plain_words(card):
    privacy = card.sections["privacy"]
    assert "Each record's influence is bounded: (ε = 3.2, δ = 1e-5)-DP at the record level, RDP accountant" in privacy
    assert "Poisson sampling (sample rate q = 0.0125)" in privacy and "σ = 0.93" in privacy and "120 steps" in privacy
    assert "one-run audit (1,000 audit canaries) shows ε ≥ 0.3 at 95% confidence, consistent with the claimed ε = 3.2" in privacy
    assert "0.7" not in privacy


def test_sections_are_drafted_from_the_request_and_the_facts(card):
    assert set(card.sections) == set(SECTION_KEYS)
    assert "Drafting replies to support tickets" in card.sections["intended_use"]
    assert "Medical or legal advice to customers." in card.sections["intended_use"]
    assert "Any customer name, e-mail address or account number" in card.sections["ethical_considerations"]
    assert "External attacker querying the model" in card.sections["ethical_considerations"]
    assert "ROC AUC 0.55" in card.sections["quantitative_analyses"] and "base 31.5" in card.sections["quantitative_analyses"]
    assert AuditEvent.objects.filter(action="modelcard.drafted", object_id=str(card.pk)).exists()


def test_drafting_again_returns_the_same_card(card, trained_run, engineer):
    assert actions.draft_model_card(trained_run, actor=engineer).pk == card.pk
    assert ModelCard.objects.count() == 1


def test_a_run_that_did_not_train_gets_no_card(engineer):
    base = good_base_model()
    request = make_good_request(engineer, base_model=base)
    run = create_run(engineer, base, request.datasets.all(), {}, enqueue=False)
    with pytest.raises(actions.ModelCardRefused, match="no adapter"):
        actions.draft_model_card(run)


def test_approval_binds_to_the_content_hash(card, privacy):
    seen = card.compute_content_hash()
    card = actions.approve_model_card(privacy, card, seen)
    assert card.state == "approved" and card.content_hash == seen and card.approved_by == privacy
    event = AuditEvent.objects.get(action="modelcard.approved")
    assert json.loads(event.payload)["content_hash"] == seen and event.actor == privacy


def test_approval_is_refused_if_the_card_changed_since_it_was_read(card, engineer, privacy):
    seen = card.compute_content_hash()
    actions.edit_model_card(engineer, card, {"factors": "Evaluated on English tickets only."})
    with pytest.raises(actions.ModelCardRefused, match="changed since you opened it"):
        actions.approve_model_card(privacy, card, seen)
    card.refresh_from_db()
    assert card.state == "draft" and not card.content_hash


def test_an_edit_after_approval_returns_the_card_to_draft(card, engineer, privacy):
    card = actions.approve_model_card(privacy, card, card.compute_content_hash())
    card = actions.edit_model_card(engineer, card, {"caveats_and_recommendations": "Internal use only."})
    card.refresh_from_db()
    assert card.state == "draft" and card.approved_by is None and card.approved_at is None and card.content_hash == ""
    assert card.sections["caveats_and_recommendations"] == "Internal use only."
    event = AuditEvent.objects.get(action="modelcard.edited")
    assert json.loads(event.payload)["approval_voided"] is True and event.actor == engineer


def test_only_the_privacy_officer_approves(card, engineer, legal, admin_user):
    seen = card.compute_content_hash()
    for person in (engineer, legal, admin_user):
        with pytest.raises(PermissionError):
            actions.approve_model_card(person, card, seen)
    card.refresh_from_db()
    assert card.state == "draft"


def test_only_the_runs_engineer_edits(card, other_engineer, privacy):
    for person in (other_engineer, privacy):
        with pytest.raises(PermissionError):
            actions.edit_model_card(person, card, {"factors": "x"})


def test_an_unaudited_card_cannot_be_approved(engineer, privacy, trained_run):
    AdapterAudit.objects.filter(run=trained_run).delete()
    card = actions.draft_model_card(trained_run)
    assert card.facts["audit"] is None
    with pytest.raises(actions.ModelCardRefused, match="not been audited"):
        actions.approve_model_card(privacy, card, card.compute_content_hash())


def test_a_new_audit_refreshes_the_figures_keeps_edited_prose_and_voids_the_approval(card, engineer, privacy, trained_run):
    card = actions.edit_model_card(engineer, card, {"factors": "Our own words."})
    card = actions.approve_model_card(privacy, card, card.compute_content_hash())
    completed_audit(trained_run, report={**REPORT, "canaries": [{"exposure_bits": 0.5}]})
    card = actions.draft_model_card(trained_run)
    assert card.state == "draft" and card.facts["audit"]["max_canary_exposure_bits"] == 0.5
    assert card.sections["factors"] == "Our own words."
    assert "Highest canary exposure: 0.5 bits." in card.sections["quantitative_analyses"]
    assert json.loads(AuditEvent.objects.get(action="modelcard.facts_refreshed").payload)["approval_voided"] is True


def test_the_readme_has_yaml_front_matter_and_every_section(card, engineer):
    card = actions.edit_model_card(engineer, card, {"factors": "Tickets in English and French."})
    readme = model_card_readme(card)
    assert readme.startswith("---\n")
    _, front, body = readme.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["base_model"] == "SmolLM2-135M-Instruct" and meta["license"] == "apache-2.0" and meta["library_name"] == "peft"
    assert {"differential-privacy", "lora"} <= set(meta["tags"])
    metrics = {m["name"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert metrics["Held-out perplexity (adapter)"] == 18.25 and metrics["Membership inference AUC (best attack)"] == 0.55
    assert meta["differential_privacy"]["epsilon"] == 3.2
    for key, label in MODEL_CARD_SECTIONS:
        assert f"## {label}\n" in body
        assert card.sections[key].strip().splitlines()[0] in body
    assert "Tickets in English and French." in body


def test_markup_in_a_section_is_escaped_on_the_page(card, engineer):
    client = client_for(engineer)
    response = client.post(reverse("workflow:model_card_edit", args=[card.run_id]),
                           {**card.sections, "factors": "<script>alert(1)</script>\nsecond line"})
    assert response.status_code == 302
    page = client.get(reverse("workflow:model_card", args=[card.run_id])).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;<br>second line" in page


def test_the_privacy_officer_approves_the_hash_shown_on_the_page(card, privacy):
    client = client_for(privacy)
    url = reverse("workflow:model_card", args=[card.run_id])
    page = client.get(url).content.decode()
    seen = card.compute_content_hash()
    assert f'name="content_hash" value="{seen}"' in page
    client.post(reverse("workflow:model_card_approve", args=[card.run_id]), {"content_hash": seen})
    card.refresh_from_db()
    assert card.state == "approved" and card.content_hash == seen
    stale = client.post(reverse("workflow:model_card_approve", args=[card.run_id]), {"content_hash": "0" * 64}, follow=True)
    assert "already approved" in stale.content.decode() or "changed since" in stale.content.decode()


def test_the_run_page_drafts_and_links_the_card(engineer, trained_run):
    client = client_for(engineer)
    page = client.get(reverse("training:run_detail", args=[trained_run.pk])).content.decode()
    assert "Draft the model card now" in page
    response = client.post(reverse("workflow:model_card_draft", args=[trained_run.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("workflow:model_card", args=[trained_run.pk])
    page = client.get(reverse("training:run_detail", args=[trained_run.pk])).content.decode()
    assert reverse("workflow:model_card", args=[trained_run.pk]) in page


def test_the_readme_downloads_alone_and_inside_the_released_adapter(card, engineer, privacy, trained_run):
    client = client_for(engineer)
    alone = client.get(reverse("workflow:model_card_readme", args=[trained_run.pk]))
    assert alone.status_code == 200 and alone["Content-Type"].startswith("text/markdown")
    assert alone.content.decode() == model_card_readme(card)
    AdapterRelease.objects.create(run=trained_run, audit=trained_run.audits.first(), decision="released", decided_by=privacy)
    archive = zipfile.ZipFile(io.BytesIO(client.get(reverse("audits:adapter_download", args=[trained_run.pk])).content))
    assert archive.read("adapter/README.md").decode() == model_card_readme(card)
    assert archive.read("adapter/adapter_model.safetensors") == b"adapter weights"


def inconclusive_audit(run) -> AdapterAudit:
    """No canaries planted: the canary checks did not run, so the verdict cannot pass."""
    checks = [{"code": "canary_memorised", "label": "No canary learned by heart", "value": None, "limit": None,
               "outcome": "not_tested", "passed": False, "required": True, "advisory": False, "reason": "Not tested."},
              {"code": "mia_auc", "label": "Membership inference AUC (best attack)", "value": 0.55, "limit": 0.6,
               "outcome": "passed", "passed": True, "required": True, "advisory": False, "reason": "Within."}]
    return AdapterAudit.objects.create(run=run, state=AuditState.COMPLETED, finished_at=timezone.now(), report=REPORT,
                                       verdict={"outcome": "inconclusive", "passed": False, "checks": checks})


def test_an_inconclusive_audit_reads_inconclusive_on_the_card_and_names_what_was_not_tested(trained_run):
    from workflow.model_cards import fact_rows

    AdapterAudit.objects.filter(run=trained_run).delete()
    inconclusive_audit(trained_run)
    card = actions.draft_model_card(trained_run)
    audit = card.facts["audit"]
    assert audit["outcome"] == "inconclusive" and audit["passed"] is False
    assert audit["untested_checks"] == ["No canary learned by heart"] and audit["failed_checks"] == []
    assert "was inconclusive (not tested: No canary learned by heart)" in card.sections["quantitative_analyses"]
    assert dict(fact_rows(card.facts))["Audit"].endswith(": inconclusive")


def test_an_underpowered_one_run_audit_says_the_card_could_not_test_the_claim(trained_run):
    AdapterAudit.objects.filter(run=trained_run).delete()
    completed_audit(trained_run, report={**REPORT, "one_run": {**REPORT["one_run"], "max_provable_epsilon": 1.9}})
    privacy = actions.draft_model_card(trained_run).sections["privacy"]
    assert "it could show at most ε ≥ 1.9, below the claimed ε = 3.2, so it could not test the claim" in privacy


def test_the_card_says_why_a_user_may_not_edit_or_approve_it_and_the_page_and_action_agree(engineer, privacy, card):
    """One place per rule (issue 13): the page's buttons and the actions read the same refusal."""
    from workflow.model_card_views import can_approve_card, can_edit_card

    assert card.edit_refusal(engineer) == "" and can_edit_card(engineer, card)
    assert card.edit_refusal(privacy) == "Only the engineer who owns the run edits its model card."
    assert not can_edit_card(privacy, card)
    assert card.approval_refusal(engineer) == "Only the privacy officer approves model cards."
    assert card.approval_refusal(privacy) == "" and can_approve_card(privacy, card)
    with pytest.raises(PermissionError, match="Only the engineer who owns the run"):
        actions.edit_model_card(privacy, card, {"factors": "x"})
