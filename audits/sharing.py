"""Sharing evidence packs with regulators: share, revoke, and the audit events of a regulator's
reading. Each action is atomic and writes its audit event in the same transaction.

What a regulator may open is decided in one place, `EvidencePack.objects.visible_to(user)`: a
pack with a share to them that is neither revoked nor expired. The pack pages
(`workflow.pack_views`) call `record_pack_viewed` and `record_pack_downloaded`.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from audits.models import EvidencePack, PackShare
from governance.trail import record_event
from governance.roles import REGULATOR, has_role


class ShareRefused(ValueError):
    """Why a pack cannot be shared (or a share revoked) as asked, in a sentence for the privacy officer."""


def regulators():
    """The users a pack may be shared with: active members of the regulator role."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(is_active=True, groups__name=REGULATOR).order_by("username").distinct()


MAX_SHARE_YEARS = 10  # a share is reviewed at least this often; longer access is "until revoked"


def latest_expiry_day(today: dt.date) -> dt.date:
    """The last day a share may be set to run until (ten years on; 29 February falls back a day)."""
    try:
        return today.replace(year=today.year + MAX_SHARE_YEARS)
    except ValueError:
        return today.replace(year=today.year + MAX_SHARE_YEARS, day=28)


def end_of_day(day: dt.date) -> dt.datetime:
    """A share "until 2025-06-30" lasts to the end of that day, UTC."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=dt.timezone.utc)


def _payload(share: PackShare) -> dict:
    return {"share": share.pk, "pack": share.pack_id, "pack_sha256": share.pack.sha256, "regulator_id": share.regulator_id,
            "regulator": share.regulator.get_username(), "expires_at": share.expires_at.isoformat() if share.expires_at else None,
            "note": share.note}


@transaction.atomic
def share_pack(actor, pack: EvidencePack, regulator, expires_at: dt.datetime | None = None, note: str = "") -> PackShare:
    """Give one regulator read access to one pack, until `expires_at` (None: until revoked)."""
    if not actor.has_perm("audits.share_evidencepack"):
        raise PermissionError("Only the privacy officer shares evidence packs.")
    if not regulator.is_active or not has_role(regulator, REGULATOR):
        raise ShareRefused(f"{regulator} is not a regulator: evidence packs are shared only with users of the regulator role.")
    now = timezone.now()
    if expires_at is not None and expires_at <= now:
        raise ShareRefused("The expiry is in the past: choose a later date, or none.")
    if expires_at is not None and expires_at > end_of_day(latest_expiry_day(now.date())):
        raise ShareRefused(f"A share can run for at most {MAX_SHARE_YEARS} years (until {latest_expiry_day(now.date()):%Y-%m-%d}): "
                           "choose an earlier date, or none to share until revoked.")
    note = (note or "").strip()
    if len(note) > PackShare._meta.get_field("note").max_length:
        raise ShareRefused("Keep the note under 300 characters.")
    pack = EvidencePack.objects.select_for_update().get(pk=pack.pk)
    for existing in PackShare.objects.filter(pack=pack, regulator=regulator):
        if existing.in_force(now):
            raise ShareRefused(f"Pack {pack.pk} is already shared with {regulator}: revoke that share to change it.")
    share = PackShare.objects.create(pack=pack, regulator=regulator, shared_by=actor, expires_at=expires_at, note=note)
    until = f" until {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ""
    record_event(actor, "evidencepack.shared", pack, f"{actor} shared evidence pack {pack.pk} (run {pack.run_id}) with {regulator}{until}",
                 _payload(share))
    return share


@transaction.atomic
def revoke_share(actor, share: PackShare) -> PackShare:
    if not actor.has_perm("audits.share_evidencepack"):
        raise PermissionError("Only the privacy officer revokes a share.")
    share = PackShare.objects.select_for_update().select_related("pack", "regulator").get(pk=share.pk)
    if share.revoked_at is not None:
        raise ShareRefused("This share is already revoked.")
    share.revoked_at = timezone.now()
    share.save(update_fields=["revoked_at"])
    record_event(actor, "evidencepack.share_revoked", share.pack,
                 f"{actor} revoked {share.regulator}'s access to evidence pack {share.pack_id}", _payload(share))
    return share


@transaction.atomic
def record_pack_viewed(actor, pack: EvidencePack, what: str = "detail page") -> None:
    """Every opening of a pack's page by anyone is an audit event (the regulator's above all)."""
    record_event(actor, "evidencepack.viewed", pack, f"{actor} opened the {what} of evidence pack {pack.pk}",
                 {"pack": pack.pk, "sha256": pack.sha256, "what": what, **_share_of(actor, pack)})


@transaction.atomic
def record_pack_downloaded(actor, pack: EvidencePack, what: str = "zip") -> None:
    record_event(actor, "evidencepack.downloaded", pack, f"{actor} downloaded the {what} of evidence pack {pack.pk}",
                 {"pack": pack.pk, "sha256": pack.sha256, "what": what, **_share_of(actor, pack)})


def _share_of(actor, pack) -> dict:
    """The share a regulator reads under, for the record."""
    if actor is None or not has_role(actor, REGULATOR):
        return {}
    share = next((s for s in PackShare.objects.filter(pack=pack, regulator=actor) if s.in_force()), None)
    return {"share": share.pk if share else None}
