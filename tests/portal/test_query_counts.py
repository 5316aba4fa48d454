"""What a page costs in database queries does not grow with what it lists.

Each test builds N objects, reads the page once to warm the per-process caches (content types,
the user's permissions), counts the queries of one read, adds 2N more objects and counts again: a
page that asks the database once per row shows it as a difference. Pages are addressed by path,
not by URL name, so the counts follow the page whatever its route is called.

The ten busiest pages of the load bench's traffic mix (bench/portal_load.py: the dashboard, the
request page and list, the dataset list and page, the run list and page, the evidence pack list,
the approvers' inbox, the audit trail) and the engineers' API lists are each read by every role
that reads them there.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audits.models import AdapterAudit, AuditState
from audits.sharing import share_pack
from governance import actions as governance_actions
from governance import models as m
from governance import roles
from tests.audits.pack_factory import audited_run, store_artifact
from tests.audits.test_sharing import make_pack
from tests.conftest import _make_user, api_client_for, client_for, make_dataset, make_dpa, make_record
from tests.governance.request_factory import (good_base_model, good_compute_target, good_data_class, good_dataset,
                                              make_good_request, make_succeeded_run)
from training.models import ArtifactKind
from workflow import actions as workflow_actions
from workflow.models import AWAITING_DECISION_STATES, TrainingRequest
from workflow.request_views import awaiting_decision_by

N = 2


def read(client, path: str) -> tuple[int, str]:
    """The number of queries one read of `path` costs, and the page."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, f"{path} answered {response.status_code}"
    return len(captured.captured_queries), response.content.decode()


def counts_at_n_and_3n(client, path: str, add) -> tuple[int, int, str]:
    """Queries for one read of `path` after `add(N)`, then after `add(2 * N)` more; and the last page."""
    add(N)
    client.get(path)  # warm the per-process caches so the first count is not inflated
    first, _ = read(client, path)
    add(2 * N)
    then, page = read(client, path)
    return first, then, page


class Requests:
    """Submitted requests, each naming its own dataset, sharing one class, target and base model."""

    def __init__(self, engineer, data_class=None):
        self.engineer, self.made, self.all = engineer, 0, []
        self.data_class = data_class or good_data_class()
        self.base_model, self.target = good_base_model(), good_compute_target()

    def draft(self, datasets=None):
        self.made += 1
        datasets = datasets or [good_dataset(self.engineer, self.data_class, name=f"Tickets {self.made}")]
        return make_good_request(self.engineer, datasets=datasets, base_model=self.base_model, compute_target=self.target,
                                 title=f"Reply drafts {self.made}")

    def submitted(self, n: int = 1):
        made = [workflow_actions.submit_request(self.engineer, self.draft()) for _ in range(n)]
        self.all += made
        return made


def shows_each(page: str, objects) -> bool:
    return all(obj.get_absolute_url() in page for obj in objects)


# ------------------------------------------------------------------ the dashboard


@pytest.mark.parametrize("persona", ["legal", "privacy"])
def test_the_dashboards_pending_approvals_cost_the_same_however_many_requests_wait(engineer, persona, request):
    made = Requests(engineer)
    first, then, page = counts_at_n_and_3n(client_for(request.getfixturevalue(persona)), "/", made.submitted)
    assert first == then
    assert f"Pending approvals ({3 * N})" in page and shows_each(page, made.all)


def test_the_dashboard_costs_the_same_however_many_renewals_and_unclassified_datasets_there_are(engineer, legal):
    today, shown = timezone.localdate(), []

    def add(n):
        for _ in range(n):
            processor = make_record(legal, m.Processor(name=f"Processor {len(shown)}"))
            attestation = make_record(legal, m.Attestation(processor=processor, kind=m.AttestationKind.SOC2_TYPE2,
                                                           issued_on=today - dt.timedelta(days=300),
                                                           expires_on=today + dt.timedelta(days=10)))
            dpa = make_record(legal, make_dpa(processor, required_attestations=[m.AttestationKind.SOC2_TYPE2]))
            shown.extend([attestation, dpa, make_dataset(engineer, name=f"Unclassified {len(shown)}")])

    first, then, page = counts_at_n_and_3n(client_for(legal), "/", add)
    assert first == then and shows_each(page, shown)


def test_the_dashboard_costs_an_engineer_the_same_however_many_of_their_datasets_await_classification(engineer):
    shown = []

    def add(n):
        shown.extend(make_dataset(engineer, name=f"Unclassified {len(shown)}") for _ in range(n))

    first, then, page = counts_at_n_and_3n(client_for(engineer), "/", add)
    assert first == then and shows_each(page, shown)


@pytest.fixture
def mixed_requests(engineer, legal, privacy):
    """Requests in each situation the inbox's rule tells apart."""
    made = Requests(engineer)
    _fresh, signed_by_legal, rejected_then_resubmitted = made.submitted(3)
    workflow_actions.decide_request(legal, signed_by_legal, "approve")
    # A rejection voids the approvals; resubmitted unchanged, the version is the same, and whoever
    # signed it (even a voided signature) may not sign it again.
    workflow_actions.decide_request(privacy, rejected_then_resubmitted, "reject", comment="Purpose too broad.")
    workflow_actions.submit_request(engineer, rejected_then_resubmitted)
    # A class asking for one more approver: legal counsel and the privacy officer have signed, an
    # administrator may add theirs.
    extra_class = good_data_class(name="Health notes", extra_approvals_required=1)
    needs_more = workflow_actions.submit_request(engineer, made.draft([good_dataset(engineer, extra_class, name="Notes")]))
    workflow_actions.decide_request(legal, needs_more, "approve")
    workflow_actions.decide_request(privacy, needs_more, "approve")
    made.draft()  # never submitted
    return made


@pytest.mark.parametrize("persona", ["legal", "privacy", "admin_user", "engineer"])
def test_the_approvers_inbox_holds_exactly_the_requests_the_reader_may_sign(mixed_requests, persona, request):
    """The fast inbox against the rule itself, asked request by request (`can_decide`)."""
    from workflow.request_views import can_decide

    user = request.getfixturevalue(persona)
    expected = [r.pk for r in TrainingRequest.objects.filter(state__in=AWAITING_DECISION_STATES).exclude(requester=user)
                .order_by("submitted_at") if can_decide(r, user)]
    assert [r.pk for r in awaiting_decision_by(user)] == expected


# ------------------------------------------------------------------ datasets


@pytest.mark.parametrize("persona", ["privacy", "legal", "admin_user", "engineer"])
def test_the_dataset_list_costs_the_same_however_many_datasets_there_are(engineer, persona, request):
    reader = request.getfixturevalue(persona)  # the engineer reads their own
    data_class, shown = good_data_class(), []

    def add(n):
        for _ in range(n):
            shown.append(good_dataset(engineer, data_class, name=f"Tickets {len(shown)}"))

    first, then, page = counts_at_n_and_3n(client_for(reader), "/governance/datasets/", add)
    assert first == then and shows_each(page, shown)


@pytest.mark.parametrize("persona", ["engineer", "privacy"])
def test_the_dataset_page_costs_the_same_however_many_runs_trained_on_it(engineer, persona, request):
    dataset, reader = good_dataset(engineer), request.getfixturevalue(persona)

    def add(n):
        for _ in range(n):
            make_succeeded_run(engineer, dataset, epsilon=1.0, delta=1e-6, noise_multiplier=1.0, sample_rate=0.01, steps=50,
                               accountant="rdp")

    first, then, page = counts_at_n_and_3n(client_for(reader), f"/governance/datasets/{dataset.pk}/", add)
    assert first == then and "Runs counted" in page


def test_the_dataset_page_costs_the_same_however_many_colleagues_it_is_shared_with(engineer):
    dataset, colleagues = good_dataset(engineer), []

    def add(n):
        for _ in range(n):
            colleagues.append(_make_user(f"colleague{len(colleagues)}", roles.ENGINEER))
            governance_actions.share_dataset(engineer, dataset, colleagues[-1])

    first, then, page = counts_at_n_and_3n(client_for(engineer), f"/governance/datasets/{dataset.pk}/", add)
    assert then == first
    assert all(c.username in page for c in colleagues)


# ------------------------------------------------------------------ requests


@pytest.mark.parametrize("persona", ["engineer", "legal", "privacy", "admin_user"])
def test_the_request_list_costs_the_same_however_many_requests_there_are(engineer, persona, request):
    made = Requests(engineer)
    first, then, page = counts_at_n_and_3n(client_for(request.getfixturevalue(persona)), "/governance/requests/", made.submitted)
    assert first == then and shows_each(page, made.all)


@pytest.mark.parametrize("persona", ["legal", "privacy", "engineer"])
def test_the_request_page_costs_the_same_however_many_datasets_it_names(engineer, persona, request):
    """`required_approvals()` (asked three times) reads every named dataset's classes in one query."""
    reader = request.getfixturevalue(persona)  # the engineer is the requester
    data_class, datasets = good_data_class(), []

    def add(n):
        for _ in range(n):
            datasets.append(good_dataset(engineer, data_class, name=f"Tickets {len(datasets)}"))

    add(N)
    submitted = workflow_actions.submit_request(engineer, Requests(engineer, data_class).draft(list(datasets)))
    client, path = client_for(reader), f"/governance/requests/{submitted.pk}/"
    client.get(path)
    first, _ = read(client, path)
    add(2 * N)
    submitted.datasets.set(datasets)
    then, page = read(client, path)
    assert then == first
    assert all(d.name in page for d in datasets)


@pytest.mark.parametrize("persona", ["legal", "privacy"])
def test_the_approvers_inbox_costs_the_same_however_many_requests_wait(engineer, persona, request):
    made = Requests(engineer)
    first, then, page = counts_at_n_and_3n(client_for(request.getfixturevalue(persona)), "/governance/requests/inbox/",
                                           made.submitted)
    assert first == then
    assert shows_each(page, made.all)


# ------------------------------------------------------------------ runs and audits


@pytest.mark.parametrize("persona", ["privacy", "legal", "admin_user", "engineer"])
def test_the_run_list_costs_the_same_however_many_runs_there_are(engineer, persona, request):
    reader = request.getfixturevalue(persona)  # the engineer reads the runs they started
    dataset, shown = good_dataset(engineer), []

    def add(n):
        shown.extend(make_succeeded_run(engineer, dataset) for _ in range(n))

    first, then, page = counts_at_n_and_3n(client_for(reader), "/training/runs/", add)
    assert first == then and shows_each(page, shown)


def more_audits(run, requested_by, shown: list):
    """Audits asked for again on the same run, each with a curve stored beside it."""

    def add(n):
        for _ in range(n):
            audit = AdapterAudit.objects.create(run=run, requested_by=requested_by, state=AuditState.COMPLETED, passed=True,
                                                finished_at=timezone.now())
            store_artifact(run, ArtifactKind.CURVE, f"loss-{audit.pk}.svg", b"<svg/>")
            shown.append(audit)

    return add


@pytest.mark.parametrize("persona", ["privacy", "engineer", "legal"])
def test_the_run_page_costs_the_same_however_many_audits_and_artifacts_the_run_has(engineer, legal, privacy, persona, request):
    run, _ = audited_run(engineer, legal, privacy)
    audits, reader = [], request.getfixturevalue(persona)
    first, then, page = counts_at_n_and_3n(client_for(reader), f"/training/runs/{run.pk}/", more_audits(run, privacy, audits))
    assert first == then
    assert all(f"/audits/{a.pk}/" in page for a in audits) and f"by {privacy.username}" in page


def test_the_audit_page_costs_the_same_however_many_other_audits_and_curves_its_run_has(engineer, legal, privacy):
    run, audit = audited_run(engineer, legal, privacy)
    first, then, page = counts_at_n_and_3n(client_for(privacy), f"/audits/{audit.pk}/", more_audits(run, privacy, []))
    assert first == then and f"Audit {audit.pk}" in page


# ------------------------------------------------------------------ the API lists the engineers' scripts read


def listed_ids(page: str) -> set[int]:
    return {row["id"] for row in json.loads(page)["results"]}


@pytest.mark.parametrize("persona", ["engineer", "privacy"])
def test_the_dataset_api_list_costs_the_same_however_many_datasets_there_are(engineer, persona, request):
    data_class, shown = good_data_class(), []

    def add(n):
        shown.extend(good_dataset(engineer, data_class, name=f"Tickets {len(shown)}") for _ in range(n))

    first, then, page = counts_at_n_and_3n(api_client_for(request.getfixturevalue(persona)), "/api/datasets/", add)
    assert first == then and listed_ids(page) >= {d.pk for d in shown}


@pytest.mark.parametrize("persona", ["engineer", "legal"])
def test_the_request_api_list_costs_the_same_however_many_requests_there_are(engineer, persona, request):
    made = Requests(engineer)
    first, then, page = counts_at_n_and_3n(api_client_for(request.getfixturevalue(persona)), "/api/requests/", made.submitted)
    assert first == then and listed_ids(page) >= {r.pk for r in made.all}


@pytest.mark.parametrize("persona", ["engineer", "privacy"])
def test_the_run_api_list_costs_the_same_however_many_runs_there_are(engineer, persona, request):
    dataset, shown = good_dataset(engineer), []

    def add(n):
        shown.extend(make_succeeded_run(engineer, dataset) for _ in range(n))

    first, then, page = counts_at_n_and_3n(api_client_for(request.getfixturevalue(persona)), "/api/runs/", add)
    assert first == then and listed_ids(page) >= {r.pk for r in shown}


# ------------------------------------------------------------------ evidence and the trail


def test_the_evidence_pack_list_costs_a_regulator_the_same_however_many_packs_are_shared(engineer, privacy, regulator):
    shown = []

    def add(n):
        for _ in range(n):
            shown.append(make_pack(engineer, len(shown) + 1))
            share_pack(privacy, shown[-1], regulator)

    first, then, page = counts_at_n_and_3n(client_for(regulator), "/audits/packs/", add)
    assert first == then and shows_each(page, shown)


@pytest.mark.parametrize("persona", ["privacy", "legal", "admin_user"])
def test_the_evidence_pack_list_costs_its_readers_the_same_however_many_packs_there_are(engineer, persona, request):
    reader, shown = request.getfixturevalue(persona), []

    def add(n):
        for _ in range(n):
            shown.append(make_pack(engineer, len(shown) + 1))

    first, then, page = counts_at_n_and_3n(client_for(reader), "/audits/packs/", add)
    assert first == then and shows_each(page, shown)


@pytest.mark.parametrize("persona", ["privacy", "legal", "admin_user"])
def test_the_audit_trail_costs_the_same_however_many_events_there_are(engineer, persona, request):
    reader, uploads = request.getfixturevalue(persona), []

    def add(n):
        for _ in range(n):
            uploads.append(make_dataset(engineer, name=f"Trail {len(uploads)}"))  # each upload writes an event

    first, then, page = counts_at_n_and_3n(client_for(reader), "/governance/audit-trail/", add)
    assert first == then and all(f"“{d.name}”" in page for d in uploads)
