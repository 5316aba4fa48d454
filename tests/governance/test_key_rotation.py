"""Key rotation: the master key (a new Tink keyset version, every wrapped data key and sealed value
re-wrapped in one transaction, the old version disabled) and the evidence-pack signing key (a new
Ed25519 key, the old one kept in the history with its period, so old packs still verify)."""

import hashlib
import io
import json
import os
import types
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils.html import escape

from audits import verify
from audits.models import EvidencePack
from governance import actions, key_rotation, signing_keys
from governance import models as m
from governance.keys import master_key, public_key_fingerprint, public_key_pem, signing_key
from governance.uploads import UploadRule, encrypt_stream
from governance.vault import MasterKey, WrongMasterKey
from tests.audits.pack_factory import audited_run
from tests.conftest import client_for, make_dataset, make_dpa, make_record
from training.models import PseudonymKey, RedactionReview, RunArtifact
from workflow import actions as workflow_actions
from workflow import evidence

REASON = "Scheduled yearly rotation of the portal's keys."


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    """The Celery messages the actions send after their commit (a dataset's PII profile) go nowhere."""
    from celery import Celery

    monkeypatch.setattr(Celery, "send_task", lambda app, name, *args, **kwargs: types.SimpleNamespace(id=str(uuid.uuid4())))


@pytest.fixture(autouse=True)
def _keys_from_files(monkeypatch):
    """Each test reads its keys from its own data dir, whatever the shell running the suite exports."""
    for name in ("PROVENANT_MASTER_KEY", "PROVENANT_MASTER_KEY_FILE", "PROVENANT_SIGNING_KEY", "PROVENANT_SIGNING_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)


def keyset_file(data_dir):
    return data_dir / "keys" / "master-keyset.json"


def plaintext_sha256(key_and_file) -> str:
    key, ciphertext = key_and_file
    with ciphertext, key.decrypting(ciphertext) as plaintext:
        return hashlib.sha256(plaintext.read()).hexdigest()


def attach_document(legal, content: bytes = b"%PDF-1.4 the signed agreement"):
    processor = make_record(legal, m.Processor(name="Northwind GPU Cloud"))
    dpa = make_record(legal, make_dpa(processor))
    rule = UploadRule(max_bytes=10**6, key_context=lambda blob: f"provenant:dpa-document:{blob}", magic=b"%PDF-", text=False)
    return actions.attach_dpa_document(legal, dpa, encrypt_stream(io.BytesIO(content), rule, "dpa.pdf"))


def make_review(dataset, text="Anna Schmidt wrote on Monday") -> RedactionReview:
    snippet_id = uuid.uuid4()
    return RedactionReview.objects.create(dataset=dataset, record_id="1", entity_type="PERSON", start=0, end=12, score=0.5,
                                          reason="low_confidence", snippet_offset=0, snippet_id=snippet_id,
                                          snippet_sealed=RedactionReview.seal_snippet(snippet_id, text))


def pack_path(tmp_path, data: bytes, name="pack.zip"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- the master key


@pytest.mark.django_db(transaction=True)
def test_after_master_key_rotation_every_dataset_document_artifact_and_pack_reads_back_and_packs_verify(
        engineer, legal, privacy, admin_user, data_dir, tmp_path):
    dataset = make_dataset(engineer, '{"text": "Anna wrote"}\n{"text": "Ben replied"}\n', name="Tickets")
    dpa = attach_document(legal)
    run, _ = audited_run(engineer, legal, privacy)
    pack = workflow_actions.build_pack(privacy, run)
    pseudonym_key = PseudonymKey.for_scope("default")
    review = make_review(dataset)
    artifacts = list(RunArtifact.objects.filter(run=run))
    assert artifacts, "the factory stores the run's adapter, curves and manifest"

    result = key_rotation.rotate_master_key(admin_user, REASON)

    assert result.rewrapped["governance.Dataset.wrapped_key"] == m.Dataset.objects.count() >= 2
    assert result.rewrapped["governance.DataProcessingAgreement.document_wrapped_key"] == 1
    assert result.rewrapped["training.RunArtifact.wrapped_key"] == len(artifacts)
    assert result.rewrapped["audits.EvidencePack.wrapped_key"] == 1
    assert result.rewrapped["training.PseudonymKey.sealed"] == 1 and result.rewrapped["training.RedactionReview.snippet_sealed"] == 1
    dataset.refresh_from_db()
    dpa.refresh_from_db()
    pack.refresh_from_db()
    assert plaintext_sha256(dataset.open_plaintext()) == dataset.sha256
    assert plaintext_sha256(dpa.open_document()) == dpa.document_sha256
    for artifact in RunArtifact.objects.filter(run=run):
        assert hashlib.sha256(artifact.read_bytes()).hexdigest() == artifact.sha256, artifact.name
    data = evidence.read_pack_bytes(pack)
    assert hashlib.sha256(data).hexdigest() == pack.sha256
    assert verify.verify_pack(pack_path(tmp_path, data), public_key_pem()).valid
    assert PseudonymKey.for_scope("default") == pseudonym_key
    assert RedactionReview.objects.get(pk=review.pk).open_snippet() == "Anna Schmidt wrote on Monday"


@pytest.mark.django_db(transaction=True)
def test_the_old_version_is_disabled_so_a_value_wrapped_before_the_rotation_no_longer_opens(engineer, admin_user, data_dir):
    dataset = make_dataset(engineer)
    PseudonymKey.for_scope("default")
    old_wrapped, old_sealed = bytes(dataset.wrapped_key), bytes(PseudonymKey.objects.get(scope="default").sealed)
    old_versions = MasterKey.from_json(keyset_file(data_dir).read_text()).key_versions()

    result = key_rotation.rotate_master_key(admin_user, REASON)

    keyset = MasterKey.from_json(keyset_file(data_dir).read_text())
    assert keyset.primary_key_id == result.new_key_id not in old_versions
    assert keyset.key_versions() == {**{key_id: "DISABLED" for key_id in old_versions}, result.new_key_id: "ENABLED"}
    assert list(result.old_key_ids) == list(old_versions)
    assert keyset_file(data_dir).stat().st_mode & 0o777 == 0o600
    context = m.Dataset.key_context(dataset.blob_id)
    with pytest.raises(WrongMasterKey):
        master_key().unwrap(old_wrapped, context)  # this process reloaded the changed file
    with pytest.raises(WrongMasterKey):
        master_key().open(old_sealed, "provenant:pseudonym-key:default")
    dataset.refresh_from_db()
    assert bytes(dataset.wrapped_key) != old_wrapped and master_key().unwrap(dataset.wrapped_key, context)


@pytest.mark.django_db(transaction=True)
def test_a_shredded_dataset_stays_shredded(engineer, admin_user):
    kept, shredded = make_dataset(engineer, name="Kept"), make_dataset(engineer, name="Shredded")
    actions.shred_dataset(engineer, shredded, "the customer asked for erasure")

    result = key_rotation.rotate_master_key(admin_user, REASON)

    shredded.refresh_from_db()
    assert shredded.wrapped_key is None and shredded.state == m.DatasetState.SHREDDED
    assert result.rewrapped["governance.Dataset.wrapped_key"] == 1 and result.left_empty["governance.Dataset.wrapped_key"] == 1
    with pytest.raises(m.DatasetShredded):
        shredded.open_plaintext()
    kept.refresh_from_db()
    assert plaintext_sha256(kept.open_plaintext()) == kept.sha256


@pytest.mark.django_db(transaction=True)
def test_the_rotation_is_in_the_trail_with_key_ids_and_counts_and_no_key_material(engineer, privacy, data_dir):
    make_dataset(engineer)
    before = keyset_file(data_dir).read_text()

    result = key_rotation.rotate_master_key(privacy, REASON)

    event = m.AuditEvent.objects.get(action="masterkey.rotated")
    payload = json.loads(event.payload)
    assert event.actor == privacy and event.object_type == "governance.masterkey" and event.sequence == result.event_sequence
    assert payload["old_key_ids"] == list(result.old_key_ids) and payload["new_key_id"] == result.new_key_id
    assert payload["rewrapped"]["governance.Dataset.wrapped_key"] == 1 and payload["reason"] == REASON
    secrets = [key["keyData"]["value"] for text in (before, keyset_file(data_dir).read_text()) for key in json.loads(text)["key"]]
    assert not any(secret in event.payload or secret in event.summary for secret in secrets)
    assert m.AuditEvent.verify_chain().ok


@pytest.mark.django_db(transaction=True)
def test_a_damaged_row_rolls_everything_back_leaves_the_keyset_file_unchanged_and_names_the_row(engineer, admin_user, data_dir):
    good, bad = make_dataset(engineer, name="Good"), make_dataset(engineer, name="Bad")
    damaged = bytearray(bad.wrapped_key)
    damaged[-3] ^= 0xFF
    m.Dataset.objects.filter(pk=bad.pk).update(wrapped_key=bytes(damaged))
    good_wrapped = bytes(good.wrapped_key)
    file_before, stat_before = keyset_file(data_dir).read_bytes(), keyset_file(data_dir).stat()
    events_before = m.AuditEvent.objects.count()

    with pytest.raises(key_rotation.KeyRotationFailed) as failure:
        key_rotation.rotate_master_key(admin_user, REASON)

    assert f"Dataset {bad.pk} (governance.Dataset.wrapped_key" in str(failure.value) and "Nothing was changed" in str(failure.value)
    assert keyset_file(data_dir).read_bytes() == file_before and keyset_file(data_dir).stat().st_ino == stat_before.st_ino
    good.refresh_from_db()
    assert bytes(good.wrapped_key) == good_wrapped  # re-wrapped in the transaction, then rolled back
    assert m.AuditEvent.objects.count() == events_before
    assert plaintext_sha256(good.open_plaintext()) == good.sha256


@pytest.mark.django_db(transaction=True)
def test_a_master_key_given_inline_in_the_environment_is_refused_with_what_to_do(admin_user, monkeypatch):
    monkeypatch.setenv("PROVENANT_MASTER_KEY", MasterKey.generate_json())
    with pytest.raises(key_rotation.KeyRotationRefused, match="set PROVENANT_MASTER_KEY_FILE to its path"):
        key_rotation.rotate_master_key(admin_user, REASON)
    assert not m.AuditEvent.objects.filter(action="masterkey.rotated").exists()


@pytest.mark.django_db(transaction=True)
def test_the_keyset_named_by_master_key_file_is_rotated_in_place(engineer, admin_user, tmp_path, monkeypatch):
    elsewhere = tmp_path / "secrets" / "provenant-master.json"
    elsewhere.parent.mkdir()
    elsewhere.write_text(MasterKey.generate_json())
    elsewhere.chmod(0o600)
    monkeypatch.setenv("PROVENANT_MASTER_KEY_FILE", str(elsewhere))
    dataset = make_dataset(engineer)

    result = key_rotation.rotate_master_key(admin_user, REASON)

    assert MasterKey.from_json(elsewhere.read_text()).primary_key_id == result.new_key_id and result.keyset == str(elsewhere)
    dataset.refresh_from_db()
    assert plaintext_sha256(dataset.open_plaintext()) == dataset.sha256


@pytest.mark.django_db(transaction=True)
def test_only_an_administrator_or_the_privacy_officer_rotates(engineer, legal, outsider, admin_user):
    for user in (engineer, legal, outsider):
        with pytest.raises(key_rotation.KeyRotationNotAllowed):
            key_rotation.rotate_master_key(user, REASON)
        with pytest.raises(key_rotation.KeyRotationNotAllowed):
            signing_keys.rotate_signing_key(user, REASON)
    with pytest.raises(key_rotation.KeyRotationRefused, match="at least 10 characters"):
        key_rotation.rotate_master_key(admin_user, "because")


def test_master_key_rotation_is_refused_inside_a_transaction(admin_user):
    with pytest.raises(key_rotation.KeyRotationRefused, match="outside transaction.atomic"):
        key_rotation.rotate_master_key(admin_user, REASON)


@pytest.mark.django_db(transaction=True)
def test_an_unregistered_binary_column_holding_values_blocks_the_rotation(engineer, admin_user, monkeypatch):
    make_dataset(engineer)
    PseudonymKey.for_scope("default")
    monkeypatch.delitem(key_rotation._PROTECTED, "training.PseudonymKey.sealed")

    with pytest.raises(key_rotation.KeyRotationRefused, match=r"training\.PseudonymKey\.sealed"):
        key_rotation.rotate_master_key(admin_user, REASON)
    assert not m.AuditEvent.objects.filter(action="masterkey.rotated").exists()


@pytest.mark.django_db(transaction=True)
def test_every_binary_column_of_the_apps_below_the_portal_is_registered():
    assert [label for label in key_rotation.unregistered_binary_fields()
            if label.split(".")[0] in ("governance", "training", "audits")] == []


@pytest.mark.django_db(transaction=True)
def test_manage_py_rotate_master_key_rotates_and_check_finds_nothing_stale(engineer, admin_user, data_dir):
    dataset = make_dataset(engineer)
    out, err = io.StringIO(), io.StringIO()

    call_command("rotate_master_key", reason=REASON, as_user=admin_user.username, stdout=out, stderr=err)

    assert "re-wrapped under it" in out.getvalue() and "governance.Dataset.wrapped_key: 1 re-wrapped" in out.getvalue()
    dataset.refresh_from_db()
    assert plaintext_sha256(dataset.open_plaintext()) == dataset.sha256
    check = io.StringIO()
    call_command("rotate_master_key", check=True, stdout=check)
    assert "Every stored key and sealed value is under the keyset's primary version" in check.getvalue()
    with pytest.raises(CommandError, match="--reason"):
        call_command("rotate_master_key", as_user=admin_user.username, stdout=io.StringIO())


@pytest.mark.django_db(transaction=True)
def test_check_names_a_row_written_under_a_disabled_version(engineer, admin_user, data_dir):
    dataset = make_dataset(engineer)
    old_wrapped = bytes(dataset.wrapped_key)
    key_rotation.rotate_master_key(admin_user, REASON)
    m.Dataset.objects.filter(pk=dataset.pk).update(wrapped_key=old_wrapped)  # as a process that had not reloaded would

    out = io.StringIO()
    with pytest.raises(CommandError, match="not under the primary version"):
        call_command("rotate_master_key", check=True, stdout=out)
    assert f"governance.Dataset.wrapped_key: 1 not under the primary version (ids {dataset.pk})" in out.getvalue()


def test_a_process_reloads_the_master_keyset_when_its_file_changes(data_dir):
    first = master_key()
    assert master_key() is first  # cached while the file is unchanged
    keyset = MasterKey.from_json(keyset_file(data_dir).read_text()).with_new_primary()
    from governance.vault import replace_private_file

    replace_private_file(keyset_file(data_dir), keyset.to_json())
    assert master_key() is not first and master_key().primary_key_id == keyset.primary_key_id


# --------------------------------------------------------------------------- the signing key


@pytest.fixture(scope="module")
def signed_once(django_db_setup, django_db_blocker, tmp_path_factory):
    """One pack, rendered once for the module (WeasyPrint takes seconds): its zip and the private
    key that signed it. The database rows are rolled back."""
    from django.db import transaction
    from django.test import override_settings

    from governance import roles
    from tests.conftest import _make_user

    data_dir = tmp_path_factory.mktemp("signed-once") / "var"
    data_dir.mkdir()
    with django_db_blocker.unblock(), override_settings(PROVENANT_DATA_DIR=data_dir), transaction.atomic():
        engineer, legal, privacy = (_make_user(n, r) for n, r in (("erin", roles.ENGINEER), ("lena", roles.LEGAL), ("priya", roles.PRIVACY)))
        run, _ = audited_run(engineer, legal, privacy)
        data = evidence.read_pack_bytes(workflow_actions.build_pack(privacy, run))
        transaction.set_rollback(True)
    return {"zip": data, "private_key": (data_dir / "keys" / "provenant_signing_key").read_text()}


@pytest.fixture
def old_pack(engineer, legal, privacy, data_dir, signed_once):
    """A pack this test's portal built and recorded with its signing key (the module's zip, and
    the key that signed it as this data dir's key)."""
    keys = data_dir / "keys"
    keys.mkdir(mode=0o700, exist_ok=True)
    (keys / "provenant_signing_key").write_text(signed_once["private_key"])
    (keys / "provenant_signing_key").chmod(0o600)
    run, audit = audited_run(engineer, legal, privacy)
    data = signed_once["zip"]
    manifest = json.loads(zip_member(data, "manifest.json"))
    blob_id, wrapped = evidence.store_zip(data)
    return EvidencePack.objects.create(run=run, audit=audit, created_by=privacy, sha256=hashlib.sha256(data).hexdigest(),
                                       size_bytes=len(data), blob_id=blob_id, wrapped_key=wrapped, manifest=manifest,
                                       signature=zip_member(data, "signature.sig").decode().strip(),
                                       public_key_fingerprint=manifest["signature"]["public_key_sha256"], pages=10, seconds=1.0)


def zip_member(data: bytes, name: str) -> bytes:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read(name)


def recorded_at(zip_sha256):
    return EvidencePack.objects.filter(sha256=zip_sha256).values_list("created_at", flat=True).first()


def test_after_signing_key_rotation_new_packs_carry_the_new_key_and_old_packs_still_verify(old_pack, privacy, admin_user, tmp_path):
    old_fingerprint, old_pem = public_key_fingerprint(), public_key_pem()

    result = signing_keys.rotate_signing_key(admin_user, REASON)

    assert old_fingerprint == old_pack.public_key_fingerprint
    assert result.old_fingerprint == old_fingerprint and result.new_fingerprint == public_key_fingerprint() != old_fingerprint
    new_pack = workflow_actions.build_pack(privacy, old_pack.run)
    assert new_pack.public_key_fingerprint == result.new_fingerprint and old_pack.public_key_fingerprint == old_fingerprint
    history = signing_keys.key_history()
    for pack, fingerprint in ((old_pack, old_fingerprint), (new_pack, result.new_fingerprint)):
        path = pack_path(tmp_path, evidence.read_pack_bytes(pack), f"pack-{pack.pk}.zip")
        checked = verify.verify_pack_with_keys(path, history, recorded_at=recorded_at)
        assert checked.valid and checked.key_fingerprint == fingerprint, checked.problems
    old_zip = pack_path(tmp_path, evidence.read_pack_bytes(old_pack), "old.zip")
    assert verify.verify_pack(old_zip, old_pem).valid  # offline, with the key published for its period
    assert not verify.verify_pack(old_zip, public_key_pem()).valid


def test_the_history_records_both_periods_and_the_trail_the_rotation(old_pack, admin_user):
    result = signing_keys.rotate_signing_key(admin_user, REASON)

    old, new = m.SigningKey.objects.get(fingerprint=result.old_fingerprint), m.SigningKey.objects.get(fingerprint=result.new_fingerprint)
    assert old.valid_until == new.valid_from == result.rotated_at and new.valid_until is None
    assert old.valid_from <= old_pack.created_at <= old.valid_until  # the first key counts from the portal's first event
    assert old.retired_reason == REASON and old.retired_by == admin_user and new.created_by == admin_user
    event = m.AuditEvent.objects.get(action="signingkey.rotated")
    payload = json.loads(event.payload)
    assert payload["old_fingerprint"] == result.old_fingerprint and payload["new_fingerprint"] == result.new_fingerprint
    assert "PRIVATE" not in event.payload and m.AuditEvent.objects.filter(action="signingkey.recorded").count() == 1
    assert m.AuditEvent.verify_chain().ok


def test_the_public_key_page_lists_every_key_with_its_period(old_pack, admin_user, regulator):
    result = signing_keys.rotate_signing_key(admin_user, REASON)

    page = client_for(regulator).get("/audits/signing-key/").content.decode()
    assert result.old_fingerprint in page and result.new_fingerprint in page
    assert f"{result.rotated_at:%Y-%m-%d %H:%M:%S} UTC" in page and "current" in page and escape(REASON) in page
    old_pem = client_for(regulator).get(f"/audits/signing-key.pem?fingerprint={result.old_fingerprint}").content.decode()
    assert old_pem == m.SigningKey.objects.get(fingerprint=result.old_fingerprint).public_key_pem
    keyring = verify.read_keyring(client_for(regulator).get("/audits/signing-key/?format=json").content)
    assert {k.fingerprint: k.valid_until for k in keyring} == {result.old_fingerprint: result.rotated_at, result.new_fingerprint: None}


def test_the_verification_page_verifies_a_pack_of_a_retired_key(old_pack, admin_user, regulator):
    data = evidence.read_pack_bytes(old_pack)
    signing_keys.rotate_signing_key(admin_user, REASON)

    upload = io.BytesIO(data)
    upload.name = "old.zip"
    page = client_for(regulator).post("/audits/verify/", {"pack": upload}).content.decode()
    assert "VALID</span>" in page and "INVALID" not in page and old_pack.public_key_fingerprint in page and "retired on" in page


def test_a_pack_recorded_after_its_key_was_retired_does_not_verify_online(old_pack, admin_user, tmp_path):
    import datetime as dt

    path = pack_path(tmp_path, evidence.read_pack_bytes(old_pack))
    result = signing_keys.rotate_signing_key(admin_user, REASON)
    EvidencePack.objects.filter(pk=old_pack.pk).update(created_at=result.rotated_at + dt.timedelta(hours=1))

    checked = verify.verify_pack_with_keys(path, signing_keys.key_history(), recorded_at=recorded_at)
    assert not checked.valid and any("after key" in p and "was retired" in p for p in checked.problems), checked.problems


def test_a_retired_keys_pack_the_portal_never_recorded_does_not_verify_online(old_pack, admin_user, tmp_path):
    path = pack_path(tmp_path, evidence.read_pack_bytes(old_pack))
    signing_keys.rotate_signing_key(admin_user, REASON)

    checked = verify.verify_pack_with_keys(path, signing_keys.key_history(), recorded_at=lambda sha: None)
    assert not checked.valid and any("holds no record of this pack" in p for p in checked.problems)


def test_offline_verification_picks_the_key_the_pack_names_and_checks_its_period(old_pack, admin_user, tmp_path, capsys):
    old_zip = pack_path(tmp_path, evidence.read_pack_bytes(old_pack), "old.zip")
    old_pem_path = tmp_path / "old.pem"
    old_pem_path.write_text(public_key_pem())
    signing_keys.rotate_signing_key(admin_user, REASON)
    new_pem_path = tmp_path / "new.pem"
    new_pem_path.write_text(public_key_pem())
    keyring_path = tmp_path / "keyring.json"
    keyring_path.write_text(verify.keyring_json(signing_keys.key_history()))

    assert verify.main([str(old_zip), "--public-key", str(new_pem_path), "--public-key", str(old_pem_path)]) == 0
    capsys.readouterr()
    assert verify.main([str(old_zip), "--keyring", str(keyring_path)]) == 0, capsys.readouterr()
    assert "retired on" in capsys.readouterr().out
    assert verify.main([str(old_zip), "--public-key", str(new_pem_path)]) == 1  # the current key alone: another key signed it


def test_a_signing_key_given_inline_is_refused_with_what_to_do(admin_user, monkeypatch):
    pem = signing_key().private_bytes(*_pkcs8()).decode()
    monkeypatch.setenv("PROVENANT_SIGNING_KEY", pem)
    with pytest.raises(key_rotation.KeyRotationRefused, match="set PROVENANT_SIGNING_KEY_FILE to its path"):
        signing_keys.rotate_signing_key(admin_user, REASON)


def _pkcs8():
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()


def test_the_signing_key_file_is_replaced_0600_and_the_process_signs_with_the_new_key(admin_user, data_dir):
    stored = data_dir / "keys" / "provenant_signing_key"
    before = public_key_fingerprint()

    result = signing_keys.rotate_signing_key(admin_user, REASON)

    assert stored.stat().st_mode & 0o777 == 0o600 and "PRIVATE KEY" in stored.read_text()
    assert public_key_fingerprint() == result.new_fingerprint != before
    assert not [p for p in os.listdir(stored.parent) if p.endswith(".partial")]


def test_reading_the_key_pages_writes_nothing_and_shows_the_key_in_use(regulator):
    page = client_for(regulator).get("/audits/signing-key/").content.decode()
    assert public_key_fingerprint() in page and "current" in page
    assert not m.SigningKey.objects.exists() and not m.AuditEvent.objects.filter(action__startswith="signingkey").exists()


def test_manage_py_rotate_signing_key(admin_user):
    before = public_key_fingerprint()
    out = io.StringIO()
    call_command("rotate_signing_key", reason=REASON, as_user=admin_user.username, stdout=out)
    assert public_key_fingerprint() != before and f"key {before} was retired" in out.getvalue()
    with pytest.raises(CommandError, match="No active user"):
        call_command("rotate_signing_key", reason=REASON, as_user="nobody", stdout=io.StringIO())


def test_offline_a_keyring_says_a_pack_newer_than_its_keys_retirement_is_invalid(old_pack, tmp_path, capsys):
    import datetime as dt

    old_zip = pack_path(tmp_path, evidence.read_pack_bytes(old_pack), "old.zip")
    created = dt.datetime.fromisoformat(old_pack.manifest["created"].replace("Z", "+00:00"))
    retired_early = verify.TrustedKey(fingerprint=public_key_fingerprint(), public_key_pem=public_key_pem(),
                                      valid_from=created - dt.timedelta(days=30), valid_until=created - dt.timedelta(hours=1))
    keyring_path = tmp_path / "keyring.json"
    keyring_path.write_text(verify.keyring_json([retired_early]))

    assert verify.main([str(old_zip), "--keyring", str(keyring_path)]) == 1
    assert "signed after the key stopped being valid" in capsys.readouterr().out


def test_manage_py_verify_pack_verifies_a_pack_of_a_retired_key_with_the_history(old_pack, admin_user, tmp_path):
    path = pack_path(tmp_path, evidence.read_pack_bytes(old_pack))
    signing_keys.rotate_signing_key(admin_user, REASON)

    out = io.StringIO()
    call_command("verify_pack", str(path), stdout=out)
    assert f"VALID: {path}" in out.getvalue() and old_pack.public_key_fingerprint in out.getvalue() and "retired on" in out.getvalue()
