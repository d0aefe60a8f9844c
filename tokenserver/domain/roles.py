"""Project roles (Harbor's role ids) and what each may do, and what public projects allow."""

from __future__ import annotations

from enum import IntEnum

from tokenserver.domain.permissions import PROJECT_PERMISSIONS, SYSTEM_PERMISSIONS, Grants


class Role(IntEnum):
    PROJECT_ADMIN = 1
    DEVELOPER = 2
    GUEST = 3
    MAINTAINER = 4
    LIMITED_GUEST = 5

    @property
    def harbor_name(self) -> str:
        return _NAMES[self]


_NAMES = {
    Role.PROJECT_ADMIN: "projectAdmin",
    Role.DEVELOPER: "developer",
    Role.GUEST: "guest",
    Role.MAINTAINER: "maintainer",
    Role.LIMITED_GUEST: "limitedGuest",
}


def _grants(spec: dict[str, str]) -> Grants:
    return Grants(frozenset((r, a) for r, actions in spec.items() for a in actions.split()))


_READ = "read list"
_CRUD = "create read list update delete"

_LIMITED_GUEST = {
    "project": "read",
    "repository": "read list pull",
    "artifact": "read list",
    "tag": "list",
    "accessory": "list",
    "artifact-addition": "read",
    "helm-chart": "read",
    "helm-chart-version": "read",
    "scan": "read",
}
_GUEST = _LIMITED_GUEST | {
    "member": _READ,
    "robot": _READ,
    "log": "list",
    "metadata": _READ,
    "label": _READ,
    "quota": "read",
    "tag-retention": _READ,
    "immutable-tag": "list",
    "preheat-policy": _READ,
    "scanner": "read",
}
_DEVELOPER = _GUEST | {
    "repository": "read list pull push update",
    "artifact": "read list create",
    "tag": "list create",
    "artifact-label": "create delete",
    "scan": "read create stop",
    "helm-chart-version": "read create",
}
_MAINTAINER = _DEVELOPER | {
    "repository": "read list pull push update delete",
    "artifact": "read list create delete",
    "tag": "list create delete",
    "helm-chart-version": "read create delete",
    "tag-retention": _CRUD,
    "immutable-tag": "create delete list update",
    "label": _CRUD,
    # Harbor's maintainer reads a project's webhook policies; only its admin changes them.
    "notification-policy": _READ,
    "preheat-policy": _CRUD,
}
_PROJECT_ADMIN = _MAINTAINER | {
    "project": "read update delete",
    "member": _CRUD,
    "metadata": _CRUD,
    "robot": _CRUD,
    "notification-policy": _CRUD,
    "scanner": "read create",
}

# Registry actions by role, as the issue and Harbor define them: projectAdmin and maintainer
# pull, push, delete; developer pull, push; guest and limitedGuest pull.
ROLE_GRANTS: dict[Role, Grants] = {
    Role.PROJECT_ADMIN: _grants(_PROJECT_ADMIN),
    Role.MAINTAINER: _grants(_MAINTAINER),
    Role.DEVELOPER: _grants(_DEVELOPER),
    Role.GUEST: _grants(_GUEST),
    Role.LIMITED_GUEST: _grants(_LIMITED_GUEST),
}

# Anyone, anonymous or authenticated, may read and pull a public project.
PUBLIC_PROJECT_GRANTS = _grants(
    {"project": "read", "repository": "read list pull", "artifact": "read list", "tag": "list"}
)

# A system administrator holds everything.
ADMIN_PROJECT_GRANTS = Grants(PROJECT_PERMISSIONS | ROLE_GRANTS[Role.PROJECT_ADMIN].allowed)
ADMIN_SYSTEM_GRANTS = Grants(
    SYSTEM_PERMISSIONS
    | _grants(
        {"user": _CRUD, "project": _CRUD, "audit-log": "list", "configuration": "read update"}
    ).allowed
)
