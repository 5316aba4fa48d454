"""Sharing evidence packs with regulators: only shared packs are visible, until expiry or
revocation; only regulators receive them; every share, revocation and reading is audited."""

import datetime as dt
import json
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from audits import sharing
from audits.models import EvidencePack, PackShare
from governance.models import AuditEvent
from governance import roles
from tests.conftest import _make_user, client_for, make_dataset
from tests.governance.request_factory import good_base_model
from training.runs import create_run


def make_pack(owner, n=1) -> EvidencePack:
    dataset = make_dataset(owner, name=f"Tickets {n}")
    run = create_run(owner, good_base_model(name=f"base-{n}"), [dataset], {}, enqueue=False)
    return EvidencePack.objects.create(run=run, sha256=f"{n:x}" * 64, size_bytes=1234, blob_id=str(uuid.uuid4()),
                                       manifest={"files": {}}, signature="ab" * 64, public_key_fingerprint="cd" * 32)


@pytest.fixture
def pack(engineer):
    return make_pack(engineer)


@pytest.fixture
def other_regulator(db):
    return _make_user("rita", roles.REGULATOR)


def test_a_regulator_sees_only_the_packs_shared_with_them(engineer, privacy, regulator, other_regulator, pack):
    other = make_pack(engineer, 2)
    assert not EvidencePack.objects.visible_to(regulator).exists()
    sharing.share_pack(privacy, pack, regulator)
    sharing.share_pack(privacy, other, other_regulator)
    assert list(EvidencePack.objects.visible_to(regulator)) == [pack]
    assert list(EvidencePack.objects.visible_to(other_regulator)) == [other]


def test_an_expired_share_is_refused(privacy, regulator, pack):
    share = sharing.share_pack(privacy, pack, regulator, expires_at=timezone.now() + dt.timedelta(days=1))
    assert EvidencePack.objects.visible_to(regulator).filter(pk=pack.pk).exists()
    PackShare.objects.filter(pk=share.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert not EvidencePack.objects.visible_to(regulator).filter(pk=pack.pk).exists()


def test_an_expiry_in_the_past_is_refused(privacy, regulator, pack):
    with pytest.raises(sharing.ShareRefused, match="past"):
        sharing.share_pack(privacy, pack, regulator, expires_at=timezone.now() - dt.timedelta(hours=1))
    assert not PackShare.objects.exists()


def test_a_revoked_share_is_refused(privacy, regulator, pack):
    share = sharing.share_pack(privacy, pack, regulator)
    sharing.revoke_share(privacy, share)
    assert not EvidencePack.objects.visible_to(regulator).exists()
    with pytest.raises(sharing.ShareRefused, match="already revoked"):
        sharing.revoke_share(privacy, share)


def test_sharing_with_a_non_regulator_is_refused(privacy, legal, other_engineer, outsider, pack):
    for person in (legal, other_engineer, outsider):
        with pytest.raises(sharing.ShareRefused, match="not a regulator"):
            sharing.share_pack(privacy, pack, person)
    assert not PackShare.objects.exists()


def test_only_the_privacy_officer_shares_and_revokes(engineer, legal, admin_user, privacy, regulator, pack):
    for person in (engineer, legal, admin_user, regulator):
        with pytest.raises(PermissionError):
            sharing.share_pack(person, pack, regulator)
    share = sharing.share_pack(privacy, pack, regulator)
    for person in (engineer, legal, admin_user, regulator):
        with pytest.raises(PermissionError):
            sharing.revoke_share(person, share)


def test_a_pack_is_shared_once_per_regulator_at_a_time(privacy, regulator, pack):
    share = sharing.share_pack(privacy, pack, regulator)
    with pytest.raises(sharing.ShareRefused, match="already shared"):
        sharing.share_pack(privacy, pack, regulator)
    sharing.revoke_share(privacy, share)
    assert sharing.share_pack(privacy, pack, regulator).pk != share.pk


def test_each_share_and_revocation_writes_an_audit_event(privacy, regulator, pack):
    expires = timezone.now() + dt.timedelta(days=30)
    share = sharing.share_pack(privacy, pack, regulator, expires_at=expires, note="Case 2025-17")
    sharing.revoke_share(privacy, share)
    shared = AuditEvent.objects.get(action="evidencepack.shared")
    revoked = AuditEvent.objects.get(action="evidencepack.share_revoked")
    for event in (shared, revoked):
        payload = json.loads(event.payload)
        assert event.actor == privacy and event.object_type == "audits.evidencepack" and event.object_id == str(pack.pk)
        assert payload["regulator"] == "rory" and payload["share"] == share.pk and payload["pack_sha256"] == pack.sha256
    assert json.loads(shared.payload)["expires_at"] == expires.isoformat() and json.loads(shared.payload)["note"] == "Case 2025-17"
    assert AuditEvent.verify_chain().ok


def test_a_regulators_reading_is_an_audit_event(privacy, regulator, pack):
    share = sharing.share_pack(privacy, pack, regulator)
    sharing.record_pack_viewed(regulator, pack)
    sharing.record_pack_downloaded(regulator, pack, "PDF")
    viewed = AuditEvent.objects.get(action="evidencepack.viewed")
    downloaded = AuditEvent.objects.get(action="evidencepack.downloaded")
    assert viewed.actor == regulator and json.loads(viewed.payload)["share"] == share.pk
    assert json.loads(downloaded.payload)["what"] == "PDF"


def test_shared_with_me_lists_expired_and_revoked_packs_as_not_openable(engineer, privacy, regulator, other_regulator, pack):
    expired, revoked, unrelated = make_pack(engineer, 2), make_pack(engineer, 3), make_pack(engineer, 4)
    sharing.share_pack(privacy, pack, regulator)
    share = sharing.share_pack(privacy, expired, regulator, expires_at=timezone.now() + dt.timedelta(days=1))
    PackShare.objects.filter(pk=share.pk).update(expires_at=timezone.now() - dt.timedelta(days=1))
    sharing.revoke_share(privacy, sharing.share_pack(privacy, revoked, regulator))
    sharing.share_pack(privacy, unrelated, other_regulator)
    page = client_for(regulator).get(reverse("audits:shared_with_me")).content.decode()
    assert page.count("In force") == 1 and "Expired: no longer openable" in page and "Revoked: no longer openable" in page
    assert unrelated.sha256 not in page and pack.sha256 in page


def test_the_share_form_shares_until_the_end_of_the_chosen_day(privacy, regulator, legal, pack):
    client = client_for(privacy)
    url = reverse("audits:pack_shares", args=[pack.pk])
    form = client.get(url).content.decode()
    assert "rory" in form and "lena" not in form  # regulators only
    day = timezone.now().date() + dt.timedelta(days=10)
    response = client.post(url, {"regulator": regulator.pk, "expires_on": day.isoformat(), "note": "Annual review"})
    assert response.status_code == 302
    share = PackShare.objects.get()
    assert share.expires_at == dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=dt.timezone.utc)
    assert share.shared_by == privacy and share.note == "Annual review"
    client.post(reverse("audits:share_revoke", args=[share.pk]))
    share.refresh_from_db()
    assert share.revoked_at is not None
