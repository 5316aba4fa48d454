"""The second factor (TOTP and recovery codes) and privileged access: every change is an action
here, atomic, with its trail event; and the one check every privileged action calls.

The rules (README, *Second factor*):

- Anyone with a role may set up an authenticator app (django-otp's TOTP device). Once set up, a
  password login is finished only by a code from it (or a recovery code): until then the session
  opens nothing but the verification page (`governance.mfa_middleware`).
- The roles that decide or read everything — legal, privacy, admin (`PRIVILEGED_ROLES`) — must
  have confirmed a code in this session, within the last `PROVENANT_MFA_STEP_UP_SECONDS`, before
  they approve or reject a request, release or block an adapter, approve a model card, share an
  evidence pack, grant roles or change accounts, open the redaction review queue, and (built
  later) deploy or rotate keys. A session verified longer ago is asked for a code again (step-up);
  someone who has not set up an authenticator is sent to set it up, told why.
- Through the API, such an action by a privileged role needs an API token made from a session
  verified with the second factor (`ApiToken.issued_with_second_factor`); any other token is
  refused with a 403 that says what to do.
- Ten recovery codes are made at set-up, shown once, each usable once (django-otp's static
  device); a new set voids the old. They are kept only as keyed hashes (HMAC with the secret key).
- Every set-up, wrong code, recovery code used and reset is in the trail. An administrator resets
  someone else's second factor (never their own); for a privileged role a second administrator
  confirms it, as for role grants (`governance.users`).
- Opening a sensitive item (original text in the review queue; flagged outputs later) first asks
  for a written justification, kept in the trail with the item, valid for that item in this
  session for `PROVENANT_JUSTIFICATION_SECONDS` (`justification_response`).

How to guard a new view (deployments, key rotation, …), one line each:

    class DeployView(SecondFactorRequiredMixin, LoginRequiredMixin, View): ...   # class-based: POSTs
    class QueueView(SecondFactorRequiredMixin, ...): second_factor_methods = None  # every method
    @second_factor_required                                                      # a function view
    def rotate(request): ...
    mfa.require_second_factor(request)   # anywhere else, e.g. inside a DRF action, before the action

`require_second_factor` raises `SecondFactorRequired` (a `PermissionDenied`): DRF answers it as a
403 with the sentence; on a page the middleware turns it into the step-up prompt (which, for a
POST, re-sends the form once the code is right) or the redirect to set-up.
"""

from __future__ import annotations

import base64
import functools
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from governance.forms import JustificationForm
from governance.models import ApiToken, SecondFactorReset, SecondFactorResetState
from governance.roles import ADMIN, LEGAL, PRIVACY, ROLE_LABELS, roles_of
from governance.trail import record_event

PRIVILEGED_ROLES = (LEGAL, PRIVACY, ADMIN)
RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_CHARS = 10  # base32: 50 random bits each, tried at most a few times a minute (throttling)
TOTP_DEVICE_NAME = "Authenticator app"
RECOVERY_DEVICE_NAME = "Recovery codes"

SESSION_VERIFIED_AT = "provenant_mfa_verified_at"  # when this session last confirmed a code (ISO, UTC)
SESSION_PENDING = "provenant_mfa_pending"  # password accepted, code not yet: the session opens nothing else
SESSION_JUSTIFIED = "provenant_justified"  # {item key: {"at": ISO, "event": sequence}}
CODE_FIELD = "second_factor_code"  # the step-up form's field, re-sent with a guarded POST

NOT_ENROLLED, NOT_VERIFIED, STALE, TOKEN_WITHOUT = "not_enrolled", "not_verified", "stale", "token_without_second_factor"


class SecondFactorRefused(Exception):
    """An action here breaks a rule above; the message says which, and what to do."""


class SecondFactorRequired(PermissionDenied):
    """The action needs a second factor this request does not carry. `reason` is one of
    NOT_ENROLLED, NOT_VERIFIED, STALE, TOKEN_WITHOUT; `error` is set when a code was given and
    refused. DRF answers it as a 403 `{"detail": message}` (code `second_factor_required`)."""

    def __init__(self, reason: str, message: str, error: str = ""):
        super().__init__(message, "second_factor_required")
        self.reason, self.message, self.error = reason, message, error

    def __str__(self):
        return self.message


# --------------------------------------------------------------------------- state


def requires_second_factor(user) -> bool:
    """The roles that decide or read everything must confirm a code before they act."""
    return bool(user is not None and user.is_authenticated and roles_of(user) & set(PRIVILEGED_ROLES))


def privileged_role_labels(user) -> str:
    return ", ".join(ROLE_LABELS[r] for r in PRIVILEGED_ROLES if r in roles_of(user))


def totp_device(user, *, confirmed: bool = True) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=confirmed).first()


def is_enrolled(user) -> bool:
    return bool(user is not None and user.is_authenticated and TOTPDevice.objects.filter(user=user, confirmed=True).exists())


def recovery_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def step_up_seconds() -> int:
    return settings.PROVENANT_MFA_STEP_UP_SECONDS


def verified_at(request) -> datetime | None:
    """When this session last confirmed a code, if its device still exists (django-otp's
    middleware drops a session's device once it is deleted or reset)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not getattr(user, "is_verified", lambda: False)():
        return None
    stamp = request.session.get(SESSION_VERIFIED_AT)
    try:
        return datetime.fromisoformat(stamp) if stamp else None
    except ValueError:
        return None


def session_is_fresh(request) -> bool:
    """Verified with a second factor within the step-up age."""
    at = verified_at(request)
    return at is not None and timezone.now() - at <= timedelta(seconds=step_up_seconds())


def mark_session_verified(request, device) -> None:
    """The session has confirmed a code now: django-otp keeps the device in the session (it is
    checked on every request); we keep the time, for the step-up. The session key changes, as at
    login, since the session has just gained rights."""
    request.session.cycle_key()
    otp_login(request, device)
    request.session[SESSION_VERIFIED_AT] = timezone.now().isoformat()
    request.session.pop(SESSION_PENDING, None)


def login_pending(request) -> bool:
    """The password was accepted but the code not yet given."""
    return bool(request.session.get(SESSION_PENDING)) and not getattr(request.user, "is_verified", lambda: False)()


def begin_login(request, user) -> bool:
    """Right after a password login: True if the session must now confirm a code before it opens
    anything (the user has an authenticator)."""
    if is_enrolled(user):
        request.session[SESSION_PENDING] = True
        return True
    return False


# --------------------------------------------------------------------------- the check


def second_factor_problem(request, *, everyone: bool = False) -> SecondFactorRequired | None:
    """What stops this request from a privileged action, or None. Works on a Django request (the
    session) and a DRF request (its API token, or the session behind session authentication).
    `everyone`: ask it of any user with an authenticator, not only the privileged roles (changing
    one's own recovery codes)."""
    user = request.user
    if not (requires_second_factor(user) or (everyone and is_enrolled(user))):
        return None
    token = getattr(request, "auth", None)
    if isinstance(token, ApiToken):
        if token.issued_with_second_factor:
            return None
        token_page = reverse("api_token")
        if not is_enrolled(user):
            return SecondFactorRequired(TOKEN_WITHOUT, (
                f"This action needs a second factor for your role ({privileged_role_labels(user)}), and this API token "
                f"carries none. Set up an authenticator app at {reverse('mfa:setup')}, then make a new token on the API "
                f"token page ({token_page}): a token made from a session verified with your app carries it."))
        return SecondFactorRequired(TOKEN_WITHOUT, (
            f"This action needs a second factor for your role ({privileged_role_labels(user)}), and this API token was made "
            f"without one. Sign in to the portal, confirm with your authenticator app, and make a new token on the API "
            f"token page ({token_page}): a token made then carries the second factor."))
    if not is_enrolled(user):
        return SecondFactorRequired(NOT_ENROLLED, (
            f"Your role ({privileged_role_labels(user)}) approves, releases and shares only with a second factor: "
            "set up an authenticator app first. It takes a minute."))
    at = verified_at(request)
    if at is None:
        return SecondFactorRequired(NOT_VERIFIED, "Confirm with a code from your authenticator app to continue.")
    age = timezone.now() - at
    if age > timedelta(seconds=step_up_seconds()):
        return SecondFactorRequired(STALE, (
            f"You last confirmed a code {_minutes(age)} ago; this action needs one from the last "
            f"{_minutes(timedelta(seconds=step_up_seconds()))}. Enter a new code to continue."))
    return None


def require_second_factor(request, *, everyone: bool = False) -> None:
    """Raise `SecondFactorRequired` unless this request may do a privileged action now. Anyone
    outside the privileged roles passes (unless `everyone`). A page's POST that carries a code in
    `CODE_FIELD` (the step-up form re-sending it) is verified here and, if right, goes on."""
    problem = second_factor_problem(request, everyone=everyone)
    if problem is None:
        return
    if (problem.reason in (NOT_VERIFIED, STALE) and isinstance(request, HttpRequest) and request.method == "POST"
            and request.POST.get(CODE_FIELD)):
        outcome = verify_code(request, request.POST[CODE_FIELD], purpose="step-up")
        if outcome.ok:
            return
        problem.error = outcome.message
    raise problem


def second_factor_required(view=None, *, methods: tuple[str, ...] | None = None):
    """Decorator for a function view (or, with `method_decorator`, a class-based view's method):
    `require_second_factor` before the view runs, for `methods` (default: every method)."""

    def decorate(func):
        @functools.wraps(func)
        def wrapped(request, *args, **kwargs):
            if request.user.is_authenticated and (methods is None or request.method in methods):
                require_second_factor(request)
            return func(request, *args, **kwargs)

        return wrapped

    return decorate(view) if view is not None else decorate


class SecondFactorRequiredMixin:
    """For class-based views: `require_second_factor` before dispatch, for the methods named in
    `second_factor_methods` (lower case; default POST only, None for every method). Anonymous
    visitors pass through to the login check of the view's other mixins."""

    second_factor_methods: tuple[str, ...] | None = ("post",)

    def dispatch(self, request, *args, **kwargs):
        methods = self.second_factor_methods
        if request.user.is_authenticated and (methods is None or request.method.lower() in methods):
            require_second_factor(request)
        return super().dispatch(request, *args, **kwargs)


def _minutes(delta: timedelta) -> str:
    minutes = max(1, round(delta.total_seconds() / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


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


def verify_code(request, code: str, *, purpose: str) -> Verification:
    """`check_code` for the signed-in user, and on success the session is verified now."""
    outcome = check_code(request.user, code, purpose=purpose)
    if outcome.ok:
        mark_session_verified(request, outcome.device)
    return outcome


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


# --------------------------------------------------------------------------- written justification


class JustificationRefused(ValueError):
    """Too short, or for an item this page did not offer; the message says what to do."""


def justification_min_chars() -> int:
    return settings.PROVENANT_JUSTIFICATION_MIN_CHARS


def _item_key(obj) -> str:
    return f"{obj._meta.label_lower}:{obj.pk}"


def justification_for(request, obj) -> dict | None:
    """This session's justification for opening `obj`, if given within
    PROVENANT_JUSTIFICATION_SECONDS: {"at": ISO time, "event": the trail event's sequence}."""
    entry = request.session.get(SESSION_JUSTIFIED, {}).get(_item_key(obj))
    if not entry:
        return None
    try:
        given = datetime.fromisoformat(entry["at"])
    except (KeyError, ValueError):
        return None
    return entry if timezone.now() - given <= timedelta(seconds=settings.PROVENANT_JUSTIFICATION_SECONDS) else None


@transaction.atomic
def record_justification(request, obj, text: str, *, what: str):
    """Keep the reason the user gives for opening `obj` in the trail (with the item), and let this
    session open it for PROVENANT_JUSTIFICATION_SECONDS."""
    text = (text or "").strip()
    if len(text) < justification_min_chars():
        raise JustificationRefused(f"Say in at least {justification_min_chars()} characters why you need to open {what} "
                                   "(a case, a ticket, the check you are doing): the trail keeps it.")
    user = request.user
    event = record_event(user, "access.justified", obj, f"{user} gave a reason to open {what}"[:500],
                         {"item": _item_key(obj), "what": what, "justification": text})
    now = timezone.now()
    horizon = timedelta(seconds=settings.PROVENANT_JUSTIFICATION_SECONDS)
    kept = {key: entry for key, entry in request.session.get(SESSION_JUSTIFIED, {}).items()
            if now - datetime.fromisoformat(entry["at"]) <= horizon}
    kept[_item_key(obj)] = {"at": now.isoformat(), "event": event.sequence}
    request.session[SESSION_JUSTIFIED] = kept
    return event


_JUSTIFY_SALT = "provenant.mfa.justify"


def justification_ticket(request, obj, what: str, next_url: str) -> str:
    """The signed reference the justification form posts back: which item, for whom, and where to
    return. Signed so that a justification is recorded only for an item a page offered this user."""
    return signing.dumps({"item": _item_key(obj), "user": request.user.pk, "what": what, "next": next_url}, salt=_JUSTIFY_SALT)


def read_justification_ticket(request, ticket: str) -> dict:
    try:
        data = signing.loads(ticket, salt=_JUSTIFY_SALT, max_age=3600)
    except signing.BadSignature:
        raise JustificationRefused("This form is out of date: open the item again.") from None
    if data.get("user") != request.user.pk:
        raise JustificationRefused("This form was made for someone else: open the item again.")
    return data


def justification_response(request, obj, *, what: str, status: int = 200):
    """The gate for a sensitive item, for any view: None if this session has justified opening
    `obj` recently, else the page that asks why (the caller returns it). Call it after the access
    checks and before reading the sensitive content:

        response = mfa.justification_response(request, item, what="the original text of this snippet")
        if response is not None:
            return response
    """
    if justification_for(request, obj) is not None:
        return None
    return render(request, "governance/mfa/justify.html", {
        "what": what, "form": JustificationForm(), "ticket": justification_ticket(request, obj, what, request.get_full_path()),
        "min_chars": justification_min_chars(), "minutes": settings.PROVENANT_JUSTIFICATION_SECONDS // 60,
    }, status=status)


# --------------------------------------------------------------------------- where to go next


def safe_next(request, candidate: str | None, default: str = "/") -> str:
    """`candidate` if it is a path on this site, else `default`: never an address elsewhere."""
    if candidate and candidate.startswith("/") and not candidate.startswith("//") and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return candidate
    return default


def page_to_return_to(request) -> str:
    """Where a user sent away from a guarded action comes back to: the page itself for a GET, the
    page the form was on (the Referer, if on this site) for a POST."""
    if request.method == "GET":
        return request.get_full_path()
    from urllib.parse import urlsplit

    referer = urlsplit(request.META.get("HTTP_REFERER", ""))
    if referer.netloc == request.get_host() and referer.path:
        return safe_next(request, referer.path + (f"?{referer.query}" if referer.query else ""), reverse("dashboard"))
    return reverse("dashboard")


def url_with_next(name: str, next_url: str) -> str:
    return f"{reverse(name)}?{urlencode({'next': next_url})}"

