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

The token exchange (RFC 8693) checks the same way (`exchange`), and more strictly: every
token that is not the robot's is refused rather than handed back for a secret check, and a
token is taken once: it must carry a `jti`, which is kept (across replicas, in the database)
until the token expires.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping

from tokenserver.domain.claims import claim_text, claim_value, match_rule, single_audience
from tokenserver.domain.claims import unverified as read_unverified
from tokenserver.domain.federation import Condition, FederationRule, Identity, Issuer
from tokenserver.domain.memo import Memo
from tokenserver.domain.models import Principal, PrincipalKind, Robot
from tokenserver.domain.secrets import Secret
from tokenserver.domain.text import escape, truncate
from tokenserver.errors import FederationRefused, Unauthorized
from tokenserver.services.oidc import LEEWAY, IdTokenVerifier
from tokenserver.services.ports import Store
from tokenserver.services.usage import UsageTracker


class _Seen:
    """What is known of one ID token (by its hash): its claims as sent, and once verified,
    for which issuer (as configured then) and until when, with what each rule made of it
    and the robots whose login with it is recorded. Parsing, matching and the identity are
    the same for the same bytes, so a token sent again (clients send it with every request)
    costs a hash and a few lookups."""

    __slots__ = ("claims", "exp", "identities", "iss", "issuer", "matches", "recorded")

    def __init__(self, claims: Mapping[str, object], iss: str) -> None:
        self.claims = claims
        self.iss = iss
        self.issuer: Issuer | None = None  # verified for this issuer
        self.exp = 0.0
        self.matches: dict[tuple[Condition, ...], str | None] = {}
        self.identities: dict[tuple[Issuer, int], Identity] = {}
        self.recorded: set[int] = set()

    def match(self, rule: FederationRule) -> str | None:
        try:
            return self.matches[rule.conditions]
        except KeyError:
            reason = self.matches[rule.conditions] = match_rule(rule.conditions, self.claims)
            return reason

    def identity(self, issuer: Issuer, rule: FederationRule) -> Identity:
        key = (issuer, rule.id)
        found = self.identities.get(key)
        if found is None:
            found = self.identities[key] = identity(issuer, rule, self.claims)
        return found


# What a refused login says to the caller when nothing is known to be genuine: the words of an
# unknown account's refusal (tokenserver.services.auth), so that neither tells anything.
INVALID_CREDENTIALS = "invalid username or password"

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


def _signed(refused: FederationRefused) -> FederationRefused:
    """`refused`, marked as the refusal of a token whose signature was good."""
    refused.signed = True
    return refused


def takes_no_id_tokens(name: str) -> str:
    """The refusal of an exchange whose token could not be for the robot: the same words
    whether the robot does not exist, has no rules, or the token is no ID token of a trusted
    issuer (or its signature is not good), so that an exchange tells no one which robots
    exist or which issuers are trusted."""
    return (
        f"the subject_token does not log in {name}: not an ID token of an issuer this server "
        "trusts, no such robot, or it has no federation rules"
    )


def _presented(claims: Mapping[str, object], iss: str) -> tuple[tuple[str, str], ...]:
    """What a refused token said it was, for the log line: never the token."""
    return (
        ("iss", truncate(escape(iss), _SHOWN)),
        ("sub", _text(claims, "sub")),
        ("aud", truncate(escape(single_audience(claims) or ""), _SHOWN)),
    )


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


def _remembered_until(claims: Mapping[str, object], now: float) -> int:
    """Until when a used `jti` must be kept: as long as its token is taken (its `exp`, with
    the verifier's leeway)."""
    exp = claims.get("exp")
    return int(exp if isinstance(exp, int | float) else now) + LEEWAY + 1


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
        # Verified tokens by their SHA-256, until they expire.
        self._seen: Memo[bytes, _Seen] = Memo(
            max_entries=_MEMO_ENTRIES, max_bytes=_MEMO_BYTES, max_entry_bytes=64 * 1024
        )

    async def authenticate(
        self,
        robot: Robot,
        password: Secret,
        *,
        single_use: bool = False,
        unsigned: str = INVALID_CREDENTIALS,
    ) -> Principal | None:
        """The robot, when `password` is an ID token one of its rules admits; None when the
        password is not for this path (not a JWT naming a trusted issuer, or a robot without
        rules): the caller checks it as the secret. Raises FederationRefused (a 401) when it is
        for this path and refused, after keeping the reason for the robot's managers, and
        Unauthorized when the token is right but the robot is disabled or expired.

        `single_use` (the exchange): a token without a `jti`, or whose `jti` was taken before
        (by any replica), is refused too.

        Until its signature is good, a token tells nothing: anyone can write one naming a
        trusted issuer. Its refusal says `unsigned` (what an unknown robot's says) and is kept
        for no one but the operator's log; the reasons of a genuine token's refusal (audience,
        times, the rules) go to the caller and the robot's managers."""
        token = password.reveal()
        if token.count(".") != 2:
            return None  # not a JWT: the cheap answer for every secret
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        seen = self._seen.get(digest)
        if seen is None:
            shape = read_unverified(token)
            if shape is None:
                return None
            iss = shape.claims.get("iss")
            if not isinstance(iss, str):
                return None
            seen = _Seen(shape.claims, iss)
        issuer = await self._store.find_issuer_by_url(seen.iss)
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
            await self._verify(token, digest, seen, issuer, now)
            claims = seen.claims
            sub = claims.get("sub")
            if not isinstance(sub, str) or not sub:
                raise _signed(FederationRefused("the token has no sub"))
            rule, reasons = None, []
            for candidate in mine:
                reason = seen.match(candidate)
                if reason is None:
                    rule = candidate
                    break
                reasons.append(f"rule {candidate.id}: {reason}")
            if rule is None:
                raise _signed(
                    FederationRefused(
                        truncate("; ".join(reasons), 1000),
                        message=f"no federation rule of {robot.full_name(self._prefix)} "
                        "admits this token",
                    )
                )
            jti: str | None = None
            if single_use:
                presented = claims.get("jti")
                if not isinstance(presented, str) or not presented:
                    raise _signed(
                        FederationRefused(
                            "the token has no jti: a token exchange takes only tokens it can use "
                            "once"
                        )
                    )
                jti = presented
        except FederationRefused as refused:
            await self._refused(robot, now, issuer, seen.claims, refused, unsigned)
            raise
        if robot.disabled:
            raise Unauthorized("robot account is disabled")
        if robot.is_expired(now):
            raise Unauthorized("robot account has expired")
        if jti is not None and not await self._store.use_jti(
            issuer.url, jti, _remembered_until(claims, now), int(now)
        ):
            replayed = _signed(
                FederationRefused(
                    "replay: this token (its jti) was exchanged before; an exchange takes each "
                    "ID token once"
                )
            )
            await self._refused(robot, now, issuer, seen.claims, replayed, unsigned)
            raise replayed
        who = seen.identity(issuer, rule)
        if robot.id not in seen.recorded:
            # Once per ID token and robot (clients resend the token with every request):
            # the robot's managers see which workload logged in, and when.
            seen.recorded.add(robot.id)
            await self._store.add_federation_login(robot.id, int(now), who)
        self._usage.touch(robot)
        return Principal(
            PrincipalKind.ROBOT, robot.full_name(self._prefix), robot=robot, identity=who
        )

    async def exchange(self, robot: Robot, token: Secret) -> Principal:
        """The robot, when `token` is an ID token one of its rules admits and that was not
        exchanged before (`authenticate` with `single_use`). Raises FederationRefused for
        every other token too: not a JWT, an issuer nobody trusts (its keys are never
        fetched), a robot without rules; Unauthorized for a disabled or expired robot."""
        principal = await self.authenticate(
            robot,
            token,
            single_use=True,
            unsigned=takes_no_id_tokens(robot.full_name(self._prefix)),
        )
        if principal is not None:
            return principal
        # Not for this robot's rules at all. The caller is told no more than for a robot that
        # does not exist (`takes_no_id_tokens`), whatever the reason: which robots exist and
        # which issuers are trusted is nothing an anonymous caller learns. The log says why.
        unknown = takes_no_id_tokens(robot.full_name(self._prefix))
        shape = read_unverified(token.reveal())
        if shape is None:
            raise FederationRefused(
                "the subject_token is not a JWT (three base64url parts, at most 8 KiB)",
                message=unknown,
            )
        iss = shape.claims.get("iss")
        if isinstance(iss, str) and await self._store.find_issuer_by_url(iss) is not None:
            refused = FederationRefused("the robot has no federation rules", message=unknown)
        else:
            refused = FederationRefused("the token's iss is not a trusted issuer", message=unknown)
        refused.presented = _presented(shape.claims, iss if isinstance(iss, str) else "")
        raise refused

    async def _refused(
        self,
        robot: Robot,
        now: float,
        issuer: Issuer,
        claims: Mapping[str, object],
        refused: FederationRefused,
        unsigned: str,
    ) -> None:
        """Keep a genuine token's refusal for the robot's managers; say only `unsigned` of any
        other (its `reason` stays, for the operator's log); and what the token said it was,
        for the log."""
        if refused.signed:
            await self._store.add_federation_failure(
                robot.id, int(now), issuer.name, _text(claims, "sub"), refused.reason
            )
        else:
            refused.message = unsigned
        refused.presented = _presented(claims, issuer.url)

    async def _verify(
        self, token: str, digest: bytes, seen: _Seen, issuer: Issuer, now: float
    ) -> None:
        """Check `token` (`seen`) unless it was verified for `issuer` as configured now and
        has not expired; remember it while it lives. Raises FederationRefused."""
        if seen.issuer == issuer and seen.exp > now:
            return
        claims = await self._verifier.verify(token, issuer)
        # NOTE: the verifier read the same bytes: its claims are `seen.claims`.
        exp = claims.get("exp")
        if isinstance(exp, int | float):
            seen.issuer, seen.exp = issuer, float(exp)
            self._seen.put(digest, seen, 1024 + 2 * len(token))

    async def close(self) -> None:
        await self._verifier.close()
