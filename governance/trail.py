"""The audit trail's writer: the one function every state change calls, inside its transaction.

It lives in the bottom layer so that every app can record what it does without importing the
apps above it.
"""

from __future__ import annotations

from governance.models import AuditEvent


def record_event(actor, action: str, obj, summary: str, payload: dict | None = None) -> AuditEvent:
    """Append one event to the hash chain. Refused outside a transaction: an event must commit or
    roll back with the change it records."""
    return AuditEvent.append(
        actor=actor,
        action=action,
        object_type=obj._meta.label_lower if hasattr(obj, "_meta") else str(obj),
        object_id=getattr(obj, "pk", "") or "",
        summary=summary,
        payload=payload or {},
    )
