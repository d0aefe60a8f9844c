"""Harbor's JSON shapes: times as Harbor writes them, whatever the stored number."""

from __future__ import annotations

import pytest

from tokenserver.domain.harbor_json import iso_time


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
