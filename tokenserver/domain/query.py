"""Harbor's list query language, `q=` and `sort=`, read as Harbor reads it (its src/lib/q):

    q=k1=v1,k2=~v2,k3=[min~max],k4={v1 v2 v3},k5=(v1 v2 v3)        sort=k1,-k2

`k=v` exact, `k=~v` fuzzy (contains, ASCII letters in any case), `k=[min~max]` a range (one
side may be empty), `k={...}` any of the values, `k=(...)` all of them; terms joined by commas.
`sort` orders by keys, a leading `-` descending.

Reading a query has two steps. `parse_q` is Harbor's parser: the syntax, its error messages,
its quirks (the whole `q` is URL-unescaped a second time, a key given twice keeps its last
term). `Keys.query` then checks the terms against the keys one list accepts and types the
values. Where Harbor ignores a key it does not know (an unfiltered answer a client cannot
tell from a match), tokenserver refuses it with a 400 naming the keys it accepts; an unknown
sort key is skipped, as Harbor does (its own tests sort audit logs by a key they lack).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum, StrEnum
from typing import Generic, TypeVar

from tokenserver.domain.text import printable, truncate
from tokenserver.errors import BadRequest

T = TypeVar("T")

SYNTAX_ERROR = 'the query string must contain "=" and the key/value cannot be empty'
_FUZZY_ERROR = 'fuzzy match value must start with "~" and contain at least 1 other characters'
_RANGE_ERROR = 'range must start with "[", end with "]" and contains only one "~"'
_RANGE_EMPTY = "min and max at least one should be set in range"
_LIST_ERRORS = {
    "{": 'or list must start with "{" and end with "}"',
    "(": 'and list must start with "(" and end with ")"',
}
# How much of a caller's value an error message repeats.
_SHOWN = 200

MIN_INT64, MAX_INT64 = -(2**63), 2**63 - 1
_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_HEX = frozenset(b"0123456789abcdefABCDEF")


class Op(StrEnum):
    EQ = "exact match"
    CONTAINS = "fuzzy match"
    RANGE = "range"
    ANY = "any-of list"
    ALL = "all-of list"


@dataclass(frozen=True, slots=True)
class Term:
    """One parsed term: its operator and its values as text. RANGE holds (min, max), either
    None when open; EQ and CONTAINS hold one value; lists hold theirs."""

    op: Op
    values: tuple[str | None, ...]
    written: str  # the value as the caller wrote it, for messages


def shown(text: str) -> str:
    """A caller's text as an error message repeats it: printable and bounded."""
    return truncate(printable(text), _SHOWN)


def _value_error(value: str, why: str) -> BadRequest:
    return BadRequest(f"invalid query string value: {shown(value)}: {why}")


def query_unescape(text: str) -> str:
    """Go's `url.QueryUnescape`, which Harbor applies to `q` after the URL's own decoding
    (so that clients that encode `q` twice work): `%XX` is a byte, `+` a space. Text with a
    malformed escape comes back unchanged (Harbor then uses it as it is). Bytes that are
    not UTF-8 become U+FFFD."""
    raw = text.encode("utf-8", "surrogatepass")
    for i, byte in enumerate(raw):
        if byte == 0x25 and (i + 2 >= len(raw) or not {raw[i + 1], raw[i + 2]} <= _HEX):
            return text
    out = bytearray()
    i = 0
    while i < len(raw):
        byte = raw[i]
        if byte == 0x25:
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
            continue
        out.append(0x20 if byte == 0x2B else byte)
        i += 1
    return out.decode("utf-8", "replace")


def _element(text: str) -> str:
    """A range bound or list element as Harbor's parseValue leaves it as text: surrounding
    space and quotes removed."""
    return text.strip().strip("\"'")


def _term(value: str) -> Term:
    """Harbor's parsePattern: the operator from the first character."""
    first, last = value[0], value[-1]
    if first == "~":
        if len(value) < 2:
            raise _value_error(value, _FUZZY_ERROR)
        return Term(Op.CONTAINS, (value[1:],), value)
    if first == "[":
        if last != "]" or len(value) < 2 or value.count("~") != 1:
            raise _value_error(value, _RANGE_ERROR)
        low, high = (_element(side) for side in value[1:-1].split("~"))
        if not low and not high:
            raise _value_error(value, _RANGE_EMPTY)
        return Term(Op.RANGE, (low or None, high or None), value)
    if first in _LIST_ERRORS:
        if last != {"{": "}", "(": ")"}[first] or len(value) < 2:
            raise _value_error(value, _LIST_ERRORS[first])
        elements = tuple(e for e in (_element(p) for p in value[1:-1].split(" ")) if e)
        return Term(Op.ANY if first == "{" else Op.ALL, elements, value)
    # NOTE: a leading backslash escapes the operator characters: `k=\~x` is exactly "~x".
    return Term(Op.EQ, (value[1:] if first == "\\" else value,), value)


def parse_q(q: str) -> dict[str, Term]:
    """Harbor's `q` as terms by key, in the order given (a key given twice keeps its last
    term). Raises BadRequest with Harbor's messages for malformed terms."""
    terms: dict[str, Term] = {}
    if not q:
        return terms
    for part in query_unescape(q).split(","):
        key, eq, value = part.partition("=")
        if not eq or not key or not value:
            raise BadRequest(SYNTAX_ERROR)
        terms[key] = _term(value)
    return terms


def parse_sort(sort: str) -> list[tuple[str, bool]]:
    """Harbor's `sort`: (key, descending) in order."""
    if not sort:
        return []
    return [(s[1:], True) if s.startswith("-") else (s, False) for s in sort.split(",")]


def snake_case(text: str) -> str:
    """Harbor's snakeCase (src/lib/orm): `ProjectID` -> `project_id`, `OpTime` -> `op_time`.
    Harbor accepts a key whose snake case is a key."""
    out = []
    for i, char in enumerate(text):
        if (
            i > 0
            and char.isupper()
            and ((i + 1 < len(text) and text[i + 1].islower()) or text[i - 1].islower())
        ):
            out.append("_")
        out.append(char.lower())
    return "".join(out)


def fold(text: str) -> str:
    """Text as a fuzzy match compares it: ASCII letters in lower case, everything else as it
    is (SQLite's lower() folds only ASCII; the databases and Python must agree)."""
    if text.isascii():
        return text.lower()
    return "".join(c.lower() if c.isascii() else c for c in text)


# ---- typed values --------------------------------------------------------------------------

Value = str | int | bool


def _int(text: str) -> int:
    if not _INT.fullmatch(text):
        raise ValueError("must be an integer")
    value = int(text)
    if not MIN_INT64 <= value <= MAX_INT64:
        raise ValueError("must fit in 64 bits")
    return value


def _time(text: str) -> int:
    """Unix seconds from Unix seconds or an ISO 8601 time (`2006-01-02T15:04:05`, a space for
    the T, a date alone; UTC unless it names its offset)."""
    if _INT.fullmatch(text):
        return _int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            "must be a time: 2006-01-02T15:04:05 (UTC), 2006-01-02 or Unix seconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int((moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() // 1)


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValueError('must be "true" or "false"')


class Kind(Enum):
    """What a key's values are, and the operators that apply to them."""

    TEXT = (str, frozenset(Op))
    INT = (_int, frozenset(Op) - {Op.CONTAINS})
    TIME = (_time, frozenset(Op) - {Op.CONTAINS})
    BOOL = (_bool, frozenset({Op.EQ, Op.ANY, Op.ALL}))

    def __init__(self, convert: Callable[[str], Value], ops: frozenset[Op]) -> None:
        self.convert = convert
        self.ops = ops


@dataclass(frozen=True, slots=True)
class Key:
    """A key a list accepts: `name` (Harbor's column name, as documented), the other
    spellings Harbor accepts (its Go field name), the kind of its values and, when narrower
    than the kind's, the operators it takes."""

    name: str
    kind: Kind
    aliases: tuple[str, ...] = ()
    ops: frozenset[Op] | None = None
    sortable: bool = True

    @property
    def operators(self) -> frozenset[Op]:
        return self.kind.ops if self.ops is None else self.ops


@dataclass(frozen=True, slots=True)
class Condition:
    """A term checked against its key, with typed values (RANGE: (min, max), None open)."""

    key: Key
    op: Op
    values: tuple[Value | None, ...]


@dataclass(frozen=True, slots=True)
class Order:
    key: Key
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Query:
    """What a list shows: the items meeting every condition, in `order` (empty: the list's
    own order)."""

    conditions: tuple[Condition, ...] = ()
    order: tuple[Order, ...] = ()

    def condition(self, name: str) -> Condition | None:
        """The last condition on key `name`."""
        found = [c for c in self.conditions if c.key.name == name]
        return found[-1] if found else None

    def without(self, name: str) -> Query:
        return replace(self, conditions=tuple(c for c in self.conditions if c.key.name != name))


EVERYTHING = Query()


def _compare(op: Op, values: tuple[Value | None, ...], actual: Value) -> bool:
    if op is Op.EQ:
        return actual == values[0]
    if op is Op.CONTAINS:
        return isinstance(actual, str) and fold(str(values[0])) in fold(actual)
    if op is Op.RANGE:
        low, high = values
        # NOTE: the key's kind makes low, high and actual the same type.
        return (low is None or actual >= low) and (high is None or actual <= high)  # type: ignore[operator]
    if op is Op.ANY:
        return actual in values
    return all(actual == v for v in values)


Actual = Value | None | tuple[Value, ...]
"""A key's value on an item: one value, None (the item has none: no condition holds), or
several forms of it (a condition holds if it holds for one of them)."""


def holds(condition: Condition, actual: Actual) -> bool:
    forms = actual if isinstance(actual, tuple) else (actual,)
    return any(
        form is not None and _compare(condition.op, condition.values, form) for form in forms
    )


class Keys(Generic[T]):
    """The keys one list accepts (`noun` names it in messages), with how to read each on an
    item (`values`, for lists filtered in memory; the audit log is filtered in SQL) and the
    list's order when the query gives none."""

    def __init__(
        self,
        noun: str,
        keys: Iterable[Key],
        values: Mapping[str, Callable[[T], Actual]] | None = None,
        default_order: Iterable[tuple[str, bool]] = (),
    ) -> None:
        self.noun = noun
        self.keys = tuple(keys)
        self.values: Mapping[str, Callable[[T], Actual]] = values or {}
        self._spellings: dict[str, Key] = {}
        for key in self.keys:
            for spelling in (key.name, *key.aliases):
                if self._spellings.setdefault(spelling, key) is not key:
                    raise ValueError(f"{noun}: key {spelling!r} is declared twice")
        if self.values and self.values.keys() != {k.name for k in self.keys}:
            raise ValueError(f"{noun}: a value for each key, and only for them")
        self.default_order = tuple(Order(self._by_name(n), d) for n, d in default_order)

    def key(self, spelling: str) -> Key | None:
        """The key `spelling` names, as Harbor finds it: exactly, or by its snake case."""
        return self._spellings.get(spelling) or self._spellings.get(snake_case(spelling))

    def _condition(self, spelling: str, term: Term) -> Condition:
        key = self.key(spelling)
        if key is None:
            names = ", ".join(k.name for k in self.keys)
            raise BadRequest(
                f"unknown query key {shown(spelling)!r}: the {self.noun} list accepts {names}"
            )
        if term.op not in key.operators:
            raise _value_error(term.written, f"{key.name} takes no {term.op}")
        try:
            values = tuple(None if v is None else key.kind.convert(v) for v in term.values)
        except ValueError as e:
            raise _value_error(term.written, f"{key.name} {e}") from None
        return Condition(key, term.op, values)

    def query(self, q: str = "", sort: str = "", also: Mapping[str, Term] | None = None) -> Query:
        """The query `q` and `sort` ask for, with the terms `also` gives (a list's own
        parameters, such as `?name=`, which replace `q`'s term under the same key, as in
        Harbor). Raises BadRequest: Harbor's for syntax, an unknown key, an operator the
        key does not take, a value of the wrong kind."""
        terms = parse_q(q)
        terms.update(also or {})
        conditions = tuple(self._condition(k, t) for k, t in terms.items())
        order: dict[str, Order] = {}
        for spelling, descending in parse_sort(sort):
            key = self.key(spelling)
            # NOTE: a key again orders nothing more (and SQL limits the terms of ORDER BY).
            if key is not None and key.sortable and key.name not in order:
                order[key.name] = Order(key, descending)
        return Query(conditions, tuple(order.values()) or self.default_order)

    def _by_name(self, name: str) -> Key:
        key = self.key(name)
        assert key is not None, name
        return key

    def matches(self, query: Query, item: T) -> bool:
        return all(holds(c, self.values[c.key.name](item)) for c in query.conditions)

    def select(self, query: Query, items: Iterable[T]) -> list[T]:
        """The items meeting the query, in its order (ties keep the order given)."""
        selected = [item for item in items if self.matches(query, item)]
        for order in reversed(query.order):
            read = self.values[order.key.name]

            def sort_key(item: T, read: Callable[[T], Actual] = read) -> tuple[bool, Actual]:
                actual = read(item)
                first = actual[0] if isinstance(actual, tuple) else actual
                # None first ascending (last descending), as SQLite orders NULL.
                return (first is not None, first)

            selected.sort(key=sort_key, reverse=order.descending)
        return selected


def fuzzy(value: str) -> Term:
    """The term of a list's own fuzzy parameter (`?name=x` is `q=name=~x`)."""
    return Term(Op.CONTAINS, (value,), "~" + value)


def exact(value: str) -> Term:
    return Term(Op.EQ, (value,), value)
