"""Webhooks for robot events: policies (a project's, or the system's for system robots), the
events queued in the transaction of the change they report, the expiry sweep, and the
delivery of what is queued: claimed under a lease, tried again with backoff, at least once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import socket
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

import aiohttp

from tokenserver import __version__
from tokenserver.domain.models import SECONDS_PER_DAY, Principal, PrincipalKind, Project, Robot
from tokenserver.domain.text import escape, truncate
from tokenserver.domain.webhooks import (
    EXPIRY_NOTICE_DAYS,
    LEASE_SECONDS,
    MASKED,
    MAX_POLICIES,
    SEND_TIMEOUT_SECONDS,
    Delivery,
    DeliveryStatus,
    EventType,
    Target,
    WebhookPolicy,
    check_policy_fields,
    check_target,
    expiry_notice,
    retry_at,
    robot_payload,
)
from tokenserver.errors import BadRequest, Conflict, NotFound, Unauthorized
from tokenserver.sealing import KEY_SETTING, HeaderSeal
from tokenserver.services.access import AccessService, denied
from tokenserver.services.audit import AuditService
from tokenserver.services.ports import DeliveryOutcome, NewWebhookPolicy, Store
from tokenserver.services.projects import ProjectService

log = logging.getLogger("tokenserver.webhooks")

# The operator named in the events the expiry sweep sends.
SWEEP_OPERATOR = "tokenserver"
# Finished deliveries are kept this long for the history.
KEEP_DELIVERIES_SECONDS = 30 * SECONDS_PER_DAY
MAX_MESSAGE = 256
DROPPED = "not sent: the policy no longer has this address"
UNSEALABLE = (
    f"not sent: the auth header does not open with {KEY_SETTING} (the key file changed?); "
    "restore the key, or send the header again"
)


@dataclass(frozen=True, slots=True)
class TargetSpec:
    address: str
    auth_header: str = ""
    skip_cert_verify: bool = False
    type: str = "http"
    payload_format: str = ""


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """What a caller asks a policy to be (create and PUT)."""

    name: str
    targets: tuple[TargetSpec, ...]
    event_types: tuple[str, ...]
    description: str = ""
    enabled: bool = True


class RobotEvents:
    """Queues robot events for the policies that take them. Called inside the transaction of
    the change an event reports (the robot service's), so that both or neither are kept."""

    def __init__(
        self,
        store: Store,
        name_prefix: str,
        clock: Callable[[], float] = time.time,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._prefix = name_prefix
        self._clock = clock
        self.wake = wake

    async def robot_event(
        self,
        event_type: EventType,
        robot: Robot,
        operator: str,
        days_left: int | None = None,
    ) -> int:
        """Queue `event_type` about `robot` for its project's policies (system policies for
        a system robot); how many deliveries were queued."""
        now = int(self._clock())
        event_id = str(uuid.uuid4())
        payload = robot_payload(
            event_type.value, robot, self._prefix, operator, now, event_id, days_left
        )
        queued = await self._store.enqueue_webhook_event(
            robot.project_id,
            event_type.value,
            event_id,
            json.dumps(payload, separators=(",", ":")),
            now,
        )
        if queued:
            self.wake()
        return queued

    async def sweep_expiry(self) -> int:
        """Queue ROBOT_EXPIRING (7 and 1 days before) and ROBOT_EXPIRED for the robots due
        one, each once per robot, notice and expiry time, also when several servers sweep at
        once; forget finished deliveries older than KEEP_DELIVERIES_SECONDS. How many notices
        were sent."""
        now = int(self._clock())
        sent = 0
        for robot in await self._store.robots_expiring_by(
            now + max(EXPIRY_NOTICE_DAYS) * SECONDS_PER_DAY
        ):
            notice = expiry_notice(robot, now)
            if notice is None:
                continue
            kind, days_left = notice
            event = EventType.ROBOT_EXPIRED if days_left is None else EventType.ROBOT_EXPIRING
            async with self._store.transaction():
                if not await self._store.add_robot_notice(robot.id, kind, robot.expires_at):
                    continue
                await self.robot_event(event, robot, SWEEP_OPERATOR, days_left)
            sent += 1
        await self._store.forget_webhook_deliveries(now - KEEP_DELIVERIES_SECONDS)
        return sent


class WebhookService:
    """Webhook policies and their delivery history, with Harbor's rules for who may manage
    them: `notification-policy` in the project (projectAdmin and maintainer change them, the
    other members read them, robots as granted); system policies, system admins only.

    A target's auth header is stored sealed (`seal`, bound to the policy's id and the
    target's address): the policies this service returns hold it sealed, never in clear."""

    def __init__(
        self,
        store: Store,
        access: AccessService,
        audit: AuditService,
        projects: ProjectService,
        seal: HeaderSeal,
    ) -> None:
        self._store = store
        self._access = access
        self._audit = audit
        self._projects = projects
        self._seal = seal

    async def _scope(
        self, actor: Principal, project_ref: str | None, action: str, is_name: bool | None
    ) -> Project | None:
        """The project `project_ref` names (None: the system's policies), once `actor` may
        `action` its policies. Raises Unauthorized, Forbidden, ProjectNotFound."""
        if actor.kind is PrincipalKind.ANONYMOUS:
            # Policies are never public; whether a project exists is not told either.
            raise Unauthorized("authentication required")
        if project_ref is None:
            if not actor.sysadmin:
                raise denied(actor, f"{action} system webhook policies")
            return None
        project = await self._projects.resolve(project_ref, is_name)
        await self._access.require(actor, project, "notification-policy", action)
        return project

    async def _policy_in(self, project: Project | None, policy_id: int) -> WebhookPolicy:
        policy = await self._store.find_webhook_policy(policy_id)
        if policy is None or policy.project_id != (None if project is None else project.id):
            where = "the system" if project is None else f"project {project.name!r}"
            raise NotFound(f"webhook policy {policy_id} not found in {where}")
        return policy

    def _targets(
        self,
        specs: tuple[TargetSpec, ...],
        stored: WebhookPolicy | None,
        policy_id: int | None,
    ) -> tuple[Target, ...]:
        """The targets asked for, their new auth headers sealed for `policy_id` (None: left
        out, for a policy that has no id yet). A header sent back masked keeps the stored
        (sealed) header of the stored target with the same address, and only that one (a
        masked header must not follow a new address: it would send the receiver's credential
        elsewhere; nor would it open there)."""
        kept = {t.address: t for t in stored.targets} if stored else {}
        targets = []
        for spec in specs:
            given = "" if spec.auth_header == MASKED else spec.auth_header
            target = check_target(
                spec.address, given, spec.skip_cert_verify, spec.type, spec.payload_format
            )
            if spec.auth_header == MASKED:
                if spec.address not in kept:
                    raise BadRequest(
                        "auth_header: the masked value keeps the header of a target whose "
                        "address is unchanged; send the header itself for a new address"
                    )
                before = kept[spec.address]
                if before.auth_header and spec.skip_cert_verify and not before.skip_cert_verify:
                    # NOTE: else whoever may update a policy, but was never given its header,
                    # could have it sent where any man in the middle reads it.
                    raise BadRequest(
                        "auth_header: send the header itself to turn skip_cert_verify on; "
                        "the masked value keeps it only while the certificate is checked"
                    )
                header = before.auth_header
            elif policy_id is None:
                header = ""
            else:
                header = self._seal.seal(given, policy_id, target.address)
            targets.append(replace(target, auth_header=header))
        return tuple(targets)

    def _new(
        self,
        spec: PolicySpec,
        project: Project | None,
        creator: str,
        policy_id: int | None,
        stored: WebhookPolicy | None = None,
    ) -> NewWebhookPolicy:
        targets = self._targets(spec.targets, stored, policy_id)
        events = check_policy_fields(spec.name, spec.description, targets, spec.event_types)
        return NewWebhookPolicy(
            project_id=None if project is None else project.id,
            name=spec.name,
            description=spec.description,
            targets=targets,
            event_types=events,
            enabled=spec.enabled,
            creator=creator,
        )

    async def scope_of(self, policy_id: int) -> str | None:
        """The project (its id, as a reference) policy `policy_id` belongs to, None for a
        system policy, without authorization (the command line's operator holds the
        database). Raises NotFound."""
        policy = await self._store.find_webhook_policy(policy_id)
        if policy is None:
            raise NotFound(f"webhook policy {policy_id} not found")
        return None if policy.project_id is None else str(policy.project_id)

    async def policies(
        self, actor: Principal, project_ref: str | None, is_name: bool | None = None
    ) -> list[WebhookPolicy]:
        project = await self._scope(actor, project_ref, "list", is_name)
        return await self._store.list_webhook_policies(None if project is None else project.id)

    async def get(
        self,
        actor: Principal,
        project_ref: str | None,
        policy_id: int,
        is_name: bool | None = None,
    ) -> WebhookPolicy:
        project = await self._scope(actor, project_ref, "read", is_name)
        return await self._policy_in(project, policy_id)

    async def create(
        self,
        actor: Principal,
        project_ref: str | None,
        spec: PolicySpec,
        is_name: bool | None = None,
    ) -> WebhookPolicy:
        """Raises BadRequest, Conflict (name taken, or MAX_POLICIES in the project or the
        system already), Unauthorized, Forbidden, ProjectNotFound."""
        async with self._audit.operation(actor, "create", "webhook-policy", spec.name) as entry:
            project = await self._scope(actor, project_ref, "create", is_name)
            entry.project_id = None if project is None else project.id
            # Checked whole, and stored without its headers, before they are sealed: they are
            # sealed for the policy's id, which the database gives.
            policy = self._new(spec, project, actor.operator, None)
            if not _new_headers(spec):
                return self._added(
                    project,
                    await self._store.add_webhook_policy(
                        policy, self._projects.now(), MAX_POLICIES
                    ),
                )
            await self._seal.load()
            async with self._store.transaction():
                now = self._projects.now()
                created = self._added(
                    project, await self._store.add_webhook_policy(policy, now, MAX_POLICIES)
                )
                sealed = self._new(spec, project, actor.operator, created.id)
                await self._store.update_webhook_policy(created.id, sealed, now)
                return await self._policy_in(project, created.id)

    @staticmethod
    def _added(project: Project | None, added: WebhookPolicy | None) -> WebhookPolicy:
        if added is None:
            # NOTE: each policy's target gets a delivery of every event: the cap bounds what
            # one project queues per event (MAX_POLICIES x MAX_TARGETS).
            where = "the system has" if project is None else f"project {project.name!r} has"
            raise Conflict(
                f"{where} {MAX_POLICIES} webhook policies, the most it may have: delete one, "
                "or add a target to one of them"
            )
        return added

    async def update(
        self,
        actor: Principal,
        project_ref: str | None,
        policy_id: int,
        spec: PolicySpec,
        is_name: bool | None = None,
    ) -> WebhookPolicy:
        async with self._audit.operation(actor, "update", "webhook-policy", spec.name) as entry:
            project = await self._scope(actor, project_ref, "update", is_name)
            entry.project_id = None if project is None else project.id
            stored = await self._policy_in(project, policy_id)
            if _new_headers(spec):
                await self._seal.load()
            policy = self._new(spec, project, stored.creator, policy_id, stored)
            async with self._store.transaction():
                now = self._projects.now()
                if not await self._store.update_webhook_policy(policy_id, policy, now):
                    raise NotFound(f"webhook policy {policy_id} not found")
                # What it queued goes only where the policy sends now, as it sends now.
                await self._store.retarget_webhook_deliveries(
                    policy_id, policy.targets, now, DROPPED
                )
            return await self._policy_in(project, policy_id)

    async def set_enabled(
        self,
        actor: Principal,
        project_ref: str | None,
        policy_id: int,
        enabled: bool,
    ) -> WebhookPolicy:
        """Enable or disable a policy, keeping the rest (the command line's)."""
        project = await self._scope(actor, project_ref, "read", None)
        stored = await self._policy_in(project, policy_id)
        spec = PolicySpec(
            name=stored.name,
            targets=tuple(
                TargetSpec(t.address, MASKED if t.auth_header else "", t.skip_cert_verify, t.type)
                for t in stored.targets
            ),
            event_types=stored.event_types,
            description=stored.description,
            enabled=enabled,
        )
        return await self.update(actor, project_ref, policy_id, spec)

    async def delete(
        self,
        actor: Principal,
        project_ref: str | None,
        policy_id: int,
        is_name: bool | None = None,
    ) -> WebhookPolicy:
        async with self._audit.operation(
            actor, "delete", "webhook-policy", str(policy_id)
        ) as entry:
            project = await self._scope(actor, project_ref, "delete", is_name)
            entry.project_id = None if project is None else project.id
            policy = await self._policy_in(project, policy_id)
            entry.resource = policy.name
            if not await self._store.delete_webhook_policy(policy_id):
                raise NotFound(f"webhook policy {policy_id} not found")
            return policy

    async def deliveries(
        self,
        actor: Principal,
        project_ref: str | None,
        policy_id: int,
        offset: int,
        limit: int,
        is_name: bool | None = None,
    ) -> tuple[list[Delivery], int]:
        """A page of the policy's deliveries, newest first, and how many it has (Harbor's
        executions of the policy, each with one task)."""
        project = await self._scope(actor, project_ref, "read", is_name)
        await self._policy_in(project, policy_id)
        return await self._store.list_webhook_deliveries(policy_id, offset, limit)

    async def delivery(
        self,
        actor: Principal,
        project_ref: str | None,
        policy_id: int,
        delivery_id: int,
        is_name: bool | None = None,
    ) -> Delivery:
        project = await self._scope(actor, project_ref, "read", is_name)
        await self._policy_in(project, policy_id)
        found = await self._store.find_webhook_delivery(delivery_id)
        if found is None or found.policy_id != policy_id:
            raise NotFound(f"execution {delivery_id} not found in policy {policy_id}")
        return found


def _new_headers(spec: PolicySpec) -> bool:
    """Whether `spec` gives an auth header to seal (not only masked ones to keep)."""
    return any(t.auth_header not in ("", MASKED) for t in spec.targets)


Sender = Callable[[Delivery], Awaitable[tuple[bool, str]]]
"""Sends a delivery once: (whether the receiver took it, what to show about the try)."""


class HttpSender:
    """POSTs a delivery's payload to its target with aiohttp's client.

    NOTE: the address may be anything a project admin chose, internal ones too (as in
    Harbor). So: no redirect is followed, nothing of the answer but its status is kept or
    shown (a receiver cannot be read through the history), the request carries the target's
    own header only (never a credential of the server or its caller: no cookies, no proxy
    from the environment), and a try takes at most SEND_TIMEOUT_SECONDS."""

    def __init__(self, timeout: float = SEND_TIMEOUT_SECONDS) -> None:
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )
        return self._session

    async def __call__(self, delivery: Delivery) -> tuple[bool, str]:
        target = delivery.target
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"tokenserver-webhook/{__version__}",
        }
        if target.auth_header:
            headers["Authorization"] = target.auth_header
        try:
            async with self._http().post(
                target.address,
                data=delivery.payload.encode(),
                headers=headers,
                allow_redirects=False,
                ssl=not target.skip_cert_verify,
            ) as response:
                status = response.status
        except (aiohttp.ClientError, OSError, ValueError) as e:
            return False, self.failure(e)
        if 200 <= status < 300:
            return True, f"HTTP {status}"
        if 300 <= status < 400:
            return False, f"HTTP {status}: redirects are not followed"
        return False, f"HTTP {status}"

    def failure(self, error: BaseException) -> str:
        """What a failed try shows: a fixed category, never the error's text. The address
        may be an internal service that is no web server, and aiohttp's parse errors quote
        what it answered (an SSH banner, a database's greeting, a header line): shown in the
        history, that would make the sender a reader of internal services."""
        # NOTE: the certificate and DNS errors subclass the connection errors: checked first.
        if isinstance(error, TimeoutError):
            return f"no answer within {self._timeout:g} s"
        if isinstance(error, aiohttp.ClientConnectorCertificateError):
            return "TLS certificate not trusted"
        if isinstance(error, aiohttp.ClientSSLError | ssl.SSLError):
            return "TLS error"
        if isinstance(error, aiohttp.ClientConnectorError):
            if isinstance(error.os_error, socket.gaierror):
                return "DNS lookup failed"
            if isinstance(error.os_error, ConnectionRefusedError):
                return "connection refused"
            return "could not connect"
        if isinstance(
            error,
            aiohttp.ClientResponseError
            | aiohttp.ClientPayloadError
            | aiohttp.http_exceptions.HttpProcessingError,
        ):
            return "invalid HTTP answer"
        if isinstance(error, aiohttp.ServerDisconnectedError | ConnectionError):
            return "connection closed without an answer"
        if isinstance(error, aiohttp.InvalidURL):
            return "invalid address"
        return "could not send"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class WebhookDelivery:
    """Sends what is queued: claims due deliveries under a lease (so that one server sends
    each, also with replicas), sends them, records each outcome. A failed try is tried again
    after a backoff (domain/webhooks.py: retry_at) until MAX_ATTEMPTS; a server that dies
    holding a delivery leaves it to be taken over when the lease runs out: at least once."""

    def __init__(
        self,
        store: Store,
        send: Sender,
        clock: Callable[[], float] = time.time,
        *,
        seal: HeaderSeal,
        batch: int = 20,
        lease: int = LEASE_SECONDS,
    ) -> None:
        self._store = store
        self._send = send
        self._seal = seal
        self._clock = clock
        self._batch = batch
        self._lease = lease
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Something was queued here: look now rather than at the next poll."""
        self._wake.set()

    async def run_once(self) -> int:
        """Claim and send the deliveries due now; how many were claimed."""
        now = int(self._clock())
        owner = secrets.token_hex(16)
        claimed = await self._store.claim_webhook_deliveries(
            owner, now, now + self._lease, self._batch
        )
        policies = {
            p: await self._store.find_webhook_policy(p) for p in {d.policy_id for d in claimed}
        }
        await asyncio.gather(*(self._deliver(d, owner, policies[d.policy_id]) for d in claimed))
        return len(claimed)

    async def _opened(self, delivery: Delivery) -> Delivery | None:
        """`delivery` with its target's auth header opened; None when it does not open."""
        target = delivery.target
        if not target.auth_header:
            return delivery
        await self._seal.load()
        header = self._seal.open(target.auth_header, delivery.policy_id, target.address)
        if header is None:
            return None
        return replace(delivery, target=replace(target, auth_header=header))

    async def _deliver(self, delivery: Delivery, owner: str, policy: WebhookPolicy | None) -> None:
        # NOTE: sent as the policy is now, not as it was when the event was queued: a PUT
        # that moved it or changed its header drops or updates what it queued
        # (`retarget_webhook_deliveries`), but a try in flight then came back later.
        current = None
        if policy is not None:
            current = next(
                (t for t in policy.targets if t.address == delivery.target.address), None
            )
        if current is None:
            now = int(self._clock())
            outcome = DeliveryOutcome(DeliveryStatus.ERROR, DROPPED)
            await self._store.finish_webhook_delivery(delivery.id, owner, now, outcome)
            return
        delivery = replace(delivery, target=current)
        sealed_shut = False
        try:
            opened = await self._opened(delivery)
            if opened is None:
                # NOTE: fails closed, and is tried again like any failure: a replica given
                # another key file, or a key restored from a backup, may still send it.
                sealed_shut = True
                ok, message = False, UNSEALABLE
            else:
                ok, message = await self._send(opened)
        except Exception as e:  # a sender's bug must not lose the delivery
            log.exception("webhook delivery %d failed", delivery.id)
            ok, message = False, type(e).__name__
        now = int(self._clock())
        message = truncate(escape(message), MAX_MESSAGE)
        if ok:
            outcome = DeliveryOutcome(DeliveryStatus.SUCCESS, message)
        else:
            retry = retry_at(delivery.attempts, now)
            if retry is None:
                outcome = DeliveryOutcome(
                    DeliveryStatus.ERROR, f"{message}; gave up after {delivery.attempts} tries"
                )
            else:
                outcome = DeliveryOutcome(DeliveryStatus.PENDING, message, retry)
            if sealed_shut:
                log.error(
                    "webhook delivery %d (policy %d, %s) not sent: its auth header does not "
                    "open with %s %s (another key, or stored before headers were sealed)",
                    delivery.id,
                    delivery.policy_id,
                    delivery.event_type,
                    KEY_SETTING,
                    self._seal.path,
                )
            else:
                log.warning(
                    "webhook delivery %d (policy %d, %s) failed: %s",
                    delivery.id,
                    delivery.policy_id,
                    delivery.event_type,
                    message,
                )
        await self._store.finish_webhook_delivery(delivery.id, owner, now, outcome)

    async def run(self, poll: float = 2.0) -> None:
        """Deliver until cancelled: at once when woken, else every `poll` seconds (events
        queued by other servers and retries falling due)."""
        while True:
            self._wake.clear()
            try:
                claimed = await self.run_once()
            except Exception:
                log.exception("could not deliver webhooks")
                claimed = 0
            if claimed >= self._batch:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), poll)
