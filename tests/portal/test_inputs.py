"""Hostile input is refused with a sentence, never a 500: one test for each cause the outside fuzz
probe found (issue 14). Lone surrogates and NULs in JSON, bodies and JSONL lines nested thousands
deep, numbers too long to read, ids past the integer range, a share until 9999-12-31, a deeply
nested manifest on the verify page, and the upload refusals the API used to lose."""

import datetime as dt
import io
import json
import zipfile

import pytest
from django.urls import reverse
from django.utils import timezone

from audits import sharing
from audits.models import PackShare
from audits.verify import EVENT_FIELDS, _check_events, verify_pack
from governance import ingest
from governance import models as m
from governance.models import AuditEvent
from tests.audits.test_sharing import make_pack
from tests.conftest import api_client_for, client_for

DEEP = 50_000
TOO_BIG_ID = "99999999999999999999"  # 20 digits: past SQLite's (and PostgreSQL's) 64-bit integers


def post_json(client, url, raw: str):
    """A JSON body as the bytes given: the escapes (\\ud800, \\u0000) reach the parser as they are."""
    return client.post(url, raw, content_type="application/json")


def named(content: bytes, filename: str):
    handle = io.BytesIO(content)
    handle.name = filename
    return handle


# ------------------------------------------------------------------ JSON bodies (portal/parsers.py)


def test_a_lone_surrogate_in_a_share_username_is_a_400_naming_the_field(engineer, records):
    response = post_json(api_client_for(engineer), f"/api/datasets/{records['dataset'].pk}/share/", '{"username": "\\ud800"}')
    assert response.status_code == 400
    assert "lone surrogate" in response.json()["username"][0]


def test_a_lone_surrogate_in_a_request_audience_is_a_400_naming_the_field(engineer):
    response = post_json(api_client_for(engineer), "/api/requests/", '{"title": "x", "audience": "\\udfff"}')
    assert response.status_code == 400
    assert "lone surrogate (\\udfff)" in response.json()["audience"][0]


def test_a_lone_surrogate_deep_in_the_settings_names_its_path(engineer):
    response = post_json(api_client_for(engineer), "/api/requests/", '{"settings": {"training": {"accountant": ["prv", "\\ud83d"]}}}')
    assert response.status_code == 400
    assert "“settings.training.accountant[1]” holds a lone surrogate" in response.json()["settings"][0]


def test_a_nul_in_a_json_key_is_a_400_naming_the_field_it_is_in(privacy):
    body = json.dumps({"name": "Support PII", "tier": "confidential", "redaction_actions": {"PERSON\u0000": "mask"}})
    response = post_json(api_client_for(privacy), "/api/data-classes/", body)
    assert response.status_code == 400
    assert "A key in “redaction_actions” holds a NUL character" in response.json()["redaction_actions"][0]
    assert not m.DataClass.objects.exists()


def test_a_json_body_nested_fifty_thousand_deep_is_a_400(engineer, records):
    response = post_json(api_client_for(engineer), f"/api/datasets/{records['dataset'].pk}/share/", "[" * DEEP + "]" * DEEP)
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]


def test_a_json_body_nested_past_the_limit_but_within_python_is_a_400_naming_the_field(engineer, records):
    body = '{"username": ' + "[" * 40 + "]" * 40 + "}"
    response = post_json(api_client_for(engineer), f"/api/datasets/{records['dataset'].pk}/share/", body)
    assert response.status_code == 400
    assert "nested more than 32 levels deep" in response.json()["username"][0]


@pytest.mark.parametrize("number, says", [("1e999", "too large to represent"), (TOO_BIG_ID, "beyond the 64-bit range"),
                                          ("9" * 5000, "JSON parse error")])
def test_a_number_json_cannot_hold_in_a_record_field_is_a_400(privacy, number, says):
    body = '{"name": "Support PII", "tier": "confidential", "retention_days": %s}' % number
    response = post_json(api_client_for(privacy), "/api/data-classes/", body)
    assert response.status_code == 400
    assert says in json.dumps(response.json(), ensure_ascii=False)
    assert not m.DataClass.objects.exists()


def test_a_percent_encoded_lone_surrogate_in_a_form_arrives_as_replacement_characters(engineer, records):
    """Django decodes form bodies with errors="replace": the page form never sees a lone surrogate."""
    dataset = records["dataset"]
    response = client_for(engineer).post(reverse("governance:dataset_share", args=[dataset.pk]), "username=%ED%A0%80",
                                         content_type="application/x-www-form-urlencoded", follow=True)
    assert response.status_code == 200
    assert "No active engineer is called “\ufffd\ufffd\ufffd”" in response.content.decode()


# ------------------------------------------------------------------ uploads (governance/ingest.py)


def _count(content: str, fmt="jsonl"):
    return ingest.count_records(iter(content.splitlines(keepends=True)), fmt, text_field="text")


@pytest.mark.parametrize("line, says", [
    ("[" * 100_000 + "]" * 100_000, "Line 2 is nested too deeply to read"),
    ('{"text": "x", "n": ' + "9" * 100_000 + "}", "Line 2 holds a number of more than 4300 digits"),
    ('{"text": "caf\\udce9"}', "Line 2: the \"text\" field holds a lone surrogate (\\udce9)"),
])
def test_a_jsonl_line_python_cannot_read_is_refused_naming_the_line(line, says):
    with pytest.raises(ingest.IngestError) as refused:
        _count('{"text": "fine"}\n' + line + "\n")
    assert says in str(refused.value)


def test_the_subject_field_reader_names_the_line_it_cannot_read():
    lines = iter(['{"text": "a", "customer": "c1"}\n', '{"text": "b", "customer": ' + "9" * 100_000 + "}\n"])
    with pytest.raises(ingest.IngestError, match="Line 2 holds a number"):
        list(ingest.iter_field_values(lines, "jsonl", "customer"))


def _upload_form(**fields):
    return {"name": "Upload", "file_format": "jsonl", "text_field": "text", "source": "CRM export", "lawful_basis": "contract",
            "segment": "train", **fields}


def test_a_deeply_nested_jsonl_line_uploaded_on_the_page_is_a_form_error_naming_the_line(engineer):
    content = b'{"text": "fine"}\n' + b"[" * 100_000 + b"]" * 100_000 + b"\n"
    response = client_for(engineer).post(reverse("governance:dataset_create"), _upload_form(file=named(content, "deep.jsonl")))
    assert response.status_code == 200
    assert "Line 2 is nested too deeply to read" in response.content.decode()
    assert not m.Dataset.objects.exists()


def test_a_jsonl_line_with_a_hundred_thousand_digit_number_sent_to_the_api_is_a_400_naming_the_line(engineer):
    content = b'{"text": "x", "n": ' + b"9" * 100_000 + b"}\n"
    response = api_client_for(engineer).post("/api/datasets/", _upload_form(file=named(content, "big.jsonl")), format="multipart")
    assert response.status_code == 400
    assert "Line 1 holds a number of more than 4300 digits" in response.json()["file"][0]
    assert not m.Dataset.objects.exists()


@pytest.mark.parametrize("content, says", [(b"", "is empty"), (b"\xff\xfe{}", "is not valid UTF-8"),
                                           (b'{"text": "a\x00"}\n', "contains a NUL byte")])
def test_the_api_gives_the_reason_an_upload_was_refused_as_the_page_does(engineer, content, says):
    response = api_client_for(engineer).post("/api/datasets/", _upload_form(file=named(content, "bad.jsonl")), format="multipart")
    assert response.status_code == 400
    [reason] = response.json()["file"]
    assert says in reason and "bad.jsonl" in reason
    page = client_for(engineer).post(reverse("governance:dataset_create"), _upload_form(file=named(content, "bad.jsonl")))
    assert reason in page.content.decode().replace("&quot;", '"')


# ------------------------------------------------------------------ the verify page (audits/verify.py)


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_deeply_nested_manifest_is_invalid_naming_the_manifest(regulator):
    pack = _zip({"manifest.json": b"[" * DEEP + b"]" * DEEP, "signature.sig": b"00" * 64 + b"\n"})
    page = client_for(regulator).post("/audits/verify/", {"pack": named(pack, "deep.zip")})
    body = page.content.decode()
    assert page.status_code == 200 and "INVALID" in body
    assert "manifest.json: is not a readable manifest (nested too deeply to read)" in body


def test_a_manifest_holding_a_lone_surrogate_is_invalid_and_the_page_renders(regulator, tmp_path):
    from governance.keys import public_key_pem

    manifest = b'{"files": {"\\ud800": "00"}}'
    path = tmp_path / "pack.zip"
    path.write_bytes(_zip({"manifest.json": manifest, "signature.sig": b"00" * 64 + b"\n"}))
    result = verify_pack(path, public_key_pem())
    assert not result.valid and any(p.startswith("manifest.json: is not a readable manifest") for p in result.problems)
    page = client_for(regulator).post("/audits/verify/", {"pack": named(path.read_bytes(), "pack.zip")})
    assert page.status_code == 200 and "INVALID" in page.content.decode()


@pytest.mark.parametrize("results, says", [
    (b"[" * DEEP + b"]" * DEEP, "is not readable JSON (nested too deeply to read)"),
    (b'{"audit_trail": {"events": 7}}', "its audit-trail excerpt is not a list of events"),
    (b'{"audit_trail": {"events": [{"sequence": 3, "summary": "x"}]}}', "audit event #3 lacks a hashed field"),
    (json.dumps({"audit_trail": {"events": [{**dict.fromkeys(EVENT_FIELDS, ""), "sequence": 4, "summary": "\ud800"}]}}).encode(),
     "audit event #4 holds a lone surrogate"),
])
def test_a_hostile_audit_trail_excerpt_is_a_problem_not_a_crash(results, says):
    assert any(says in problem for problem in _check_events(results))


def test_the_verify_page_with_no_file_sent_says_to_choose_one(regulator):
    # What a browser sends when no file is chosen: the part, with an empty file name and no bytes.
    boundary = "----provenant"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"pack\"; filename=\"\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n\r\n--{boundary}--\r\n")
    page = client_for(regulator).post("/audits/verify/", body, content_type=f"multipart/form-data; boundary={boundary}")
    assert page.status_code == 400 and "Choose a pack (zip) to verify." in page.content.decode()
    assert "Choose a pack (zip) to verify." in client_for(regulator).post("/audits/verify/").content.decode()


# ------------------------------------------------------------------ ids past the integer range (governance/fields.py)


def test_an_id_past_the_integer_range_in_a_list_filter_is_no_match_on_the_page_and_a_400_in_the_api(privacy, records):
    page = client_for(privacy).get(f"/governance/datasets/?data_classes={TOO_BIG_ID}")
    assert page.status_code == 200 and "Erin tickets" not in page.content.decode()
    response = api_client_for(privacy).get(f"/api/datasets/?data_classes={TOO_BIG_ID}")
    assert response.status_code == 400
    assert TOO_BIG_ID in response.json()["data_classes"][0]


def test_a_real_id_in_the_same_filter_still_filters(privacy, records):
    dataset = records["dataset"]
    dataset.data_classes.set([records["dataclass"]])
    response = api_client_for(privacy).get(f"/api/datasets/?data_classes={records['dataclass'].pk}")
    assert [row["name"] for row in response.json()["results"]] == ["Erin tickets"]


def test_an_id_past_the_integer_range_in_the_classification_form_is_a_form_error(privacy, records):
    dataset = records["dataset"]
    response = client_for(privacy).post(reverse("governance:dataset_edit", args=[dataset.pk]),
                                        {"name": dataset.name, "source": "x", "lawful_basis": "contract", "segment": "train",
                                         "data_classes": [TOO_BIG_ID]})
    assert response.status_code == 200
    assert f"{TOO_BIG_ID} is not one of the available choices" in response.content.decode()


def test_an_id_past_the_integer_range_in_the_request_forms_datasets_is_a_form_error(engineer, records):
    from tests.governance.test_request_pages import form_data
    from tests.governance.request_factory import good_base_model, good_compute_target

    data = form_data({"base_model": good_base_model(), "dataset": records["dataset"], "compute_target": good_compute_target()},
                     datasets=[TOO_BIG_ID])
    response = client_for(engineer).post(reverse("workflow:request_create"), data)
    assert response.status_code == 200
    assert f"{TOO_BIG_ID} is not one of the available choices" in response.content.decode()


# ------------------------------------------------------------------ a share until 9999-12-31 (audits/sharing*.py)


def test_a_share_expiring_in_the_year_9999_is_a_form_error_saying_the_longest_allowed(privacy, regulator, engineer):
    pack = make_pack(engineer)
    response = client_for(privacy).post(reverse("audits:pack_shares", args=[pack.pk]),
                                        {"regulator": regulator.pk, "expires_on": "9999-12-31", "note": ""})
    assert response.status_code == 200
    latest = sharing.latest_expiry_day(timezone.now().date())
    assert f"A share can run for at most 10 years (until {latest:%Y-%m-%d})" in response.content.decode()
    assert not PackShare.objects.exists()


def test_the_share_action_refuses_an_expiry_past_ten_years(privacy, regulator, engineer):
    pack = make_pack(engineer)
    far = sharing.end_of_day(sharing.latest_expiry_day(timezone.now().date())) + dt.timedelta(days=1)
    with pytest.raises(sharing.ShareRefused, match="at most 10 years"):
        sharing.share_pack(privacy, pack, regulator, expires_at=far)
    share = sharing.share_pack(privacy, pack, regulator, expires_at=far - dt.timedelta(days=1))
    assert share.expires_at == far - dt.timedelta(days=1)


def test_ten_years_from_a_leap_day_ends_on_the_28th():
    assert sharing.latest_expiry_day(dt.date(2028, 2, 29)) == dt.date(2038, 2, 28)


def test_refused_inputs_leave_the_trail_verifying(engineer, records):
    client = api_client_for(engineer)
    post_json(client, f"/api/datasets/{records['dataset'].pk}/share/", '{"username": "\\ud800"}')
    post_json(client, "/api/requests/", '{"audience": "\\ud800"}')
    assert AuditEvent.verify_chain().ok


# ------------------------------------------------------------------ unmatched API paths (portal/api_urls.py)


def test_a_path_under_the_api_that_no_route_matches_answers_json_not_found(engineer):
    """The router takes ids without a dot: `/api/requests/4.5/` used to answer the HTML 404 page."""
    client = api_client_for(engineer)
    for path in ("/api/requests/4.5/", "/api/no-such-thing/", "/api/datasets/1/nothing/"):
        response = client.post(path)
        assert response.status_code == 404 and response["Content-Type"] == "application/json", path
    assert client.get("/api/datasets").status_code == 301  # APPEND_SLASH still adds the slash
    page = client_for(engineer).get("/governance/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
