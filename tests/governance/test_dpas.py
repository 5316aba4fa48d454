"""DPAs know whether they are in force; their signed documents are encrypted at rest."""

import datetime as dt
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from governance import models as m
from tests.conftest import client_for, make_dpa, make_record

TODAY = dt.date(2026, 6, 15)


@pytest.fixture
def processor(legal):
    return make_record(legal, m.Processor(name="Northwind"))


def _attest(legal, processor, kind, expires_on, issued_on=dt.date(2025, 1, 1)):
    return make_record(legal, m.Attestation(processor=processor, kind=kind, issued_on=issued_on, expires_on=expires_on))


def _dpa(legal, processor, **overrides):
    defaults = dict(signed_on=dt.date(2026, 1, 1), effective_from=dt.date(2026, 1, 1), expires_on=dt.date(2026, 12, 31))
    return make_record(legal, make_dpa(processor, **{**defaults, **overrides}))


def test_signed_dpa_within_its_dates_is_in_force(legal, processor):
    assert _dpa(legal, processor).in_force_on(TODAY)


def test_dpa_past_its_end_date_is_not_in_force(legal, processor):
    dpa = _dpa(legal, processor, expires_on=dt.date(2026, 6, 14))
    assert not dpa.in_force_on(TODAY)
    assert dpa.lapses_on(TODAY) == ["it expired on 2026-06-14"]
    assert dpa.in_force_on(dt.date(2026, 6, 14))  # the last day still counts


def test_dpa_not_yet_effective_or_unsigned_is_not_in_force(legal, processor):
    assert "it takes effect only on 2026-07-01" in _dpa(legal, processor, effective_from=dt.date(2026, 7, 1)).lapses_on(TODAY)
    assert "it has not been signed" in _dpa(legal, processor, title="Unsigned", signed_on=None).lapses_on(TODAY)


def test_terminated_dpa_is_not_in_force(legal, processor):
    assert not _dpa(legal, processor, terminated_on=dt.date(2026, 6, 1)).in_force_on(TODAY)


def test_open_ended_dpa_runs_until_terminated(legal, processor):
    assert _dpa(legal, processor, expires_on=None).in_force_on(dt.date(2040, 1, 1))


def test_expired_required_attestation_takes_the_dpa_out_of_force(legal, processor):
    _attest(legal, processor, m.AttestationKind.SOC2_TYPE2, expires_on=dt.date(2026, 6, 1))
    dpa = _dpa(legal, processor, required_attestations=[m.AttestationKind.SOC2_TYPE2])
    assert not dpa.in_force_on(TODAY)
    assert dpa.lapses_on(TODAY) == ["the processor has no SOC 2 Type II attestation valid on 2026-06-15"]
    assert dpa.in_force_on(dt.date(2026, 5, 31))


def test_renewed_attestation_restores_force(legal, processor):
    _attest(legal, processor, m.AttestationKind.SOC2_TYPE2, expires_on=dt.date(2026, 6, 1))
    _attest(legal, processor, m.AttestationKind.SOC2_TYPE2, issued_on=dt.date(2026, 6, 1), expires_on=dt.date(2027, 6, 1))
    assert _dpa(legal, processor, required_attestations=[m.AttestationKind.SOC2_TYPE2]).in_force_on(TODAY)


def test_missing_required_attestation_takes_the_dpa_out_of_force(legal, processor):
    dpa = _dpa(legal, processor, required_attestations=[m.AttestationKind.ISO42001])
    assert dpa.lapses_on(TODAY) == ["the processor has no ISO/IEC 42001 attestation valid on 2026-06-15"]


def test_attestation_that_is_not_required_does_not_matter(legal, processor):
    _attest(legal, processor, m.AttestationKind.ISO27001, expires_on=dt.date(2025, 1, 2))
    assert _dpa(legal, processor).in_force_on(TODAY)


def test_end_before_start_is_refused(legal, processor):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="end date is before the start date"):
        _dpa(legal, processor, expires_on=dt.date(2025, 1, 1))


def test_external_compute_target_requires_a_dpa(privacy):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="needs the DPA"):
        make_record(privacy, m.ComputeTarget(name="Cloud", kind=m.ComputeKind.EXTERNAL_PROVIDER, region="eu-west-1"))


# ---------------------------------------------------------------- the signed document


def _dpa_form_data(processor, document=None, **overrides):
    today = timezone.localdate()
    data = {
        "processor": processor.pk, "title": "Training DPA", "version": 1, "signed_on": today.isoformat(),
        "effective_from": today.isoformat(), "subject_matter": "Fine-tuning", "duration": "1 year",
        "nature_and_purpose": "Compute", "data_types": "Contacts", "data_subject_categories": "Customers",
        "documented_instructions": "Only ours", "security_measures": "Encryption", "deletion_at_end": "delete",
        "processing_regions": "eu-west-1, eu-central-1",
    }
    if document is not None:
        data["document"] = document
    data.update(overrides)
    return data


def _file(content, name):
    handle = io.BytesIO(content)
    handle.name = name
    return handle


def test_signed_document_is_encrypted_and_downloads_intact(legal, processor, data_dir):
    content = b"%PDF-1.7\nSIGNED-BY-BOTH-PARTIES-7781\n%%EOF"
    response = client_for(legal).post(reverse("governance:dataprocessingagreement_create"), _dpa_form_data(processor, _file(content, "dpa.pdf")))
    assert response.status_code == 302
    dpa = m.DataProcessingAgreement.objects.get()
    assert dpa.processing_regions == ["eu-west-1", "eu-central-1"]
    assert dpa.has_document and dpa.document_size == len(content)
    for path in (data_dir / "blobs").rglob("*"):
        if path.is_file():
            assert b"SIGNED-BY-BOTH-PARTIES" not in path.read_bytes()
    download = client_for(legal).get(reverse("governance:dataprocessingagreement_document", args=[dpa.pk]))
    assert b"".join(download.streaming_content) == content
    assert m.AuditEvent.objects.filter(action="dataprocessingagreement.downloaded").count() == 1


def test_non_pdf_document_is_refused_with_a_reason_and_nothing_stored(legal, processor, data_dir):
    response = client_for(legal).post(reverse("governance:dataprocessingagreement_create"), _dpa_form_data(processor, _file(b"MZ\x90\x00 not a pdf", "dpa.exe")))
    assert response.status_code == 200
    assert "is not a PDF document" in " ".join(response.context["form"].errors["document"])
    assert m.DataProcessingAgreement.objects.count() == 0
    assert not any(p.is_file() for p in (data_dir / "blobs").rglob("*")) if (data_dir / "blobs").exists() else True


def test_valid_document_with_an_invalid_form_stores_nothing(legal, processor, data_dir):
    data = _dpa_form_data(processor, _file(b"%PDF-1.7 ok", "dpa.pdf"), subject_matter="")
    response = client_for(legal).post(reverse("governance:dataprocessingagreement_create"), data)
    assert response.status_code == 200 and "subject_matter" in response.context["form"].errors
    assert not any(p.is_file() for p in (data_dir / "blobs").rglob("*")) if (data_dir / "blobs").exists() else True


def test_oversized_document_is_refused(legal, processor, settings):
    settings.PROVENANT_MAX_DOCUMENT_BYTES = 100
    response = client_for(legal).post(reverse("governance:dataprocessingagreement_create"), _dpa_form_data(processor, _file(b"%PDF-" + b"x" * 200, "big.pdf")))
    assert "larger than the" in " ".join(response.context["form"].errors["document"])
    assert m.DataProcessingAgreement.objects.count() == 0
