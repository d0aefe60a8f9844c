"""Whether a host is this machine's own: where plain http is allowed (a listening address, a
test's OIDC issuer)."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str, *, by_name: bool = True) -> bool:
    """`host` is an IP literal in 127.0.0.0/8 or ::1, or (with `by_name`) `localhost`.
    Without `by_name` only a literal counts: a name can resolve anywhere."""
    if by_name and host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
