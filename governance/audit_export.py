import json


def audit_event_record(event) -> dict:
    """An event as exported: every hashed field, so the chain can be re-verified from the export."""
    return {
        "sequence": event.sequence,
        "occurred_at": event.occurred_at.isoformat(timespec="microseconds"),
        "actor_id": event.actor_id,
        "actor_username": event.actor_username,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "summary": event.summary,
        "payload": event.payload,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def audit_events_as_jsonl(events):
    for event in events.iterator(chunk_size=2000):
        yield json.dumps(audit_event_record(event), ensure_ascii=False) + "\n"
