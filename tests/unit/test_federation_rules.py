"""What an issuer and a federation rule may be (tokenserver/domain/federation_rules.py), as flat
tables of valid and invalid cases."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenserver.domain.federation import Condition, FederationRule, Issuer
from tokenserver.domain.federation_rules import (
    GITHUB_ISSUER,
    MAX_CONDITIONS,
    MAX_PATTERNS,
    check_audiences,
    check_issuer_name,
    check_issuer_url,
    check_max_token_lifetime,
    check_rule,
    claims_from_pairs,
    claims_json,
    conditions,
    jwt_shaped,
    only_wildcards,
    platform,
    rule_warning,
    rule_warnings,
)
from tokenserver.errors import BadRequest

# ---- issuers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["github", "gitlab.com", "k8s-prod_1", "a", "0" * 63])
def test_issuer_names_that_are_taken(name: str) -> None:
    assert check_issuer_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "GitHub", "-x", ".x", "_x", "a b", "a/b", "0" * 64, "é", "a\u0000", "a\n"]
)
def test_issuer_names_that_are_refused(name: str) -> None:
    with pytest.raises(BadRequest, match="issuer name"):
        check_issuer_name(name)


@pytest.mark.parametrize(
    "url",
    [
        GITHUB_ISSUER,
        "https://gitlab.com",
        "https://gitlab.example:8443/",
        "https://ghe.example/_services/token",
        "https://oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF",
        "http://127.0.0.1:8080",
        "http://127.1.2.3/issuer",
        "http://[::1]:9000/x",
    ],
)
def test_issuer_urls_are_kept_as_given(url: str) -> None:
    assert check_issuer_url(url) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "1 to 255"),
        ("https://" + "a" * 250, "1 to 255"),
        ("http://issuer.example", "loopback"),
        ("http://localhost:8080", "loopback"),  # a name can resolve anywhere
        ("http://10.0.0.1", "loopback"),
        ("ftp://issuer.example", "https://HOST"),
        ("https://", "https://HOST"),
        ("issuer.example", "https://HOST"),
        ("https://u:p@issuer.example", "user name"),
        ("https://u@issuer.example", "user name"),
        ("https://issuer.example/?a=b", "query"),
        ("https://issuer.example/?", "query"),
        ("https://issuer.example/#x", "fragment"),
        ("https://issuer.example:port", "not a URL"),
        ("https://issuer.example:99999", "not a URL"),
        ("https://issuer.example/a b", "printable ASCII"),
        ("https://issuer.example/\u0000", "printable ASCII"),
        ("https://issu\u00e9r.example", "printable ASCII"),
        ("https://[::1", "not a URL"),
    ],
)
def test_issuer_urls_that_are_refused(url: str, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        check_issuer_url(url)


def test_audiences_are_kept_once_in_order() -> None:
    assert check_audiences(["b", "a", "b"]) == ("b", "a")
    assert check_audiences(["x"] * 10) == ("x",)
    assert check_audiences(["with space é"]) == ("with space é",)


@pytest.mark.parametrize(
    "audiences",
    [[], ["a"] * 11, [""], ["a", ""], ["a\u0000"], ["a\x1b[2J"], ["x" * 256], ["\udcff"]],
)
def test_audiences_that_are_refused(audiences: list[str]) -> None:
    with pytest.raises(BadRequest, match="audience"):
        check_audiences(audiences)


@pytest.mark.parametrize(
    ("seconds", "valid"),
    [(59, False), (60, True), (86400, True), (86401, False), (-1, False), (0, False)],
)
def test_token_lifetime_bounds(seconds: int, valid: bool) -> None:
    if valid:
        assert check_max_token_lifetime(seconds) == seconds
    else:
        with pytest.raises(BadRequest, match="60 to 86400"):
            check_max_token_lifetime(seconds)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        (GITHUB_ISSUER, "github"),
        ("https://ghe.example/_services/token", "github"),
        ("https://gitlab.com", "gitlab"),
        ("https://gitlab.corp.example", "gitlab"),
        ("https://code.example/gitlab", None),  # the host says, not the path
        ("https://kubernetes.default.svc", None),
        (GITHUB_ISSUER + "/", None),  # not GitHub's issuer: compared exactly
    ],
)
def test_the_platform_of_an_issuer(url: str, kind: str | None) -> None:
    assert platform(url) == kind


# ---- rule conditions -------------------------------------------------------------------------


def test_conditions_from_json_and_back() -> None:
    claims: dict[str, Any] = {
        "repository_owner_id": "1234567",
        "repository": "acme/app",
        "ref": ["refs/heads/main", "refs/tags/v*"],
        "kubernetes.io.namespace": "ci",
    }
    parsed = conditions(claims)
    assert parsed == (
        Condition("repository_owner_id", ("1234567",)),
        Condition("repository", ("acme/app",)),
        Condition("ref", ("refs/heads/main", "refs/tags/v*")),
        Condition("kubernetes.io.namespace", ("ci",)),
    )
    assert claims_json(parsed) == claims
    # A pattern given twice is kept once.
    assert conditions({"ref": ["a", "a"]}) == (Condition("ref", ("a",)),)


def test_conditions_from_the_command_line() -> None:
    claims = claims_from_pairs(["sub=repo:acme/app:*", "ref=a", "ref=b=c", "x="])
    assert claims == {"sub": "repo:acme/app:*", "ref": ["a", "b=c"], "x": ""}
    with pytest.raises(BadRequest, match="1 to 255"):
        conditions(claims)  # an empty pattern
    with pytest.raises(BadRequest, match="KEY=PATTERN"):
        claims_from_pairs(["repository"])
    with pytest.raises(BadRequest, match="claim ''"):
        conditions(claims_from_pairs(["=x"]))


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({}, "at least one"),
        ({f"c{i}": "x" for i in range(MAX_CONDITIONS + 1)}, f"at most {MAX_CONDITIONS}"),
        ({"": "x"}, "1 to 255"),
        ({"c" * 256: "x"}, "1 to 255"),
        ({".a": "x"}, "dotted path"),
        ({"a.": "x"}, "dotted path"),
        ({"a..b": "x"}, "dotted path"),
        ({"a\u0000": "x"}, "dotted path"),
        ({"a\nb": "x"}, "dotted path"),
        ({"a\u202eb": "x"}, "dotted path"),  # a bidi override is not printable
        ({"exp": "1"}, "exp, iat, nbf and jti"),
        ({"iat": "1"}, "exp, iat, nbf and jti"),
        ({"nbf": "1"}, "exp, iat, nbf and jti"),
        ({"jti": "1"}, "exp, iat, nbf and jti"),
        ({"sub": ""}, "1 to 255"),
        ({"sub": "x" * 256}, "1 to 255"),
        ({"sub": []}, f"1 to {MAX_PATTERNS}"),
        ({"sub": ["x"] * (MAX_PATTERNS + 1)}, f"1 to {MAX_PATTERNS}"),
        ({"sub": ["x", 1]}, "each pattern must be a string"),
        ({"sub": 1}, "a pattern or a list"),
        ({"sub": None}, "a pattern or a list"),
        ({"sub": {"a": "b"}}, "a pattern or a list"),
        ({"sub": "a\u0000b"}, "control characters"),
        ({"sub": ["ok", "a\x1b[2J"]}, "control characters"),
        ({"sub": "\udcff"}, "invalid Unicode"),  # an undecodable byte of a command line
    ],
)
def test_conditions_that_are_refused(claims: dict[str, Any], reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        conditions(claims)


def test_a_refused_claim_may_be_nested() -> None:
    # Only the verification's own top-level claims are refused.
    assert conditions({"act.exp": "x", "EXP": "y"})[0].claim == "act.exp"


def test_a_message_never_echoes_kilobytes() -> None:
    with pytest.raises(BadRequest) as caught:
        conditions({"sub": "x" * 10_000})
    assert len(caught.value.message) < 300


# ---- what a rule must pin --------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["*", "**", "?", "?*", "*?*", "????"])
def test_patterns_that_admit_anything(pattern: str) -> None:
    assert only_wildcards(pattern)


@pytest.mark.parametrize("pattern", ["a*", "*a", "[a]*", "repo:*", "[*]", "\\*"])
def test_patterns_that_pin_something(pattern: str) -> None:
    assert not only_wildcards(pattern)


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": GITHUB_ISSUER},
        {"aud": "registry"},
        {"iss": GITHUB_ISSUER, "aud": "registry"},
        {"sub": "*"},
        {"repository": "**"},
        {"ref": ["refs/heads/main", "*"]},  # any one pattern may match: this one takes all
        {"iss": "x", "sub": "?*"},
    ],
)
def test_a_rule_that_pins_nothing_beyond_iss_and_aud_is_refused(claims: dict[str, Any]) -> None:
    with pytest.raises(BadRequest, match="every repository in the world"):
        check_rule(conditions(claims))


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "repo:acme/app:*"},
        {"aud": "registry", "repository_owner_id": "1234567"},
        {"sub": "*", "kubernetes.io.namespace": "ci"},
        {"ref": ["refs/heads/main", "refs/tags/v*"]},
    ],
)
def test_a_rule_that_pins_a_claim_is_taken(claims: dict[str, Any]) -> None:
    assert check_rule(conditions(claims)) == conditions(claims)


GITLAB = "https://gitlab.com"
KUBERNETES = "https://kubernetes.default.svc"


@pytest.mark.parametrize(
    ("issuer", "claims", "warned"),
    [
        (GITHUB_ISSUER, {"repository": "acme/app"}, "repository_owner_id"),
        (GITHUB_ISSUER, {"sub": "repo:acme/app:*"}, "repository_owner_id"),
        (GITHUB_ISSUER, {"repository_owner_id": "*", "repository": "a/b"}, "repository_owner_id"),
        (GITHUB_ISSUER, {"repository_owner_id": "1234567"}, None),
        (GITHUB_ISSUER, {"repository_id": "42", "ref": "refs/heads/main"}, None),
        ("https://ghe.example/_services/token", {"repository": "a/b"}, "repository_owner_id"),
        (KUBERNETES, {"repository_owner": "acme"}, "repository_owner_id"),  # GitHub's claims
        (GITLAB, {"project_path": "acme/app"}, "project_id"),
        (GITLAB, {"namespace_id": "9", "ref": "main"}, None),
        (GITLAB, {"project_id": "12"}, None),
        (KUBERNETES, {"namespace_path": "acme"}, "project_id"),  # GitLab's claims
        (KUBERNETES, {"sub": "system:serviceaccount:ci:builder"}, None),
    ],
)
def test_github_and_gitlab_rules_without_an_immutable_id_warn(
    issuer: str, claims: dict[str, Any], warned: str | None
) -> None:
    warning = rule_warning(issuer, conditions(claims))
    if warned is None:
        assert warning is None
    else:
        assert warning is not None and warned in warning


def test_warnings_name_their_rule() -> None:
    issuers = {"github": Issuer(1, "github", GITHUB_ISSUER, ("a",))}
    rules = [
        FederationRule(7, 1, "github", conditions({"repository": "acme/app"})),
        FederationRule(8, 1, "github", conditions({"repository_id": "42"})),
    ]
    (warning,) = rule_warnings(rules, issuers)
    assert warning.startswith("rule 7 (issuer github): pins no repository_owner_id")


@pytest.mark.parametrize(
    ("text", "shaped"),
    [
        ("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", True),
        ("aB1.cD2.eF3", True),
        ("a_-.b.c", True),
        ("aB1.cD2.", True),  # unsigned
        ("a.b.c.", False),
        ("Secr3tSecret", False),
        ("a.b", False),
        ("a.b.c.d", False),
        ("a.b.c=", False),
        ("a..c", False),
        ("a b.c.d", False),
    ],
)
def test_what_reads_as_a_jwt(text: str, shaped: bool) -> None:
    assert jwt_shaped(text) is shaped


@given(
    st.dictionaries(
        st.text(st.characters(codec="utf-8"), min_size=1, max_size=8),
        st.one_of(
            st.text(min_size=1, max_size=8),
            st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=4),
        ),
        max_size=5,
    )
)
def test_any_claims_are_taken_or_refused_with_a_bad_request(claims: dict[str, Any]) -> None:
    try:
        parsed = conditions(claims)
    except BadRequest:
        return
    # What is taken round-trips (patterns given twice are kept once).
    assert conditions(claims_json(parsed)) == parsed
