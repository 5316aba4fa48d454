"""The privacy ledger: ε spent per dataset across its runs, composed, against its class cap."""

import math

import pytest
from opacus.accountants import PRVAccountant, RDPAccountant

from workflow import ledger
from tests.conftest import client_for
from tests.governance.request_factory import good_data_class, good_dataset, make_succeeded_run

pytestmark = pytest.mark.django_db


def _dp_run(owner, dataset, sigma, q, steps, epsilon, delta=1e-5, accountant="prv", **kwargs):
    return make_succeeded_run(owner, dataset, epsilon=epsilon, delta=delta, noise_multiplier=sigma, sample_rate=q,
                              steps=steps, accountant=accountant, **kwargs)


def test_a_dataset_without_runs_has_spent_nothing(engineer):
    budget = ledger.budget_for(good_dataset(engineer))
    assert (budget.runs, budget.epsilon, budget.method) == (0, 0.0, ledger.NONE)
    assert budget.summary == "No training run has used this dataset yet: no privacy budget is spent."


def _rdp_epsilon(histories, delta):
    """An accountant fed step by step, as a training loop would."""
    accountant = RDPAccountant()
    for sigma, q, steps in histories:
        for _ in range(steps):
            accountant.step(noise_multiplier=sigma, sample_rate=q)
    return accountant.get_epsilon(delta)


def _prv_epsilon(histories, delta, eps_error=0.01):
    accountant = PRVAccountant()
    accountant.history = list(histories)
    return accountant.get_epsilon(delta, eps_error=eps_error)


def test_runs_reported_with_rdp_compose_in_one_rdp_accountant(engineer):
    dataset = good_dataset(engineer)
    first, second = (1.1, 0.05, 40), (0.9, 0.1, 25)
    _dp_run(engineer, dataset, *first, epsilon=_rdp_epsilon([first], 1e-5), delta=1e-5, accountant="rdp")
    _dp_run(engineer, dataset, *second, epsilon=_rdp_epsilon([second], 2e-5), delta=2e-5, accountant="rdp")
    budget = ledger.budget_for(dataset)
    assert budget.method == ledger.RDP and budget.runs == 2 and budget.delta == 2e-5
    assert budget.epsilon == pytest.approx(_rdp_epsilon([first, second], 2e-5))
    assert budget.epsilon < sum(e.epsilon for e in budget.entries)  # tighter than adding the runs up


def test_one_run_reads_the_epsilon_it_reported(engineer):
    """The demo's run reported ε = 8.00 with PRV and its dataset page read 9.54 (RDP): one accountant now."""
    dataset = good_dataset(engineer)
    history = (0.5847, 1 / 14, 14)
    reported = _prv_epsilon([history], 1e-5)
    _dp_run(engineer, dataset, *history, epsilon=reported, delta=1e-5)
    budget = ledger.budget_for(dataset)
    assert budget.method == ledger.PRV and budget.epsilon == pytest.approx(reported)
    assert budget.epsilon == pytest.approx(8.0, abs=0.01)


def test_prv_runs_compose_their_histories_in_one_prv_accountant(engineer):
    dataset = good_dataset(engineer)
    first, second = (1.1, 0.05, 40), (0.9, 0.1, 25)
    _dp_run(engineer, dataset, *first, epsilon=_prv_epsilon([first], 1e-5), delta=1e-5)
    _dp_run(engineer, dataset, *second, epsilon=_prv_epsilon([second], 1e-5), delta=1e-5)
    budget = ledger.budget_for(dataset)
    composed = _prv_epsilon([first, second], 1e-5, eps_error=ledger.COMPOSED_EPS_ERROR)
    assert budget.method == ledger.PRV and budget.epsilon == pytest.approx(composed)
    assert budget.epsilon < sum(e.epsilon for e in budget.entries)


def test_the_same_content_uploaded_again_shares_one_budget(engineer):
    """The budget keys on the plaintext's SHA-256, not on the database row."""
    data_class = good_data_class()
    first = good_dataset(engineer, data_class, content='{"text": "a ticket"}\n')
    again = good_dataset(engineer, data_class, name="Same tickets, uploaded again", content='{"text": "a ticket"}\n')
    other = good_dataset(engineer, data_class, name="Other tickets", content='{"text": "another ticket"}\n')
    assert first.sha256 == again.sha256 != other.sha256
    make_succeeded_run(engineer, first, epsilon=2.5, delta=1e-5)
    make_succeeded_run(engineer, first, epsilon=1.0, delta=1e-5, state="running")
    budget = ledger.budget_for(again)
    assert (budget.runs, budget.epsilon, budget.reserved_runs) == (1, 2.5, 1)
    assert ledger.budget_for(other).runs == 0


def test_a_run_without_its_parameters_falls_back_to_basic_composition(engineer):
    dataset = good_dataset(engineer)
    _dp_run(engineer, dataset, sigma=1.1, q=0.05, steps=40, epsilon=2.0, delta=1e-5)
    make_succeeded_run(engineer, dataset, epsilon=3.0, delta=2e-5)  # σ, q and steps not recorded
    budget = ledger.budget_for(dataset)
    assert (budget.method, budget.epsilon) == (ledger.BASIC, 5.0)
    assert budget.delta == pytest.approx(3e-5)


def test_a_run_without_dp_makes_the_spent_budget_unbounded(engineer):
    dataset = good_dataset(engineer)
    _dp_run(engineer, dataset, sigma=1.1, q=0.05, steps=40, epsilon=2.0)
    make_succeeded_run(engineer, dataset, dp=False)
    budget = ledger.budget_for(dataset)
    assert budget.unbounded and budget.epsilon is None
    assert "without differential privacy" in budget.summary and "no finite bound" in budget.summary


def test_only_runs_that_finished_training_count(engineer):
    dataset = good_dataset(engineer)
    _dp_run(engineer, dataset, sigma=1.1, q=0.05, steps=40, epsilon=2.0, state="queued")
    make_succeeded_run(engineer, dataset, state="failed", dp=False)
    assert ledger.budget_for(dataset).runs == 0


def test_the_cap_is_the_tightest_class_and_remaining_is_what_is_left(engineer):
    dataset = good_dataset(engineer, good_data_class(max_total_epsilon=10.0))
    dataset.data_classes.add(good_data_class(name="Health notes", max_total_epsilon=6.0))
    make_succeeded_run(engineer, dataset, epsilon=2.5, delta=1e-5)
    budget = ledger.budget_for(dataset)
    assert (budget.cap, budget.cap_class, budget.remaining) == (6.0, "Health notes", 3.5)


def test_nothing_remains_once_the_budget_is_unbounded_or_overspent(engineer):
    dataset = good_dataset(engineer, good_data_class(max_total_epsilon=3.0))
    make_succeeded_run(engineer, dataset, epsilon=4.0, delta=1e-5)
    assert ledger.budget_for(dataset).remaining == 0.0
    make_succeeded_run(engineer, dataset, dp=False)
    assert ledger.budget_for(dataset).remaining == 0.0


def test_without_a_capping_class_nothing_is_capped(engineer):
    budget = ledger.budget_for(good_dataset(engineer))
    assert budget.cap is None and budget.remaining is None


def test_the_dataset_page_shows_the_budget(engineer):
    dataset = good_dataset(engineer, good_data_class(max_total_epsilon=10.0))
    _dp_run(engineer, dataset, sigma=1.1, q=0.05, steps=40, epsilon=2.0)
    page = client_for(engineer).get(dataset.get_absolute_url()).content.decode()
    spent = ledger.budget_for(dataset).epsilon
    assert "Privacy budget" in page and "composed with the PRV accountant" in page
    assert f"{spent:.3f}" in page and f"{10 - spent:.3f}" in page and "“Support tickets” caps the total at ε = 10" in page
    assert not math.isinf(spent)


def test_the_dataset_page_says_when_no_run_has_spent_budget(engineer):
    dataset = good_dataset(engineer)
    page = client_for(engineer).get(dataset.get_absolute_url()).content.decode()
    assert "No training run has used this dataset yet" in page and "No data class of this dataset caps the total ε." in page
