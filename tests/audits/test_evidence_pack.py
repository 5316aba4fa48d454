"""Evidence packs: a signed zip (PDF, results, manifest, Ed25519 signature) for a completed run,
verifiable offline; the same inputs give the same manifest; user text stays text; who may see one."""

import hashlib
import io
import json
import subprocess
import sys
import zipfile

import pytest
from pypdf import PdfReader

from workflow import actions, evidence
from audits.models import EvidencePack, PackShare
from audits.verify import PackUnreadable, verify_pack
from governance.models import AuditEvent
from governance.keys import public_key_fingerprint, public_key_pem
from tests.audits.pack_factory import audited_run
from tests.conftest import client_for

MARKUP = "<b>bold</b><script>alert(1)</script>"
PACK_FILES = ["README.txt", "manifest.json", "public_key.pem", "report.pdf", "results.json", "signature.sig"]


INTENDED_USE = f"Drafting replies to support tickets. {MARKUP}"


@pytest.fixture
def audited(engineer, legal, privacy):
    return audited_run(engineer, legal, privacy, intended_use=INTENDED_USE)


@pytest.fixture(scope="module")
def built(django_db_setup, django_db_blocker, tmp_path_factory):
    """One pack, rendered once for the module (WeasyPrint takes seconds): its zip, the data dir
    whose key signed it, and that public key. The database rows are rolled back."""
    from django.db import transaction
    from django.test import override_settings

    from governance import roles
    from tests.conftest import _make_user

    data_dir = tmp_path_factory.mktemp("shared-pack") / "var"
    data_dir.mkdir()
    with django_db_blocker.unblock(), override_settings(PROVENANT_DATA_DIR=data_dir), transaction.atomic():
        engineer, legal, privacy = (_make_user(n, r) for n, r in (("erin", roles.ENGINEER), ("lena", roles.LEGAL), ("priya", roles.PRIVACY)))
        run, _ = audited_run(engineer, legal, privacy, intended_use=INTENDED_USE)
        data = evidence.read_pack_bytes(actions.build_pack(privacy, run))
        pem = public_key_pem()
        transaction.set_rollback(True)
    return {"zip": data, "data_dir": data_dir, "pem": pem}


@pytest.fixture
def pack(audited, privacy, built):
    """A pack row of a run in this test's database, holding the module's zip (stored encrypted
    here): for the pages, which are about access, not content."""
    run, audit = audited
    blob_id, wrapped = evidence.store_zip(built["zip"])
    manifest = json.loads(members(built["zip"])["manifest.json"])
    return EvidencePack.objects.create(run=run, audit=audit, created_by=privacy, sha256=hashlib.sha256(built["zip"]).hexdigest(),
                                       size_bytes=len(built["zip"]), blob_id=blob_id, wrapped_key=wrapped, manifest=manifest,
                                       signature=members(built["zip"])["signature.sig"].decode().strip(),
                                       public_key_fingerprint=manifest["signature"]["public_key_sha256"], pages=20, seconds=1.0)


def pack_zip(pack) -> bytes:
    return evidence.read_pack_bytes(pack)


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rezip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def check(tmp_path, data: bytes, pem):
    path = tmp_path / "pack.zip"
    path.write_bytes(data)
    return verify_pack(path, pem)


def test_a_pack_builds_for_a_completed_run_and_is_recorded_with_its_audit_event(privacy, audited):
    run, audit = audited
    pack = actions.build_pack(privacy, run)
    assert pack.run == run and pack.audit == audit and pack.pages >= 8 and pack.seconds > 0
    data = pack_zip(pack)
    assert len(data) == pack.size_bytes and hashlib.sha256(data).hexdigest() == pack.sha256
    assert sorted(members(data)) == PACK_FILES
    assert pack.public_key_fingerprint == public_key_fingerprint() and len(pack.signature) == 128
    event = AuditEvent.objects.get(action="evidencepack.built")
    assert event.object_id == str(pack.pk) and json.loads(event.payload)["sha256"] == pack.sha256
    assert AuditEvent.verify_chain().ok


def test_the_pdf_holds_every_section_and_the_verdict(built):
    reader = PdfReader(io.BytesIO(members(built["zip"])["report.pdf"]))
    flat = " ".join(pdf_text(members(built["zip"])["report.pdf"]).split())
    for _, title in evidence.SECTIONS:
        assert title in flat, title
    assert "Verdict: PASSED" in flat and "No model card yet" in flat
    assert f"Page 1 of {len(reader.pages)}" in flat and f"Page {len(reader.pages)} of {len(reader.pages)}" in flat
    manifest = json.loads(members(built["zip"])["manifest.json"])
    assert manifest["signature"]["public_key_sha256"] in flat  # the key's fingerprint is printed in the pack


def test_the_manifest_lists_the_sha256_of_every_file_and_the_signature_verifies(built, tmp_path):
    files = members(built["zip"])
    manifest = json.loads(files["manifest.json"])
    assert set(manifest["files"]) == set(PACK_FILES) - {"manifest.json", "signature.sig"}
    for name, digest in manifest["files"].items():
        assert hashlib.sha256(files[name]).hexdigest() == digest
    assert files["public_key.pem"].decode() == built["pem"]
    result = check(tmp_path, built["zip"], built["pem"])
    assert result.valid, result.problems


def test_the_audit_trail_excerpt_carries_every_hashed_field_so_each_hash_recomputes(built):
    from audits.verify import event_hash

    events = json.loads(members(built["zip"])["results.json"])["audit_trail"]["events"]
    actions_seen = {e["action"] for e in events}
    assert {"trainingrequest.submitted", "trainingrequest.approved", "trainingrequest.dispatched", "adapteraudit.completed"} <= actions_seen
    assert all(event_hash(e) == e["hash"] for e in events)
    assert not any(e["action"].startswith("evidencepack.") for e in events)  # building a pack does not change its own inputs


def released_and_downloaded(run, privacy, engineer, downloads: int) -> list[int]:
    """Release the adapter, then download it many times: a trail whose oldest events are not the ones that matter.
    Returns the sequences of the download events, oldest first."""
    from audits.actions import record_adapter_download, release_adapter

    release_adapter(privacy, run)
    for _ in range(downloads):
        record_adapter_download(engineer, run)
    return list(AuditEvent.objects.filter(action="adapter.downloaded").order_by("sequence").values_list("sequence", flat=True))


def test_a_trail_longer_than_the_limit_keeps_every_decision_and_the_newest_events(audited, privacy, engineer, monkeypatch):
    run, audit = audited
    monkeypatch.setattr(evidence, "MAX_TRAIL_EVENTS", 15)
    downloads = released_and_downloaded(run, privacy, engineer, 40)
    trail = evidence.gather(run, audit)["audit_trail"]
    events = trail["events"]
    kept = [e["action"] for e in events]
    sequences = [e["sequence"] for e in events]
    assert len(events) == 15 and sequences == sorted(sequences)
    assert {"trainingrequest.submitted", "trainingrequest.approved", "trainingrequest.dispatched", "trainingrun.succeeded",
            "adapteraudit.completed", "adapter.released"} <= set(kept)
    assert kept.count("trainingrequest.approved") == 2  # both signatures, not just one
    room = 15 - sum(a in evidence.DECISION_ACTIONS for a in kept)
    assert room > 0 and [s for s in sequences if s in downloads] == downloads[-room:]  # the newest, not the oldest
    assert trail["truncated"] and trail["omitted"] == trail["total"] - 15 and trail["omitted"] >= 40 - room


def test_the_pdf_says_how_many_trail_events_were_left_out(audited, privacy, engineer, monkeypatch):
    run, audit = audited
    monkeypatch.setattr(evidence, "MAX_TRAIL_EVENTS", 15)
    released_and_downloaded(run, privacy, engineer, 40)
    facts = evidence.gather(run, audit)
    pdf, _ = evidence.render_pdf(facts, public_key_fingerprint(), public_key_pem())
    text = " ".join(pdf_text(pdf).split())
    omitted, total = facts["audit_trail"]["omitted"], facts["audit_trail"]["total"]
    assert f"{omitted} older events of the {total} are left out" in text


def test_the_signing_key_is_generated_0600_in_development_and_refused_in_production(settings, data_dir, monkeypatch):
    from governance.keys import signing_key
    from governance.secrets import MissingSecret

    monkeypatch.delenv("PROVENANT_SIGNING_KEY", raising=False)
    monkeypatch.delenv("PROVENANT_SIGNING_KEY_FILE", raising=False)
    fingerprint = public_key_fingerprint()
    stored = data_dir / "keys" / "provenant_signing_key"
    assert stored.stat().st_mode & 0o777 == 0o600 and "PRIVATE KEY" in stored.read_text()
    settings.PRODUCTION, settings.PROVENANT_DATA_DIR = True, data_dir.parent / "web-host"
    with pytest.raises(MissingSecret):
        signing_key()
    monkeypatch.setenv("PROVENANT_SIGNING_KEY_FILE", str(stored))
    assert public_key_fingerprint() == fingerprint


@pytest.mark.parametrize("name", PACK_FILES)
def test_flipping_one_byte_of_any_file_fails_verification_naming_that_file(built, tmp_path, name):
    files = members(built["zip"])
    data = bytearray(files[name])
    position = len(data) // 2
    data[position] = ord("0") if data[position] != ord("0") else ord("1")  # keeps signature.sig hex, so the signature itself fails
    files[name] = bytes(data)
    result = check(tmp_path, rezip(files), built["pem"])
    assert not result.valid
    assert any(name in problem for problem in result.problems), result.problems


def test_a_file_not_in_the_manifest_is_reported(built, tmp_path):
    files = members(built["zip"])
    files["extra.txt"] = b"slipped in"
    result = check(tmp_path, rezip(files), built["pem"])
    assert not result.valid and any(p.startswith("extra.txt:") and "not listed" in p for p in result.problems)


def rezip_with(files: dict[str, bytes], extra: list[tuple[str, bytes]]) -> bytes:
    """The pack's files plus raw entries written as given (names may repeat, end in '/', climb out)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in [*files.items(), *extra]:
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize("entry, data", [
    ("payload/", b""),                          # an empty directory entry
    ("payload/", b"data in a directory entry"),  # zipfile reads it, unzip tools may too
    ("payload/notes.txt", b"slipped in"),
    ("README.txt", b"a second copy of a listed name"),
    ("/etc/cron.d/pack", b"absolute"),
    ("../outside.txt", b"climbs out"),
    ("docs/../README.txt", b"climbs back to a listed name"),
    ("C:/Windows/pack.txt", b"a drive"),
    ("docs\\README.txt", b"a backslash"),
], ids=["empty-dir", "dir-with-data", "file-in-dir", "duplicate", "absolute", "dotdot", "dotdot-inside", "drive", "backslash"])
def test_any_entry_the_manifest_does_not_list_fails_verification_naming_it(built, tmp_path, entry, data):
    result = check(tmp_path, rezip_with(members(built["zip"]), [(entry, data)]), built["pem"])
    assert not result.valid and any(p.startswith(f"{entry}:") for p in result.problems), result.problems


def test_a_local_entry_the_central_directory_omits_fails_verification(built, tmp_path):
    """A streaming unzip reads local headers in order and finds a file the central directory hides."""
    hidden = io.BytesIO()
    with zipfile.ZipFile(hidden, "w") as archive:
        archive.writestr("payload.bin", b"hidden from the central directory")
        hidden_entry = hidden.getvalue()[:archive.start_dir]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members(built["zip"]).items():
            archive.writestr(name, data)
        buffer.seek(archive.start_dir)
        buffer.write(hidden_entry)
        archive.start_dir = buffer.tell()  # the central directory follows, without the hidden entry
    assert b"payload.bin" in buffer.getvalue() and "payload.bin" not in zipfile.ZipFile(buffer).namelist()
    result = check(tmp_path, buffer.getvalue(), built["pem"])
    assert not result.valid and any(p.startswith("(zip):") and "no listed entry" in p for p in result.problems), result.problems


@pytest.mark.parametrize("how", ["prefix", "comment", "trailer"])
def test_bytes_outside_the_entries_fail_verification(built, tmp_path, how):
    data = built["zip"]
    if how == "prefix":  # zipfile still opens a zip with bytes in front of it
        data = b"#!/bin/sh\necho hidden\n" + data
    elif how == "comment":
        buffer = io.BytesIO(data)
        with zipfile.ZipFile(buffer, "a") as archive:
            archive.comment = b"not covered by the manifest"
        data = buffer.getvalue()
    else:
        data += b"trailing bytes"
    result = check(tmp_path, data, built["pem"])
    assert not result.valid and any(p.startswith("(zip):") for p in result.problems), result.problems


def test_a_pack_rezipped_by_a_streaming_writer_still_verifies(built, tmp_path):
    """Data descriptors (written when the output cannot seek) are part of their entry, not extra bytes."""
    class Unseekable(io.RawIOBase):
        def __init__(self):
            self.buffer = io.BytesIO()

        def writable(self):
            return True

        def write(self, data):
            return self.buffer.write(data)

    stream = Unseekable()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members(built["zip"]).items():
            archive.writestr(name, data)
    data = stream.buffer.getvalue()
    assert all(info.flag_bits & 0x08 for info in zipfile.ZipFile(io.BytesIO(data)).infolist())
    result = check(tmp_path, data, built["pem"])
    assert result.valid, result.problems


def test_another_key_does_not_verify_the_pack(built, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    other = Ed25519PrivateKey.generate().public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    path = tmp_path / "pack.zip"
    path.write_bytes(built["zip"])
    result = verify_pack(path, other)
    assert not result.valid and any("signature.sig" in p for p in result.problems)
    with pytest.raises(PackUnreadable):
        verify_pack(tmp_path / "pack.zip", b"not a key")


def test_markup_typed_into_the_purpose_is_text_in_the_pdf(built):
    text = " ".join(pdf_text(members(built["zip"])["report.pdf"]).split())
    assert MARKUP in text


def test_the_same_inputs_give_the_same_manifest(privacy, audited):
    run, _ = audited
    first, second = actions.build_pack(privacy, run), actions.build_pack(privacy, run)
    assert first.manifest == second.manifest and first.signature == second.signature
    assert pack_zip(first) == pack_zip(second)
    assert first.manifest["created"] == evidence.gather(run, first.audit)["created"]


def test_the_command_line_verifier_needs_no_django_and_sets_its_exit_status(built, tmp_path):
    path, key = tmp_path / "pack.zip", tmp_path / "key.pem"
    path.write_bytes(built["zip"])
    key.write_text(built["pem"])
    probe = "import sys, runpy; sys.argv = ['verify', sys.argv[1], '--public-key', sys.argv[2]]\n" \
            "try:\n    runpy.run_module('audits.verify', run_name='__main__')\nfinally:\n" \
            "    assert not any(m == 'django' or m.startswith('django.') for m in sys.modules), 'imported Django'\n"
    ok = subprocess.run([sys.executable, "-c", probe, str(path), str(key)], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("VALID"), ok.stdout + ok.stderr
    files = members(path.read_bytes())
    files["results.json"] = files["results.json"].replace(b"PASSED", b"PASSES", 1)
    path.write_bytes(rezip(files))
    bad = subprocess.run([sys.executable, "-m", "audits.verify", str(path), "--public-key", str(key)], capture_output=True, text=True)
    assert bad.returncode == 1 and "INVALID" in bad.stdout and "results.json" in bad.stdout
    path.write_bytes(b"not a zip")
    assert subprocess.run([sys.executable, "-m", "audits.verify", str(path), "--public-key", str(key)], capture_output=True).returncode == 2


def test_a_pack_needs_a_completed_audit(privacy, engineer, legal):
    from tests.audits.pack_factory import approved_request, finish_run

    run = finish_run(approved_request(engineer, [legal, privacy]).run)
    with pytest.raises(evidence.PackRefused, match="no completed audit"):
        actions.build_pack(privacy, run)


def test_only_the_privacy_officer_builds_packs(engineer, audited):
    with pytest.raises(PermissionError):
        actions.build_pack(engineer, audited[0])
    response = client_for(engineer).post(f"/audits/runs/{audited[0].pk}/pack/")
    assert response.status_code == 403 and not EvidencePack.objects.exists()


def test_the_verification_page_says_valid_or_invalid_naming_the_file(built, regulator, settings):
    settings.PROVENANT_DATA_DIR = built["data_dir"]  # the portal whose key signed the module's pack
    client = client_for(regulator)
    data = built["zip"]
    page = client.post("/audits/verify/", {"pack": _named(data)})
    body = page.content.decode()
    assert page.status_code == 200 and "VALID" in body and "INVALID" not in body
    files = members(data)
    files["report.pdf"] = files["report.pdf"][:-10] + b"0000000000"
    bad = client.post("/audits/verify/", {"pack": _named(rezip(files))}).content.decode()
    assert "INVALID" in bad and "report.pdf" in bad
    junk = client.post("/audits/verify/", {"pack": _named(b"no zip here")}).content.decode()
    assert "not a readable zip" in junk


def _named(data: bytes, name="pack.zip"):
    upload = io.BytesIO(data)
    upload.name = name
    return upload


def test_the_public_key_page_is_open_to_every_role(regulator, outsider):
    page = client_for(regulator).get("/audits/signing-key/").content.decode()
    assert public_key_fingerprint() in page and "BEGIN PUBLIC KEY" in page
    assert client_for(None).get("/audits/signing-key/").status_code == 302
    assert client_for(outsider).get("/audits/signing-key/").status_code == 403  # no role yet: nothing
    pem = client_for(regulator).get("/audits/signing-key.pem")
    assert pem.content.decode() == public_key_pem()


def test_the_owner_and_the_privacy_officer_download_and_each_download_is_audited(pack, engineer, privacy, legal):
    for user in (engineer, privacy, legal):
        response = client_for(user).get(f"/audits/packs/{pack.pk}/pack.zip")
        assert response.status_code == 200 and b"".join(response.streaming_content) == pack_zip(pack)
        assert response["Content-Disposition"].startswith("attachment")
    assert AuditEvent.objects.filter(action="evidencepack.downloaded", object_id=str(pack.pk)).count() == 3
    detail = client_for(engineer).get(pack.get_absolute_url()).content.decode()
    assert pack.signature in detail and pack.manifest["files"]["report.pdf"] in detail


def test_an_engineer_of_another_run_and_an_outsider_see_no_pack(pack, other_engineer, outsider):
    for user in (other_engineer, outsider):
        client = client_for(user)
        assert client.get(pack.get_absolute_url()).status_code in (403, 404)
        assert client.get(f"/audits/packs/{pack.pk}/pack.zip").status_code in (403, 404)
    assert client_for(other_engineer).get(pack.get_absolute_url()).status_code == 404


def test_a_regulator_sees_a_pack_only_while_it_is_shared_and_viewing_is_audited(pack, regulator, privacy):
    from django.utils import timezone

    client = client_for(regulator)
    assert client.get(pack.get_absolute_url()).status_code == 404
    assert client.get(f"/audits/packs/{pack.pk}/pack.zip").status_code == 404
    share = PackShare.objects.create(pack=pack, regulator=regulator, shared_by=privacy)
    assert client.get(pack.get_absolute_url()).status_code == 200
    assert AuditEvent.objects.filter(action="evidencepack.viewed", actor=regulator).count() == 1
    assert b"".join(client.get(f"/audits/packs/{pack.pk}/pack.zip").streaming_content) == pack_zip(pack)
    PackShare.objects.filter(pk=share.pk).update(revoked_at=timezone.now())
    assert client.get(pack.get_absolute_url()).status_code == 404


def test_the_privacy_officer_builds_a_pack_from_the_run_page(privacy, engineer, audited):
    run, audit = audited
    for url in (run.get_absolute_url(), audit.get_absolute_url()):
        assert f"/audits/runs/{run.pk}/pack/" in client_for(privacy).get(url).content.decode()
        assert f"/audits/runs/{run.pk}/pack/" not in client_for(engineer).get(url).content.decode()
    response = client_for(privacy).post(f"/audits/runs/{run.pk}/pack/")
    pack = EvidencePack.objects.get()
    assert response.status_code == 302 and response["Location"] == pack.get_absolute_url()


def test_manage_py_verify_pack_uses_the_portals_key(built, tmp_path, settings, db):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    settings.PROVENANT_DATA_DIR = built["data_dir"]
    path = tmp_path / "pack.zip"
    path.write_bytes(built["zip"])
    out = io.StringIO()
    call_command("verify_pack", str(path), stdout=out)
    assert "VALID" in out.getvalue()
    files = members(path.read_bytes())
    files["public_key.pem"] = files["public_key.pem"].replace(b"A", b"B", 1)
    path.write_bytes(rezip(files))
    with pytest.raises(CommandError, match="public_key.pem"):
        call_command("verify_pack", str(path), stdout=io.StringIO())


def test_the_model_card_appears_with_its_state_sections_and_facts(audited):
    from workflow.models import MODEL_CARD_SECTIONS, ModelCard

    run, audit = audited
    ModelCard.objects.create(run=run, sections={"intended_use": "Agents' drafts only. <i>not markup</i>"}, facts={"epsilon": 3.87})
    facts = evidence.gather(run, audit)
    pdf, _ = evidence.render_pdf(facts, public_key_fingerprint(), public_key_pem())
    text = " ".join(pdf_text(pdf).split())
    assert "No model card yet" not in text and "State: Draft" in text
    assert all(title in text for _, title in MODEL_CARD_SECTIONS)
    assert "Agents' drafts only. <i>not markup</i>" in text and "epsilon 3.87" in text
    assert facts["verdict"]["model_card"] == "Draft"


def test_the_verification_page_refuses_a_file_over_the_limit(regulator, settings):
    settings.PROVENANT_MAX_PACK_BYTES = 1024
    page = client_for(regulator).post("/audits/verify/", {"pack": _named(b"x" * 5000)})
    assert page.status_code == 400 and "larger than the limit" in page.content.decode()
