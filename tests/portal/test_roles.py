"""Users and roles: no self-granted power, no superuser from the portal, a second person for the
powerful roles, every change in the hash-chained trail."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.urls import reverse

from governance import roles, users
from governance.models import AuditEvent, RoleGrant, RoleGrantState
from tests.conftest import _make_user, api_client_for, client_for

PASSWORD = "correct-horse-battery-9"


@pytest.fixture
def second_admin(db):
    return _make_user("ada", roles.ADMIN, is_staff=True)


def _events(action, user):
    return AuditEvent.objects.filter(action=action, object_type="auth.user", object_id=str(user.pk))


# --------------------------------------------------------------------------- Django admin


def test_the_django_admin_cannot_make_an_administrator_superuser_or_give_them_a_role(admin_user):
    client = client_for(admin_user)
    privacy_group = Group.objects.get(name=roles.PRIVACY)
    response = client.post(reverse("admin:auth_user_change", args=[admin_user.pk]), {
        "username": admin_user.username, "is_active": "on", "is_staff": "on", "is_superuser": "on",
        "groups": [privacy_group.pk, Group.objects.get(name=roles.ADMIN).pk], "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
    })
    assert response.status_code == 403
    admin_user.refresh_from_db()
    assert not admin_user.is_superuser and roles.roles_of(get_user_model().objects.get(pk=admin_user.pk)) == {roles.ADMIN}


def test_the_django_admin_cannot_set_anyones_password(admin_user, engineer):
    client = client_for(admin_user)
    for url in (f"/admin/auth/user/{engineer.pk}/password/", f"/admin/auth/user/{engineer.pk}/password/change/"):
        client.post(url, {"password1": "taken-over-Pass-1", "password2": "taken-over-Pass-1"}, follow=True)
    engineer.refresh_from_db()
    assert engineer.check_password(PASSWORD)


def test_the_django_admin_still_lists_users_for_administrators_to_look_at(admin_user, engineer):
    response = client_for(admin_user).get(reverse("admin:auth_user_changelist"))
    assert response.status_code == 200 and engineer.username in response.content.decode()


def test_the_admin_role_holds_no_permission_to_change_accounts(admin_user):
    assert not admin_user.has_perm("auth.change_user") and not admin_user.has_perm("auth.add_user")


# --------------------------------------------------------------------------- the rules


def test_nobody_grants_themselves_a_role(admin_user):
    with pytest.raises(users.UserActionRefused, match="own account"):
        users.propose_role(admin_user, admin_user, roles.PRIVACY)
    assert not RoleGrant.objects.exists() and roles.roles_of(admin_user) == {roles.ADMIN}


def test_only_an_administrator_grants_roles(privacy, engineer):
    with pytest.raises(PermissionError, match="Only an administrator"):
        users.propose_role(privacy, engineer, roles.REGULATOR)


def test_an_engineer_role_is_granted_at_once_and_recorded(admin_user, outsider):
    grant = users.propose_role(admin_user, outsider, roles.ENGINEER, "Joins the support-bot team.")
    assert grant.state == RoleGrantState.GRANTED and roles.roles_of(get_user_model().objects.get(pk=outsider.pk)) == {roles.ENGINEER}
    event = _events("role.granted", outsider).get()
    assert event.actor_id == admin_user.pk and '"role":"engineer"' in event.payload


def test_a_privacy_grant_waits_for_a_second_person_who_holds_the_role(admin_user, second_admin, privacy, engineer):
    grant = users.propose_role(admin_user, engineer, roles.PRIVACY, "Covers for Priya.")
    assert grant.state == RoleGrantState.PENDING and roles.PRIVACY not in roles.roles_of(engineer)
    with pytest.raises(users.UserActionRefused, match="second person"):
        users.confirm_role(admin_user, grant)  # the proposer
    with pytest.raises(PermissionError, match="holds the role"):
        users.confirm_role(second_admin, grant)  # an administrator who is not a privacy officer, while one exists
    users.confirm_role(privacy, grant)
    assert roles.PRIVACY in roles.roles_of(get_user_model().objects.get(pk=engineer.pk))
    assert _events("role.proposed", engineer).get().actor_id == admin_user.pk
    assert _events("role.granted", engineer).get().actor_id == privacy.pk


def test_nobody_confirms_a_role_for_themselves(admin_user, second_admin, legal):
    grant = users.propose_role(admin_user, legal, roles.ADMIN)
    with pytest.raises(users.UserActionRefused, match="for themselves"):
        users.confirm_role(legal, grant)
    users.confirm_role(second_admin, grant)
    assert roles.ADMIN in roles.roles_of(get_user_model().objects.get(pk=legal.pk))
    assert get_user_model().objects.get(pk=legal.pk).is_staff and not get_user_model().objects.get(pk=legal.pk).is_superuser


def test_while_nobody_holds_a_role_a_second_administrator_confirms_it(admin_user, second_admin, engineer):
    grant = users.propose_role(admin_user, engineer, roles.LEGAL)
    assert users.grants_awaiting(second_admin) == [grant] and users.grants_awaiting(admin_user) == []
    users.confirm_role(second_admin, grant)
    assert roles.LEGAL in roles.roles_of(get_user_model().objects.get(pk=engineer.pk))


def test_a_declined_grant_gives_nothing_and_is_recorded(admin_user, legal, engineer):
    grant = users.propose_role(admin_user, engineer, roles.LEGAL)
    users.decline_role(legal, grant, "Not on the legal team.")
    assert roles.LEGAL not in roles.roles_of(get_user_model().objects.get(pk=engineer.pk))
    with pytest.raises(users.UserActionRefused, match="nothing to confirm"):
        users.confirm_role(legal, grant)
    assert _events("role.declined", engineer).get().actor_id == legal.pk


def test_revoking_a_role_needs_a_reason_and_is_recorded(admin_user, legal):
    with pytest.raises(users.UserActionRefused, match="why"):
        users.revoke_role(admin_user, legal, roles.LEGAL, " ")
    users.revoke_role(admin_user, legal, roles.LEGAL, "Left the company.")
    assert roles.roles_of(get_user_model().objects.get(pk=legal.pk)) == set()
    assert "Left the company." in _events("role.revoked", legal).get().payload


def test_deactivating_a_user_closes_login_and_token_and_revokes_their_roles(admin_user, engineer):
    token_client = api_client_for(engineer)
    users.deactivate_user(admin_user, engineer, "Left the company.")
    engineer.refresh_from_db()
    assert not engineer.is_active and roles.roles_of(get_user_model().objects.get(pk=engineer.pk)) == set()
    browser = client_for(None)
    browser.post(reverse("login"), {"username": engineer.username, "password": PASSWORD})
    assert "_auth_user_id" not in browser.session
    assert token_client.get("/api/datasets/").status_code == 401
    assert "Left the company." in _events("user.deactivated", engineer).get().payload


def test_role_and_account_changes_keep_the_hash_chain_intact(admin_user, second_admin, outsider):
    users.propose_role(admin_user, outsider, roles.ENGINEER)
    users.confirm_role(second_admin, users.propose_role(admin_user, outsider, roles.PRIVACY))
    users.issue_password_reset(admin_user, outsider, base_url="http://testserver/")
    users.deactivate_user(admin_user, outsider, "Test over.")
    assert AuditEvent.verify_chain().ok


# --------------------------------------------------------------------------- pages


def test_an_administrator_proposes_on_the_page_and_a_privacy_officer_confirms_on_theirs(admin_user, privacy, engineer):
    response = client_for(admin_user).post(reverse("governance:user_propose", args=[engineer.pk]),
                                           {"role": roles.PRIVACY, "reason": "Second DPO."}, follow=True)
    assert "takes effect when a second person confirms" in response.content.decode()
    grant = RoleGrant.objects.get(user=engineer, role=roles.PRIVACY, state=RoleGrantState.PENDING)
    page = client_for(privacy).get(reverse("governance:role_grants")).content.decode()
    assert engineer.username in page and reverse("governance:role_grant_confirm", args=[grant.pk]) in page
    client_for(privacy).post(reverse("governance:role_grant_confirm", args=[grant.pk]))
    assert roles.PRIVACY in roles.roles_of(get_user_model().objects.get(pk=engineer.pk))


def test_the_own_account_page_offers_no_change_and_refuses_one(admin_user):
    page = client_for(admin_user).get(reverse("governance:user_detail", args=[admin_user.pk])).content.decode()
    assert "your own account" in page and reverse("governance:user_propose", args=[admin_user.pk]) not in page
    response = client_for(admin_user).post(reverse("governance:user_propose", args=[admin_user.pk]), {"role": roles.PRIVACY}, follow=True)
    assert "Nobody changes their own account" in response.content.decode()
    assert roles.roles_of(get_user_model().objects.get(pk=admin_user.pk)) == {roles.ADMIN}


def test_deactivation_on_the_users_page_asks_why(admin_user, engineer):
    client = client_for(admin_user)
    response = client.post(reverse("governance:user_deactivate", args=[engineer.pk]), {"reason": ""}, follow=True)
    assert "required" in response.content.decode() and get_user_model().objects.get(pk=engineer.pk).is_active
    client.post(reverse("governance:user_deactivate", args=[engineer.pk]), {"reason": "Left."})
    assert not get_user_model().objects.get(pk=engineer.pk).is_active


def test_a_grant_is_invisible_to_those_who_may_not_decide_it(admin_user, engineer, outsider):
    grant = users.propose_role(admin_user, outsider, roles.LEGAL)
    assert client_for(engineer).post(reverse("governance:role_grant_confirm", args=[grant.pk])).status_code == 404
    assert RoleGrant.objects.get(pk=grant.pk).state == RoleGrantState.PENDING


def test_the_user_list_shows_each_users_roles_to_administrators_only(admin_user, legal, engineer):
    page = client_for(admin_user).get(reverse("governance:user_list")).content.decode()
    assert "Legal counsel" in page and legal.username in page
    assert client_for(engineer).get(reverse("governance:user_list")).status_code == 403


def test_a_new_user_starts_without_role_or_password(admin_user):
    response = client_for(admin_user).post(reverse("governance:user_create"), {"username": "nina", "email": "nina@example.test"})
    assert "/account/reset/" not in client_for(admin_user).get(response.url).content.decode()
    nina = get_user_model().objects.get(username="nina")
    assert response.status_code == 302 and not nina.has_usable_password() and roles.roles_of(nina) == set()
    assert _events("user.created", nina).get().actor_id == admin_user.pk


def test_refusals_are_styled_pages_404_for_what_is_not_yours_to_see(regulator, engineer):
    from tests.conftest import make_dataset

    dataset = make_dataset(engineer)
    response = client_for(regulator).get(reverse("governance:dataset_detail", args=[dataset.pk]))
    assert response.status_code == 404 and "Not found" in response.content.decode() and "404.html" in [t.name for t in response.templates]
    response = client_for(regulator).get(reverse("governance:dataset_list"))
    assert response.status_code == 403 and "403.html" in [t.name for t in response.templates]


# --------------------------------------------------------------------------- the command line


def test_the_first_administrator_is_made_on_the_command_line_and_recorded(db, capsys):
    call_command("bootstrap_admin", "root-admin", "--email", "it@example.test")
    user = get_user_model().objects.get(username="root-admin")
    assert roles.roles_of(user) == {roles.ADMIN} and not user.is_superuser and not user.has_usable_password()
    assert "/account/reset/" in capsys.readouterr().out
    assert _events("role.granted", user).get().actor_id is None


def test_the_command_line_makes_no_administrator_once_two_exist(admin_user, second_admin):
    with pytest.raises(CommandError, match="Two active administrators"):
        call_command("bootstrap_admin", "sneaky")
    assert not get_user_model().objects.filter(username="sneaky").exists()
