"""Pages for accounts and roles (the admin role), and for confirming role grants (whoever may).
Thin: check access, call one action of governance.users, respond."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View

from governance import users
from governance.mfa import SecondFactorRequiredMixin
from governance.models import RoleGrant, RoleGrantState
from governance.roles import ROLE_LABELS, ROLES, roles_of


class NewUserForm(forms.Form):
    username = forms.RegexField(regex=r"^[\w.@+-]+\Z", max_length=150,
                                help_text="Letters, digits and @ . + - _ only.")
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    email = forms.EmailField(help_text="The link to choose a password is sent here, and only here.")


class ProposeRoleForm(forms.Form):
    role = forms.ChoiceField(choices=[(r, ROLE_LABELS[r]) for r in ROLES])
    reason = forms.CharField(max_length=500, required=False, help_text="Why this person needs the role (kept in the trail).")


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, help_text="Kept in the audit trail.")


class EmailForm(forms.Form):
    email = forms.EmailField(help_text="Reset links go here, and only here. The trail keeps the old and new address.")


class RevokeRoleForm(ReasonForm):
    role = forms.ChoiceField(choices=[(r, ROLE_LABELS[r]) for r in ROLES])


def _users():
    return get_user_model().objects.order_by("username").prefetch_related(
        "groups", Prefetch("role_grants", queryset=RoleGrant.objects.filter(state=RoleGrantState.PENDING), to_attr="pending_grants"))


class AdminOnlyMixin(LoginRequiredMixin):
    """The Users pages are the admin role's. A page of one account answers 404 to anyone else
    (they see no accounts at all), a page without an object 403."""

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not users.may_manage_users(request.user):
            raise Http404 if kwargs else PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def get_user(self, pk):
        return get_object_or_404(_users(), pk=pk)


class UserListView(AdminOnlyMixin, View):
    def get(self, request):
        rows = [(u, sorted(g.name for g in u.groups.all() if g.name in ROLES), u.pending_grants) for u in _users()]
        return render(request, "governance/users/list.html", {
            "rows": rows, "role_labels": ROLE_LABELS, "awaiting": users.grants_awaiting(request.user),
        })


class UserCreateView(AdminOnlyMixin, SecondFactorRequiredMixin, View):
    def get(self, request, form=None):
        return render(request, "governance/users/new.html", {"form": form or NewUserForm()})

    def post(self, request):
        form = NewUserForm(request.POST)
        if not form.is_valid():
            return self.get(request, form)
        try:
            user, mailed = users.create_user(request.user, base_url=request.build_absolute_uri("/"), **form.cleaned_data)
        except users.UserActionRefused as exc:
            form.add_error("username", str(exc))
            return self.get(request, form)
        messages.success(request, f"Created {user.username}, with no role. " + _link_sent_sentence(mailed))
        return redirect("governance:user_detail", pk=user.pk)


class UserDetailView(AdminOnlyMixin, View):
    def get(self, request, pk):
        subject = self.get_user(pk)
        held = roles_of(subject)
        grants = subject.role_grants.select_related("proposed_by", "decided_by")[:50]
        return render(request, "governance/users/detail.html", {
            "subject": subject, "held": [(r, ROLE_LABELS[r]) for r in ROLES if r in held], "grants": grants,
            "is_self": subject.pk == request.user.pk, "propose_form": ProposeRoleForm(auto_id="propose_%s"),
            "reason_form": ReasonForm(auto_id="deactivate_%s"),
            "email_form": EmailForm(auto_id="email_%s", initial={"email": subject.email}),
            "awaiting": [g for g in users.grants_awaiting(request.user) if g.user_id == subject.pk],
            "second_person_roles": [ROLE_LABELS[r] for r in users.SECOND_PERSON_ROLES],
        })


class UserActionView(AdminOnlyMixin, SecondFactorRequiredMixin, View):
    """One POST per action on an account (each with a recent second factor, governance.mfa); refusals
    come back as messages on its page."""

    action = ""

    def post(self, request, pk):
        subject = self.get_user(pk)
        try:
            done = getattr(self, f"do_{self.action}")(request, subject)
        except users.UserActionRefused as exc:
            messages.error(request, str(exc))
            return redirect("governance:user_detail", pk=subject.pk)
        except PermissionError as exc:
            raise PermissionDenied(str(exc)) from exc
        if isinstance(done, users.LinkMailed):
            (messages.error if done.error else messages.success)(
                request, _link_sent_sentence(done) + " Their old password and API token no longer work.")
        else:
            messages.success(request, done)
        return redirect("governance:user_detail", pk=subject.pk)

    def _form(self, form_class, request):
        form = form_class(request.POST)
        if not form.is_valid():
            raise users.UserActionRefused(" ".join(e for errs in form.errors.values() for e in errs))
        return form.cleaned_data

    def do_propose(self, request, subject):
        data = self._form(ProposeRoleForm, request)
        grant = users.propose_role(request.user, subject, data["role"], data["reason"])
        if grant.state == RoleGrantState.GRANTED:
            return f"{subject.username} now holds the role {ROLE_LABELS[grant.role]}."
        return f"Proposed {ROLE_LABELS[grant.role]} for {subject.username}: it takes effect when a second person confirms it."

    def do_revoke(self, request, subject):
        data = self._form(RevokeRoleForm, request)
        users.revoke_role(request.user, subject, data["role"], data["reason"])
        return f"Revoked {ROLE_LABELS[data['role']]} from {subject.username}."

    def do_deactivate(self, request, subject):
        users.deactivate_user(request.user, subject, self._form(ReasonForm, request)["reason"])
        return f"Deactivated {subject.username}: they can no longer log in or use their API token."

    def do_reactivate(self, request, subject):
        users.reactivate_user(request.user, subject)
        return f"Reactivated {subject.username}, with no role."

    def do_email(self, request, subject):
        user = users.change_email(request.user, subject, self._form(EmailForm, request)["email"])
        return f"{subject.username}'s e-mail address is now {user.email}; links sent before no longer work."

    def do_reset(self, request, subject):
        return users.issue_password_reset(request.user, subject, base_url=request.build_absolute_uri("/"))


def _link_sent_sentence(mailed: users.LinkMailed) -> str:
    """The administrator learns where the link went, never the link. The mail leaves when the
    action commits; if the mail server refused it by the time the page answers, say so."""
    if mailed.error:
        return (f"The one-time link for {mailed.username} could not be sent to {mailed.masked_email} ({mailed.error}): "
                "check the e-mail settings, then issue a new link.")
    return f"A one-time link was sent to {mailed.masked_email}: it works once, and only they receive it."


# --------------------------------------------------------------------------- confirming grants


class RoleGrantsView(LoginRequiredMixin, View):
    """The grants awaiting this person's confirmation: administrators, and holders of the roles
    that need a second person."""

    def get(self, request):
        if not (users.may_manage_users(request.user) or roles_of(request.user) & set(users.SECOND_PERSON_ROLES)):
            raise PermissionDenied
        return render(request, "governance/users/grants.html", {"awaiting": users.grants_awaiting(request.user)})


class RoleGrantDecisionView(LoginRequiredMixin, SecondFactorRequiredMixin, View):
    decision = ""

    def post(self, request, pk):
        grant = get_object_or_404(RoleGrant.objects.select_related("user"), pk=pk)
        # A grant is visible to who may decide it (or manages users); anyone else learns nothing.
        if not (users.may_manage_users(request.user) or users.may_confirm(request.user, grant)):
            raise Http404
        try:
            if self.decision == "confirm":
                users.confirm_role(request.user, grant)
                messages.success(request, f"Confirmed: {grant.user.username} now holds the role {ROLE_LABELS[grant.role]}.")
            else:
                users.decline_role(request.user, grant, request.POST.get("reason", "")[:500])
                messages.success(request, f"Declined the role {ROLE_LABELS[grant.role]} for {grant.user.username}.")
        except users.UserActionRefused as exc:
            messages.error(request, str(exc))
        except PermissionError as exc:
            raise PermissionDenied(str(exc)) from exc
        return redirect("governance:role_grants")
