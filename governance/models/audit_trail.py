"""The tamper-evident audit trail: an append-only SHA-256 hash chain and its head."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models
from django.utils import timezone

from governance.models.base import RestrictedQuerySet



def canonical_json(value) -> str:
    """Sorted keys, no whitespace, UTF-8: the same value always gives the same bytes to hash."""
    return json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class AuditChainHead(models.Model):
    """The newest link of the chain. Locked while appending, so links form one line even
    under concurrent writers; it also reveals events deleted from the end of the chain."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    sequence = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    checked: int
    broken_sequence: int | None = None
    reason: str = ""


class AuditEvent(models.Model):
    """One append-only link of a SHA-256 hash chain. A database trigger refuses UPDATE and DELETE."""

    GENESIS = "0" * 64

    sequence = models.PositiveBigIntegerField(unique=True, editable=False)
    occurred_at = models.DateTimeField(editable=False, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.DO_NOTHING, db_constraint=False,
        related_name="+", editable=False,
    )
    actor_username = models.CharField(max_length=150, editable=False)
    action = models.CharField(max_length=64, db_index=True, editable=False)
    object_type = models.CharField(max_length=64, db_index=True, editable=False)
    object_id = models.CharField(max_length=64, db_index=True, editable=False)
    summary = models.CharField(max_length=500, editable=False)
    payload = models.TextField(editable=False, help_text="Canonical JSON")
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, unique=True, editable=False)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-sequence"]

    def __str__(self):
        return f"#{self.sequence} {self.action} {self.object_type}:{self.object_id}"

    @classmethod
    def narrow_visible(cls, queryset, user):
        return queryset.none()

    @classmethod
    def can_browse(cls, user) -> bool:
        return user.is_authenticated and user.has_perm("governance.view_auditevent")

    def compute_hash(self) -> str:
        body = canonical_json(
            {
                "sequence": self.sequence,
                "occurred_at": self.occurred_at.astimezone(dt.timezone.utc).isoformat(timespec="microseconds"),
                "actor_id": self.actor_id,
                "actor_username": self.actor_username,
                "action": self.action,
                "object_type": self.object_type,
                "object_id": self.object_id,
                "summary": self.summary,
                "payload": self.payload,
                "prev_hash": self.prev_hash,
            }
        )
        return hashlib.sha256(body.encode("utf-8")).hexdigest()

    @classmethod
    def append(cls, *, actor, action: str, object_type: str, object_id, summary: str, payload: dict) -> "AuditEvent":
        """Append one link. Must run inside the transaction of the change it records."""
        if not connection.in_atomic_block:
            raise RuntimeError("Audit events are written inside the transaction of the change they record.")
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1)
        event = cls(
            sequence=head.sequence + 1,
            occurred_at=timezone.now(),
            actor=actor if actor is not None and actor.pk else None,
            actor_username=getattr(actor, "username", "") or "system",
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            summary=summary[:500],
            payload=canonical_json(payload),
            prev_hash=head.hash if head.sequence else cls.GENESIS,
        )
        event.hash = event.compute_hash()
        event.save(force_insert=True)
        head.sequence, head.hash = event.sequence, event.hash
        head.save(update_fields=["sequence", "hash"])
        return event

    @classmethod
    def verify_chain(cls) -> ChainVerification:
        """Walk the chain in order; name the first link that was changed, removed or reordered."""
        expected_sequence, expected_prev, checked = 1, cls.GENESIS, 0
        for event in cls.objects.order_by("sequence").iterator(chunk_size=2000):
            if event.sequence != expected_sequence:
                return ChainVerification(
                    False, checked, expected_sequence,
                    f"event #{expected_sequence} is missing: the chain jumps from #{expected_sequence - 1} "
                    f"to #{event.sequence} (a row was deleted)",
                )
            if event.prev_hash != expected_prev:
                return ChainVerification(
                    False, checked, event.sequence,
                    f"event #{event.sequence} does not link to event #{event.sequence - 1} (its previous-hash differs)",
                )
            if event.compute_hash() != event.hash:
                return ChainVerification(
                    False, checked, event.sequence,
                    f"event #{event.sequence} ({event.action} {event.object_type}:{event.object_id}) was changed "
                    "after it was written: its contents no longer match its hash",
                )
            expected_sequence, expected_prev, checked = event.sequence + 1, event.hash, checked + 1
        head = AuditChainHead.objects.filter(pk=1).first()
        head_sequence, head_hash = (head.sequence, head.hash) if head else (0, "0" * 64)
        last = expected_sequence - 1
        if head_sequence != last or (last and head_hash != expected_prev):
            return ChainVerification(
                False, checked, last + 1 if head_sequence > last else head_sequence,
                f"the chain ends at event #{last} but its head records #{head_sequence}: "
                "events were deleted from the end or the head was altered",
            )
        return ChainVerification(True, checked)
