"""ID token claims before verification, dotted claim paths and a robot's rule matching."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oidc_issuer import b64url, forge, github_claims, kubernetes_claims
from tokenserver.domain.claims import (
    MAX_REASON,
    MAX_TOKEN_BYTES,
    NEVER_MATCHES,
    Unverified,
    claim_text,
    claim_value,
    match_rule,
    pattern_matches,
    single_audience,
    unverified,
)
from tokenserver.domain.federation import Condition

HEADER: dict[str, object] = {"alg": "RS256", "kid": "k1", "typ": "JWT"}
CLAIMS: dict[str, object] = {
    "iss": "https://issuer.example",
    "sub": "repo:acme/app:ref:refs/heads/main",
}


def segment(value: Any) -> str:
    return b64url(json.dumps(value).encode())


def raw(data: bytes) -> str:
    return b64url(data)


# Unverified: the shape of a JWT, and nothing else.


def test_unverified_answers_the_header_and_claims_of_a_jwt() -> None:
    token = forge(HEADER, CLAIMS, b"\x01" * 256)
    assert unverified(token) == Unverified(header=HEADER, claims=CLAIMS)


def test_unverified_accepts_an_empty_signature_so_that_alg_none_is_recognised() -> None:
    # `alg: none` must reach the verifier (and be refused there as such), not pass for a
    # password that merely looks odd.
    token = forge({"alg": "none"}, CLAIMS)
    assert token.endswith(".")
    assert unverified(token) == Unverified(header={"alg": "none"}, claims=CLAIMS)


def _padded_to(size: int) -> str:
    base = forge(HEADER, {**CLAIMS, "pad": ""}, b"s")
    pad = "x" * (size - len(base))
    token = forge(HEADER, {**CLAIMS, "pad": pad}, b"s")
    # base64 grows 4 characters per 3 bytes: trim the pad until the token fits exactly.
    while len(token) > size:
        pad = pad[:-1]
        token = forge(HEADER, {**CLAIMS, "pad": pad}, b"s")
    return token


def test_unverified_takes_a_token_of_exactly_8_kib_and_refuses_one_byte_more() -> None:
    fits = _padded_to(MAX_TOKEN_BYTES)
    assert len(fits) <= MAX_TOKEN_BYTES and len(fits) > MAX_TOKEN_BYTES - 4
    assert unverified(fits) is not None
    head, body, _ = fits.split(".")
    too_long = f"{head}.{body}." + "A" * (MAX_TOKEN_BYTES + 1 - len(head) - len(body) - 2)
    assert len(too_long) == MAX_TOKEN_BYTES + 1
    assert unverified(too_long) is None


NOT_JWTS = {
    "empty": "",
    "a secret": "Abcdefgh1",
    "two segments": f"{segment(HEADER)}.{segment(CLAIMS)}",
    "four segments": f"{segment(HEADER)}.{segment(CLAIMS)}.c2ln.c2ln",
    "empty header": f".{segment(CLAIMS)}.c2ln",
    "empty claims": f"{segment(HEADER)}..c2ln",
    "padded header": f"{base64.urlsafe_b64encode(b'{}').decode()}.{segment(CLAIMS)}.c2ln",
    "standard base64": f"{segment(HEADER)}.{segment(CLAIMS)}.ab+/",
    "space inside": f"{segment(HEADER)} .{segment(CLAIMS)}.c2ln",
    "trailing newline": f"{segment(HEADER)}.{segment(CLAIMS)}.c2ln\n",
    "non-ASCII": f"{segment(HEADER)}.{segment(CLAIMS)}.c2l\u00f1",
    "impossible length": f"{segment(HEADER)}x.{segment(CLAIMS)}.c2ln",
    "unused bits set": f"{segment(HEADER)[:-1]}"
    + chr(ord(segment(HEADER)[-1]) + 1)
    + f".{segment(CLAIMS)}.c2ln",
    "header not JSON": f"{raw(b'not json')}.{segment(CLAIMS)}.c2ln",
    "header a list": f"{segment([HEADER])}.{segment(CLAIMS)}.c2ln",
    "claims null": f"{segment(HEADER)}.{segment(None)}.c2ln",
    "claims a string": f"{segment(HEADER)}.{segment('x')}.c2ln",
    "claims NaN": f"{segment(HEADER)}." + raw(b'{"exp": NaN}') + ".c2ln",
    "claims Infinity": f"{segment(HEADER)}." + raw(b'{"exp": -Infinity}') + ".c2ln",
    "claims not UTF-8": f"{segment(HEADER)}." + raw(b'{"sub": "\xff"}') + ".c2ln",
    "claims nested too deep": f"{segment(HEADER)}." + raw(b'{"a":' + b"[" * 3000) + ".c2ln",
    "integer past the digit limit": f"{segment(HEADER)}."
    + raw(b'{"exp": ' + b"9" * 5000 + b"}")
    + ".",
}


@pytest.mark.parametrize("token", NOT_JWTS.values(), ids=NOT_JWTS.keys())
def test_unverified_refuses_what_is_not_a_jwt(token: str) -> None:
    assert unverified(token) is None


def test_unverified_refuses_non_strings() -> None:
    assert unverified(b"a.b.c") is None  # type: ignore[arg-type]
    assert unverified(None) is None  # type: ignore[arg-type]


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
SEGMENT = st.one_of(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/. "),
    st.binary(max_size=200).map(raw),
    JSON.map(lambda v: b64url(json.dumps(v).encode())),
    st.dictionaries(st.text(), JSON, max_size=5).map(lambda v: b64url(json.dumps(v).encode())),
)


@settings(max_examples=200)
@given(st.one_of(st.text(), st.lists(SEGMENT, min_size=1, max_size=5).map(".".join)))
def test_unverified_never_raises_and_answers_objects_only(token: str) -> None:
    parsed = unverified(token)
    if parsed is not None:
        assert isinstance(parsed.header, dict) and isinstance(parsed.claims, dict)
        assert len(token) <= MAX_TOKEN_BYTES and token.count(".") == 2


@settings(max_examples=60)
@given(
    st.dictionaries(st.text(), JSON, max_size=5),
    st.dictionaries(st.text(), JSON, max_size=8),
    st.binary(max_size=300),
)
def test_unverified_reads_back_any_header_and_claims(
    header: dict[str, Any], claims: dict[str, Any], signature: bytes
) -> None:
    token = forge(header, claims, signature)
    parsed = unverified(token)
    if len(token) > MAX_TOKEN_BYTES:
        assert parsed is None
    else:
        assert parsed == Unverified(header=header, claims=claims)


# Dotted claim paths.

NESTED: dict[str, object] = {
    "sub": "system:serviceaccount:ci:builder",
    "kubernetes.io": {
        "namespace": "ci",
        "serviceaccount": {"name": "builder", "uid": "u-1"},
    },
    "a": {"b": {"c": "nested"}},
    "list": ["x", "y"],
    "null": None,
    "n": 7,
}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("sub", "system:serviceaccount:ci:builder"),
        ("kubernetes.io.namespace", "ci"),
        ("kubernetes.io.serviceaccount.name", "builder"),
        ("kubernetes.io.serviceaccount", {"name": "builder", "uid": "u-1"}),
        ("a.b.c", "nested"),
        ("n", 7),
        ("missing", None),
        ("a.missing", None),
        ("a.b.c.d", None),  # through a string
        ("list.0", None),  # lists are not entered
        ("null", None),
        ("kubernetes", None),  # a part of a key is not a key
        ("", None),
        (".", None),
    ],
)
def test_claim_value_reaches_nested_claims_and_keys_with_dots(path: str, value: object) -> None:
    assert claim_value(NESTED, path) == value


def test_claim_value_prefers_the_longest_key() -> None:
    claims: dict[str, object] = {"a.b": "flat", "a": {"b": "nested"}}
    assert claim_value(claims, "a.b") == "flat"
    deeper: dict[str, object] = {"a.b": {"c": "under a.b"}, "a": {"b": {"c": "under a, b"}}}
    assert claim_value(deeper, "a.b.c") == "under a.b"


def test_claim_value_does_not_try_a_shorter_key_when_the_longest_leads_nowhere() -> None:
    """One path, one value: a token cannot satisfy a condition through a second spelling."""
    claims: dict[str, object] = {"a.b": {}, "a": {"b": {"c": "other"}}}
    assert claim_value(claims, "a.b.c") is None


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("refs/heads/main", "refs/heads/main"),
        ("", ""),
        (1234567, "1234567"),
        (-3, "-3"),
        (True, "true"),
        (False, "false"),
        (None, None),
        (1.0, None),
        (["a"], None),
        ({"a": "b"}, None),
    ],
)
def test_claim_text_compares_strings_integers_and_booleans_only(
    value: object, text: str | None
) -> None:
    assert claim_text(value) == text


# Rules.


def rule(**conditions: str | tuple[str, ...]) -> tuple[Condition, ...]:
    return tuple(
        Condition(claim.replace("__", "."), (p,) if isinstance(p, str) else p)
        for claim, p in conditions.items()
    )


GITHUB = github_claims(repository_owner_id="1234567") | {"repository_id": 7654321}
K8S = kubernetes_claims(namespace="ci", serviceaccount="builder")


@pytest.mark.parametrize(
    ("conditions", "claims"),
    [
        (rule(repository="acme/app"), GITHUB),
        (rule(repository_owner_id="1234567", repository="acme/*"), GITHUB),
        (rule(repository_id="7654321"), GITHUB),  # an integer claim, compared as text
        (rule(ref_protected="true"), GITHUB),
        (rule(ref="refs/heads/*"), github_claims(ref="refs/heads/feature/x")),  # * crosses /
        (rule(ref=("refs/heads/main", "refs/tags/v*")), github_claims(ref="refs/tags/v1.2")),
        (rule(ref="refs/tags/v?.?"), github_claims(ref="refs/tags/v1.2")),
        (rule(ref="refs/tags/v[0-9].*"), github_claims(ref="refs/tags/v1.2")),
        (rule(ref="refs/tags/[!x]*"), github_claims(ref="refs/tags/v1")),
        (rule(environment="prod[*]"), github_claims(environment="prod*")),  # a literal *
        (rule(kubernetes__io__namespace="ci", kubernetes__io__serviceaccount__name="b*"), K8S),
        (rule(sub="system:serviceaccount:ci:*"), K8S),
        (rule(flag="true"), {"flag": True}),
        (rule(flag="false"), {"flag": False}),
        (rule(n="0"), {"n": 0}),
    ],
)
def test_match_rule_admits_claims_that_satisfy_every_condition(
    conditions: tuple[Condition, ...], claims: dict[str, object]
) -> None:
    assert match_rule(conditions, claims) is None


@pytest.mark.parametrize(
    ("conditions", "claims", "claim"),
    [
        (rule(repository="acme/app"), github_claims(repository="acme/app2"), "repository"),
        (rule(repository="acme/app"), github_claims(repository="Acme/App"), "repository"),
        (rule(repository="acme/*", ref="refs/heads/main"), github_claims(ref="main"), "ref"),
        (rule(ref="refs/heads/main"), github_claims(ref="refs/heads/main2"), "ref"),
        (rule(ref="refs/heads/main*"), github_claims(ref="refs/tags/main"), "ref"),
        (rule(ref="refs/tags/v?"), github_claims(ref="refs/tags/v10"), "ref"),
        (rule(environment="prod[*]"), github_claims(environment="prodX"), "environment"),
        (rule(environment="prod"), github_claims(), "environment"),  # missing
        (rule(n="*"), {"n": None}, "n"),
        (rule(n="*"), {"n": ["x"]}, "n"),
        (rule(n="*"), {"n": {"x": "y"}}, "n"),
        (rule(n="1"), {"n": 1.0}, "n"),
        (rule(n="True"), {"n": True}, "n"),
        (rule(n="1"), {"n": True}, "n"),
        (rule(kubernetes__io__namespace="ci"), kubernetes_claims(namespace="prod"), "namespace"),
        (rule(repository=()), github_claims(), "repository"),  # no pattern admits
    ],
)
def test_match_rule_names_the_claim_that_did_not_match(
    conditions: tuple[Condition, ...], claims: dict[str, object], claim: str
) -> None:
    reason = match_rule(conditions, claims)
    assert reason is not None
    assert claim in reason and "did not match" in reason


def test_match_rule_shows_the_value_the_token_holds() -> None:
    reason = match_rule(rule(ref="refs/heads/main"), github_claims(ref="refs/heads/dev"))
    assert reason == "claim 'ref' did not match: it is 'refs/heads/dev'"
    assert match_rule(rule(n="*"), {"n": None}) == "claim 'n' did not match: it is missing or null"
    assert match_rule(rule(n="*"), {"n": [1]}) == "claim 'n' did not match: it is a list"


def test_match_rule_without_conditions_admits_nothing() -> None:
    assert match_rule((), github_claims()) == "the rule has no conditions"


@pytest.mark.parametrize("pattern", ["pull_request_target", "*", "pull_request*"])
def test_attack_pull_request_target_never_matches(pattern: str) -> None:
    """That event runs with the base repository's identity for anyone's fork: even a rule
    that names it (or matches any event) does not admit it."""
    claims = github_claims(event_name="pull_request_target")
    assert "pull_request_target" in NEVER_MATCHES["event_name"]
    reason = match_rule(rule(repository="acme/app", event_name=pattern), claims)
    assert reason == "claim 'event_name' is 'pull_request_target', which no rule admits"
    assert match_rule(rule(repository="acme/app"), claims) is not None
    assert match_rule(rule(repository="acme/app"), github_claims(event_name="push")) is None


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("a", "a", True),
        ("a", "A", False),
        ("*", "", True),
        ("*", "a/b/c", True),
        ("a/*/c", "a/b/x/c", True),
        ("?", "/", True),
        ("[", "[", True),  # an unclosed bracket is itself
        ("[[]", "[", True),
        ("[?]", "?", True),
        ("[?]", "x", False),
        ("a*", "a\nb", True),
        ("*.example", "x.example", True),
        ("*.example", "xexample", False),
    ],
)
def test_pattern_matches_as_documented(pattern: str, text: str, matches: bool) -> None:
    assert pattern_matches(pattern, text) is matches


@given(st.text(), st.text())
def test_a_pattern_without_glob_characters_is_exact(pattern: str, text: str) -> None:
    if not any(c in pattern for c in "*?["):
        assert pattern_matches(pattern, text) is (pattern == text)
        assert pattern_matches(pattern, pattern)


@settings(max_examples=300)
@given(
    st.text(min_size=1),
    st.one_of(JSON, st.text(max_size=5000)),
    st.lists(st.text(), max_size=3),
)
def test_attack_reasons_are_one_short_printable_line(
    name: str, value: object, patterns: list[str]
) -> None:
    """The reason goes to logs and to the robot's managers: whatever the claim's name and the
    token's value (newlines, escapes, lone surrogates, 5000 characters), it stays bounded."""
    claims = {name: value, "event_name": value}
    reason = match_rule((Condition(name, tuple(patterns)),), claims)
    if reason is not None:
        assert reason.isprintable()
        assert len(reason) <= MAX_REASON
        reason.encode("utf-8")  # no lone surrogate: storable and writable anywhere


@pytest.mark.parametrize(
    ("aud", "single"),
    [
        ("tokenserver", "tokenserver"),
        (["tokenserver"], "tokenserver"),
        (["tokenserver", "other"], None),
        ([], None),
        ([1], None),
        (1, None),
        (None, None),
    ],
)
def test_single_audience(aud: object, single: str | None) -> None:
    assert single_audience({"aud": aud}) == single
    assert single_audience({}) is None
