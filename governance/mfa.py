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

The devices themselves — codes, enrolment, recovery codes, an administrator's reset — are in
`governance.mfa_devices`; their names are re-exported here, so `from governance.mfa import …` keeps working.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp import login as otp_login

from governance.forms import JustificationForm
from governance.mfa_devices import (  # noqa: F401 - re-exported: importers use governance.mfa.<name>
    PRIVILEGED_ROLES, RECOVERY_CODE_CHARS, RECOVERY_CODE_COUNT, RECOVERY_DEVICE_NAME, TOTP_DEVICE_NAME, SecondFactorRefused,
    Verification, check_code, confirm_enrolment, decline_reset, confirm_reset, has_second_factor, is_enrolled,
    may_confirm_reset, needs_second_administrator, propose_reset, recovery_codes_left, regenerate_recovery_codes,
    start_enrolment, totp_device,
)
from governance.models import ApiToken
from governance.roles import ROLE_LABELS, roles_of
from governance.trail import record_event

SESSION_VERIFIED_AT = "provenant_mfa_verified_at"  # when this session last confirmed a code (ISO, UTC)
SESSION_PENDING = "provenant_mfa_pending"  # password accepted, code not yet: the session opens nothing else
SESSION_JUSTIFIED = "provenant_justified"  # {item key: {"at": ISO, "event": sequence}}
CODE_FIELD = "second_factor_code"  # the step-up form's field, re-sent with a guarded POST

NOT_ENROLLED, NOT_VERIFIED, STALE, TOKEN_WITHOUT = "not_enrolled", "not_verified", "stale", "token_without_second_factor"


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


# --------------------------------------------------------------------------- codes (checked here for a session)


def verify_code(request, code: str, *, purpose: str) -> Verification:
    """`check_code` for the signed-in user, and on success the session is verified now."""
    outcome = check_code(request.user, code, purpose=purpose)
    if outcome.ok:
        mark_session_verified(request, outcome.device)
    return outcome


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

