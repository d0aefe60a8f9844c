"""Robot federation: a robot logs in with a workload's OIDC ID token (a CI job's, a pod's)
instead of a stored secret. The system admin trusts issuers; each robot carries rules saying
which tokens of which issuer are it.

The shapes here are shared by storage, the services and the edges; the checks live in
`tokenserver.domain.claims` (rules and claims, pure) and `tokenserver.services.oidc` (keys and
signatures).
"""

from __future__ import annotations

from dataclasses import dataclass

# The only signature algorithms an ID token may use: never `none`, never an HMAC (whose
# "secret" would be the issuer's public key).
ALGORITHMS = ("RS256", "ES256")
# The longest an ID token may live (`exp - iat`) unless its issuer says otherwise: GitHub's
# and GitLab's live minutes, a Kubernetes projected token an hour by default.
DEFAULT_MAX_TOKEN_LIFETIME = 3600
# Each robot keeps its newest failures for its managers (`robot federation failures`).
KEEP_FAILURES = 50
# ... and its newest logins (`robot federation logins`).
KEEP_LOGINS = 50


@dataclass(frozen=True, slots=True)
class Issuer:
    """An OIDC issuer the system admin trusts. `url` is compared exactly with a token's `iss`;
    `audiences` are the `aud` values accepted (one of them, exactly). `jwks_file` holds its
    keys when they cannot be fetched (a private cluster); `ca_file` is the CA bundle its
    HTTPS server is checked against (None: the system's)."""

    id: int
    name: str
    url: str
    audiences: tuple[str, ...]
    jwks_file: str | None = None
    ca_file: str | None = None
    max_token_lifetime: int = DEFAULT_MAX_TOKEN_LIFETIME
    created_at: int = 0


@dataclass(frozen=True, slots=True)
class Condition:
    """One condition of a rule: the claim at the dotted path `claim` (`kubernetes.io.namespace`
    reaches a nested claim) equals one of `patterns` (each exact or a glob)."""

    claim: str
    patterns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FederationRule:
    """A robot's rule: a token of `issuer` (the issuer's name) is the robot when every
    condition holds. A robot's rules are alternatives: any one admits a token."""

    id: int
    robot_id: int
    issuer: str
    conditions: tuple[Condition, ...]
    created_at: int = 0


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a verified ID token says the workload is: what the log, the audit and the robot's
    last use record ("which workflow pushed this image"). Never the token itself."""

    issuer: str  # the issuer's name
    iss: str
    sub: str
    aud: str
    rule_id: int
    expires_at: int  # the ID token's exp
    jti: str = ""
    repository: str = ""  # GitHub `repository`, GitLab `project_path`
    ref: str = ""
    sha: str = ""
    run_id: str = ""  # GitHub `run_id`, GitLab `pipeline_id`


@dataclass(frozen=True, slots=True)
class FederationLogin:
    """A federated login, kept for the robot's managers (its newest KEEP_LOGINS): when, and
    which workload it was ("which workflow pushed this image"). One per ID token and robot,
    not per token request."""

    id: int
    robot_id: int
    at: int
    identity: Identity


@dataclass(frozen=True, slots=True)
class FederationFailure:
    """A refused federated login, kept for the robot's managers: which issuer and subject
    tried, and why (which claim did not match). Never the token."""

    id: int
    robot_id: int
    at: int
    issuer: str
    subject: str
    reason: str


@dataclass(frozen=True, slots=True)
class TemporarySecret:
    """A temporary robot secret a token exchange handed out (only its SHA-256 is stored): the
    robot's password, for clients that know only username and password, until `expires_at`.
    `identity` is the workload whose ID token was exchanged for it."""

    id: int
    robot_id: int
    created_at: int
    expires_at: int
    identity: Identity
