"""Roles are Django groups; what each may do at model level is declared here, once.

Model-level permissions mean "for every record of this kind". Narrower grants (an engineer
sharing one dataset with a colleague) are django-guardian object permissions, and the restricted
querysets in `governance.permissions` combine the two.
"""

from django.contrib.auth.models import Group, Permission

ENGINEER = "engineer"
LEGAL = "legal"
PRIVACY = "privacy"
REGULATOR = "regulator"
ADMIN = "admin"
ROLES = (ENGINEER, LEGAL, PRIVACY, REGULATOR, ADMIN)
ROLE_LABELS = {
    ENGINEER: "ML engineer",
    LEGAL: "Legal counsel",
    PRIVACY: "Privacy officer",
    REGULATOR: "Regulator / external auditor",
    ADMIN: "Administrator",
}

_GOVERNANCE_RECORDS = ("dataclass", "processor", "dataprocessingagreement", "attestation", "computetarget", "redactionrule")


def _perms(app, verbs, models):
    return {f"{app}.{verb}_{model}" for verb in verbs for model in models}


ROLE_PERMISSIONS = {
    # Engineers read the catalogue they choose from and upload datasets; which datasets they
    # see is decided per object (their own and those shared with them).
    ENGINEER: _perms("governance", ["view"], ["dataclass", "computetarget"]) | {"governance.add_dataset", "training.view_basemodel"}
    | {"governance.add_trainingrequest"},
    # (Engineers see their own training runs: TrainingRun.narrow_visible.)
    LEGAL: _perms("governance", ["view"], _GOVERNANCE_RECORDS + ("dataset",)) | {"training.view_basemodel"}
    | _perms("governance", ["add", "change"], ["processor", "dataprocessingagreement", "attestation"])
    | {"governance.view_auditevent", "training.view_trainingrun", "training.view_runartifact"}
    | {"audits.view_adapteraudit", "audits.view_adapterrelease"}
    | {"governance.view_trainingrequest", "governance.decide_trainingrequest", "governance.view_approval"}
    | {"governance.view_modelcard", "audits.view_evidencepack"}
    | {"serving.view_deployment"},  # what is deployed, not its keys, query log or flagged outputs
    PRIVACY: _perms("governance", ["view"], _GOVERNANCE_RECORDS + ("dataset",)) | {"training.view_basemodel"}
    # Key rotation (governance.key_rotation, governance.signing_keys): the privacy officer leads a breach
    # response and must be able to contain it without waiting for an administrator.
    | {"governance.rotate_keys"}
    | _perms("governance", ["add", "change"], _GOVERNANCE_RECORDS)
    | {"governance.classify_dataset", "governance.delete_dataset", "governance.view_auditevent"}
    # Only the privacy role reads original text in the review queue.
    | {"training.view_redactionreview", "training.change_redactionreview"}
    | {"training.view_trainingrun", "training.view_runartifact", "training.cancel_any_run"}
    # Only the privacy role releases or blocks an adapter, on its audit's evidence.
    | {"audits.view_adapteraudit", "audits.view_adapterrelease", "audits.release_adapter"}
    | {"governance.view_trainingrequest", "governance.decide_trainingrequest", "governance.view_approval"}
    # The privacy officer approves model cards, builds evidence packs and shares them with regulators.
    | {"governance.view_modelcard", "governance.approve_modelcard", "audits.view_evidencepack", "audits.add_evidencepack",
       "audits.share_evidencepack", "audits.view_packshare"}
    # Only the privacy role deploys released adapters, issues consumer keys, reads the query log
    # and its alerts, and reviews the outputs the gateway's filter changed.
    | {"serving.deploy_adapter", "serving.view_deployment", "serving.view_consumerkey", "serving.view_queryrecord",
       "serving.view_alert", "serving.view_flaggedoutput", "serving.change_flaggedoutput"},
    # Regulators see nothing of the governance records; evidence packs are shared per object.
    REGULATOR: set(),
    ADMIN: _perms("governance", ["view", "add", "change"], _GOVERNANCE_RECORDS)
    | {"governance.rotate_keys"}  # the master key and the signing key: keys are the administrator's
    | {"governance.view_dataset", "governance.view_auditevent", "training.view_basemodel", "training.view_trainingrun",
       "training.cancel_any_run", "audits.view_adapteraudit", "audits.view_adapterrelease",
       "governance.view_trainingrequest", "governance.decide_trainingrequest", "governance.view_approval",
       "governance.view_modelcard", "audits.view_evidencepack", "serving.view_deployment"}
    # Accounts and roles change only through governance.users (audited, two people for the
    # powerful roles), never through Django's auth admin: administrators may look, not edit.
    | {"auth.view_user", "auth.view_group"},
}


def sync_role_groups(**kwargs):
    """Create the role groups and give each exactly the permissions declared above. Runs after
    each app migrates (and after every flush of a transactional test): one query for all the
    permissions, not one per permission."""
    known = {f"{app_label}.{codename}": pk for pk, app_label, codename in
             Permission.objects.values_list("pk", "content_type__app_label", "codename")}
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        # A permission may not exist yet while earlier apps migrate; the next call adds it.
        group.permissions.set([known[dotted] for dotted in codenames if dotted in known])


def roles_of(user) -> set[str]:
    if not user.is_authenticated:
        return set()
    cached = getattr(user, "_provenant_roles", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        user._provenant_roles = cached
    return cached


def has_role(user, *roles: str) -> bool:
    return bool(roles_of(user) & set(roles))


def roles_context(request):
    roles = roles_of(request.user)
    return {
        "user_roles": roles,
        "user_role_labels": [ROLE_LABELS[r] for r in ROLES if r in roles],
        "is_engineer": ENGINEER in roles,
        "is_legal": LEGAL in roles,
        "is_privacy": PRIVACY in roles,
        "is_regulator": REGULATOR in roles,
        "is_admin_role": ADMIN in roles,
    }


def role_refusal(url_kwargs: dict) -> Exception:
    """What a page answers to a role that may not use it. A URL naming an object (it has an id)
    answers 404: that role sees no such object at all, and whether one exists is not theirs to
    learn. A page without an object (a list, a form) answers 403: the page exists, their role
    lacks it. (An object the user can see but may not act on is a 403 from the view itself.)"""
    from django.core.exceptions import PermissionDenied
    from django.http import Http404

    return Http404("Nothing here that you can see.") if url_kwargs else PermissionDenied()
