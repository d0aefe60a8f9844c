"""Hypothesis strategies for input no database can hold, shared by the HTTP property tests
and schemathesis: lone surrogates and integers past 64 bits, put anywhere in a JSON body."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

_surrogate = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"])


def _lone(text: str) -> bool:
    """Whether `text` still holds a lone surrogate once sent as JSON: a high surrogate
    followed by a low one is a pair, which JSON decoders join into one valid character."""
    return any(0xD800 <= ord(c) <= 0xDFFF for c in json.loads(json.dumps(text)))


# A lone surrogate alone or inside ordinary text, or an integer past 64 bits either way.
HOSTILE: st.SearchStrategy[Any] = st.one_of(
    st.text(_surrogate, min_size=1, max_size=3).filter(_lone),
    st.tuples(st.text(max_size=5), _surrogate, st.text(max_size=5)).map("".join),
    st.integers(min_value=2**63).map(lambda n: n if n % 2 else -n - 1),  # past int64 both ways
)

Path = tuple[str | int, ...]


def _places(value: Any, path: Path = ()) -> list[tuple[Path, bool]]:
    """Every place in `value` a hostile value can go: (path, is a key). The root is a place
    too, where a new key can be added."""
    found: list[tuple[Path, bool]] = []
    if isinstance(value, dict):
        found.append((path, True))
        for key, item in value.items():
            found.extend(_places(item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_places(item, (*path, index)))
    else:
        found.append((path, False))
    return found


def _replaced(value: Any, path: Path, new: Any, as_key: bool) -> Any:
    if not path:
        if as_key:
            return {**value, str(new): "x"} if isinstance(value, dict) else value
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {k: _replaced(v, rest, new, as_key) if k == head else v for k, v in value.items()}
    if isinstance(value, list):
        return [_replaced(v, rest, new, as_key) if i == head else v for i, v in enumerate(value)]
    return value


def with_hostile_value(body: Any) -> st.SearchStrategy[Any]:
    """`body` with one of its values (at any depth) replaced by a hostile one, or a hostile
    key added to one of its objects."""
    places = _places(body)
    return st.tuples(st.sampled_from(places), HOSTILE).map(
        lambda chosen: _replaced(body, chosen[0][0], chosen[1], chosen[0][1])
    )


def holds_unstorable(value: Any) -> bool:
    """Whether `value`, once sent as JSON, still holds what no database can: a lone surrogate
    (in a key or a value) or an integer past 64 bits. A hostile integer made a key is plain
    text: refused where a body's keys are fixed, a valid name in a free-form map (a rule's
    claims)."""
    pending = [json.loads(json.dumps(value))]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if any(0xD800 <= ord(c) <= 0xDFFF for c in item):
                return True
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if not -(2**63) <= item < 2**63:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False
