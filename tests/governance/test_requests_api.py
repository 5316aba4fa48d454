"""Training requests through the REST API and `manage.py request`: the same actions, the same refusals."""

import json

import pytest
import yaml
from django.core.management import CommandError, call_command

from workflow.models import RequestState, TrainingRequest
from tests.conftest import api_client_for
from tests.governance.test_requests import base_model, request_data, setup  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("no_enqueue")


@pytest.fixture
def no_enqueue(monkeypatch):
    from training import runs

    monkeypatch.setattr(runs, "enqueue_run", lambda run, queue="gpu": None)


def api_body(setup, **overrides):
    data = request_data(setup, **overrides)
    return {**data, "base_model": data["base_model"].pk, "compute_target": data["compute_target"].pk, "datasets": [setup["dataset"].pk]}


def created(engineer, setup, **overrides) -> int:
    response = api_client_for(engineer).post("/api/requests/", api_body(setup, **overrides), format="json")
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def submitted(engineer, setup) -> int:
    pk = created(engineer, setup)
    assert api_client_for(engineer).post(f"/api/requests/{pk}/submit/").status_code == 200
    return pk


def test_the_same_idempotency_key_twice_creates_one_request(engineer, setup):
    client = api_client_for(engineer)
    first = client.post("/api/requests/", api_body(setup), format="json", HTTP_IDEMPOTENCY_KEY="retry-7")
    again = client.post("/api/requests/", api_body(setup), format="json", HTTP_IDEMPOTENCY_KEY="retry-7")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"] and TrainingRequest.objects.count() == 1


def test_submit_and_two_approvals_through_the_api_queue_the_run(engineer, legal, privacy, setup):
    pk = submitted(engineer, setup)
    body = api_client_for(legal).post(f"/api/requests/{pk}/approve/", {"comment": "Contract allows it."}, format="json").json()
    assert body["state"] == RequestState.IN_REVIEW and body["missing_approvals"] == {"privacy": 1}
    assert [(a["approver"], a["role"], a["decision"]) for a in body["approvals"]] == [("lena", "legal", "approve")]
    body = api_client_for(privacy).post(f"/api/requests/{pk}/approve/", {"conditions": "Internal use only."}, format="json").json()
    assert body["state"] == RequestState.QUEUED and body["run"] and body["missing_approvals"] == {}
    assert len(body["content_hash"]) == 64 and isinstance(body["findings"], list)


def test_the_requester_is_refused_approving_their_own_request(engineer, setup):
    pk = submitted(engineer, setup)
    response = api_client_for(engineer).post(f"/api/requests/{pk}/approve/", {}, format="json")
    assert response.status_code == 403 and response.json()["detail"]
    assert not TrainingRequest.objects.get(pk=pk).approvals.exists()


def test_a_rejection_through_the_api_needs_its_reasons(engineer, legal, setup):
    pk = submitted(engineer, setup)
    client = api_client_for(legal)
    refused = client.post(f"/api/requests/{pk}/reject/", {}, format="json")
    assert refused.status_code == 400 and "reasons" in refused.json()["detail"]
    body = client.post(f"/api/requests/{pk}/reject/", {"comment": "The contract does not cover training."}, format="json").json()
    assert body["state"] == RequestState.REJECTED


@pytest.mark.parametrize("persona", ["other_engineer", "regulator"])  # no role: 403 everywhere (test_access_matrix)
def test_someone_elses_request_is_not_found(request, engineer, setup, persona):
    pk = submitted(engineer, setup)
    client = api_client_for(request.getfixturevalue(persona))
    assert client.get(f"/api/requests/{pk}/").status_code == 404
    assert client.post(f"/api/requests/{pk}/withdraw/", {}, format="json").status_code == 404
    assert client.patch(f"/api/requests/{pk}/", {"title": "Mine now"}, format="json").status_code == 404


def test_invalid_settings_are_refused_naming_the_setting(engineer, setup):
    response = api_client_for(engineer).post("/api/requests/", api_body(setup, settings={"training": {"accountant": "gdp"}}), format="json")
    assert response.status_code == 400 and "accountant" in response.json()["detail"]
    assert not TrainingRequest.objects.exists()


def test_an_edit_through_the_api_returns_the_request_to_draft(engineer, legal, setup):
    pk = submitted(engineer, setup)
    api_client_for(legal).post(f"/api/requests/{pk}/approve/", {}, format="json")
    body = api_client_for(engineer).patch(f"/api/requests/{pk}/", {"title": "Support reply drafts v2"}, format="json").json()
    assert body["state"] == RequestState.DRAFT and body["content_hash"] == "" and body["approvals"][0]["voided_at"]


def test_cancelling_a_request_without_a_run_is_refused(engineer, setup):
    pk = submitted(engineer, setup)
    response = api_client_for(engineer).post(f"/api/requests/{pk}/cancel/")
    assert response.status_code == 400 and "no run yet" in response.json()["detail"]


def test_cancelling_an_approved_request_cancels_its_queued_run(engineer, legal, privacy, setup):
    pk = submitted(engineer, setup)
    for approver in (legal, privacy):
        api_client_for(approver).post(f"/api/requests/{pk}/approve/", {}, format="json")
    body = api_client_for(engineer).post(f"/api/requests/{pk}/cancel/").json()
    assert body["state"] == RequestState.CANCELLED
    run = api_client_for(engineer).get(f"/api/runs/{body['run']}/").json()
    assert run["state"] == "cancelled" and run["request"] == pk
    assert api_client_for(engineer).post(f"/api/runs/{body['run']}/cancel/").status_code == 400


def test_a_runs_progress_is_readable_by_its_engineer_only(engineer, other_engineer, legal, privacy, setup):
    from training import runs
    from training.models import TrainingRun

    pk = submitted(engineer, setup)
    for approver in (legal, privacy):
        api_client_for(approver).post(f"/api/requests/{pk}/approve/", {}, format="json")
    run = TrainingRun.objects.get()
    runs.mark_started(run, "test-worker")
    runs.record_progress(run, step=5, total_steps=20, epoch=0.25, loss=2.5, epsilon_spent=1.2, eta_seconds=30)
    body = api_client_for(engineer).get(f"/api/runs/{run.pk}/").json()
    assert {k: body[k] for k in ("state", "step", "total_steps", "percent", "epsilon_spent", "request")} == {
        "state": "running", "step": 5, "total_steps": 20, "percent": 25, "epsilon_spent": 1.2, "request": pk}
    assert body["heartbeat"] is not None
    assert api_client_for(other_engineer).get(f"/api/runs/{run.pk}/").status_code == 404
    assert [r["id"] for r in api_client_for(engineer).get("/api/runs/").json()["results"]] == [run.pk]


def test_the_openapi_schema_documents_the_request_endpoints(engineer):
    schema = yaml.safe_load(api_client_for(engineer).get("/api/schema/").content)
    for path in ("/api/requests/", "/api/requests/{id}/", "/api/requests/{id}/submit/", "/api/requests/{id}/approve/",
                 "/api/requests/{id}/reject/", "/api/requests/{id}/withdraw/", "/api/requests/{id}/cancel/", "/api/runs/{id}/cancel/"):
        assert path in schema["paths"]
    create = schema["paths"]["/api/requests/"]["post"]
    assert {"Idempotency-Key"} == {p["name"] for p in create["parameters"] if p["in"] == "header"}
    assert {"200", "201", "400"} <= set(create["responses"])


# --------------------------------------------------------------------------- run settings: one schema, a 400 naming the key


def post_raw(engineer, text: str, **headers):
    """The body as the bytes a client sent (JSON that Python's encoder would not write)."""
    return api_client_for(engineer).post("/api/requests/", data=text, content_type="application/json", **headers)


def refusal_text(response) -> str:
    """Every sentence of a 400, whichever layer refused first: the API's JSON parser (a field's
    errors) or the run settings' schema (`detail`)."""
    return json.dumps(response.json(), ensure_ascii=False)


def raw_body(setup, settings_json: str) -> str:
    """The request's JSON with `settings_json` spliced in as its settings, verbatim."""
    return json.dumps({**api_body(setup), "settings": "SETTINGS"}).replace('"SETTINGS"', settings_json)


@pytest.mark.parametrize("value", ["abc", [8.0], {"value": 8}, None])
def test_a_settings_value_of_the_wrong_type_is_a_400_naming_its_key(engineer, setup, value):
    body = api_body(setup, settings={"training": {"target_epsilon": value}})
    response = api_client_for(engineer).post("/api/requests/", body, format="json")
    assert response.status_code == 400 and "training.target_epsilon: must be a number" in response.json()["detail"]
    assert not TrainingRequest.objects.exists()


def test_an_epsilon_of_1e999_is_a_400_not_infinity(engineer, setup):
    response = post_raw(engineer, raw_body(setup, '{"training": {"target_epsilon": 1e999}}'))
    assert response.status_code == 400 and "training.target_epsilon" in refusal_text(response)
    assert not TrainingRequest.objects.exists()


def test_an_unknown_settings_key_is_named_in_the_400(engineer, setup):
    body = api_body(setup, settings={"training": {"target_epsilon": 4.0, "epsilon": 4.0}})
    response = api_client_for(engineer).post("/api/requests/", body, format="json")
    assert response.status_code == 400 and "training.epsilon: is not a setting" in response.json()["detail"]


def test_a_lone_surrogate_in_the_subject_field_is_a_400(engineer, setup):
    response = post_raw(engineer, raw_body(setup, '{"subject_field": "\\ud800"}'))
    assert response.status_code == 400 and "subject_field" in refusal_text(response) and "surrogate" in refusal_text(response)
    assert not TrainingRequest.objects.exists()


def test_an_edit_with_settings_of_the_wrong_type_is_a_400_and_changes_nothing(engineer, setup):
    pk = created(engineer, setup)
    response = api_client_for(engineer).patch(f"/api/requests/{pk}/", {"settings": {"canaries": {"count": "ten"}}}, format="json")
    assert response.status_code == 400 and "canaries.count: must be a whole number" in response.json()["detail"]
    assert TrainingRequest.objects.get(pk=pk).settings["canaries"]["count"] == 2


def test_a_bad_request_after_two_keyless_ones_is_refused_not_answered_with_an_earlier_one(engineer, setup):
    """A failed create without an Idempotency-Key was once taken for the key race and answered with
    `get(idempotency_key=None)`: MultipleObjectsReturned, or with one earlier request, that request."""
    first, second = created(engineer, setup), created(engineer, setup)
    response = post_raw(engineer, raw_body(setup, '{"training": {"target_epsilon": 1e999}}'))
    assert response.status_code == 400 and response.json().get("id") not in (first, second)
    assert TrainingRequest.objects.count() == 2


def test_an_integrity_error_without_an_idempotency_key_is_not_taken_for_a_replay(engineer, setup, monkeypatch):
    from django.db import IntegrityError

    from workflow import actions

    created(engineer, setup)

    def clash(*args, **kwargs):
        raise IntegrityError("CHECK constraint failed")

    monkeypatch.setattr(actions, "create_request", clash)
    with pytest.raises(IntegrityError):
        api_client_for(engineer).post("/api/requests/", api_body(setup), format="json")
    with pytest.raises(IntegrityError):  # a key, but no request holds it: not the race either
        api_client_for(engineer).post("/api/requests/", api_body(setup), format="json", HTTP_IDEMPOTENCY_KEY="never-used")


def test_the_idempotency_race_returns_the_request_the_other_call_created(engineer, setup, monkeypatch):
    """Two calls with one key at once: the second's insert clashes; it answers with the first's request."""
    from django.db import IntegrityError

    from workflow import actions

    winner = actions.create_request(engineer, request_data(setup), [setup["dataset"]], idempotency_key="race-1")
    looked_up = []

    def not_yet_visible(requester, key):  # the pre-check ran before the other call committed
        looked_up.append(key)
        return None if len(looked_up) == 1 else TrainingRequest.objects.filter(requester=requester, idempotency_key=key).first()

    def clash(*args, **kwargs):
        raise IntegrityError("UNIQUE constraint failed")

    monkeypatch.setattr(TrainingRequest, "created_with_key", staticmethod(not_yet_visible))
    monkeypatch.setattr(actions, "create_request", clash)
    response = api_client_for(engineer).post("/api/requests/", api_body(setup), format="json", HTTP_IDEMPOTENCY_KEY="race-1")
    assert response.status_code == 200 and response.json()["id"] == winner.pk


def test_the_openapi_schema_describes_the_settings_from_their_schema(engineer):
    schema = yaml.safe_load(api_client_for(engineer).get("/api/schema/").content)
    components = schema["components"]["schemas"]
    settings = components["RunSettings"]
    assert settings["properties"]["training"]["properties"]["target_epsilon"]["type"] == "number"
    assert settings["properties"]["training"]["properties"]["batch_size"]["type"] == "integer"
    assert settings["additionalProperties"] is False
    for body in ("TrainingRequestWriteRequest", "TrainingRequest"):
        assert "#/components/schemas/RunSettings" in json.dumps(components[body]["properties"]["settings"])


def test_the_cli_refuses_settings_of_the_wrong_type_naming_the_key(engineer, setup, tmp_path):
    path = request_file(tmp_path, setup, settings={"training": {"target_epsilon": "eight"}})
    with pytest.raises(CommandError, match="training.target_epsilon: must be a number"):
        run_command("create", "--file", path, "--as", "erin")
    assert not TrainingRequest.objects.exists()


# --------------------------------------------------------------------------- manage.py request


def request_file(tmp_path, setup, **overrides):
    data = request_data(setup, **overrides)
    data = {**data, "base_model": data["base_model"].name, "compute_target": data["compute_target"].name, "datasets": [setup["dataset"].name]}
    path = tmp_path / "request.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run_command(*args) -> str:
    import io

    out = io.StringIO()
    call_command("request", *map(str, args), stdout=out)
    return out.getvalue()


def test_the_cli_drafts_submits_and_shows_a_request(engineer, setup, tmp_path):
    run_command("create", "--file", request_file(tmp_path, setup), "--as", "erin", "--idempotency-key", "cli-1")
    request = TrainingRequest.objects.get()
    assert request.datasets.get() == setup["dataset"] and request.idempotency_key == "cli-1"
    run_command("submit", request.pk, "--as", "erin")
    shown = run_command("show", request.pk)
    assert "submitted" in shown and "missing approvals: legal ×1, privacy ×1" in shown
    assert f"{request.pk}  submitted" in run_command("list", "--state", "submitted")


@pytest.mark.parametrize("content, complaint", [
    ("title: [unclosed", "not valid YAML"),
    ("- just\n- a list\n", "mapping of request fields"),
    ("titel: Typo\n", "unknown field(s) titel"),
])
def test_a_bad_request_file_is_refused_with_what_is_wrong(engineer, tmp_path, content, complaint):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(CommandError, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        run_command("create", "--file", path, "--as", "erin")
    assert not TrainingRequest.objects.exists()


def test_the_cli_names_a_record_it_cannot_find(engineer, setup, tmp_path):
    path = request_file(tmp_path, setup)
    path.write_text(path.read_text().replace("Erin tickets", "Nobody's tickets"))
    with pytest.raises(CommandError, match="No dataset named “Nobody's tickets”"):
        run_command("create", "--file", path, "--as", "erin")


def test_the_cli_refuses_to_cancel_a_request_without_a_run(engineer, setup, tmp_path):
    run_command("create", "--file", request_file(tmp_path, setup), "--as", "erin")
    with pytest.raises(CommandError, match="no run yet"):
        run_command("cancel", TrainingRequest.objects.get().pk, "--as", "erin")


def test_show_follow_polls_the_run_until_it_ends(engineer, legal, privacy, setup, monkeypatch):
    from workflow import actions
    from training import runs

    request = actions.submit_request(engineer, actions.create_request(engineer, request_data(setup), [setup["dataset"]]))
    for approver in (legal, privacy):
        actions.decide_request(approver, request, "approve")
    request.refresh_from_db()
    runs.mark_started(request.run, "test-worker")
    ticks = iter([lambda: runs.record_progress(request.run, step=3, total_steps=6),
                  lambda: runs.finish_run(request.run, "succeeded", result={"epsilon": 1.5})])
    monkeypatch.setattr("workflow.management.commands.request.time.sleep", lambda seconds: next(ticks)())
    out = run_command("show", request.pk, "--follow", "--interval", "0")
    assert "running" in out and f"Run {request.run.pk} trained." in out
