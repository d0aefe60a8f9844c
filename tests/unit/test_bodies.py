"""Body declarations (domain/bodies.py, domain/harbor_schema.py): a request body parses what
its documented schema accepts and refuses what it refuses, with the messages clients see; a
response is shaped in declared order and cannot carry an undeclared field."""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, validators

from tests.http.openapi_check import DOC
from tokenserver.domain import harbor_schema
from tokenserver.domain.bodies import Array, Body, Field
from tokenserver.domain.harbor_schema import (
    MEMBER_CREATE,
    PASSWORD_CHANGE,
    PROJECT,
    PROJECT_CREATE,
    PROJECT_UPDATE,
    ROBOT,
    ROBOT_CREATE,
    ROBOT_UPDATE,
    ROLE_UPDATE,
    SECRET_REFRESH,
)
from tokenserver.domain.models import MAX_DURATION_DAYS, NEVER, Level
from tokenserver.domain.permissions import Effect
from tokenserver.domain.roles import Role
from tokenserver.errors import BadRequest

DECLARED = [b for b in vars(harbor_schema).values() if isinstance(b, Body)]
# The bodies requests carry (those that name themselves in messages), by component name.
REQUESTS = {str(b.component_name(True)): b for b in DECLARED if b.where}


def robot(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "ci",
        "level": "project",
        "duration": -1,
        "permissions": [
            {"kind": "project", "namespace": "p",
             "access": [{"resource": "repository", "action": "pull"}]}
        ],
    }  # fmt: skip
    body.update(changes)
    return body


def refusal(body: Body, data: dict[str, Any]) -> str:
    with pytest.raises(BadRequest) as caught:
        body.parse(data)
    return caught.value.message


# ---- parsing: the messages clients see -------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "data", "message"),
    [
        (ROBOT_CREATE, robot(extra=1), "robot: unknown field 'extra'"),
        (ROBOT_CREATE, robot(duration="7"), "robot: 'duration' must be an integer"),
        (ROBOT_CREATE, robot(duration=True), "robot: 'duration' must be an integer"),
        (ROBOT_CREATE, robot(duration=7.0), "robot: 'duration' must be an integer"),
        (ROBOT_CREATE, robot(disable="no"), "robot: 'disable' must be a boolean"),
        (ROBOT_CREATE, robot(name=5), "robot: 'name' must be a string"),
        (ROBOT_CREATE, robot(permissions=None), "robot: missing field 'permissions'"),
        (ROBOT_CREATE, robot(permissions={}), "robot: 'permissions' must be an array"),
        (ROBOT_CREATE, robot(permissions=[1]), "robot: each permission must be an object"),
        (ROBOT_CREATE, robot(level="galaxy"), "robot: 'level' must be \"project\" or \"system\""),
        (ROBOT_CREATE, robot(permissions=[{"namespace": "p", "access": []}]),
         "permission: missing field 'kind'"),
        (ROBOT_CREATE, robot(permissions=[{"kind": "project", "namespace": "p", "access": [[]]}]),
         "permission: each access must be an object"),
        (ROBOT_CREATE, robot(permissions=[{"kind": "project", "namespace": "p", "access": [
            {"resource": "repository", "action": "pull", "effect": "maybe"}]}]),
         "access: 'effect' must be \"allow\" or \"deny\""),
        (ROBOT_CREATE, robot(permissions=[{"kind": "project", "namespace": "p", "access": [
            {"resource": "repository", "action": "pull", "colour": "red"}]}]),
         "access: unknown field 'colour'"),
        # Read-only fields are PUT's, not POST's.
        (ROBOT_CREATE, robot(id=1), "robot: unknown field 'id'"),
        (ROBOT_UPDATE, robot(secret=5, colour=1), "robot: unknown field 'colour'"),
        (PROJECT_CREATE, {}, "project: missing field 'project_name'"),
        (PROJECT_CREATE, {"project_name": 5}, "project: 'project_name' must be a string"),
        (PROJECT_CREATE, {"project_name": "x", "public": "yes"},
         "project: 'public' must be a boolean"),
        (PROJECT_CREATE, {"project_name": "x", "surprise": 1}, "project: unknown field 'surprise'"),
        (PROJECT_UPDATE, {"metadata": {"colour": "red"}}, "metadata: unknown field 'colour'"),
        (PROJECT_UPDATE, {"metadata": {"public": True}}, "metadata: 'public' must be a string"),
        (MEMBER_CREATE, {"role_id": 2, "member_group": {"id": 1}},
         "member: groups are not supported; use member_user"),
        (MEMBER_CREATE, {"role_id": 2, "member_user": {"user_id": "1"}},
         "member_user: 'user_id' must be an integer"),
        (MEMBER_CREATE, {"role_id": 9}, "member: 'role_id' must be 1, 2, 3, 4 or 5"),
        (ROLE_UPDATE, {"role_id": "2"}, "role: 'role_id' must be an integer"),
        (PASSWORD_CHANGE, {"old_password": "x"}, "password: missing field 'new_password'"),
        (SECRET_REFRESH, {"restart_expiry": "yes"},
         "robot secret: 'restart_expiry' must be a boolean"),
    ],
)  # fmt: skip
def test_a_refused_body_is_told_what_is_wrong(
    body: Body, data: dict[str, Any], message: str
) -> None:
    assert refusal(body, data) == message


def test_the_first_problem_is_told_unknown_then_missing_then_type() -> None:
    data = robot(duration="7", extra=1, permissions=None)
    assert refusal(ROBOT_CREATE, data) == "robot: unknown field 'extra'"
    del data["extra"]
    assert refusal(ROBOT_CREATE, data) == "robot: missing field 'permissions'"


def test_a_parsed_body_holds_the_fields_present_converted() -> None:
    data = robot(description=None, disable=False, secret="S3cretSecret")
    data["permissions"][0]["access"].append({"resource": "repository", "action": "push",
                                             "effect": "deny"})  # fmt: skip
    parsed = ROBOT_CREATE.parse(data)
    assert parsed == {
        "name": "ci",
        "duration": -1,
        "level": Level.PROJECT,
        "disable": False,
        "permissions": [
            {"kind": "project", "namespace": "p", "access": [
                {"resource": "repository", "action": "pull"},
                {"resource": "repository", "action": "push", "effect": Effect.DENY},
            ]}
        ],
        "secret": "S3cretSecret",
    }  # fmt: skip
    assert "description" not in parsed  # null is absence
    assert type(parsed["level"]) is Level
    assert type(MEMBER_CREATE.parse({"role_id": 4})["role_id"]) is Role


def test_put_takes_the_robot_as_get_shows_it_and_drops_its_read_only_fields() -> None:
    shown = robot(id="any", editable=None, expires_at=[], secret={}, legacy=1,
                  creation_time=0, update_time=0, last_used_at=None)  # fmt: skip
    assert ROBOT_UPDATE.parse(shown) == ROBOT_UPDATE.parse(robot())
    assert "id" not in ROBOT_UPDATE.parse(shown)


def test_a_project_kind_outside_the_set_is_left_to_the_robot_service() -> None:
    # The service refuses it, and audits the refusal, with the rest of the robot.
    parsed = ROBOT_CREATE.parse(robot(permissions=[{"kind": "galaxy", "namespace": "p",
                                                    "access": []}]))  # fmt: skip
    assert parsed["permissions"][0]["kind"] == "galaxy"


def test_an_array_of_scalars_is_checked_item_by_item() -> None:
    body = Body("T", Field("ids", Array(int)), where="t")
    assert body.parse({"ids": [1, 2]}) == {"ids": [1, 2]}
    assert refusal(body, {"ids": [1, True]}) == "t: each item of 'ids' must be an integer"


# ---- shaping ---------------------------------------------------------------------------------


def test_a_response_is_shaped_in_declared_order() -> None:
    body = Body("T", Field("b", int), Field("a", str), Field("c", bool, nullable=True))
    shaped = body.shape(c=None, a="x", b=1)
    assert list(shaped) == ["b", "a", "c"]
    assert shaped == {"b": 1, "a": "x", "c": None}


@pytest.mark.parametrize(
    "values",
    [
        {"b": 1, "a": "x", "c": None, "d": 1},  # undeclared
        {"b": 1, "a": "x"},  # declared, not given
    ],
)
def test_a_response_cannot_drift_from_its_declaration(values: dict[str, Any]) -> None:
    body = Body("T", Field("b", int), Field("a", str), Field("c", bool, nullable=True))
    with pytest.raises(ValueError, match="T"):
        body.shape(**values)


def test_answers_keep_the_key_order_clients_saw() -> None:
    assert [f.name for f in ROBOT.fields] == [
        "id",
        "name",
        "description",
        "expires_at",
        "duration",
        "level",
        "disable",
        "editable",
        "legacy",
        "creation_time",
        "update_time",
        "permissions",
        "last_used_at",
        "secret_login",
        "token_lifetime",
        "effective_token_lifetime",
        "previous_secret_expires_at",  # new fields come last
    ]
    assert [f.name for f in PROJECT.fields] == [
        "project_id", "name", "owner_id", "owner_name", "registry_id", "deleted", "togglable",
        "repo_count", "current_user_role_id", "current_user_role_ids", "metadata",
        "creation_time", "update_time",
    ]  # fmt: skip


@pytest.mark.parametrize("empty", [None, False, 0, "", [], {}])
def test_omit_empty_leaves_out_an_empty_value_as_go_does(empty: Any) -> None:
    body = Body("T", Field("a", str), Field("b", int, omit_empty=True))
    assert body.shape(a="x", b=empty) == {"a": "x"}
    assert body.shape(a="x", b=3) == {"a": "x", "b": 3}
    schema = body.schema(request=False)
    assert schema["required"] == ["a"]


def test_a_read_only_field_of_a_request_is_never_shaped() -> None:
    with pytest.raises(ValueError, match="undeclared"):
        ROBOT_UPDATE.shape(**{f.name: 1 for f in ROBOT_UPDATE.fields})


def test_a_declaration_with_a_field_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        Body("T", Field("a", str), Field("a", int))
    with pytest.raises(ValueError, match="twice"):
        Body("T", Field("a", str), unsupported={"a": "no"})
    with pytest.raises(TypeError, match="not a JSON type"):
        Field("a", float)


# ---- the document ----------------------------------------------------------------------------


def _objects(schema: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(schema, dict):
        if "properties" in schema:
            found.append(schema)
        for value in schema.values():
            found.extend(_objects(value))
    elif isinstance(schema, list):
        for value in schema:
            found.extend(_objects(value))
    return found


def test_every_documented_object_refuses_fields_it_does_not_declare() -> None:
    objects = _objects(DOC)
    assert len(objects) > 20
    for schema in objects:
        assert schema["additionalProperties"] is False, schema


def test_a_response_field_is_required_unless_harbor_omits_it_and_requests_say_theirs() -> None:
    schemas = DOC["components"]["schemas"]
    assert schemas["Robot"]["required"] == [f.name for f in ROBOT.fields if not f.omit_empty]
    # What Harbor leaves out when empty is never required (issue 16 item 3).
    assert {"description", "permissions"}.isdisjoint(schemas["Robot"]["required"])
    assert {"email", "realname", "comment"}.isdisjoint(schemas["UserResp"]["required"])
    assert "secret" not in schemas["RobotSec"].get("required", [])
    assert schemas["RobotCreate"]["required"] == ["name", "duration", "level", "permissions"]
    assert schemas["ProjectReq"]["required"] == ["project_name"]
    assert "required" not in schemas["ProjectUpdate"]
    # Harbor keeps the robot's duration when a PUT has none.
    assert schemas["RobotUpdate"]["required"] == ["name", "level", "permissions"]
    assert schemas["Robot"]["properties"]["level"]["enum"] == ["project", "system"]
    assert schemas["RobotPermissionReq"]["properties"]["kind"]["enum"] == ["project", "system"]
    assert schemas["AccessReq"]["properties"]["effect"]["enum"] == ["allow", "deny", None]
    assert schemas["ProjectMember"]["properties"]["role_id"]["enum"] == [1, 2, 3, 4, 5]


def test_a_duration_is_bounded_when_a_robot_is_created() -> None:
    # A robot stored before durations were bounded still shows its own, and a PUT may send
    # it back unchanged (tests/http/test_robot_expiry.py).
    schemas = DOC["components"]["schemas"]
    duration = schemas["RobotCreate"]["properties"]["duration"]
    assert (duration["minimum"], duration["maximum"]) == (NEVER, MAX_DURATION_DAYS)
    assert "maximum" not in schemas["RobotUpdate"]["properties"]["duration"]
    assert "maximum" not in schemas["Robot"]["properties"]["duration"]


def test_every_request_body_in_the_document_is_a_declaration_tested_here() -> None:
    documented = {
        op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        for item in DOC["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "requestBody" in op
    }
    # ProjectMetadata is both: in a project body, and the body of /metadatas.
    nested = {"AccessReq", "RobotPermissionReq", "FederationRuleReq", "WebhookTargetObjectReq"}
    assert documented == set(REQUESTS) - nested
    assert nested <= set(DOC["components"]["schemas"])


# ---- parse and schema agree, over generated JSON ----------------------------------------------

# NOTE: JSON Schema counts 1.0 as an integer; tokenserver, like Harbor's Go server, does not.
_Validator = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, v: isinstance(v, int) and not isinstance(v, bool)
    ),
)

_SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 7), st.sampled_from([1.0, 2.5]), st.text(max_size=3)
)
ANY_JSON = st.recursive(
    _SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=3),
    max_leaves=6,
)  # fmt: skip
_ABSENT = object()


def _value(kind: Any, values: tuple[Any, ...], valid: bool) -> st.SearchStrategy[Any]:
    """A value of `kind`: a valid one, or one near it (what a careless client might send)."""
    if isinstance(kind, Body):
        return _valid(kind) if valid else _near(kind)
    if isinstance(kind, Array):
        item = _value(kind.item, (), valid)
        return st.lists(item if valid else st.one_of(item, ANY_JSON), max_size=3)
    typed: dict[type, st.SearchStrategy[Any]] = {
        str: st.text(max_size=3),
        int: st.integers(-3, 7),
        bool: st.booleans(),
        dict: st.dictionaries(st.text(max_size=2), ANY_JSON, max_size=2),
    }
    if values:
        return st.sampled_from(values) if valid else st.one_of(st.sampled_from(values), typed[kind])
    return typed[kind]


def _without_absent(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not _ABSENT}


# Cached: a strategy built for each example, and validated again, was half the test's time.
@cache
def _valid(body: Body) -> st.SearchStrategy[dict[str, Any]]:
    """Objects `body` declares valid: its required fields, some of the others (or null)."""
    fields = {
        f.name: _value(f.kind, f.values, True)
        if f.required
        else st.one_of(st.just(_ABSENT), st.none(), _value(f.kind, f.values, True))
        for f in body.fields
    }
    return st.fixed_dictionaries(fields).map(_without_absent)


@cache
def _near(body: Body) -> st.SearchStrategy[dict[str, Any]]:
    """Objects valid or near `body`'s declaration: each field absent, null, of its type or
    anything; sometimes a field it does not declare, or one it refuses."""
    fields = {
        f.name: st.one_of(st.just(_ABSENT), st.none(), _value(f.kind, f.values, False), ANY_JSON)
        for f in body.fields
    }
    extra: st.SearchStrategy[dict[str, Any]] = st.dictionaries(
        st.sampled_from(["extra", *body.unsupported]), ANY_JSON, max_size=1
    ) | st.just({})
    noisy = st.tuples(st.fixed_dictionaries(fields), extra).map(
        lambda both: _without_absent(both[0]) | both[1]
    )
    return st.one_of(_valid(body), noisy)


@cache
def _validator(name: str) -> Any:
    return _Validator(REQUESTS[name].schema(request=True, enforced_only=True))


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(REQUESTS)), data=st.data())
def test_a_request_body_parses_exactly_what_its_schema_accepts(name: str, data: Any) -> None:
    """`enforced_only` leaves out what the domain checks with its own messages (lengths, the
    permission kind) and the types of the fields a request may carry but are ignored."""
    body = REQUESTS[name]
    validator = _validator(name)
    value = data.draw(_near(body))
    try:
        body.parse(value)
    except BadRequest as e:
        assert not validator.is_valid(value), f"parse refused ({e.message}) what the schema accepts"
    else:
        errors = [e.message for e in validator.iter_errors(value)]
        assert not errors, f"parse accepted what the schema refuses: {errors}"


class _Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


def test_the_schema_of_a_field_follows_its_declaration() -> None:
    f = Field("c", str, choices=_Colour, description="a colour", rules={"maxLength": 4})

    def ref(body: Body, request: bool) -> dict[str, Any]:
        return {"$ref": body.name}

    assert f.schema(request=False, ref=ref) == {
        "type": "string", "enum": ["red", "blue"], "maxLength": 4, "description": "a colour"
    }  # fmt: skip
    # In a request an optional field may be null (absence); the domain's rules are left out.
    assert f.schema(request=True, ref=ref, enforced_only=True) == {
        "type": ["string", "null"], "enum": ["red", "blue", None], "description": "a colour"
    }  # fmt: skip
    nested = Field("n", Body("N", Field("x", int)))
    assert nested.schema(request=True, ref=ref) == {"anyOf": [{"$ref": "N"}, {"type": "null"}]}
    assert replace(nested, required=True).schema(request=True, ref=ref) == {"$ref": "N"}
    assert Field("t", str, format="date-time", nullable=True).schema(request=False, ref=ref) == {
        "type": ["string", "null"], "format": "date-time"
    }  # fmt: skip
    assert Field("i", str, ignored=True).schema(request=True, ref=ref, enforced_only=True) == {}
