"""Webhooks for robot events, shaped like Harbor's project webhook policies: the event types,
a policy's targets and their checks, the payload a receiver gets (never a secret), and when a
failed delivery is tried again."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from tokenserver.domain.models import NEVER, SECONDS_PER_DAY, Robot
from tokenserver.errors import BadRequest


class EventType(StrEnum):
    ROBOT_CREATED = "ROBOT_CREATED"
    ROBOT_DELETED = "ROBOT_DELETED"
    ROBOT_SECRET_REFRESHED = "ROBOT_SECRET_REFRESHED"  # noqa: S105 (an event name)
    ROBOT_DISABLED = "ROBOT_DISABLED"
    ROBOT_ENABLED = "ROBOT_ENABLED"
    ROBOT_EXPIRING = "ROBOT_EXPIRING"
    ROBOT_EXPIRED = "ROBOT_EXPIRED"


EVENT_TYPES = tuple(e.value for e in EventType)
# Harbor's notify types and payload formats that tokenserver sends (Harbor also has slack and
# CloudEvents).
NOTIFY_TYPES = ("http",)
PAYLOAD_FORMATS = ("Default",)
DEFAULT_PAYLOAD_FORMAT = "Default"

# ROBOT_EXPIRING is sent this many days before a robot expires (the nearest threshold only:
# a robot created to live one day gets the 1-day notice, never the 7-day one).
EXPIRY_NOTICE_DAYS = (7, 1)

MAX_POLICY_NAME = 255
MAX_DESCRIPTION = 1024
MAX_TARGETS = 10
# Policies a project (and the system) may have: each event queues a delivery per target of
# each policy, so this bounds what one project's event queues (Harbor has no cap).
MAX_POLICIES = 20
MAX_ADDRESS = 2048
MAX_AUTH_HEADER = 4096
# What answers show for an auth header a target holds: the header is the receiver's
# credential. A PUT that sends it back keeps the stored header of a target whose address is
# unchanged.
MASKED = "******"

# A delivery is tried at most this often; the waits between tries double from the first,
# up to the last (about 11 hours in all, so a receiver's outage of a night is survived).
MAX_ATTEMPTS = 20
FIRST_RETRY_SECONDS = 5
LONGEST_RETRY_SECONDS = 3600
# How long a server may hold a claimed delivery before another one takes it over (it died):
# longer than a try can take.
SEND_TIMEOUT_SECONDS = 10
LEASE_SECONDS = 60


class DeliveryStatus(StrEnum):
    """Harbor's task statuses that a webhook delivery goes through."""

    PENDING = "Pending"  # waiting for its first try, or for the next one after a failure
    RUNNING = "Running"  # a server is sending it now
    SUCCESS = "Success"  # the receiver answered 2xx
    ERROR = "Error"  # every try failed: given up


@dataclass(frozen=True, slots=True)
class Target:
    """Where a policy sends events: an http(s) address, the `Authorization` header value to
    send (empty: none), and whether the receiver's certificate is left unchecked. A stored
    target's header is sealed (services/webhooks.py); it is in clear only while checked
    and while sent."""

    address: str
    auth_header: str = ""
    skip_cert_verify: bool = False
    type: str = "http"
    payload_format: str = DEFAULT_PAYLOAD_FORMAT


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    """A project's policy (`project_id`), or a system policy (None) for system robots."""

    id: int
    project_id: int | None
    name: str
    description: str
    targets: tuple[Target, ...]
    event_types: tuple[str, ...]
    creator: str
    enabled: bool
    creation_time: int
    update_time: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event sent to one target of a policy: Harbor's execution and its one task (the
    same id)."""

    id: int
    policy_id: int
    event_type: str
    event_id: str
    payload: str
    target: Target
    status: DeliveryStatus
    attempts: int
    next_attempt_at: int
    status_message: str
    creation_time: int
    update_time: int
    start_time: int | None
    end_time: int | None


def check_address(text: str) -> str:
    """A target's address: an absolute http or https URL with a host, no user or password
    (send credentials with `auth_header`) and no fragment; at most MAX_ADDRESS characters,
    no whitespace or control character. Any host is allowed (as in Harbor, a receiver may be
    internal); the sender never follows a redirect and never shows what it answered."""
    if len(text) > MAX_ADDRESS:
        raise BadRequest(f"webhook address longer than {MAX_ADDRESS} characters")
    # NOTE: isprintable() also refuses format characters and lone surrogates (bytes that
    # were not UTF-8), which no request can carry.
    if " " in text or not text.isprintable():
        raise BadRequest(
            "webhook address must not contain spaces or control, invisible or format characters"
        )
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as e:
        raise BadRequest(f"webhook address is not a valid URL: {e}") from None
    if parts.scheme not in ("http", "https"):
        raise BadRequest("webhook address must start with http:// or https://")
    if not parts.hostname:
        raise BadRequest("webhook address must name a host")
    if parts.username is not None or parts.password is not None:
        raise BadRequest(
            "webhook address must not hold a user or password: send credentials in auth_header"
        )
    if parts.fragment or text.endswith("#"):
        raise BadRequest("webhook address must not hold a fragment (#...)")
    if port == 0:
        raise BadRequest("webhook address must not use port 0")
    return text


def check_target(
    address: str,
    auth_header: str = "",
    skip_cert_verify: bool = False,
    type_: str = "http",
    payload_format: str = "",
) -> Target:
    if type_ not in NOTIFY_TYPES:
        raise BadRequest(f"unsupported target type {type_!r}: only 'http' is")
    if payload_format and payload_format not in PAYLOAD_FORMATS:
        raise BadRequest(f"unsupported payload format {payload_format!r}: only 'Default' is")
    if len(auth_header) > MAX_AUTH_HEADER:
        raise BadRequest(f"auth_header longer than {MAX_AUTH_HEADER} characters")
    if any(c in auth_header for c in "\r\n\x00"):
        raise BadRequest("auth_header must not contain line breaks or NUL characters")
    if any("\ud800" <= c <= "\udfff" for c in auth_header):
        raise BadRequest("auth_header is not valid Unicode (bytes that were not UTF-8?)")
    return Target(
        check_address(address),
        auth_header,
        skip_cert_verify,
        type_,
        payload_format or DEFAULT_PAYLOAD_FORMAT,
    )


def check_policy_fields(
    name: str, description: str, targets: tuple[Target, ...], event_types: tuple[str, ...]
) -> tuple[str, ...]:
    """Check what a policy is made of; its event types without repeats, in order."""
    if not name or len(name) > MAX_POLICY_NAME:
        raise BadRequest(f"webhook policy name must be 1 to {MAX_POLICY_NAME} characters")
    if name != name.strip():
        raise BadRequest("webhook policy name must not begin or end with whitespace")
    # NOTE: isprintable() is False for controls, format characters (zero-width spaces,
    # bidi overrides), separators but the ASCII space, and lone surrogates: names that look
    # like another policy's, or read differently than they are.
    if not name.isprintable():
        raise BadRequest(
            "webhook policy name must not contain control characters, invisible or format "
            "characters (such as U+200B), or spaces other than ' '"
        )
    if len(description) > MAX_DESCRIPTION:
        raise BadRequest(f"description longer than {MAX_DESCRIPTION} characters")
    if "\x00" in description:
        raise BadRequest("description must not contain NUL characters")
    if any("\ud800" <= c <= "\udfff" for c in description):
        raise BadRequest("description is not valid Unicode (bytes that were not UTF-8?)")
    if not targets:
        raise BadRequest(f"empty notification target with policy {name}")
    if len(targets) > MAX_TARGETS:
        raise BadRequest(f"a webhook policy has at most {MAX_TARGETS} targets")
    if not event_types:
        raise BadRequest("empty event type")
    for event_type in event_types:
        if event_type not in EVENT_TYPES:
            raise BadRequest(
                f"unsupported event type {event_type}: tokenserver sends {', '.join(EVENT_TYPES)}"
            )
    return tuple(dict.fromkeys(event_types))


def retry_at(attempts: int, now: int) -> int | None:
    """When to try again after the `attempts`-th try failed; None: give up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    wait = min(FIRST_RETRY_SECONDS << max(attempts - 1, 0), LONGEST_RETRY_SECONDS)
    return now + wait


def expiry_notice(robot: Robot, now: int) -> tuple[str, int | None] | None:
    """The expiry notice `robot` is due at `now`: (its kind, the days left for
    ROBOT_EXPIRING, None for ROBOT_EXPIRED); None when none is. A robot gets each notice
    once per expiry time (restarting its expiry makes the notices due again)."""
    if robot.expires_at == NEVER:
        return None
    if robot.expires_at <= now:
        return EventType.ROBOT_EXPIRED.value, None
    left = robot.expires_at - now
    due = [days for days in EXPIRY_NOTICE_DAYS if left <= days * SECONDS_PER_DAY]
    if not due:
        return None
    return f"{EventType.ROBOT_EXPIRING.value}:{min(due)}", min(due)


def robot_payload(
    event_type: str,
    robot: Robot,
    prefix: str,
    operator: str,
    occur_at: int,
    event_id: str,
    days_left: int | None = None,
) -> dict[str, Any]:
    """What a receiver gets, in Harbor's Default format (`type`, `occur_at`, `operator`,
    `event_data`), with the event's id for receivers to drop repeats (delivery is at least
    once). Names, times and state only: never a secret, its hash or a policy's auth header."""
    data: dict[str, Any] = {
        "robot": {
            "id": robot.id,
            "name": robot.full_name(prefix),
            "level": robot.level.value,
            "project_id": robot.project_id,
            "project_name": robot.project_name,
            "disable": robot.disabled,
            "duration": robot.duration,
            "expires_at": robot.expires_at,
            "creation_time": robot.creation_time,
        }
    }
    if days_left is not None:
        data["days_left"] = days_left
    return {
        "type": event_type,
        "occur_at": occur_at,
        "operator": operator,
        "event_id": event_id,
        "event_data": data,
    }
