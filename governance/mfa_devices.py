"""The second factor's devices and what changes them: the authenticator (django-otp TOTP) and the
recovery codes, checking a code, enrolment, and an administrator's reset — each change atomic, with
its trail event. Nothing here knows about sessions or requests: the step-up, the guards and the
written justification are in `governance.mfa`, which re-exports these names (import them from
there). The rules are in `governance.mfa`'s docstring (README, *Second factor*).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from governance.models import ApiToken, SecondFactorReset, SecondFactorResetState
from governance.roles import ADMIN, LEGAL, PRIVACY, roles_of
from governance.trail import record_event

PRIVILEGED_ROLES = (LEGAL, PRIVACY, ADMIN)
RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_CHARS = 10  # base32: 50 random bits each, tried at most a few times a minute (throttling)
TOTP_DEVICE_NAME = "Authenticator app"
RECOVERY_DEVICE_NAME = "Recovery codes"


class SecondFactorRefused(Exception):
    """An action here breaks a rule (`governance.mfa`'s docstring); the message says which, and what to do."""


# --------------------------------------------------------------------------- state


def totp_device(user, *, confirmed: bool = True) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=confirmed).first()


def is_enrolled(user) -> bool:
    return bool(user is not None and user.is_authenticated and TOTPDevice.objects.filter(user=user, confirmed=True).exists())


def recovery_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


# --------------------------------------------------------------------------- codes


@dataclass
class Verification:
    """The outcome of a code: the device that accepted it (None if refused) and a sentence."""

    device: object | None
    message: str = ""
    recovery_code_used: bool = False
    codes_left: int | None = None

    @property
    def ok(self) -> bool:
        return self.device is not None


def _normalise(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def _recovery_digest(code: str) -> str:
    """What is stored for a recovery code: a keyed hash (HMAC-SHA256 with the secret key), in
    django-otp's 16-character token column. Reading the table gives no usable code."""
    mac = salted_hmac("provenant.mfa.recovery-code", _normalise(code), algorithm="sha256").digest()
    return base64.b32encode(mac).decode()[:16].lower()


def _new_recovery_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()[:RECOVERY_CODE_CHARS]
    return f"{raw[:5]}-{raw[5:]}"


def _throttled_message(device) -> str:
    allowed, data = device.verify_is_allowed()
    if allowed:
        return ""
    wait = max(1, int(((data or {}).get("locked_until", timezone.now()) - timezone.now()).total_seconds()) + 1)
    return f"Too many wrong codes in a row: wait {wait} second{'s' if wait != 1 else ''} and try again."


@transaction.atomic
def check_code(user, code: str, *, purpose: str) -> Verification:
    """Check a code from the user's authenticator (six digits) or one of their recovery codes.
    A recovery code works once. A refusal is an audit event (purpose: login, step-up, …), and so
    is every recovery code used. Returns normally either way, so the event commits."""
    given = _normalise(code or "")
    kind = "totp" if given.isdigit() and len(given) in (6, 8) else "recovery"
    if kind == "totp":
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
    else:
        device = StaticDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
    if device is None:
        message = ("You have no authenticator app set up." if kind == "totp" else
                   "That is not a six-digit code from your app, and you have no recovery codes.")
        _record_failure(user, purpose, kind, reason="no device")
        return Verification(None, message)
    throttled = _throttled_message(device)
    if throttled:
        _record_failure(user, purpose, kind, reason="throttled", failures=device.throttling_failure_count)
        return Verification(None, throttled)
    if device.verify_token(given if kind == "totp" else _recovery_digest(given)):
        if kind == "recovery":
            left = recovery_codes_left(user)
            record_event(user, "mfa.recovery_code_used", user, f"{user.username} used a recovery code ({left} left)",
                         {"username": user.username, "purpose": purpose, "codes_left": left})
            return Verification(device, f"Recovery code accepted; {left} left. Each code works once.", True, left)
        return Verification(device)
    _record_failure(user, purpose, kind, reason="wrong code", failures=device.throttling_failure_count)
    what = "code" if kind == "totp" else "recovery code"
    return Verification(None, f"That {what} is not right. Check your app's current code (or a recovery code you have not used) and try again.")


def _record_failure(user, purpose: str, kind: str, *, reason: str, failures: int | None = None) -> None:
    record_event(user, "mfa.verification_failed", user, f"A second-factor code for {user.username} was refused ({purpose}: {reason})",
                 {"username": user.username, "purpose": purpose, "kind": kind, "reason": reason, "failures_in_a_row": failures})


# --------------------------------------------------------------------------- enrolment


@transaction.atomic
def start_enrolment(user) -> TOTPDevice:
    """A new authenticator secret for the user, not yet in force: it is once a code from it is
    confirmed (`confirm_enrolment`). Replaces a set-up left unfinished."""
    if is_enrolled(user):
        raise SecondFactorRefused("You already have an authenticator app set up. To move to a new phone, ask an "
                                  "administrator to reset your second factor, then set it up again.")
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    record_event(user, "mfa.enrolment_started", user, f"{user.username} began setting up an authenticator app",
                 {"username": user.username})
    return device


def confirm_enrolment(user, code: str) -> tuple[Verification, list[str]]:
    """Put the user's new authenticator in force with a first code from it, and make their
    recovery codes (returned once; only their hashes are kept). A wrong code is audited and
    refused, and the set-up stays open."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).first()
        if device is None:
            raise SecondFactorRefused("Start the set-up first: the page shows a new secret to scan.")
        throttled = _throttled_message(device)
        if not throttled and device.verify_token(_normalise(code or "")):  # a refusal counts towards throttling
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            codes = _issue_recovery_codes(user)
            record_event(user, "mfa.enrolled", user, f"{user.username} set up an authenticator app as their second factor",
                         {"username": user.username, "device": device.persistent_id, "recovery_codes": len(codes)})
            return Verification(device), codes
        _record_failure(user, "enrolment", "totp", reason="throttled" if throttled else "wrong code",
                        failures=device.throttling_failure_count)
    return Verification(None, throttled or "That code is not right: type the six digits your app shows now for Provenant."), []


def _issue_recovery_codes(user) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME, confirmed=True)
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=_recovery_digest(c)) for c in codes])
    return codes


@transaction.atomic
def regenerate_recovery_codes(user) -> list[str]:
    """A new set of recovery codes; the old ones stop working. Shown once."""
    if not is_enrolled(user):
        raise SecondFactorRefused("Set up an authenticator app first: recovery codes come with it.")
    left = recovery_codes_left(user)
    codes = _issue_recovery_codes(user)
    record_event(user, "mfa.recovery_codes_regenerated", user, f"{user.username} made new recovery codes; the old ones no longer work",
                 {"username": user.username, "voided_unused": left, "recovery_codes": len(codes)})
    return codes


# --------------------------------------------------------------------------- resets by an administrator


def _may_manage(actor) -> bool:
    return bool(actor and actor.is_authenticated and actor.is_active and ADMIN in roles_of(actor))


def has_second_factor(user) -> bool:
    return TOTPDevice.objects.filter(user=user).exists() or StaticDevice.objects.filter(user=user).exists()


def needs_second_administrator(user) -> bool:
    return bool(roles_of(user) & set(PRIVILEGED_ROLES))


def may_confirm_reset(actor, reset: SecondFactorReset) -> bool:
    return (reset.state == SecondFactorResetState.PENDING and _may_manage(actor)
            and actor.pk not in (reset.proposed_by_id, reset.user_id))


def _do_reset(user) -> dict:
    """Delete the user's authenticator and recovery codes; their sessions lose the second factor
    at their next request, and their API token no longer carries it."""
    removed = {"authenticator_removed": TOTPDevice.objects.filter(user=user, confirmed=True).exists(),
               "recovery_codes_voided": recovery_codes_left(user)}
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    removed["api_token_downgraded"] = ApiToken.objects.filter(user=user, issued_with_second_factor=True).update(
        issued_with_second_factor=False)
    return removed


@transaction.atomic
def propose_reset(actor, user, reason: str) -> SecondFactorReset:
    """An administrator resets someone else's second factor (a lost phone): at once for an engineer
    or regulator; for legal, privacy or admin it waits for a second administrator (`confirm_reset`)."""
    if not _may_manage(actor):
        raise PermissionError("Only an administrator resets a second factor.")
    if actor.pk == user.pk:
        raise SecondFactorRefused("Nobody resets their own second factor: ask another administrator.")
    if not reason.strip():
        raise SecondFactorRefused("Say why the second factor is reset (a lost phone, …): the trail keeps it.")
    user = get_user_model().objects.select_for_update().get(pk=user.pk)
    if not has_second_factor(user):
        raise SecondFactorRefused(f"{user.username} has no second factor set up: there is nothing to reset.")
    if SecondFactorReset.objects.filter(user=user, state=SecondFactorResetState.PENDING).exists():
        raise SecondFactorRefused(f"A reset of {user.username}'s second factor already awaits a second administrator.")
    reset = SecondFactorReset.objects.create(user=user, reason=reason.strip(), proposed_by=actor)
    if not needs_second_administrator(user):
        removed = _do_reset(user)
        reset.state, reset.decided_by, reset.decided_at = SecondFactorResetState.DONE, actor, timezone.now()
        reset.save(update_fields=["state", "decided_by", "decided_at"])
        record_event(actor, "mfa.device_reset", user, f"{actor} reset the second factor of {user.username}",
                     {"username": user.username, "reset": reset.pk, "reason": reset.reason, **removed})
    else:
        record_event(actor, "mfa.reset_proposed", user,
                     f"{actor} proposed to reset the second factor of {user.username}; a second administrator must confirm it",
                     {"username": user.username, "reset": reset.pk, "reason": reset.reason})
    return reset


@transaction.atomic
def confirm_reset(actor, reset: SecondFactorReset) -> SecondFactorReset:
    reset = SecondFactorReset.objects.select_for_update(of=("self",)).select_related("user", "proposed_by").get(pk=reset.pk)
    if reset.state != SecondFactorResetState.PENDING:
        raise SecondFactorRefused(f"This reset is {reset.get_state_display().lower()}: there is nothing to confirm.")
    if actor.pk == reset.user_id:
        raise SecondFactorRefused("Nobody confirms the reset of their own second factor.")
    if actor.pk == reset.proposed_by_id:
        raise SecondFactorRefused("You proposed this reset: a second administrator must confirm it.")
    if not may_confirm_reset(actor, reset):
        raise PermissionError("Only another administrator confirms a reset of a second factor.")
    removed = _do_reset(reset.user)
    reset.state, reset.decided_by, reset.decided_at = SecondFactorResetState.DONE, actor, timezone.now()
    reset.save(update_fields=["state", "decided_by", "decided_at"])
    record_event(actor, "mfa.device_reset", reset.user,
                 f"{actor} confirmed the reset of {reset.user.username}'s second factor, proposed by {reset.proposed_by}",
                 {"username": reset.user.username, "reset": reset.pk, "reason": reset.reason,
                  "proposed_by": reset.proposed_by.username, **removed})
    return reset


@transaction.atomic
def decline_reset(actor, reset: SecondFactorReset, reason: str = "") -> SecondFactorReset:
    reset = SecondFactorReset.objects.select_for_update(of=("self",)).select_related("user").get(pk=reset.pk)
    if reset.state != SecondFactorResetState.PENDING:
        raise SecondFactorRefused(f"This reset is {reset.get_state_display().lower()}: there is nothing to decline.")
    if not _may_manage(actor):
        raise PermissionError("Only an administrator declines a reset.")
    if actor.pk == reset.user_id:
        raise SecondFactorRefused("Nobody decides the reset of their own second factor.")
    reset.state, reset.decided_by, reset.decided_at = SecondFactorResetState.DECLINED, actor, timezone.now()
    reset.save(update_fields=["state", "decided_by", "decided_at"])
    record_event(actor, "mfa.reset_declined", reset.user, f"{actor} declined the reset of {reset.user.username}'s second factor",
                 {"username": reset.user.username, "reset": reset.pk, "reason": reason})
    return reset
