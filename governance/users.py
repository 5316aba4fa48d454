"""Accounts and roles: every change is an action here, atomic, with its trail event.

The rules (README, *Users and roles*):

- Only the admin role manages accounts and roles, and nobody acts on their own account here:
  nobody grants themselves anything (nor deactivates, or resets the password of, themselves).
- Engineer and regulator (who see only their own work or what is shared with them): an
  administrator grants them.
- Legal, privacy and admin (who read everything or decide): one administrator proposes the grant
  and it takes effect only when a second person confirms it: someone who already holds that role,
  neither the proposer nor the user. So nobody passes on a power they do not hold, and nobody does
  it alone. While nobody holds the role yet (a fresh install), a second administrator confirms.
- Superuser status is never set here; staff status (which only opens the read-only Django admin)
  follows the admin role.
- An administrator never chooses a password, and never sees the link that sets one: the one-time
  link goes by e-mail to the user's own address (an account without one cannot be reset here), and
  the user sets their own password through it. Only the operator's `manage.py bootstrap_admin`
  prints a link, on the server's terminal, for the first administrators of a fresh install.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from governance.models import ApiToken, RoleGrant, RoleGrantState
from governance.roles import ADMIN, ENGINEER, LEGAL, PRIVACY, REGULATOR, ROLE_LABELS, ROLES, roles_of
from governance.trail import record_event

logger = logging.getLogger(__name__)

SECOND_PERSON_ROLES = (LEGAL, PRIVACY, ADMIN)
DIRECT_ROLES = (ENGINEER, REGULATOR)


class UserActionRefused(Exception):
    """The action breaks one of the rules above; the message says which, and what to do."""


def _label(role: str) -> str:
    return ROLE_LABELS.get(role, role)


def _forget_roles(user) -> None:
    """roles_of caches on the user object; drop the cache after a change."""
    if hasattr(user, "_provenant_roles"):
        del user._provenant_roles


def _locked(user):
    """The user's row, locked for the rest of the transaction: two administrators acting on one
    account at once take turns."""
    return get_user_model().objects.select_for_update().get(pk=user.pk)


# --------------------------------------------------------------------------- checks


def may_manage_users(actor) -> bool:
    return bool(actor and actor.is_authenticated and actor.is_active and ADMIN in roles_of(actor))


def check_manage(actor, user=None) -> None:
    """Refuse anyone but an active administrator, and anyone acting on their own account."""
    if not may_manage_users(actor):
        raise PermissionError("Only an administrator manages users and roles.")
    if user is not None and user.pk == actor.pk:
        raise UserActionRefused("Nobody changes their own account or roles here: ask another administrator.")


def active_holders(role: str):
    return get_user_model().objects.filter(is_active=True, groups__name=role)


def may_confirm(actor, grant: RoleGrant) -> bool:
    """A second person: holds the role already (or, while nobody does, is an administrator), and is
    neither the proposer nor the user the role is for."""
    if not (actor and actor.is_authenticated and actor.is_active) or grant.state != RoleGrantState.PENDING:
        return False
    if actor.pk in (grant.proposed_by_id, grant.user_id):
        return False
    held = roles_of(actor)
    if grant.role in held:
        return True
    return ADMIN in held and not active_holders(grant.role).exclude(pk=grant.user_id).exists()


def grants_awaiting(actor):
    """The pending grants this person may confirm."""
    pending = RoleGrant.objects.filter(state=RoleGrantState.PENDING).select_related("user", "proposed_by")
    return [grant for grant in pending if may_confirm(actor, grant)]


# --------------------------------------------------------------------------- accounts


@transaction.atomic
def create_user(actor, *, username: str, email: str, base_url: str, first_name: str = "", last_name: str = ""):
    """A new account with no role and no password; a one-time link to choose one goes to its e-mail
    address (required: it is the only way the link reaches the person). Returns the user and the
    `LinkMailed` the page reports."""
    check_manage(actor)
    if not email.strip():
        raise UserActionRefused("Give the person's e-mail address: the link to choose their password is sent there.")
    User = get_user_model()
    if User.objects.filter(username__iexact=username).exists():
        raise UserActionRefused(f"The username “{username}” is taken: choose another.")
    user = User(username=username, email=email, first_name=first_name, last_name=last_name)
    user.set_unusable_password()
    user.save()
    record_event(actor, "user.created", user, f"{actor} created the account {user.username}",
                 {"username": user.username, "email": email})
    return user, _send_link(actor, user, base_url, new_account=True)


def reset_path(user) -> str:
    """The one-time link's path. Server side only: it goes into the user's e-mail, or onto the
    operator's terminal (`bootstrap_admin`); never onto a page or into the trail."""
    return reverse("password_reset_confirm", kwargs={"uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
                                                     "token": default_token_generator.make_token(user)})


def mask_email(address: str) -> str:
    """Enough for the administrator to recognise the address the link went to: n***@example.org."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


class LinkMailed:
    """What the administrator learns of a link sent: the masked address, and, once the transaction
    has committed and the mail server answered, the error if it refused the message."""

    def __init__(self, user):
        self.username, self.masked_email, self.error = user.username, mask_email(user.email), ""


def _send_link(actor, user, base_url: str, *, new_account: bool) -> LinkMailed:
    """Record the link issued (never the link itself), then mail it to the user's own address once
    the transaction commits: a rolled-back action sends nothing."""
    outcome = LinkMailed(user)
    verb = "a one-time link to choose a password" if new_account else "a one-time password reset link"
    record_event(actor, "user.password_reset_issued", user, f"{actor} sent {user.username} {verb} by e-mail",
                 {"username": user.username, "sent_to": outcome.masked_email, "new_account": new_account})
    context = {"user": user, "link": base_url.rstrip("/") + reset_path(user), "new_account": new_account,
               "hours": settings.PASSWORD_RESET_TIMEOUT // 3600}
    subject = "Choose your Provenant password" if new_account else "Reset your Provenant password"
    body, to = render_to_string("governance/users/password_link_email.txt", context), [user.email]

    def send():
        try:
            send_mail(subject, body, None, to)
        except OSError as exc:  # smtplib's errors are OSErrors; the page says the mail did not leave
            logger.exception("The password link for %s could not be mailed", outcome.username)
            outcome.error = str(exc) or exc.__class__.__name__

    transaction.on_commit(send)
    return outcome


@transaction.atomic
def issue_password_reset(actor, user, *, base_url: str) -> LinkMailed:
    """Void the user's password and API token and mail them a one-time link through which they
    choose a new one. The link stops working once used, when a newer one is issued, or after
    PASSWORD_RESET_TIMEOUT; the administrator never learns the link or the password."""
    check_manage(actor, user)
    user = _locked(user)
    if not user.is_active:
        raise UserActionRefused("The account is deactivated: reactivate it first.")
    if not user.email.strip():
        raise UserActionRefused(f"{user.username} has no e-mail address, so a reset link has nowhere to go: "
                                "add their address first.")
    user.set_unusable_password()  # the old password stops working now, and earlier links with it
    user.save(update_fields=["password"])
    _drop_tokens(user)
    return _send_link(actor, user, base_url, new_account=False)


@transaction.atomic
def change_email(actor, user, email: str):
    """Set the address reset links go to. The trail keeps the old and the new address: pointing an
    account's mail at oneself before issuing a link is the one way left to take it over, so it
    stays visible. Links already sent stop working (Django's tokens cover the address)."""
    check_manage(actor, user)
    email = email.strip()
    if not email:
        raise UserActionRefused("Give the new e-mail address.")
    user = _locked(user)
    if user.email.lower() == email.lower():
        raise UserActionRefused(f"{user.username}'s address is already {email}.")
    old, user.email = user.email, email
    user.save(update_fields=["email"])
    record_event(actor, "user.email_changed", user, f"{actor} changed the e-mail address of {user.username}",
                 {"username": user.username, "old_email": old, "new_email": email})
    return user


@transaction.atomic
def set_password_from_reset_link(form):
    """The user sets their own password through a reset link (Django's SetPasswordForm)."""
    user = form.save()
    record_event(user, "user.password_set", user, f"{user.username} set a new password through a one-time reset link",
                 {"username": user.username})
    return user


@transaction.atomic
def deactivate_user(actor, user, reason: str):
    """Close the account: it can no longer log in or use its API token, its roles are revoked and
    its pending grants declined (a reactivated account starts with no role)."""
    check_manage(actor, user)
    if not reason.strip():
        raise UserActionRefused("Say why the account is deactivated: the trail keeps it.")
    user = _locked(user)
    if not user.is_active:
        raise UserActionRefused("The account is already deactivated.")
    revoked = sorted(roles_of(user))
    user.groups.remove(*Group.objects.filter(name__in=ROLES))
    user.is_active, user.is_staff = False, False
    user.save(update_fields=["is_active", "is_staff"])
    _forget_roles(user)
    _drop_tokens(user)
    declined = RoleGrant.objects.filter(user=user, state=RoleGrantState.PENDING).update(
        state=RoleGrantState.DECLINED, decided_by=actor, decided_at=timezone.now())
    record_event(actor, "user.deactivated", user, f"{actor} deactivated the account {user.username}",
                 {"username": user.username, "reason": reason, "roles_revoked": revoked, "pending_grants_declined": declined})
    return user


@transaction.atomic
def reactivate_user(actor, user):
    check_manage(actor, user)
    user = _locked(user)
    if user.is_active:
        raise UserActionRefused("The account is active.")
    user.is_active = True
    user.save(update_fields=["is_active"])
    record_event(actor, "user.reactivated", user, f"{actor} reactivated the account {user.username} (with no role)",
                 {"username": user.username})
    return user


@transaction.atomic
def rotate_api_token(user, *, with_second_factor: bool = False) -> tuple[ApiToken, str]:
    """A new API token for the user, the old one void at once, and its secret: shown to the user
    once (the API token page), kept only as a hash. It expires after PROVENANT_API_TOKEN_DAYS days.
    `with_second_factor`: made from a session that confirmed a second factor recently, so it may
    approve for a privileged role (governance.mfa). The trail records that it changed, its first
    characters and whether it carries the second factor, never the token."""
    _locked(user)  # two rotations at once take turns instead of colliding on the one-token rule
    had_one = ApiToken.objects.filter(user=user).exists()
    token, secret = ApiToken.objects.issue(user, days=settings.PROVENANT_API_TOKEN_DAYS, with_second_factor=with_second_factor)
    record_event(user, "user.api_token_rotated" if had_one else "user.api_token_created", user,
                 f"{user.username} {'rotated' if had_one else 'created'} their API token",
                 {"username": user.username, "prefix": token.prefix, "expires_at": token.expires_at.isoformat(),
                  "issued_with_second_factor": with_second_factor})
    return token, secret


@transaction.atomic
def revoke_api_token(user) -> None:
    """The user's API token stops working at once; they may make a new one later."""
    token = ApiToken.objects.filter(user=user).first()
    if token is None:
        raise UserActionRefused("You have no API token to revoke.")
    token.delete()
    record_event(user, "user.api_token_revoked", user, f"{user.username} revoked their API token",
                 {"username": user.username, "prefix": token.prefix})


def _drop_tokens(user) -> None:
    """Deactivation and password resets void the token (their own trail events say so)."""
    ApiToken.objects.filter(user=user).delete()


# --------------------------------------------------------------------------- roles


def _add_role(user, role: str) -> None:
    user.groups.add(Group.objects.get(name=role))
    if role == ADMIN and not user.is_staff:
        user.is_staff = True  # opens the read-only Django admin, nothing more
        user.save(update_fields=["is_staff"])
    _forget_roles(user)


@transaction.atomic
def propose_role(actor, user, role: str, reason: str = "") -> RoleGrant:
    """Grant an engineer or regulator role at once; propose a legal, privacy or admin role, which
    waits for a second person (`confirm_role`)."""
    check_manage(actor, user)
    if role not in ROLES:
        raise UserActionRefused(f"There is no role “{role}”; the roles are {', '.join(ROLES)}.")
    user = _locked(user)
    if not user.is_active:
        raise UserActionRefused("The account is deactivated: reactivate it first.")
    if role in roles_of(user):
        raise UserActionRefused(f"{user.username} already holds the role {_label(role)}.")
    if RoleGrant.objects.filter(user=user, role=role, state=RoleGrantState.PENDING).exists():
        raise UserActionRefused(f"A grant of {_label(role)} to {user.username} already awaits confirmation.")
    grant = RoleGrant.objects.create(user=user, role=role, reason=reason, proposed_by=actor)
    if role in DIRECT_ROLES:
        _add_role(user, role)
        grant.state, grant.decided_by, grant.decided_at = RoleGrantState.GRANTED, actor, timezone.now()
        grant.save(update_fields=["state", "decided_by", "decided_at"])
        record_event(actor, "role.granted", user, f"{actor} granted {user.username} the role {_label(role)}",
                     {"username": user.username, "role": role, "grant": grant.pk, "reason": reason})
    else:
        record_event(actor, "role.proposed", user,
                     f"{actor} proposed the role {_label(role)} for {user.username}; a second person must confirm it",
                     {"username": user.username, "role": role, "grant": grant.pk, "reason": reason})
    return grant


@transaction.atomic
def confirm_role(actor, grant: RoleGrant) -> RoleGrant:
    grant = RoleGrant.objects.select_for_update(of=("self",)).select_related("user", "proposed_by").get(pk=grant.pk)
    if grant.state != RoleGrantState.PENDING:
        raise UserActionRefused(f"This grant is {grant.get_state_display().lower()}: there is nothing to confirm.")
    if actor.pk == grant.user_id:
        raise UserActionRefused("Nobody confirms a role for themselves: another person must.")
    if actor.pk == grant.proposed_by_id:
        raise UserActionRefused("You proposed this grant: a second person must confirm it.")
    if not may_confirm(actor, grant):
        raise PermissionError(f"Only someone who holds the role {_label(grant.role)} confirms its grant "
                              "(an administrator, while nobody holds it yet).")
    user = _locked(grant.user)
    if not user.is_active:
        raise UserActionRefused("The account was deactivated since the proposal: reactivate it and propose again.")
    _add_role(user, grant.role)
    grant.state, grant.decided_by, grant.decided_at = RoleGrantState.GRANTED, actor, timezone.now()
    grant.save(update_fields=["state", "decided_by", "decided_at"])
    record_event(actor, "role.granted", user,
                 f"{actor} confirmed the role {_label(grant.role)} for {user.username}, proposed by {grant.proposed_by}",
                 {"username": user.username, "role": grant.role, "grant": grant.pk, "proposed_by": grant.proposed_by.username
                  if grant.proposed_by else None, "reason": grant.reason})
    return grant


@transaction.atomic
def decline_role(actor, grant: RoleGrant, reason: str = "") -> RoleGrant:
    """The proposer withdraws a pending grant, or a person who could confirm it declines it."""
    grant = RoleGrant.objects.select_for_update(of=("self",)).select_related("user").get(pk=grant.pk)
    if grant.state != RoleGrantState.PENDING:
        raise UserActionRefused(f"This grant is {grant.get_state_display().lower()}: there is nothing to decline.")
    if not (may_manage_users(actor) or may_confirm(actor, grant)):
        raise PermissionError("Only an administrator or someone who could confirm this grant declines it.")
    if actor.pk == grant.user_id:
        raise UserActionRefused("Nobody decides a grant for themselves.")
    grant.state, grant.decided_by, grant.decided_at = RoleGrantState.DECLINED, actor, timezone.now()
    grant.save(update_fields=["state", "decided_by", "decided_at"])
    record_event(actor, "role.declined", grant.user, f"{actor} declined the role {_label(grant.role)} for {grant.user.username}",
                 {"username": grant.user.username, "role": grant.role, "grant": grant.pk, "reason": reason})
    return grant


@transaction.atomic
def revoke_role(actor, user, role: str, reason: str):
    check_manage(actor, user)
    if not reason.strip():
        raise UserActionRefused("Say why the role is revoked: the trail keeps it.")
    user = _locked(user)
    if role not in roles_of(user):
        raise UserActionRefused(f"{user.username} does not hold the role {_label(role)}.")
    user.groups.remove(Group.objects.get(name=role))
    if role == ADMIN:
        user.is_staff = False
        user.save(update_fields=["is_staff"])
    _forget_roles(user)
    record_event(actor, "role.revoked", user, f"{actor} revoked the role {_label(role)} from {user.username}",
                 {"username": user.username, "role": role, "reason": reason})
    return user


# --------------------------------------------------------------------------- the command line


@transaction.atomic
def bootstrap_admin(username: str, email: str = "") -> tuple[object, str]:
    """`manage.py bootstrap_admin`: an administrator created by the operator on the command line,
    only while fewer than two active administrators exist (the second person a fresh install needs
    before administrators can confirm each other's grants). Returns the user and a reset link."""
    if active_holders(ADMIN).count() >= 2:
        raise UserActionRefused("Two active administrators exist: grant the admin role in the portal (Users), "
                                "where a second administrator confirms it.")
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User(username=username, email=email)
        user.set_unusable_password()
        user.save()
        record_event(None, "user.created", user, f"The operator created the account {username} on the command line",
                     {"username": username, "email": email})
    elif not user.is_active:
        raise UserActionRefused(f"The account {username} is deactivated.")
    if ADMIN in roles_of(user):
        raise UserActionRefused(f"{username} is already an administrator.")
    _add_role(user, ADMIN)
    grant = RoleGrant.objects.create(user=user, role=ADMIN, reason="bootstrap on the command line", proposed_by=None,
                                     state=RoleGrantState.GRANTED, decided_at=timezone.now())
    record_event(None, "role.granted", user, f"The operator granted {username} the role {_label(ADMIN)} on the command line",
                 {"username": username, "role": ADMIN, "grant": grant.pk, "bootstrap": True})
    # A new account has no password yet: the link lets its owner choose one.
    return user, "" if user.has_usable_password() else reset_path(user)
