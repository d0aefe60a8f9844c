"""Federated logins: a robot's password that is a workload's OIDC ID token (a CI job's, a
pod's) instead of its secret.

The account decides, as for legacy robots: a password is checked as an ID token only when
the robot has federation rules and the password is a JWT naming a trusted issuer (its `iss`
is exactly an issuer's URL); anything else is checked as the robot's secret. So a robot
without rules keeps any secret it has, JWT-shaped or not, and no key is fetched and no
signature checked for a token no robot could accept.

In order, failing closed: the JWT's shape and `iss` (read unverified, only to choose), the
robot's rules for that issuer, the token itself (`IdTokenVerifier`: algorithm, key,
signature, audience, times), the rules (any one must match every condition it has), then the
robot's state. A token checked once is remembered, by its SHA-256, until it expires: clients
send the password again with every token request (a push is several), and a verification is
a signature check. The rules and the robot are read on every login, so a change counts at
once.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping

from tokenserver.domain.claims import claim_text, claim_value, match_rule, single_audience
from tokenserver.domain.claims import unverified as read_unverified
from tokenserver.domain.federation import FederationRule, Identity, Issuer
from tokenserver.domain.memo import Memo
from tokenserver.domain.models import Principal, PrincipalKind, Robot
from tokenserver.domain.secrets import Secret
from tokenserver.domain.text import escape, truncate
from tokenserver.errors import FederationRefused, Unauthorized
from tokenserver.services.oidc import IdTokenVerifier
from tokenserver.services.ports import Store
from tokenserver.services.usage import UsageTracker

# Remembered verifications: bounded in entries and bytes, like the other memos.
_MEMO_ENTRIES = 10_000
_MEMO_BYTES = 32 * 1024 * 1024
_SHOWN = 200  # the longest a presented claim is logged or kept


def _text(claims: Mapping[str, object], name: str) -> str:
    """A claim as one short printable line (empty when absent or not text)."""
    value = claim_text(claim_value(claims, name))
    return "" if value is None else truncate(escape(value), _SHOWN)


def _first(claims: Mapping[str, object], *names: str) -> str:
    for name in names:
        value = _text(claims, name)
        if value:
            return value
    return ""


def identity(issuer: Issuer, rule: FederationRule, claims: Mapping[str, object]) -> Identity:
    """What the log, the audit and the robot's last use record of a verified token: GitHub's
    and GitLab's names for the repository, ref, commit and run, where the token has them."""
    exp = claims.get("exp")
    return Identity(
        issuer=issuer.name,
        iss=issuer.url,
        sub=_text(claims, "sub"),
        aud=truncate(escape(single_audience(claims) or ""), _SHOWN),
        rule_id=rule.id,
        expires_at=int(exp) if isinstance(exp, int | float) else 0,
        jti=_text(claims, "jti"),
        repository=_first(claims, "repository", "project_path"),
        ref=_text(claims, "ref"),
        sha=_text(claims, "sha"),
        run_id=_first(claims, "run_id", "pipeline_id"),
    )


class FederatedLogin:
    def __init__(
        self,
        store: Store,
        verifier: IdTokenVerifier,
        usage: UsageTracker,
        name_prefix: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._verifier = verifier
        self._usage = usage
        self._prefix = name_prefix
        self._clock = clock
        # (token hash, issuer) -> (claims, exp, robots whose login with it is recorded)
        self._verified: Memo[tuple[bytes, Issuer], tuple[Mapping[str, object], float, set[int]]] = (
            Memo(max_entries=_MEMO_ENTRIES, max_bytes=_MEMO_BYTES, max_entry_bytes=64 * 1024)
        )

    async def authenticate(self, robot: Robot, password: Secret) -> Principal | None:
        """The robot, when `password` is an ID token one of its rules admits; None when the
        password is not for this path (not a JWT naming a trusted issuer, or a robot without
        rules): the caller checks it as the secret. Raises FederationRefused (a 401) when it is
        for this path and refused, after keeping the reason for the robot's managers, and
        Unauthorized when the token is right but the robot is disabled or expired."""
        token = password.reveal()
        shape = read_unverified(token)
        if shape is None:
            return None
        iss = shape.claims.get("iss")
        if not isinstance(iss, str):
            return None
        issuer = await self._store.find_issuer_by_url(iss)
        if issuer is None:
            return None
        rules = await self._store.list_federation_rules(robot.id)
        if not rules:
            return None
        now = self._clock()
        try:
            mine = [rule for rule in rules if rule.issuer == issuer.name]
            if not mine:
                raise FederationRefused(f"the robot has no rule for issuer {issuer.name}")
            claims, recorded = await self._verify(token, issuer, now)
            sub = claims.get("sub")
            if not isinstance(sub, str) or not sub:
                raise FederationRefused("the token has no sub")
            rule, reasons = None, []
            for candidate in mine:
                reason = match_rule(candidate.conditions, claims)
                if reason is None:
                    rule = candidate
                    break
                reasons.append(f"rule {candidate.id}: {reason}")
            if rule is None:
                raise FederationRefused(
                    truncate("; ".join(reasons), 1000),
                    message=f"no federation rule of {robot.full_name(self._prefix)} "
                    "admits this token",
                )
        except FederationRefused as refused:
            await self._store.add_federation_failure(
                robot.id,
                int(now),
                issuer.name,
                _text(shape.claims, "sub"),
                refused.reason,
            )
            refused.presented = (
                ("iss", issuer.url),
                ("sub", _text(shape.claims, "sub")),
                ("aud", truncate(escape(single_audience(shape.claims) or ""), _SHOWN)),
            )
            raise
        if robot.disabled:
            raise Unauthorized("robot account is disabled")
        if robot.is_expired(now):
            raise Unauthorized("robot account has expired")
        who = identity(issuer, rule, claims)
        if robot.id not in recorded:
            # Once per ID token and robot (clients resend the token with every request):
            # the robot's managers see which workload logged in, and when.
            recorded.add(robot.id)
            await self._store.add_federation_login(robot.id, int(now), who)
        self._usage.touch(robot)
        return Principal(
            PrincipalKind.ROBOT, robot.full_name(self._prefix), robot=robot, identity=who
        )

    async def _verify(
        self, token: str, issuer: Issuer, now: float
    ) -> tuple[Mapping[str, object], set[int]]:
        """The verified claims of `token`, from the memo while the token lives (keyed by its
        hash and the issuer as configured: a changed issuer checks again), and the robots
        whose login with it is recorded."""
        key = (hashlib.sha256(token.encode()).digest(), issuer)
        found = self._verified.get(key)
        if found is not None and found[1] > now:
            return found[0], found[2]
        claims = await self._verifier.verify(token, issuer)
        recorded: set[int] = set()
        exp = claims.get("exp")
        if isinstance(exp, int | float):
            self._verified.put(key, (claims, float(exp), recorded), 512 + len(token))
        return claims, recorded

    async def close(self) -> None:
        await self._verifier.close()
