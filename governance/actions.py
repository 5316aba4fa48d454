"""Every state change of a governance record, one function per verb.

Each action is atomic and writes its audit event in the same transaction; views, the API and
management commands call these and never `save()` state changes themselves.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from governance import ingest, signals
from governance.trail import record_event
from governance.models import AuditEvent, DataProcessingAgreement, Dataset, DatasetState
from governance.uploads import EncryptedUpload
from governance.keys import blob_store, master_key
from governance.vault import text_lines


def _verbose(instance) -> str:
    return instance._meta.verbose_name


@transaction.atomic
def create_record(actor, form):
    """Save a new record from a valid ModelForm (or serializer-built instance) and audit it."""
    instance = form.save()
    record_event(actor, f"{instance._meta.model_name}.created", instance,
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
    record_event(actor, f"{instance._meta.model_name}.updated", instance,
                 f"{actor} changed {', '.join(changed) or 'nothing'} of {_verbose(instance)} “{instance}”", {"changes": changed})
    return instance


class ClassificationRefused(PermissionError):
    pass


def check_classify(actor) -> None:
    """Classification is the privacy officer's decision: the data's owner must not choose the
    rules her own request will be held to."""
    if not actor.has_perm("governance.classify_dataset"):
        raise ClassificationRefused("Only the privacy officer classifies datasets (sets or changes their data classes). "
                                    "Upload or edit the dataset without them: it stays unusable for training until the "
                                    "privacy officer classifies it.")


def upload_dataset(actor, upload: EncryptedUpload, *, data_classes=(), **fields) -> Dataset:
    """Register an uploaded (already encrypted) file as a dataset once its records validate.

    Validation reads the ciphertext back through the decrypting stream, in memory. On any
    refusal the ciphertext is removed, so a rejected upload stores nothing. Only the privacy
    officer may give data classes at upload (`check_classify`).
    """
    try:
        if data_classes:
            check_classify(actor)
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
            record_event(actor, "dataset.uploaded", dataset,
                         f"{actor} uploaded dataset “{dataset}” ({record_count} records, SHA-256 {dataset.sha256[:12]}…)",
                         {"after": dataset.audit_snapshot()})
            transaction.on_commit(lambda: _enqueue_pii_profile(dataset.pk), robust=True)
    except BaseException:
        upload.discard()
        raise
    return dataset


def _enqueue_pii_profile(dataset_id: int) -> None:
    # By the task's name: the training app (above this one) owns it.
    from celery import current_app

    current_app.send_task("training.tasks.profile_dataset_pii", args=[dataset_id], queue="default")


@transaction.atomic
def request_review_scan(actor, dataset: Dataset) -> None:
    record_event(actor, "dataset.review_scan_requested", dataset, f"{actor} asked for a redaction review scan of “{dataset}”", {})

    def enqueue():
        from celery import current_app

        current_app.send_task("training.tasks.scan_dataset_for_review", args=[dataset.pk, actor.pk], queue="default")

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
        record_event(actor, "dataset.shredded", dataset,
                     f"{actor} crypto-shredded dataset “{dataset}”: its data key was destroyed",
                     {"reason": reason, "sha256": dataset.sha256})
        blob_id = dataset.blob_id
        transaction.on_commit(lambda: blob_store().delete(blob_id))
    return dataset


@transaction.atomic
def edit_dataset(actor, dataset: Dataset, apply_changes, *, data_classes=None) -> Dataset:
    """The owner's edit of a dataset's description (`apply_changes` saves it), and, when
    `data_classes` is given, the privacy officer's classification, in one transaction."""
    if data_classes is not None and set(data_classes) == set(dataset.data_classes.all()):
        data_classes = None  # sent back unchanged (a GET then a PUT): not a classification
    if data_classes is not None:
        check_classify(actor)
    dataset = update_record(actor, dataset, apply_changes)
    if data_classes is not None:
        dataset = classify_dataset(actor, dataset, data_classes)
    return dataset


@transaction.atomic
def classify_dataset(actor, dataset: Dataset, data_classes) -> Dataset:
    """Set the dataset's data classes. A change re-opens every request that names the dataset and
    is still waiting for its approvals: they signed the rules of the old classes."""
    check_classify(actor)
    dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
    before = sorted(dataset.data_classes.values_list("name", flat=True))
    dataset.data_classes.set(data_classes)
    after = sorted(dataset.data_classes.values_list("name", flat=True))
    if after == before:
        return dataset
    dataset.updated_at = timezone.now()
    dataset.save(update_fields=["updated_at"])
    record_event(actor, "dataset.classified", dataset, f"{actor} classified dataset “{dataset}” as {', '.join(after) or 'nothing'}",
                 {"before": before, "after": after})
    # The workflow re-opens the requests that name it: they were approved under the old classes.
    signals.dataset_classified.send(sender=Dataset, dataset=dataset, reason=f"the data classes of dataset “{dataset}” changed")
    return dataset


@transaction.atomic
def share_dataset(actor, dataset: Dataset, with_user) -> None:
    assign_perm("governance.view_dataset", with_user, dataset)
    record_event(actor, "dataset.shared", dataset, f"{actor} shared dataset “{dataset}” with {with_user}",
                 {"user_id": with_user.pk, "username": with_user.username})


@transaction.atomic
def unshare_dataset(actor, dataset: Dataset, with_user) -> None:
    remove_perm("governance.view_dataset", with_user, dataset)
    record_event(actor, "dataset.unshared", dataset, f"{actor} stopped sharing dataset “{dataset}” with {with_user}",
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
            record_event(actor, "dataprocessingagreement.document_attached", dpa,
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
    record_event(actor, f"{obj._meta.model_name}.downloaded", obj, f"{actor} downloaded {what} of “{obj}”", {"what": what})


@transaction.atomic
def record_audit_export(actor, filters: dict, count: int) -> None:
    AuditEvent.append(actor=actor, action="audit_trail.exported", object_type="governance.auditevent", object_id="",
                      summary=f"{actor} exported {count} audit events", payload={"filters": filters, "count": count})
