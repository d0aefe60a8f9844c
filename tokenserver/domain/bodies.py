"""JSON bodies declared as data. A `Body` is written once, and from it come:

- `parse`: a request body checked field by field, each problem a BadRequest that names the
  body and the field (`robot: unknown field 'x'`, `robot: 'duration' must be an integer`);
- `shape`: a response body, in the declared key order; a key the declaration lacks, or one
  it declares but is not given, is a programming error;
- `schema`: its JSON Schema, for the OpenAPI document.

A body is read in one of two directions. As a request: null is the same as absent (Harbor's
Go server reads null as the zero value, and clients send it), a required field must be there
and not null, unknown fields are refused. As a response: every declared field is there, in
order, except `omit_empty` ones when empty.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from tokenserver.errors import BadRequest

# The JSON types a field may have besides a nested body or an array: Python type, JSON
# Schema type, how a message names it.
_SCALARS: dict[type, tuple[str, str]] = {
    str: ("string", "a string"),
    int: ("integer", "an integer"),
    bool: ("boolean", "a boolean"),
    dict: ("object", "an object"),  # any object: its content is not declared
}

Ref = Callable[["Body", bool], dict[str, Any]]
"""How a schema refers to a nested body: `ref(body, request)` gives `{"$ref": ...}` (or the
body's schema inline)."""


@dataclass(frozen=True, slots=True)
class Array:
    """A JSON array of `item`s: a scalar type or a body."""

    item: type | Body


def _is(value: Any, kind: type | Body | Array) -> bool:
    if isinstance(kind, Body):
        return isinstance(value, dict)
    if isinstance(kind, Array):
        return isinstance(value, list)
    # NOTE: bool is a subclass of int in Python; JSON true is not an integer.
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


def _noun(kind: type | Body | Array) -> str:
    if isinstance(kind, Body):
        return "an object"
    if isinstance(kind, Array):
        return "an array"
    return _SCALARS[kind][1]


def _or(values: Iterable[Any]) -> str:
    """`"a" or "b"`, `1, 2 or 3`: the values as JSON."""
    texts = [json.dumps(v) for v in values]
    return texts[0] if len(texts) == 1 else f"{', '.join(texts[:-1])} or {texts[-1]}"


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a body.

    `kind` is `str`, `int`, `bool`, `dict` (any object), a nested `Body` or an `Array`.
    `required`: a request must carry it (not null). A response carries every field.
    `nullable`: a response may hold null here (in a request, null is always absence).
    `choices`: the closed set of values (an Enum class: parsed into its members); a request
    holding another value is refused.
    `rules`: JSON Schema keywords the document states and the domain enforces, with its own
    messages (lengths, bounds, a closed set the service refuses and audits): `parse` leaves
    them alone.
    `ignored`: a request may carry it with any value and it is dropped (read-only fields that
    clients send back, Harbor fields tokenserver does not implement); never in a response.
    `omit_empty`: a response leaves it out when empty (null, false, 0, "", [] or {}), as
    Harbor's Go `omitempty` does.
    """

    name: str
    kind: type | Body | Array
    required: bool = False
    nullable: bool = False
    choices: type[Enum] | tuple[str | int, ...] = ()
    description: str = ""
    format: str = ""
    rules: Mapping[str, Any] = field(default_factory=dict)
    ignored: bool = False
    omit_empty: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.kind, Body | Array) and self.kind not in _SCALARS:
            raise TypeError(f"field {self.name!r}: {self.kind!r} is not a JSON type")

    @property
    def values(self) -> tuple[str | int, ...]:
        """The values of `choices`."""
        if isinstance(self.choices, tuple):
            return self.choices
        return tuple(member.value for member in self.choices)

    def _parse(self, value: Any, where: str) -> Any:
        """`value` (already of the field's JSON type) checked further and converted."""
        kind = self.kind
        if isinstance(kind, Body):
            return kind.parse(value)
        if isinstance(kind, Array):
            item = kind.item
            if isinstance(item, Body):
                parsed = []
                for element in value:
                    if not isinstance(element, dict):
                        raise BadRequest(f"{where}: each {item.where} must be an object")
                    parsed.append(item.parse(element))
                return parsed
            for element in value:
                if not _is(element, item):
                    raise BadRequest(f"{where}: each item of {self.name!r} must be {_noun(item)}")
            return list(value)
        if self.choices:
            values = self.values
            if value not in values:
                raise BadRequest(f"{where}: {self.name!r} must be {_or(values)}")
            if not isinstance(self.choices, tuple):
                return self.choices(value)
        return value

    def schema(
        self, *, request: bool, ref: Ref | None = None, enforced_only: bool = False
    ) -> dict[str, Any]:
        """The field's JSON Schema (see Body.schema)."""
        if enforced_only and self.ignored:
            return {}
        if ref is None:
            ref = _inline(enforced_only)
        kind = self.kind
        schema: dict[str, Any]
        if isinstance(kind, Body):
            schema = ref(kind, request)
        elif isinstance(kind, Array):
            item = kind.item
            items = ref(item, request) if isinstance(item, Body) else {"type": _SCALARS[item][0]}
            schema = {"type": "array", "items": items}
        else:
            schema = {"type": _SCALARS[kind][0]}
        if self.format:
            schema["format"] = self.format
        if self.choices:
            schema["enum"] = list(self.values)
        if not enforced_only:
            schema.update(self.rules)
        if self.nullable or (request and not self.required):
            if "type" not in schema:  # a $ref
                schema = {"anyOf": [schema, {"type": "null"}]}
            else:
                schema["type"] = [schema["type"], "null"]
                if "enum" in schema:
                    schema["enum"] = [*schema["enum"], None]
        if self.description:
            schema["description"] = self.description
        return schema


class Body:
    """A JSON object's declaration: its fields in order.

    `name` is its OpenAPI component name (None: written inline where it is used);
    `request_name` the component name of its request form when that differs from its
    response form (a field that is optional in a request is always in a response).
    `where` names it in error messages. `unsupported` maps fields Harbor defines but
    tokenserver refuses to the reason given.
    """

    def __init__(
        self,
        name: str | None,
        *fields: Field,
        where: str = "",
        unsupported: Mapping[str, str] | None = None,
        request_name: str | None = None,
    ) -> None:
        self.name = name
        self.request_name = request_name
        self.where = where
        self.fields = fields
        self.unsupported = dict(unsupported or {})
        self._by_name = {f.name: f for f in fields}
        if len(self._by_name) != len(fields) or self._by_name.keys() & self.unsupported:
            raise ValueError(f"body {name or where}: a field is declared twice")
        # Ignored fields are a request's business only: never checked, never shaped.
        self._kept = [f for f in fields if not f.ignored]
        self._kept_names = frozenset(f.name for f in self._kept)
        self._required = [f for f in self._kept if f.required]

    def __repr__(self) -> str:
        return f"Body({self.name or self.where!r})"

    def field(self, name: str) -> Field:
        return self._by_name[name]

    def derive(
        self,
        name: str | None,
        *,
        required: Iterable[str] = (),
        ignored: Iterable[str] = (),
        without: Iterable[str] = (),
        replacing: Iterable[Field] = (),
        also: Iterable[Field] = (),
        where: str | None = None,
    ) -> Body:
        """Another body from this one's fields: some made required, some ignored (a
        response's read-only fields in a request that echoes it), some left out, some
        replaced in place by another declaration, others added at the end."""
        required, ignored, without = set(required), set(ignored), set(without)
        replaced = {f.name: f for f in replacing}
        unknown = (required | ignored | without | replaced.keys()) - self._by_name.keys()
        if unknown:
            raise ValueError(f"body {self.name or self.where}: no fields {sorted(unknown)}")

        def derived(f: Field) -> Field:
            f = replaced.get(f.name, f)
            if f.name in required:
                return replace(f, required=True)
            if f.name in ignored:
                return replace(f, required=False, ignored=True)
            return f

        fields = [derived(f) for f in self.fields if f.name not in without]
        return Body(
            name,
            *fields,
            *also,
            where=self.where if where is None else where,
            unsupported=self.unsupported,
        )

    def parse(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The fields of request body `data` that are present and not null, checked and
        converted (nested bodies parsed, choices into their Enum). Raises BadRequest, for
        the first problem in this order: an unknown field, a missing one, one of the wrong
        type, an unsupported one, then each field's own checks in declared order."""
        where = self.where
        for key in data:
            if key not in self._by_name and key not in self.unsupported:
                raise BadRequest(f"{where}: unknown field {key!r}")
        for f in self._required:
            if data.get(f.name) is None:
                raise BadRequest(f"{where}: missing field {f.name!r}")
        present = [(f, data[f.name]) for f in self._kept if data.get(f.name) is not None]
        for f, value in present:
            if not _is(value, f.kind):
                raise BadRequest(f"{where}: {f.name!r} must be {_noun(f.kind)}")
        for key, reason in self.unsupported.items():
            if data.get(key) is not None:
                raise BadRequest(f"{where}: {reason}")
        return {f.name: f._parse(value, where) for f, value in present}

    def shape(self, **values: Any) -> dict[str, Any]:
        """The response body holding `values`, in declared order. Every declared field must
        be given, and nothing else: a mismatch is a programming error (ValueError)."""
        if values.keys() != self._kept_names:
            extra = sorted(values.keys() - self._kept_names)
            missing = [f.name for f in self._kept if f.name not in values]
            raise ValueError(f"{self!r}: undeclared fields {extra}, fields not given {missing}")
        return {
            f.name: values[f.name] for f in self._kept if not (f.omit_empty and not values[f.name])
        }

    def schema(
        self, *, request: bool, ref: Ref | None = None, enforced_only: bool = False
    ) -> dict[str, Any]:
        """The body's JSON Schema as a request (`request`) or as a response; nested bodies
        through `ref` (the document's components), or inline.

        With `enforced_only` (and inline), only what `parse` enforces: without `rules` (the
        domain's) and with ignored fields unconstrained; tests compare it with `parse`."""
        fields = self.fields if request else self._kept
        if request:
            required = [f.name for f in self._required]
        else:
            required = [f.name for f in fields if not f.omit_empty]
        schema: dict[str, Any] = {"type": "object"}
        if required:
            schema["required"] = required
        schema["properties"] = {
            f.name: f.schema(request=request, ref=ref, enforced_only=enforced_only) for f in fields
        }
        if request:  # refused unless null, which is absence
            for key, reason in self.unsupported.items():
                schema["properties"][key] = {"type": "null", "description": reason}
        schema["additionalProperties"] = False
        return schema

    def component_name(self, request: bool) -> str | None:
        return self.request_name if request and self.request_name else self.name


def _inline(enforced_only: bool) -> Ref:
    def ref(body: Body, request: bool) -> dict[str, Any]:
        return body.schema(request=request, ref=ref, enforced_only=enforced_only)

    return ref
