"""Forms and API payloads: errors beside the field, 400s never 500s, the dashboard, query counts."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from governance import models as m
from tests.conftest import api_client_for, client_for, make_dataset, make_dpa, make_record


def test_form_error_is_shown_next_to_the_field(privacy):
    response = client_for(privacy).post(reverse("governance:dataclass_create"), {
        "name": "Health", "tier": "restricted", "fine_tuning_use": "allowed", "dp_required": "on",
        "extra_approvals_required": 0,
    })
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="id_max_epsilon_error"' in html and "Set a maximum ε" in html
    assert m.DataClass.objects.count() == 0


BAD_PAYLOADS = [
    ("/api/data-classes/", {"name": "X", "tier": "galactic"}, "tier"),
    ("/api/data-classes/", {"name": "X", "categories": ["gossip"]}, "categories"),
    ("/api/data-classes/", {"name": "X", "dp_required": True, "fine_tuning_use": "allowed"}, "max_epsilon"),
    ("/api/data-classes/", {"name": "X", "max_epsilon": "lots"}, "max_epsilon"),
    ("/api/data-classes/", {"name": "X", "max_epsilon": 1e9}, "max_epsilon"),
    ("/api/data-classes/", ["not", "an", "object"], "non_field_errors"),
    ("/api/processors/", {"name": "N", "contact_email": "not-an-email"}, "contact_email"),
    ("/api/attestations/", {"processor": 99999, "kind": "soc2_type2", "issued_on": "2026-01-01", "expires_on": "2027-01-01"}, "processor"),
    ("/api/attestations/", {"kind": "soc2_type2", "issued_on": "2026-13-45"}, "issued_on"),
    ("/api/compute-targets/", {"name": "Cloud", "kind": "external_provider", "region": "eu"}, "dpa"),
]


@pytest.mark.parametrize("url,payload,field", BAD_PAYLOADS, ids=[f"{u}{f}" for u, _, f in BAD_PAYLOADS])
def test_bad_api_payload_is_a_400_naming_the_field(privacy, legal, url, payload, field):
    client = api_client_for(privacy if "processors" not in url and "attestations" not in url else legal)
    response = client.post(url, payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_malformed_json_is_a_400(privacy):
    response = api_client_for(privacy).generic("POST", "/api/data-classes/", "{not json", content_type="application/json")
    assert response.status_code == 400


def test_api_create_goes_through_the_audited_action(privacy):
    response = api_client_for(privacy).post("/api/data-classes/", {"name": "Support", "max_epsilon": 8, "categories": ["personal"]}, format="json")
    assert response.status_code == 201, response.content
    event = m.AuditEvent.objects.get()
    assert event.action == "dataclass.created" and event.actor_username == "priya"


def test_dpa_api_reports_whether_it_is_in_force(legal):
    processor = make_record(legal, m.Processor(name="P"))
    dpa = make_record(legal, make_dpa(processor, expires_on=timezone.localdate() - dt.timedelta(days=1),
                                       effective_from=timezone.localdate() - dt.timedelta(days=100)))
    body = api_client_for(legal).get(f"/api/dpas/{dpa.pk}/").json()
    assert body["in_force_today"] is False
    assert body["not_in_force_because"][0].startswith("it expired on")
    assert "document_wrapped_key" not in body


def test_openapi_schema_documents_the_endpoints(engineer):
    response = client_for(engineer).get(reverse("api_schema"), HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    import yaml

    schema = yaml.safe_load(response.content)
    for path in ("/api/datasets/", "/api/dpas/{id}/", "/api/audit-events/", "/api/datasets/{id}/shred/"):
        assert path in schema["paths"]
    assert "multipart/form-data" in schema["paths"]["/api/datasets/"]["post"]["requestBody"]["content"]


def test_dashboard_shows_what_awaits_the_privacy_officer(privacy, legal, engineer):
    today = timezone.localdate()
    processor = make_record(legal, m.Processor(name="Northwind"))
    make_record(legal, m.Attestation(processor=processor, kind=m.AttestationKind.SOC2_TYPE2,
                                     issued_on=today - dt.timedelta(days=300), expires_on=today + dt.timedelta(days=10)))
    make_record(legal, make_dpa(processor, title="Ending soon", expires_on=today + dt.timedelta(days=20)))
    make_record(legal, make_dpa(processor, title="Far off", expires_on=today + dt.timedelta(days=200)))
    make_record(legal, make_dpa(processor, title="Needs SOC2", expires_on=today + dt.timedelta(days=200),
                                required_attestations=[m.AttestationKind.SOC2_TYPE2]))
    make_dataset(engineer, name="Unlabelled export")
    page = client_for(privacy).get(reverse("dashboard")).content.decode()
    assert "Ending soon" in page and "Far off" not in page
    assert "Needs SOC2" in page and "(a required attestation expires)" in page
    assert "SOC 2 Type II" in page
    assert "Unlabelled export" in page


def test_dashboard_of_an_engineer_lists_only_their_unclassified_datasets(engineer, other_engineer):
    make_dataset(engineer, name="Mine")
    make_dataset(other_engineer, name="Theirs")
    page = client_for(engineer).get(reverse("dashboard")).content.decode()
    assert "Mine" in page and "Theirs" not in page
    assert "Agreements leaving force" not in page


def test_dataset_list_costs_a_fixed_number_of_queries(engineer, privacy, django_assert_max_num_queries):
    data_class = make_record(privacy, m.DataClass(name="PII", max_epsilon=8))
    for i in range(3):
        dataset = make_dataset(engineer, name=f"D{i}")
        dataset.data_classes.add(data_class)
    client = client_for(privacy)
    client.get(reverse("governance:dataset_list"))  # warm caches (content types, permissions)
    with django_assert_max_num_queries(12) as few:
        client.get(reverse("governance:dataset_list"))
    for i in range(3, 20):
        make_dataset(engineer, name=f"D{i}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(reverse("governance:dataset_list"))


def test_edit_through_the_page_is_audited(privacy):
    data_class = make_record(privacy, m.DataClass(name="PII", max_epsilon=8))
    response = client_for(privacy).post(reverse("governance:dataclass_edit", args=[data_class.pk]), {
        "name": "PII", "tier": "confidential", "fine_tuning_use": "allowed", "dp_required": "on", "max_epsilon": "4",
        "extra_approvals_required": 0, "redaction_required": "on",
    })
    assert response.status_code == 302, response.context["form"].errors if response.context else ""
    event = m.AuditEvent.objects.order_by("-sequence").first()
    assert event.action == "dataclass.updated" and '"max_epsilon":{"after":4.0,"before":8.0}' in event.payload


def test_sharing_requires_an_existing_engineer(engineer, legal):
    dataset = make_dataset(engineer)
    response = client_for(engineer).post(reverse("governance:dataset_share", args=[dataset.pk]), {"username": "lena"}, follow=True)
    assert "No active engineer is called “lena”" in response.content.decode()
    response = api_client_for(engineer).post(f"/api/datasets/{dataset.pk}/share/", {"username": "nobody"}, format="json")
    assert response.status_code == 400 and "username" in response.json()


def test_shredding_needs_the_name_typed_back(engineer):
    dataset = make_dataset(engineer, name="Precious")
    client_for(engineer).post(reverse("governance:dataset_shred", args=[dataset.pk]), {"confirm_name": "wrong", "reason": "x"})
    dataset.refresh_from_db()
    assert dataset.state == m.DatasetState.ACTIVE
    client_for(engineer).post(reverse("governance:dataset_shred", args=[dataset.pk]), {"confirm_name": "Precious", "reason": "x"})
    dataset.refresh_from_db()
    assert dataset.state == m.DatasetState.SHREDDED
