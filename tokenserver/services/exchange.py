"""The token exchange (RFC 8693): a workload's OIDC ID token, presented once, for the robot it
names. Who the workload is gets checked exactly as for a direct login (`FederatedLogin`), with
the robot's rules, state and permissions; here each token is taken once, across replicas, and
whatever is refused is a 401 (never a fallback to the robot's secret).

Refusals count in the brute-force lock-outs as a wrong secret does, under the robot's name and
the client's address; those the robot's rules refused are kept for its managers.
"""

from __future__ import annotations

from tokenserver.domain.exchange import Exchange
from tokenserver.domain.models import Principal
from tokenserver.domain.names import RobotName, parse_robot_name
from tokenserver.errors import BadRequest, FederationRefused, Unauthorized
from tokenserver.services.federated_login import FederatedLogin, takes_no_id_tokens
from tokenserver.services.ports import Store
from tokenserver.services.temporary_secrets import IssuedSecret, TemporarySecrets
from tokenserver.services.throttle import Throttle


class TokenExchange:
    def __init__(
        self,
        store: Store,
        federation: FederatedLogin,
        secrets: TemporarySecrets,
        name_prefix: str,
        throttle: Throttle | None = None,
    ) -> None:
        self._store = store
        self._federation = federation
        self._secrets = secrets
        self._prefix = name_prefix
        self._throttle = throttle

    async def authenticate(self, exchange: Exchange, address: str) -> Principal:
        """The robot `exchange.robot`, logged in as the workload whose ID token this is.
        Raises BadRequest (the robot is not named by a robot's full name: RFC 8693's
        invalid_target), TooManyRequests (the robot and client are locked out),
        FederationRefused (not the robot's token, a token taken before, no such robot or one
        without rules: a 401), Unauthorized (a disabled or expired robot)."""
        name = parse_robot_name(self._prefix, exchange.robot)
        if name is None:
            raise BadRequest(
                f"resource (or audience) must be a robot's full name: {self._prefix}PROJECT+NAME "
                f"or {self._prefix}NAME"
            )
        try:
            return await self._authenticate(name, exchange)
        except Unauthorized:
            # As at the direct login: a genuine token is never refused by a lock-out; every
            # refused one counts, and gets 429 while the robot and client are locked out.
            if self._throttle is not None:
                try:
                    self._throttle.check(exchange.robot, address)
                finally:
                    await self._throttle.failed(
                        exchange.robot, address, exchange.subject_token.reveal()
                    )
            raise

    async def _authenticate(self, name: RobotName, exchange: Exchange) -> Principal:
        robot = await self._store.find_robot(name.project, name.name)
        if robot is None:
            raise FederationRefused("no such robot", message=takes_no_id_tokens(exchange.robot))
        return await self._federation.exchange(robot, exchange.subject_token)

    async def issue_secret(self, principal: Principal) -> IssuedSecret:
        """A temporary secret of the robot `principal` (an exchange's) logged in as."""
        return await self._secrets.issue(principal)
