"""Token scopes: `type[(class)]:name:action[,action...]`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from tokenserver.domain.memo import ENTRY_BYTES, STR_BYTES, Memo
from tokenserver.domain.names import is_repository_name
from tokenserver.errors import BadRequest

MAX_SCOPES = 100
MAX_SCOPE_LENGTH = 512

_TYPE = re.compile(r"([a-z][a-z0-9_-]*)(?:\(([a-z0-9_-]+)\))?")
_ACTION = re.compile(r"\*|[a-z][a-z0-9_-]*")


@dataclass(frozen=True, slots=True)
class Scope:
    """One requested or granted resource. `actions` keeps the caller's order, without repeats."""

    type: str
    name: str
    actions: tuple[str, ...]


def parse_scope(text: str) -> Scope:
    """Parse one scope; raise BadRequest if it is malformed.

    The type runs to the first `:`, the actions follow the last `:`, and the name is everything
    between, so names may hold `host:port`. A resource class (`repository(plugin)`) is dropped.
    """
    if len(text) > MAX_SCOPE_LENGTH:
        raise BadRequest(f"scope longer than {MAX_SCOPE_LENGTH} characters")
    type_part, sep1, rest = text.partition(":")
    name, sep2, action_part = rest.rpartition(":")
    if not sep1 or not sep2:
        raise BadRequest(f"malformed scope {_shown(text)}: expected type:name:actions")
    type_match = _TYPE.fullmatch(type_part)
    if type_match is None:
        raise BadRequest(f"malformed scope {_shown(text)}: invalid resource type")
    if not is_repository_name(name):
        raise BadRequest(f"malformed scope {_shown(text)}: invalid resource name")
    actions: list[str] = []
    for action in action_part.split(","):
        if not _ACTION.fullmatch(action):
            raise BadRequest(f"malformed scope {_shown(text)}: invalid action")
        if action not in actions:
            actions.append(action)
    return Scope(type_match.group(1), name, tuple(actions))


# What one Scope costs in memory beyond its strings' characters: the object, its actions
# tuple and its str objects (about 300 bytes on CPython 3.11, measured with tracemalloc).
SCOPE_BYTES = 320


def scopes_bytes(scopes: Iterable[Scope]) -> int:
    """About how many bytes `scopes` hold in memory (for memos bounded in bytes)."""
    return sum(SCOPE_BYTES + len(s.type) + len(s.name) + sum(map(len, s.actions)) for s in scopes)


def parse_scopes(values: Iterable[str]) -> list[Scope]:
    """Parse every `scope` parameter; each value may hold several scopes separated by spaces.

    Scopes naming the same resource are merged, so each resource appears once in a token.
    """
    key = tuple(values)
    if sum(len(v) for v in key) > _CACHED_LENGTH:
        return list(_parse_scopes(key))
    found = _PARSED.get(key)
    if found is None:
        found = _parse_scopes(key)  # a malformed request raises and is never remembered
        _PARSED.put(
            key,
            found,
            ENTRY_BYTES + sum(STR_BYTES + len(v) for v in key) + scopes_bytes(found),
        )
    return list(found)


# CI fleets ask for the same few scopes over and over. Only short requests are remembered,
# within a byte budget: a short request can still hold a hundred tiny scopes.
_CACHED_LENGTH = 1024
_PARSED: Memo[tuple[str, ...], tuple[Scope, ...]] = Memo(
    max_entries=1024, max_bytes=2 << 20, max_entry_bytes=16 << 10
)


def _parse_scopes(values: tuple[str, ...]) -> tuple[Scope, ...]:
    merged: dict[tuple[str, str], list[str]] = {}
    count = 0
    for value in values:
        for text in value.split(" "):
            if not text:
                continue
            count += 1
            if count > MAX_SCOPES:
                raise BadRequest(f"too many scopes: at most {MAX_SCOPES} per request")
            scope = parse_scope(text)
            actions = merged.setdefault((scope.type, scope.name), [])
            actions.extend(a for a in scope.actions if a not in actions)
    return tuple(Scope(t, n, tuple(a)) for (t, n), a in merged.items())


def format_scope(scope: Scope) -> str:
    return f"{scope.type}:{scope.name}:{','.join(scope.actions)}"


def _shown(text: str) -> str:
    """A scope quoted for an error message, cut short so errors stay small."""
    return repr(text if len(text) <= 80 else text[:80] + "...")
