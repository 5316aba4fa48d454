"""Who may do what with incidents and alerts. The privacy officer leads the response: opens,
contains and closes incidents, reads and acknowledges alerts, runs watermark detection. An
administrator may read incidents (not act on them). Everyone else is refused."""

from governance.roles import ADMIN, PRIVACY, has_role


def may_respond(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active and has_role(user, PRIVACY))


def may_read_incidents(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active and has_role(user, PRIVACY, ADMIN))


def may_see_alerts(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.has_perm("serving.view_alert"))
