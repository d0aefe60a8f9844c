"""Robot federation, the management side: the issuers the system admin trusts, each robot's
rules (set by whoever may update the robot) and its recent refused federated logins (shown to
whoever may read it). The login itself is the token path's.

Issuers name files on this server (a JWKS for keys that cannot be fetched, a CA bundle): they
are read when the issuer is added, so that a mistake shows then and not at the first login.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import jwt
from cryptography import x509

from tokenserver.domain.federation import (
    ALGORITHMS,
    DEFAULT_MAX_TOKEN_LIFETIME,
    FederationFailure,
    FederationLogin,
    FederationRule,
    Issuer,
    TemporarySecret,
)
from tokenserver.domain.federation_rules import (
    MAX_RULES,
    check_audiences,
    check_issuer_name,
    check_issuer_url,
    check_max_token_lifetime,
    check_rule,
    conditions,
    rule_warning,
    rule_warnings,
)
from tokenserver.domain.models import Principal, Robot
from tokenserver.domain.text import truncate
from tokenserver.errors import BadRequest, Conflict, Forbidden, NotFound
from tokenserver.services.access import denied
from tokenserver.services.audit import AuditedOperation, AuditService
from tokenserver.services.ports import NewIssuer, NewRule, Store
from tokenserver.services.robots import RobotService

# An issuer's JWKS or CA bundle is a few kilobytes; a path to anything bigger is a mistake.
MAX_FILE_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class IssuerSpec:
    """An issuer as the system admin describes it (see `Issuer`)."""

    name: str
    url: str
    audiences: tuple[str, ...]
    jwks_file: str | None = None
    ca_file: str | None = None
    max_token_lifetime: int = DEFAULT_MAX_TOKEN_LIFETIME


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A rule as a caller writes it: its issuer's name and its claims in their JSON form
    (`{"ref": ["refs/heads/main", "refs/tags/v*"], "repository_owner_id": "1234567"}`)."""

    issuer: str
    claims: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class RobotFederation:
    """A robot's rules, by id, and why some are weaker than they look (`warnings`); its live
    temporary secrets from token exchanges (never the secrets), newest first."""

    robot: Robot
    rules: tuple[FederationRule, ...]
    warnings: tuple[str, ...]
    temporary_secrets: tuple[TemporarySecret, ...] = ()


def _shown_path(path: str) -> str:
    return repr(truncate(path, 200))


def _read_file(path: str, what: str) -> bytes:
    """The content of the regular file `path` (absolute), at most MAX_FILE_BYTES; BadRequest
    naming `what` and the path otherwise. Blocking: run it in a thread."""
    where = f"{what} {_shown_path(path)}"
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"{where}: not valid Unicode") from None
    if not os.path.isabs(path):
        raise BadRequest(f"{where}: give an absolute path (the server reads it)")
    try:
        # NOTE: checked before opening: opening a FIFO would wait for a writer.
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise BadRequest(f"{where}: not a regular file")
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except ValueError:  # a NUL in the path
        raise BadRequest(f"{where}: not a file name") from None
    except OSError as e:
        raise BadRequest(f"{where}: cannot read it: {e.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise BadRequest(f"{where}: larger than {MAX_FILE_BYTES} bytes")
    return data


def _check_jwks(path: str) -> None:
    """The file holds a JSON Web Key Set with at least one public key, with a `kid`, that
    verifies RS256 or ES256 signatures, and no private or secret key."""
    where = f"JWKS file {_shown_path(path)}"
    data = _read_file(path, "JWKS file")
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        raise BadRequest(f"{where}: not JSON") from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise BadRequest(f'{where}: not a JSON Web Key Set (an object with a "keys" array)')
    usable = 0
    for key in keys:
        if not isinstance(key, dict):
            continue
        if "d" in key or key.get("kty") == "oct":
            raise BadRequest(f"{where}: holds a private or secret key; give the public keys only")
        if key.get("use", "sig") != "sig" or not isinstance(key.get("kid"), str):
            continue
        try:
            algorithm = jwt.PyJWK(key).algorithm_name
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue  # a key of another kind, or malformed: not one a token can use
        if algorithm in ALGORITHMS:
            usable += 1
    if not usable:
        raise BadRequest(
            f"{where}: holds no public key with a kid for {' or '.join(ALGORITHMS)} signatures"
        )


def _check_ca_file(path: str) -> None:
    data = _read_file(path, "CA file")
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError:
        raise BadRequest(f"CA file {_shown_path(path)}: holds no PEM certificate") from None


class FederationService:
    def __init__(self, store: Store, audit: AuditService, robots: RobotService) -> None:
        self._store = store
        self._audit = audit
        self._robots = robots

    # ---- issuers (system admin) ------------------------------------------------------------

    @staticmethod
    def _require_admin(actor: Principal) -> None:
        if not actor.sysadmin:
            raise denied(actor, "manage federation issuers")

    async def add_issuer(self, actor: Principal, spec: IssuerSpec) -> Issuer:
        """Trust an issuer. Raises BadRequest (a field, a file that is not what it should
        be), Unauthorized, Forbidden (not a system admin), Conflict (name or URL taken)."""
        async with self._audit.operation(actor, "create", "federation-issuer", spec.name):
            self._require_admin(actor)
            check_issuer_name(spec.name)
            check_issuer_url(spec.url)
            audiences = check_audiences(spec.audiences)
            check_max_token_lifetime(spec.max_token_lifetime)
            if spec.jwks_file is not None:
                await asyncio.to_thread(_check_jwks, spec.jwks_file)
            if spec.ca_file is not None:
                await asyncio.to_thread(_check_ca_file, spec.ca_file)
            return await self._store.add_issuer(
                NewIssuer(
                    name=spec.name,
                    url=spec.url,
                    audiences=audiences,
                    jwks_file=spec.jwks_file,
                    ca_file=spec.ca_file,
                    max_token_lifetime=spec.max_token_lifetime,
                    created_at=self._robots.now(),
                )
            )

    async def list_issuers(self, actor: Principal) -> list[Issuer]:
        """By name. System admins only."""
        self._require_admin(actor)
        return await self._store.list_issuers()

    async def get_issuer(self, actor: Principal, name: str) -> Issuer:
        """Raises NotFound, Unauthorized, Forbidden."""
        self._require_admin(actor)
        issuer = await self._store.find_issuer(name)
        if issuer is None:
            raise NotFound(f"issuer {truncate(name, 80)!r} not found")
        return issuer

    async def remove_issuer(self, actor: Principal, name: str) -> Issuer:
        """Stop trusting an issuer. Refused (Conflict) while robots' rules name it: those
        rules go first, by their robots' managers, rather than vanish from under them."""
        async with self._audit.operation(actor, "delete", "federation-issuer", name):
            issuer = await self.get_issuer(actor, name)
            removal = await self._store.delete_issuer(name)
            if removal.robots:
                raise Conflict(
                    f"issuer {name!r} is used by the federation rules of {removal.robots} "
                    f"robot{'s' if removal.robots != 1 else ''}; remove those rules first"
                )
            if not removal.removed:
                raise NotFound(f"issuer {name!r} not found")
            return issuer

    # ---- rules (whoever may update the robot) ----------------------------------------------

    async def _resolve(self, entry: AuditedOperation | None, ref: str) -> Robot:
        robot = await self._robots.resolve(ref)
        if entry is not None:
            entry.resource = robot.full_name(self._robots.prefix)
            entry.project_id = robot.project_id
        return robot

    async def _managed(self, actor: Principal, entry: AuditedOperation, ref: str) -> Robot:
        """The robot `ref`, if `actor` may change its rules: whoever may update it; a robot
        actor only for robots within its own permissions and expiry, since rules hand the
        robot's power to the workloads they admit, as a secret does."""
        robot = await self._resolve(entry, ref)
        await self._robots.authorize(actor, robot, "update", "set the federation rules of")
        self._robots.refuse_self(actor, robot, "set the federation rules of")
        if robot.legacy:
            raise Forbidden("a legacy robot logs in with its JWT; it cannot have federation rules")
        return robot

    async def _federation(self, robot: Robot, rules: Sequence[FederationRule]) -> RobotFederation:
        issuers = {issuer.name: issuer for issuer in await self._store.list_issuers()}
        secrets = await self._store.list_temporary_secrets(robot.id, self._robots.now())
        return RobotFederation(
            robot, tuple(rules), tuple(rule_warnings(rules, issuers)), tuple(secrets)
        )

    async def rules(self, actor: Principal, ref: str) -> RobotFederation:
        """The robot's rules and their warnings, and its live temporary secrets, for whoever
        may update it."""
        robot = await self._resolve(None, ref)
        await self._robots.authorize(actor, robot, "update")
        return await self._federation(robot, await self._store.list_federation_rules(robot.id))

    async def _new_rule(self, spec: RuleSpec, number: int | None = None) -> NewRule:
        """The rule to store for `spec`, the `number`th of its request (messages name it)."""
        try:
            issuer = await self._store.find_issuer(spec.issuer)
            if issuer is None:
                raise BadRequest(
                    f"issuer {truncate(spec.issuer, 80)!r} not found (a system admin adds "
                    "issuers: tokenserver federation issuer add)"
                )
            return NewRule(issuer.id, check_rule(conditions(spec.claims)))
        except BadRequest as e:
            if number is None:
                raise
            raise BadRequest(f"rule {number}: {e.message}") from None

    async def replace_rules(
        self, actor: Principal, ref: str, specs: Sequence[RuleSpec]
    ) -> RobotFederation:
        """Make `specs` the robot's rules (none: the robot has none). Its refresh tokens from
        federated logins end, unless the rules are the ones it has. Raises BadRequest,
        Forbidden, Conflict (no rules left for a robot whose secret login is off)."""
        async with self._audit.operation(actor, "update-federation", "robot", ref) as entry:
            robot = await self._managed(actor, entry, ref)
            if len(specs) > MAX_RULES:
                raise BadRequest(f"a robot takes at most {MAX_RULES} federation rules")
            new = [await self._new_rule(spec, i) for i, spec in enumerate(specs, 1)]
            try:
                stored = await self._store.replace_federation_rules(
                    robot.id, new, self._robots.now()
                )
            except NotFound:
                raise BadRequest("an issuer of these rules was removed meanwhile") from None
            except Conflict:
                raise self._needs_rules(robot) from None
            return await self._federation(robot, stored)

    async def add_rule(
        self, actor: Principal, ref: str, spec: RuleSpec
    ) -> tuple[FederationRule, str | None]:
        """Add one rule to the robot's; the rule and its warning, if any."""
        async with self._audit.operation(actor, "add-federation-rule", "robot", ref) as entry:
            robot = await self._managed(actor, entry, ref)
            new = await self._new_rule(spec)
            try:
                rule = await self._store.add_federation_rule(
                    robot.id, new, self._robots.now(), MAX_RULES
                )
            except NotFound:
                raise BadRequest(f"issuer {spec.issuer!r} was removed meanwhile") from None
            except Conflict:
                raise Conflict(
                    f"robot {robot.full_name(self._robots.prefix)} has {MAX_RULES} federation "
                    "rules, the most a robot takes; remove one first"
                ) from None
            issuer = await self._store.find_issuer(rule.issuer)
            return rule, rule_warning(issuer.url if issuer else "", rule.conditions)

    async def remove_rule(self, actor: Principal, ref: str, rule_id: int) -> Robot:
        """Remove one of the robot's rules. Raises NotFound (not one of its rules),
        Conflict (its last rule while its secret login is off)."""
        async with self._audit.operation(actor, "delete-federation-rule", "robot", ref) as entry:
            robot = await self._managed(actor, entry, ref)
            try:
                removed = await self._store.delete_federation_rule(
                    robot.id, rule_id, self._robots.now()
                )
            except Conflict:
                raise self._needs_rules(robot) from None
            if not removed:
                raise NotFound(
                    f"robot {robot.full_name(self._robots.prefix)} has no federation rule {rule_id}"
                )
            return robot

    def _needs_rules(self, robot: Robot) -> Conflict:
        return Conflict(
            f"robot {robot.full_name(self._robots.prefix)} logs in only with its federation "
            "rules (its secret login is off): it keeps at least one; turn its secret login on "
            "first"
        )

    # ---- failures (whoever may read the robot) ---------------------------------------------

    async def logins(self, actor: Principal, ref: str) -> tuple[Robot, list[FederationLogin]]:
        """The robot's newest federated logins, newest first: which workload (issuer, subject,
        repository, ref, commit, run) logged in with which ID token (its jti), by which
        rule, and when. One per ID token, not per token request."""
        robot = await self._resolve(None, ref)
        await self._robots.authorize(actor, robot, "read")
        return robot, await self._store.list_federation_logins(robot.id)

    async def failures(self, actor: Principal, ref: str) -> tuple[Robot, list[FederationFailure]]:
        """The robot's newest refused federated logins, newest first: which issuer and
        subject tried and which claim did not match."""
        robot = await self._resolve(None, ref)
        await self._robots.authorize(actor, robot, "read")
        return robot, await self._store.list_federation_failures(robot.id)
