"""Dataset uploads: streamed, validated, encrypted at once; bad input stored nowhere; crypto-shredding."""

import io
import os
from pathlib import Path

import pytest
import tink
from django.urls import reverse

from governance import actions
from governance import models as m
from governance.ingest import IngestError
from governance.uploads import encrypt_stream
from governance.vault import KeyUnavailable
from tests.conftest import api_client_for, client_for, make_dataset, upload_rule

MARKER = "ZEBRA-PLANTED-MARKER-7f3a9c"


def _files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def _upload(client, content: bytes, filename="data.jsonl", **fields):
    data = {"name": "Upload", "file_format": "jsonl", "text_field": "text", "source": "CRM export",
            "lawful_basis": "contract", "segment": "train", **fields}
    data["file"] = _named(content, filename)
    return client.post(reverse("governance:dataset_create"), data)


def _named(content: bytes, filename: str):
    handle = io.BytesIO(content)
    handle.name = filename
    return handle


def test_upload_through_the_page_records_hash_size_and_count(engineer):
    content = b'{"text": "first"}\n{"text": "second"}\n\n{"text": "third"}\n'
    response = _upload(client_for(engineer), content)
    assert response.status_code == 302
    dataset = m.Dataset.objects.get()
    import hashlib

    assert dataset.sha256 == hashlib.sha256(content).hexdigest()
    assert dataset.size_bytes == len(content)
    assert dataset.record_count == 3
    assert dataset.owner == engineer


def test_planted_marker_is_nowhere_on_disk_but_decrypts_in_memory(engineer, data_dir):
    content = "".join(f'{{"text": "customer {i} said {MARKER}"}}\n' for i in range(2000)).encode()
    assert _upload(client_for(engineer), content).status_code == 302
    dataset = m.Dataset.objects.get()
    files = _files_under(data_dir)
    assert files, "the ciphertext should be under the data dir"
    for path in files:
        assert MARKER.encode() not in path.read_bytes(), f"plaintext marker found in {path}"
    key, ciphertext = dataset.open_plaintext()
    with ciphertext, key.decrypting(ciphertext) as plaintext:
        assert plaintext.read() == content


def test_upload_never_spools_plaintext_to_temp_files(engineer, tmp_path, settings):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "spool")
    os.makedirs(settings.FILE_UPLOAD_TEMP_DIR)
    content = (f'{{"text": "{MARKER}"}}\n' * 300_000).encode()  # ~9 MB: well past the in-memory threshold
    assert _upload(client_for(engineer), content).status_code == 302
    assert _files_under(tmp_path / "spool") == []


def test_crypto_shredding_destroys_the_key_and_the_ciphertext(engineer, data_dir):
    dataset = make_dataset(engineer, f'{{"text": "{MARKER}"}}\n')
    blob_path = data_dir / "blobs" / dataset.blob_id[:2] / f"{dataset.blob_id}.tink"
    ciphertext_copy = blob_path.read_bytes()  # as a backup would have kept it
    wrapped = bytes(dataset.wrapped_key)
    actions.shred_dataset(engineer, dataset, "customer asked for erasure")
    dataset.refresh_from_db()
    assert dataset.state == m.DatasetState.SHREDDED and dataset.wrapped_key is None
    with pytest.raises(m.DatasetShredded):
        dataset.open_plaintext()
    # The database no longer holds the wrapped key anywhere.
    assert not m.Dataset.objects.filter(wrapped_key=wrapped).exists()
    # The surviving backup copy cannot be opened without its key: a fresh key fails to decrypt it.
    from governance.keys import master_key

    other_key, _ = master_key().new_data_key(m.Dataset.key_context(dataset.blob_id))
    with pytest.raises(tink.TinkError):
        with other_key.decrypting(io.BytesIO(ciphertext_copy)) as plaintext:
            plaintext.read()
    with pytest.raises(KeyUnavailable):
        master_key().unwrap(dataset.wrapped_key, m.Dataset.key_context(dataset.blob_id))


def test_shredding_deletes_the_blob_after_commit(engineer, data_dir, django_capture_on_commit_callbacks):
    dataset = make_dataset(engineer)
    blob_path = data_dir / "blobs" / dataset.blob_id[:2] / f"{dataset.blob_id}.tink"
    assert blob_path.exists()
    with django_capture_on_commit_callbacks(execute=True):
        actions.shred_dataset(engineer, dataset, "end of retention")
    assert not blob_path.exists()


def test_a_wrapped_key_cannot_open_another_datasets_blob(engineer):
    first = make_dataset(engineer, '{"text": "a"}\n', name="A")
    second = make_dataset(engineer, '{"text": "b"}\n', name="B")
    from governance.keys import master_key

    with pytest.raises(KeyUnavailable):  # the key is bound to its dataset by associated data
        master_key().unwrap(first.wrapped_key, m.Dataset.key_context(second.blob_id))


# ---------------------------------------------------------------- bad input: message + nothing stored

BAD_UPLOADS = [
    ("empty file", b"", {}, "is empty"),
    ("only blank lines", b"\n\n  \n", {}, "holds no records"),
    ("binary", b'{"text": "a"}\n\x00\x01\x02binary', {}, "contains a NUL byte at line 2"),
    ("invalid UTF-8", b'{"text": "ok"}\n{"text": "caf\xe9"}\n', {}, "not valid UTF-8: undecodable byte at line 2"),
    ("truncated UTF-8", b'{"text": "ok"}\n\xe2\x82', {}, "ends in the middle of a character"),
    ("malformed JSONL", b'{"text": "ok"}\n{"text": "ok"}\n{"text": oops}\n', {}, "Line 3 is not valid JSON"),
    ("JSONL without the field", b'{"text": "ok"}\n{"body": "no"}\n', {}, 'Line 2 has no "text" field. Fields found: body'),
    ("JSONL field not text", b'{"text": 42}\n', {}, 'the "text" field is a int, not text'),
    ("JSONL not an object", b'["a"]\n', {}, "is a JSON list"),
    ("CSV missing column", b"id,body\n1,hello\n", {"file_format": "csv", "csv_column": "text"}, 'The CSV header has no column "text". Columns found: id, body'),
    ("CSV ragged row", b"id,text\n1,hello\n2,a,b\n", {"file_format": "csv", "csv_column": "text"}, "Line 3 has 3 fields; the header has 2"),
]


@pytest.mark.parametrize("what,content,fields,message", BAD_UPLOADS, ids=[b[0] for b in BAD_UPLOADS])
def test_bad_upload_is_explained_and_stores_nothing(engineer, data_dir, what, content, fields, message):
    before_events = m.AuditEvent.objects.count()
    response = _upload(client_for(engineer), content, **fields)
    assert response.status_code == 200
    errors = response.context["form"].errors["file"]
    assert any(message in e for e in errors), errors
    assert message in response.content.decode().replace("&quot;", '"')
    assert m.Dataset.objects.count() == 0
    assert _files_under(data_dir / "blobs") == [] if (data_dir / "blobs").exists() else True
    assert m.AuditEvent.objects.count() == before_events


def test_upload_over_the_size_limit_is_refused_and_stores_nothing(engineer, data_dir, settings):
    settings.PROVENANT_MAX_DATASET_BYTES = 1000
    response = _upload(client_for(engineer), b'{"text": "x"}\n' * 200)
    assert "larger than the upload limit" in " ".join(response.context["form"].errors["file"])
    assert m.Dataset.objects.count() == 0
    assert not (data_dir / "blobs").exists() or _files_under(data_dir / "blobs") == []


def test_csv_and_plain_text_formats_count_records(engineer):
    csv_dataset = make_dataset(engineer, 'id,text\n1,"hello, world"\n2,"multi\nline"\n', file_format="csv", csv_column="text", name="csv")
    text_dataset = make_dataset(engineer, "one\n\ntwo\nthree\n", file_format="text", name="txt")
    assert csv_dataset.record_count == 2
    assert text_dataset.record_count == 3


def test_missing_csv_column_choice_is_a_field_error(engineer):
    response = _upload(client_for(engineer), b"id,text\n1,a\n", file_format="csv", csv_column="")
    assert "Name the CSV column" in " ".join(response.context["form"].errors["csv_column"])
    assert m.Dataset.objects.count() == 0


def test_encrypt_stream_refusal_leaves_no_blob(data_dir):
    with pytest.raises(IngestError):
        encrypt_stream(io.BytesIO(b"\x00\x00"), upload_rule(), "bin.jsonl")
    assert not (data_dir / "blobs").exists() or _files_under(data_dir / "blobs") == []


# ---------------------------------------------------------------- API uploads


def test_api_upload_with_token(engineer):
    client = api_client_for(engineer)
    response = client.post("/api/datasets/", {
        "name": "API upload", "file_format": "text", "source": "export", "lawful_basis": "contract",
        "file": _named(b"a\nb\n", "a.txt"),
    }, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["record_count"] == 2


def test_api_bad_upload_is_a_400_with_the_reason_and_stores_nothing(engineer, data_dir):
    client = api_client_for(engineer)
    response = client.post("/api/datasets/", {
        "name": "API upload", "file_format": "jsonl", "source": "export", "lawful_basis": "contract",
        "file": _named(b'{"text": 1', "a.jsonl"),
    }, format="multipart")
    assert response.status_code == 400
    assert "Line 1 is not valid JSON" in response.json()["file"][0]
    assert m.Dataset.objects.count() == 0
    assert not (data_dir / "blobs").exists() or _files_under(data_dir / "blobs") == []


def test_api_upload_with_missing_fields_is_a_400_and_stores_nothing(engineer, data_dir):
    client = api_client_for(engineer)
    response = client.post("/api/datasets/", {"file": _named(b"a\n", "a.txt")}, format="multipart")
    assert response.status_code == 400
    assert set(response.json()) >= {"name", "file_format", "source", "lawful_basis"}
    assert _files_under(data_dir / "blobs") == [] if (data_dir / "blobs").exists() else True
