"""The client behind a reverse proxy: its address (for lockouts and logs) and whether it came
over HTTPS (for the session cookie), from X-Forwarded-For / X-Forwarded-Proto or RFC 7239
`Forwarded`, believed only when the TCP peer is a trusted proxy (`server.trusted_proxies`).

Each proxy appends the address it received the request from, so the list is read from the
right: the proxies' own entries are skipped, and the first address that is not a trusted proxy
is the client. Everything to its left was written by that client and is never looked at, so a
forged left-most entry (or garbage there) changes nothing. A header that cannot be read where
it matters is ignored: the peer's address is used, as without a proxy.

Only the header the proxy is configured to set (`server.forwarded_header`) is read: a proxy
that sets one passes the other on from the client untouched (nginx passes `Forwarded`), so
reading both would let the client choose its address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from multidict import MultiMapping

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network  # as in Settings.trusted_proxies

X_FORWARDED_FOR = "x-forwarded-for"
FORWARDED = "forwarded"
HEADERS = (X_FORWARDED_FOR, FORWARDED)


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """`server.trusted_proxies` and `server.forwarded_header`."""

    trusted: tuple[IPNetwork, ...] = ()
    header: str = X_FORWARDED_FOR


_MAX_NODE_LENGTH = 64  # "[" + the longest IPv6 text (45) + "]:65535", with room to spare


@dataclass(frozen=True, slots=True)
class Client:
    address: str  # the address lockouts are keyed by and logs show
    https: bool  # a trusted proxy says the client used HTTPS


def parse_node(text: str) -> IPAddress | None:
    """An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`,
    `[2001:db8::1]` or `[2001:db8::1]:443`; None for anything else (`unknown`, an obfuscated
    `_name`, a host name, a zone id, garbage). IPv4-mapped IPv6 addresses become IPv4, so a
    dual-stack listener keys one client once."""
    text = text.strip()
    if not text or len(text) > _MAX_NODE_LENGTH or "%" in text:
        return None
    port = ""
    if text.startswith("["):
        host, bracket, port = text[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            return None
        port = port[1:] if port else ""
        if "." in host and ":" not in host:
            return None  # brackets are for IPv6 only
    elif text.count(":") == 1:  # IPv4 with a port; IPv6 has at least two colons
        host, _, port = text.partition(":")
    else:
        host = text
    if port and not (port.isascii() and port.isdigit() and len(port) <= 5):
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, proxies: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in proxies)


def _unquote(value: str) -> str | None:
    """An RFC 7239 value: a token, or a quoted-string with its backslash escapes undone."""
    if not value.startswith('"'):
        return value
    if len(value) < 2 or not value.endswith('"'):
        return None
    inner, out, escaped = value[1:-1], [], False
    for char in inner:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            return None
        else:
            out.append(char)
    return None if escaped else "".join(out)


def _forwarded_element(text: str) -> dict[str, str] | None:
    """One `Forwarded` element (`for=...;proto=...`) as lower-case keys; None if malformed."""
    pairs: dict[str, str] = {}
    for pair in text.split(";"):
        key, equals, raw = pair.strip().partition("=")
        value = _unquote(raw.strip())
        if not equals or not key or value is None or key.lower() in pairs:
            return None
        pairs[key.lower()] = value
    return pairs


def _hops_x_forwarded_for(
    values: Iterable[str], protos: Iterable[str]
) -> list[tuple[str, str | None]]:
    """(node, proto) from the right; X-Forwarded-Proto says one thing for the whole chain: its
    right-most value, set by the proxy nearest to us."""
    nodes = ",".join(values).split(",")
    proto_values = [p.strip().lower() for p in ",".join(protos).split(",") if p.strip()]
    proto = proto_values[-1] if proto_values else None
    return [(node, proto) for node in reversed(nodes)]


def _hops_forwarded(values: Iterable[str]) -> list[tuple[str, str | None]]:
    """(for, proto) of each element from the right, up to the first malformed one (an empty
    node, which `resolve` cannot read, if it gets that far).

    NOTE: split on commas without regard to quotes: the values proxies write (addresses,
    protocols, host names) hold none, and a client's unterminated quote on the left must not
    swallow the elements the proxies appended after it.
    """
    hops: list[tuple[str, str | None]] = []
    for text in reversed(",".join(values).split(",")):
        element = _forwarded_element(text)
        if element is None or "for" not in element:
            hops.append(("", None))
            break
        proto = element.get("proto")
        hops.append((element["for"], proto.lower() if proto is not None else None))
    return hops


def resolve(
    peer: str | None,
    headers: MultiMapping[str],
    proxies: Sequence[IPNetwork],
    header: str = X_FORWARDED_FOR,
) -> Client:
    """The client of a request whose TCP peer is `peer` (aiohttp's `request.remote`).

    `headers` is a multidict of the request's headers (`getall`). From a peer outside
    `proxies` (or with no proxies configured) the forwarding headers are ignored.
    """
    peer_address = parse_node(peer) if peer else None
    fallback = Client(str(peer_address) if peer_address is not None else (peer or ""), False)
    if not proxies or peer_address is None or not _trusted(peer_address, proxies):
        return fallback
    getall = headers.getall
    if header == FORWARDED:
        values = getall("Forwarded", [])
        hops = _hops_forwarded(values) if values else []
    else:
        values = getall("X-Forwarded-For", [])
        hops = _hops_x_forwarded_for(values, getall("X-Forwarded-Proto", [])) if values else []
    client: IPAddress | None = None
    proto: str | None = None
    for node, hop_proto in hops:
        address = parse_node(node)
        if address is None:
            return fallback  # a hop we needed is unreadable: fall back to the peer
        client, proto = address, hop_proto
        if not _trusted(address, proxies):
            break
    if client is None:
        return fallback
    return Client(str(client), proto == "https")
