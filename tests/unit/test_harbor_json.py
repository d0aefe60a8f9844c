"""Harbor's JSON shapes: times as Harbor writes them, whatever the stored number."""

from __future__ import annotations

import pytest

from tokenserver.domain.harbor_json import iso_time, permission_table_json, secret_json
from tokenserver.domain.permissions import HARBOR_PROJECT_PERMISSIONS, PermissionKind
from tokenserver.domain.secrets import Secret


@pytest.mark.parametrize(
    ("unix", "shown"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1700000000.25, "2023-11-14T22:13:20.250Z"),
        (253402300799, "9999-12-31T23:59:59.000Z"),
        # Past the years a date can show (an expiry stored before durations were bounded):
        # the last one, never an error that fails a whole listing.
        (1700000000 + 99999999 * 86400, "9999-12-31T23:59:59.000Z"),
        (2**63 - 1, "9999-12-31T23:59:59.000Z"),
        (-(2**63), "0001-01-01T00:00:00.000Z"),
    ],
)
def test_iso_time(unix: float, shown: str) -> None:
    assert iso_time(unix) == shown


def test_the_permission_table_leaves_out_a_kind_not_shown() -> None:
    both = permission_table_json([PermissionKind.SYSTEM, PermissionKind.PROJECT])
    assert list(both) == ["system", "project"]
    assert [(p["resource"], p["action"]) for p in both["project"]] == list(
        HARBOR_PROJECT_PERMISSIONS
    )
    assert permission_table_json([PermissionKind.PROJECT]) == {"project": both["project"]}


def test_a_secret_given_is_answered_with_an_empty_object() -> None:
    assert secret_json(None) == {}
    assert secret_json(Secret("Gener4tedSecret")) == {"secret": "Gener4tedSecret"}
