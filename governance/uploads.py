"""Upload handlers: every uploaded byte is encrypted as it arrives; nothing plaintext hits disk.

Django's default handlers spool large uploads to a temporary file in plaintext. The project
default (`RefuseUnexpectedUploadHandler`) therefore refuses any file upload, and the few views
that accept files install `EncryptingUploadHandler` for exactly the fields they expect.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import BinaryIO, Callable

from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile

from governance.ingest import EncryptingIngest, IngestError, IngestResult
from governance.keys import blob_store, master_key


class RefuseUnexpectedUploadHandler(FileUploadHandler):
    def new_file(self, field_name, *args, **kwargs):
        _errors(self.request)[field_name] = "This page does not accept file uploads."
        raise SkipFile()

    def receive_data_chunk(self, raw_data, start):
        return None

    def file_complete(self, file_size):
        return None


class EncryptedUpload(UploadedFile):
    """What a view receives instead of the file: where its ciphertext is and what it was."""

    def __init__(self, *, blob_id: str, wrapped_key: bytes, ingest: IngestResult, key_context: str, filename: str):
        super().__init__(file=None, name=filename, size=ingest.size_bytes)
        self.blob_id, self.wrapped_key, self.ingest, self.key_context = blob_id, wrapped_key, ingest, key_context
        self.filename = filename
        self.kept = False  # set by the action that stores it; anything not kept is discarded

    def discard(self) -> None:
        """Remove the ciphertext of an upload that will not be kept."""
        blob_store().delete(self.blob_id)


@dataclass(frozen=True)
class UploadRule:
    """How one file field is checked and named in the key hierarchy."""

    max_bytes: int
    key_context: Callable[[str], str]  # blob_id -> associated data binding the data key to its object
    magic: bytes = b""  # required leading bytes (b"%PDF-" for signed documents)
    text: bool = True  # run the UTF-8 and binary checks


class _MagicCheck:
    def __init__(self, sink, magic: bytes, filename: str):
        self._sink, self._magic, self._filename, self._seen = sink, magic, filename, b""

    def write(self, chunk: bytes) -> None:
        if len(self._seen) < len(self._magic):
            self._seen += chunk[: len(self._magic) - len(self._seen)]
            if not self._magic.startswith(self._seen):
                raise IngestError(f"{self._filename} is not a PDF document. Upload the signed agreement as a PDF.")
        self._sink.write(chunk)


class _BinaryIngest(EncryptingIngest):
    """Size limit and hashing only, for documents that are not text."""

    def feed(self, chunk: bytes) -> None:
        if self._size + len(chunk) > self._max_bytes:
            raise IngestError(f"{self._filename} is larger than the limit of {self._max_bytes / 1024**2:.0f} MiB.")
        self._sha256.update(chunk)
        self._sink.write(chunk)
        self._size += len(chunk)

    def finish(self) -> IngestResult:
        if self._size == 0:
            raise IngestError(f"{self._filename} is empty.")
        return IngestResult(sha256=self._sha256.hexdigest(), size_bytes=self._size)


class EncryptedBlobWriter:
    """Checks, hashes and encrypts one file as its chunks arrive; on any refusal, leaves nothing."""

    def __init__(self, rule: UploadRule, filename: str):
        self.filename = filename
        self.blob_id = str(uuid.uuid4())
        self.context = rule.key_context(self.blob_id)
        data_key, self.wrapped = master_key().new_data_key(self.context)
        self._file_cm = blob_store().writing(self.blob_id)
        ciphertext = self._file_cm.__enter__()
        self._stream_cm = data_key.encrypting(ciphertext)
        sink = self._stream_cm.__enter__()
        if rule.magic:
            sink = _MagicCheck(sink, rule.magic, filename)
        self._ingest = (EncryptingIngest if rule.text else _BinaryIngest)(sink, max_bytes=rule.max_bytes, filename=filename)

    def feed(self, chunk: bytes) -> None:
        try:
            self._ingest.feed(chunk)
        except IngestError:
            self.abort()
            raise

    def finish(self) -> EncryptedUpload:
        try:
            result = self._ingest.finish()
        except IngestError:
            self.abort()
            raise
        self._stream_cm.__exit__(None, None, None)
        self._file_cm.__exit__(None, None, None)  # fsync, then rename into place
        return EncryptedUpload(
            blob_id=self.blob_id, wrapped_key=self.wrapped, ingest=result, key_context=self.context, filename=self.filename
        )

    def abort(self) -> None:
        error = IngestError("aborted")
        for cm in (self._stream_cm, self._file_cm):  # the file's exit removes the partial blob
            try:
                cm.__exit__(IngestError, error, None)
            except Exception:  # the stream is discarded; its complaint adds nothing
                pass
        blob_store().delete(self.blob_id)


def encrypt_stream(stream: BinaryIO, rule: UploadRule, filename: str, chunk_size: int = 1 << 20) -> EncryptedUpload:
    """The same path as a browser upload, for the CLI, the demo data and the benchmark."""
    writer = EncryptedBlobWriter(rule, filename)
    try:
        while chunk := stream.read(chunk_size):
            writer.feed(chunk)
    except IngestError:
        raise
    except BaseException:
        writer.abort()
        raise
    return writer.finish()


class EncryptingUploadHandler(FileUploadHandler):
    """Encrypt the named file fields as they stream in; record refusals in `request.upload_errors`."""

    def __init__(self, request, rules: dict[str, UploadRule]):
        super().__init__(request)
        self.rules = rules
        self._writer: EncryptedBlobWriter | None = None

    def new_file(self, field_name, file_name, content_type, content_length, charset=None, content_type_extra=None):
        super().new_file(field_name, file_name, content_type, content_length, charset, content_type_extra)
        rule = self.rules.get(field_name)
        if rule is None:
            _errors(self.request)[field_name] = "This field does not accept a file."
            raise SkipFile()
        if content_length and content_length > rule.max_bytes:
            _errors(self.request)[field_name] = f"{file_name} is larger than the upload limit of {rule.max_bytes / 1024**2:.0f} MiB."
            raise SkipFile()
        self._writer = EncryptedBlobWriter(rule, file_name)

    def receive_data_chunk(self, raw_data, start):
        if self._writer is None:
            return None
        try:
            self._writer.feed(raw_data)
        except IngestError as exc:
            _errors(self.request)[self.field_name] = str(exc)
            self._writer = None
            raise SkipFile()
        return None

    def file_complete(self, file_size):
        writer, self._writer = self._writer, None
        if writer is None:
            return None
        try:
            return writer.finish()
        except IngestError as exc:
            _errors(self.request)[self.field_name] = str(exc)
            return None

    def upload_interrupted(self):
        if self._writer is not None:
            self._writer.abort()
            _errors(self.request)[self.field_name] = "The upload was interrupted before the file was complete."
            self._writer = None


def _errors(request) -> dict:
    if not hasattr(request, "upload_errors"):
        request.upload_errors = {}
    return request.upload_errors


def install_encrypting_handler(request, rules: dict[str, UploadRule]) -> None:
    """Call before anything reads request.POST or request.FILES."""
    request.upload_handlers = [EncryptingUploadHandler(request, rules)]
