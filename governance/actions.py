"""Every state change of a governance record, one function per verb.

Each action is atomic and writes its audit event in the same transaction; views, the API and
management commands call these and never `save()` state changes themselves.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from governance import ingest
from governance.models import AuditEvent, DataProcessingAgreement, Dataset, DatasetState
from governance.uploads import EncryptedUpload
from portal.keys import blob_store, master_key
from portal.vault import text_lines


def audit(actor, action: str, obj, summary: str, payload: dict | None = None) -> AuditEvent:
    return AuditEvent.append(
        actor=actor,
        action=action,
        object_type=obj._meta.label_lower if hasattr(obj, "_meta") else str(obj),
        object_id=getattr(obj, "pk", "") or "",
        summary=summary,
        payload=payload or {},
    )


def _verbose(instance) -> str:
    return instance._meta.verbose_name


@transaction.atomic
def create_record(actor, form):
    """Save a new record from a valid ModelForm (or serializer-built instance) and audit it."""
    instance = form.save()
    audit(actor, f"{instance._meta.model_name}.created", instance,
          f"{actor} created {_verbose(instance)} “{instance}”", {"after": instance.audit_snapshot()})
    return instance


@transaction.atomic
def update_record(actor, instance, apply_changes):
    """Apply `apply_changes(instance)` (which saves), and audit what changed, before and after."""
    before = type(instance).objects.get(pk=instance.pk).audit_snapshot()
    instance.updated_at = timezone.now()
    instance = apply_changes(instance) or instance
    after = type(instance).objects.get(pk=instance.pk).audit_snapshot()
    changed = {k: {"before": before.get(k), "after": after[k]} for k in after if before.get(k) != after[k] and k != "updated_at"}
    audit(actor, f"{instance._meta.model_name}.updated", instance,
          f"{actor} changed {', '.join(changed) or 'nothing'} of {_verbose(instance)} “{instance}”", {"changes": changed})
    return instance


def upload_dataset(actor, upload: EncryptedUpload, *, data_classes=(), **fields) -> Dataset:
    """Register an uploaded (already encrypted) file as a dataset once its records validate.

    Validation reads the ciphertext back through the decrypting stream, in memory. On any
    refusal the ciphertext is removed, so a rejected upload stores nothing.
    """
    try:
        key = master_key().unwrap(upload.wrapped_key, upload.key_context)
        with blob_store().open(upload.blob_id) as ciphertext, key.decrypting(ciphertext) as plaintext:
            record_count = ingest.count_records(
                text_lines(plaintext), fields["file_format"],
                text_field=fields.get("text_field") or "text", csv_column=fields.get("csv_column", ""),
            )
    except BaseException:
        upload.discard()
        raise
    try:
        with transaction.atomic():
            dataset = Dataset.objects.create(
                owner=actor, original_filename=upload.filename[:255], sha256=upload.ingest.sha256,
                size_bytes=upload.ingest.size_bytes, record_count=record_count, blob_id=upload.blob_id,
                wrapped_key=upload.wrapped_key, **fields,
            )
            dataset.data_classes.set(data_classes)
            upload.kept = True
            audit(actor, "dataset.uploaded", dataset,
                  f"{actor} uploaded dataset “{dataset}” ({record_count} records, SHA-256 {dataset.sha256[:12]}…)",
                  {"after": dataset.audit_snapshot()})
            transaction.on_commit(lambda: _enqueue_pii_profile(dataset.pk), robust=True)
    except BaseException:
        upload.discard()
        raise
    return dataset


def _enqueue_pii_profile(dataset_id: int) -> None:
    from training.tasks import profile_dataset_pii

    profile_dataset_pii.delay(dataset_id)


@transaction.atomic
def request_review_scan(actor, dataset: Dataset) -> None:
    audit(actor, "dataset.review_scan_requested", dataset, f"{actor} asked for a redaction review scan of “{dataset}”", {})

    def enqueue():
        from training.tasks import scan_dataset_for_review

        scan_dataset_for_review.delay(dataset.pk, actor.pk)

    transaction.on_commit(enqueue, robust=True)


def shred_dataset(actor, dataset: Dataset, reason: str) -> Dataset:
    """Crypto-shred: destroy the wrapped data key and the ciphertext; keep the record as a tombstone."""
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
        if dataset.state == DatasetState.SHREDDED:
            return dataset
        dataset.wrapped_key = None
        dataset.state = DatasetState.SHREDDED
        dataset.shredded_at = timezone.now()
        dataset.updated_at = dataset.shredded_at
        dataset.save(update_fields=["wrapped_key", "state", "shredded_at", "updated_at"])
        audit(actor, "dataset.shredded", dataset,
              f"{actor} crypto-shredded dataset “{dataset}”: its data key was destroyed",
              {"reason": reason, "sha256": dataset.sha256})
        blob_id = dataset.blob_id
        transaction.on_commit(lambda: blob_store().delete(blob_id))
    return dataset


@transaction.atomic
def share_dataset(actor, dataset: Dataset, with_user) -> None:
    assign_perm("governance.view_dataset", with_user, dataset)
    audit(actor, "dataset.shared", dataset, f"{actor} shared dataset “{dataset}” with {with_user}",
          {"user_id": with_user.pk, "username": with_user.username})


@transaction.atomic
def unshare_dataset(actor, dataset: Dataset, with_user) -> None:
    remove_perm("governance.view_dataset", with_user, dataset)
    audit(actor, "dataset.unshared", dataset, f"{actor} stopped sharing dataset “{dataset}” with {with_user}",
          {"user_id": with_user.pk, "username": with_user.username})


def attach_dpa_document(actor, dpa: DataProcessingAgreement, upload: EncryptedUpload) -> DataProcessingAgreement:
    try:
        with transaction.atomic():
            dpa = DataProcessingAgreement.objects.select_for_update().get(pk=dpa.pk)
            old_blob = dpa.document_blob_id
            dpa.document_blob_id, dpa.document_wrapped_key = upload.blob_id, upload.wrapped_key
            dpa.document_sha256, dpa.document_name = upload.ingest.sha256, upload.filename[:255]
            dpa.document_size, dpa.updated_at = upload.ingest.size_bytes, timezone.now()
            dpa.save()
            upload.kept = True
            audit(actor, "dataprocessingagreement.document_attached", dpa,
                  f"{actor} attached the signed document {dpa.document_name} to “{dpa}”",
                  {"sha256": dpa.document_sha256, "size_bytes": dpa.document_size, "replaced_blob": bool(old_blob)})
            if old_blob:
                transaction.on_commit(lambda: blob_store().delete(old_blob))
    except BaseException:
        upload.discard()
        raise
    return dpa


@transaction.atomic
def record_download(actor, obj, what: str) -> None:
    audit(actor, f"{obj._meta.model_name}.downloaded", obj, f"{actor} downloaded {what} of “{obj}”", {"what": what})


@transaction.atomic
def record_audit_export(actor, filters: dict, count: int) -> None:
    AuditEvent.append(actor=actor, action="audit_trail.exported", object_type="governance.auditevent", object_id="",
                      summary=f"{actor} exported {count} audit events", payload={"filters": filters, "count": count})
