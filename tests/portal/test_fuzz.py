"""Fuzzing, bounded and reproducible: Schemathesis over the OpenAPI document for every operation,
as every role, and Hypothesis over the main HTML forms. No generated request may answer 5xx, and
every answer the document describes must match it.

Selected with `-m fuzz`. Each operation gets EXAMPLES generated requests, derandomized, so a CI
run repeats the last one exactly; the persona sending each request is drawn with it. Requests go
in-process through Django's WSGI handler, inside the test's transaction.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.conftest import api_token_for, make_dataset

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

EXAMPLES = 25
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, print_blob=False,
                         phases=[Phase.explicit, Phase.generate, Phase.shrink],
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
PERSONAS = ("engineer", "other_engineer", "legal", "privacy", "regulator", "admin_user", "outsider", None)


def _openapi_document() -> dict:
    """The document /api/schema/ serves, generated in-process (it needs a login to fetch)."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))


SCHEMA = schemathesis.openapi.from_dict(_openapi_document())
OPERATIONS = {result.ok().label: result.ok() for result in SCHEMA.get_all_operations()}


@pytest.fixture
def wsgi_app():
    """Django's WSGI handler, as a server runs it, minus the connection recycling at the end of each
    request: the test's transaction holds the connection (Django's test client does the same)."""
    from django.core.wsgi import get_wsgi_application

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def world(request, records, engineer, legal, privacy):
    """Every persona with an API token, and a record of each kind for the paths to name."""
    from governance import models as m
    from tests.governance.request_factory import good_base_model, good_compute_target, make_good_request
    from training.models import TrainingRun
    from training.runs import create_run
    from workflow import actions as workflow_actions
    from workflow.models import TrainingRequest

    tokens = {}
    for name in PERSONAS:
        if name is not None:
            user = request.getfixturevalue(name)
            tokens[name] = api_token_for(user)
    base, target = good_base_model(), good_compute_target()
    dataset = make_dataset(engineer, name="Fuzz tickets", data_classes=[records["dataclass"]])
    make_good_request(engineer, datasets=[dataset], base_model=base, compute_target=target)
    workflow_actions.submit_request(engineer, make_good_request(engineer, datasets=[dataset], base_model=base, compute_target=target,
                                                                title="Submitted"))
    create_run(engineer, base, [dataset], {}, enqueue=False)
    ids = {
        "/api/attestations/": m.Attestation, "/api/compute-targets/": m.ComputeTarget, "/api/data-classes/": m.DataClass,
        "/api/datasets/": m.Dataset, "/api/dpas/": m.DataProcessingAgreement, "/api/processors/": m.Processor,
        "/api/redaction-rules/": m.RedactionRule, "/api/requests/": TrainingRequest, "/api/runs/": TrainingRun,
    }
    known = {prefix: list(model.objects.values_list("pk", flat=True)) for prefix, model in ids.items()}
    known["/api/audit-events/"] = list(m.AuditEvent.objects.values_list("sequence", flat=True)[:5])
    return {"tokens": tokens, "ids": known}


def _cases(operation, ids: dict):
    """Generated requests, positive and negative, half of them on a record that exists."""
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    names = [p.name for p in operation.path_parameters]
    strategies = [operation.as_strategy(mode) for mode in modes]
    if names:
        prefix = next((p for p in ids if operation.path.startswith(p)), None)
        if prefix and ids[prefix]:
            strategies += [st.sampled_from(ids[prefix]).flatmap(
                lambda pk: operation.as_strategy(GenerationMode.POSITIVE, path_parameters={names[0]: pk}))]
    return st.one_of(*strategies)


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_no_generated_request_answers_5xx_or_off_schema(label, world, wsgi_app):
    operation = OPERATIONS[label]

    @FUZZ_SETTINGS
    @given(case=_cases(operation, world["ids"]), who=st.sampled_from(PERSONAS))
    def fuzz(case, who):
        headers = {"Authorization": f"Token {world['tokens'][who]}"} if who else {}
        case.call_and_validate(app=wsgi_app, headers=headers, checks=CHECKS)

    fuzz()


def test_the_paths_outside_the_document_answer_every_role_without_5xx(world, wsgi_app):
    """The API root, the document itself and its browser view are not operations of the document."""
    from werkzeug.test import Client

    for who in PERSONAS:
        headers = {"Authorization": f"Token {world['tokens'][who]}"} if who else {}
        for path in ("/api/", "/api/schema/", "/api/docs/"):
            assert Client(wsgi_app).get(path, headers=headers).status_code < 500, (who, path)


# ------------------------------------------------------------------ the HTML forms (Hypothesis)

# Values a person, a script or a probe might type into any field: empty, NULs, ids and numbers past
# every range, dates past the calendar, markup, very long text. Lone surrogates cannot be sent in a
# form body at all (Django decodes bodies with errors="replace"; tests/portal/test_inputs.py).
NASTY = ["", " ", "\x00", "a\x00b", "\ufffd", "99999999999999999999", "-99999999999999999999", "9" * 5000, "-1", "0", "1.5",
         "1e999", "nan", "inf", "9999-12-31", "0001-01-01", "2026-02-30", "x" * 5000, "<script>alert(1)</script>", "on", "[]",
         "{}", '{"PERSON": "mask"}', "١٢٣", "../../etc/passwd"]


def _value(ids):
    return st.one_of(st.sampled_from(NASTY), st.sampled_from([str(pk) for pk in ids] or ["1"]),
                     st.text(st.characters(exclude_categories=("Cs",)), max_size=40), st.integers().map(str))


def _form_data(fields: list[str], base: dict, ids) -> st.SearchStrategy[dict]:
    """The valid base form with a drawn subset of its fields replaced by drawn values (or lists)."""
    value = _value(ids)
    return st.dictionaries(st.sampled_from(fields), st.one_of(value, st.lists(value, max_size=3)), max_size=len(fields)).map(
        lambda drawn: {k: v for k, v in {**base, **drawn}.items()})


@pytest.fixture
def forms_world(records, engineer, privacy, legal):
    """The main POST forms: (persona, URL, field names, a valid base) for each."""
    from governance import forms
    from tests.audits.test_sharing import make_pack
    from tests.governance.request_factory import good_base_model, good_compute_target
    from tests.governance.test_request_pages import form_data
    from workflow.request_forms import TrainingRequestForm

    dataset, data_class = records["dataset"], records["dataclass"]
    request_base = form_data({"base_model": good_base_model(), "dataset": dataset, "compute_target": good_compute_target()})
    upload_base = {"name": "Upload", "file_format": "jsonl", "text_field": "text", "source": "CRM", "lawful_basis": "contract",
                   "segment": "train"}
    return {
        "dataset upload": (engineer, "/governance/datasets/new/", [*forms.DatasetUploadForm(user=privacy).fields, "file"], upload_base),
        "dataset edit": (privacy, f"/governance/datasets/{dataset.pk}/edit/", list(forms.DatasetEditForm(user=privacy).fields),
                         {"name": dataset.name, "source": "x", "lawful_basis": "contract", "segment": "train"}),
        "dataset share": (engineer, f"/governance/datasets/{dataset.pk}/share/", ["username"], {"username": "eddie"}),
        "data class": (privacy, "/governance/data-classes/new/", list(forms.DataClassForm().fields), {"name": "Fuzzed", "tier": "internal"}),
        "data class edit": (privacy, f"/governance/data-classes/{data_class.pk}/edit/", list(forms.DataClassForm().fields),
                            {"name": data_class.name, "tier": "confidential"}),
        "redaction rule": (privacy, "/governance/redaction-rules/new/", list(forms.RedactionRuleForm().fields),
                           {"data_class": data_class.pk, "entity_type": "CUSTOMER_ID", "kind": "pattern", "regex": "x"}),
        "processor": (legal, "/governance/processors/new/", list(forms.ProcessorForm().fields), {"name": "Fuzz GPU"}),
        "attestation": (legal, "/governance/attestations/new/", list(forms.AttestationForm().fields), {}),
        "dpa": (legal, "/governance/dpas/new/", list(forms.DataProcessingAgreementForm().fields), {}),
        "compute target": (privacy, "/governance/compute-targets/new/", list(forms.ComputeTargetForm().fields), {}),
        "request": (engineer, "/governance/requests/new/", list(TrainingRequestForm(user=engineer).fields), request_base),
        "pack share": (privacy, f"/audits/packs/{make_pack(engineer).pk}/shares/", ["regulator", "expires_on", "note"], {}),
    }


@pytest.mark.parametrize("form", ["dataset upload", "dataset edit", "dataset share", "data class", "data class edit", "redaction rule",
                                  "processor", "attestation", "dpa", "compute target", "request", "pack share"])
def test_no_drawn_form_answers_5xx(form, forms_world, regulator):
    import io

    from governance import models as m
    from tests.conftest import client_for

    persona, url, fields, base = forms_world[form]
    client = client_for(persona)
    ids = [*m.Dataset.objects.values_list("pk", flat=True), *m.DataClass.objects.values_list("pk", flat=True), regulator.pk]

    @FUZZ_SETTINGS
    @given(data=_form_data(fields, base, ids), upload=st.binary(max_size=300))
    def fuzz(data, upload):
        if "file" in data or form == "dataset upload":
            data = {**data, "file": io.BytesIO(upload)}
            data["file"].name = "drawn.jsonl"
        response = client.post(url, data)  # the test client raises what a 500 would have hidden
        assert response.status_code < 500

    for nasty in NASTY:  # and, always, each nasty value in every field at once
        fuzz = example(data={**base, **dict.fromkeys(fields, nasty)}, upload=b"")(fuzz)
    fuzz()
