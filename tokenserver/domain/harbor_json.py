"""Harbor v2.0's JSON shapes of our models (robot, robot export, project...), each made
through its declaration in harbor_schema.py, so that no answer drifts from the document."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from tokenserver.domain.federation import (
    FederationFailure,
    FederationLogin,
    FederationRule,
    Issuer,
    TemporarySecret,
)
from tokenserver.domain.federation_rules import claims_json
from tokenserver.domain.harbor_schema import (
    ACCESS,
    AUDIT_LOG,
    AUDIT_LOG_EXT,
    FEDERATION_FAILURE,
    FEDERATION_LOGIN,
    FEDERATION_RULE,
    ISSUER,
    MEMBER,
    METRICS,
    PAYLOAD_FORMAT,
    PERMISSION,
    PERMISSION_TABLE,
    PROJECT,
    PROJECT_DELETABLE,
    PROJECT_METADATA_ENTRY,
    PROJECT_METADATA_RESP,
    PROJECT_SUMMARY,
    REFRESH_TOKEN,
    RESOURCE_ACTION,
    ROBOT,
    ROBOT_CREATED,
    ROBOT_FEDERATION,
    ROBOT_PERMISSION,
    SECRET,
    TEMPORARY_SECRET,
    USER,
    USER_SEARCH_ITEM,
    WEBHOOK_EVENT_TYPES,
    WEBHOOK_EXECUTION,
    WEBHOOK_POLICY,
    WEBHOOK_TARGET,
    WEBHOOK_TASK,
)
from tokenserver.domain.lifetimes import TokenLifetimes
from tokenserver.domain.models import (
    MAX_AUDIT_FIELD,
    AuditEntry,
    Member,
    Project,
    RefreshToken,
    Robot,
    User,
)
from tokenserver.domain.permissions import (
    HARBOR_PROJECT_PERMISSIONS,
    HARBOR_SYSTEM_PERMISSIONS,
    Permission,
    PermissionKind,
)
from tokenserver.domain.project_metadata import KEPT_METADATA_KEYS, shown_severity
from tokenserver.domain.roles import Role
from tokenserver.domain.secrets import Secret
from tokenserver.domain.text import truncate
from tokenserver.domain.webhooks import (
    EVENT_TYPES,
    MASKED,
    NOTIFY_TYPES,
    PAYLOAD_FORMATS,
    Delivery,
    DeliveryStatus,
    WebhookPolicy,
)

# The times a date can show (years 1 to 9999).
MIN_TIME, MAX_TIME = -62135596800, 253402300799


def iso_time(unix: float) -> str:
    """Harbor's date-time format: RFC 3339, UTC, milliseconds. A time past the years a date
    can show is shown as the last (or first) one: stored data from before durations were
    bounded may hold one, and a listing must not fail on it."""
    unix = min(max(unix, MIN_TIME), MAX_TIME)
    # NOTE: isoformat, not strftime's %Y, which writes year 1 as "1".
    moment = datetime.fromtimestamp(unix, UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds") + "." + (f"{int(unix * 1000) % 1000:03d}Z")


def permission_json(permission: Permission) -> dict[str, Any]:
    return ROBOT_PERMISSION.shape(
        kind=permission.kind,
        namespace=permission.namespace,
        access=[
            ACCESS.shape(resource=a.resource, action=a.action, effect=a.effect.value)
            for a in permission.access
        ],
        repositories=list(permission.repositories),
    )


def robot_json(
    robot: Robot, prefix: str, lifetimes: TokenLifetimes, *, now: float | None = None
) -> dict[str, Any]:
    """The robot as GET shows it at `now` (None: the time of the call), which decides whether
    its previous secret still works."""
    moment = time.time() if now is None else now
    return ROBOT.shape(
        id=robot.id,
        name=robot.full_name(prefix),
        description=robot.description,
        expires_at=robot.expires_at,
        duration=robot.duration,
        level=robot.level,
        disable=robot.disabled,
        editable=not robot.legacy,
        legacy=robot.legacy,
        creation_time=iso_time(robot.creation_time),
        update_time=iso_time(robot.update_time),
        permissions=[permission_json(p) for p in robot.permissions],
        last_used_at=None if robot.last_used_at is None else iso_time(robot.last_used_at),
        secret_login=robot.secret_login,
        token_lifetime=robot.token_lifetime,
        effective_token_lifetime=lifetimes.effective(robot.token_lifetime),
        previous_secret_expires_at=robot.previous_secret_until(moment),
    )


def robot_export_json(robot: Robot, prefix: str, secret: Secret) -> dict[str, Any]:
    """What Harbor returns on creation and its UI's "Export to File" saves."""
    return ROBOT_CREATED.shape(
        id=robot.id,
        name=robot.full_name(prefix),
        secret=secret.reveal(),
        creation_time=iso_time(robot.creation_time),
        expires_at=robot.expires_at,
    )


def project_metadata_json(project: Project, metadata: Mapping[str, str]) -> dict[str, Any]:
    """`public`, and the other keys the project keeps (`severity` as Harbor shows it)."""
    kept = {key: metadata.get(key) for key in KEPT_METADATA_KEYS}
    if kept["severity"] is not None:
        kept["severity"] = shown_severity(kept["severity"])
    return PROJECT_METADATA_RESP.shape(public="true" if project.public else "false", **kept)


def project_metadata_entry_json(
    project: Project, metadata: Mapping[str, str], key: str
) -> dict[str, Any]:
    """The one metadata `key` of the project as GET /metadatas/{key} shows it: {} if not held."""
    shown = project_metadata_json(project, metadata)
    return PROJECT_METADATA_ENTRY.shape(
        **{
            f.name: shown.get(f.name) if f.name == key else None
            for f in PROJECT_METADATA_ENTRY.fields
        }
    )


def project_json(
    project: Project, role: Role | None = None, metadata: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A project as Harbor shows it, with its kept `metadata` (None: `public` only)."""
    return PROJECT.shape(
        project_id=project.id,
        name=project.name,
        owner_id=project.owner_id,
        owner_name=project.owner_name,
        registry_id=None,
        deleted=False,
        togglable=True,
        repo_count=0,
        current_user_role_id=int(role) if role else 0,
        current_user_role_ids=[int(role)] if role else [],
        metadata=project_metadata_json(project, metadata or {}),
        creation_time=iso_time(project.creation_time),
        update_time=iso_time(project.update_time),
    )


def project_summary_json(members: Mapping[Role, int] | None) -> dict[str, Any]:
    """Harbor's ProjectSummary: no repositories here; member counts by role, left out for a
    caller who may not list members (None) and where 0, as Harbor does."""
    counts = members or {}
    return PROJECT_SUMMARY.shape(
        repo_count=0,
        project_admin_count=counts.get(Role.PROJECT_ADMIN, 0),
        maintainer_count=counts.get(Role.MAINTAINER, 0),
        developer_count=counts.get(Role.DEVELOPER, 0),
        guest_count=counts.get(Role.GUEST, 0),
        limited_guest_count=counts.get(Role.LIMITED_GUEST, 0),
    )


def project_deletable_json(reason: str) -> dict[str, Any]:
    return PROJECT_DELETABLE.shape(deletable=not reason, message=reason)


def user_json(user: User) -> dict[str, Any]:
    return USER.shape(
        user_id=user.id,
        username=user.username,
        email=user.email,
        realname=user.realname,
        comment=user.comment,
        sysadmin_flag=user.sysadmin,
        admin_role_in_auth=False,
        creation_time=iso_time(user.creation_time),
        update_time=iso_time(user.update_time),
    )


def user_search_json(user: User) -> dict[str, Any]:
    return USER_SEARCH_ITEM.shape(user_id=user.id, username=user.username)


def permission_json_item(resource: str, action: str) -> dict[str, Any]:
    """One entry of /users/current/permissions."""
    return PERMISSION.shape(resource=resource, action=action)


def member_json(member: Member) -> dict[str, Any]:
    return MEMBER.shape(
        id=member.id,
        project_id=member.project_id,
        entity_name=member.username,
        role_name=member.role.harbor_name,
        role_id=int(member.role),
        entity_id=member.user_id,
        entity_type="u",
    )


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    # NOTE: entries written before fields were bounded may hold a whole request body.
    return AUDIT_LOG.shape(
        id=entry.id,
        username=truncate(entry.operator, MAX_AUDIT_FIELD),
        resource=truncate(entry.resource, MAX_AUDIT_FIELD),
        resource_type=entry.resource_type,
        operation=entry.operation,
        op_time=iso_time(entry.op_time),
        outcome=entry.outcome,
    )


def audit_ext_json(entry: AuditEntry) -> dict[str, Any]:
    """An entry as Harbor's AuditLogExt: its description as Harbor words its own
    ("create robot: robot$p+ci"), its outcome a boolean."""
    resource = truncate(entry.resource, MAX_AUDIT_FIELD)
    return AUDIT_LOG_EXT.shape(
        id=entry.id,
        username=truncate(entry.operator, MAX_AUDIT_FIELD),
        resource=resource,
        resource_type=entry.resource_type,
        operation=entry.operation,
        operation_description=f"{entry.operation} {entry.resource_type}: {resource}",
        operation_result=entry.outcome == "success",
        op_time=iso_time(entry.op_time),
    )


def refresh_token_json(token: RefreshToken) -> dict[str, Any]:
    """A refresh token as listed: never the token itself, which is not stored."""
    return REFRESH_TOKEN.shape(
        id=token.id, client_id=token.client_id, created_at=iso_time(token.created_at)
    )


def permission_table_json(kinds: Iterable[PermissionKind]) -> dict[str, Any]:
    """Harbor's `GET /permissions`: its robot permission provider's lists of `kinds`, in its
    order; a kind not given is left out."""
    tables = {
        PermissionKind.SYSTEM: HARBOR_SYSTEM_PERMISSIONS,
        PermissionKind.PROJECT: HARBOR_PROJECT_PERMISSIONS,
    }
    return PERMISSION_TABLE.shape(
        **{
            kind.value: [RESOURCE_ACTION.shape(resource=r, action=a) for r, a in tables[kind]]
            if kind in kinds
            else []
            for kind in tables
        }
    )


def secret_json(secret: Secret | None, previous_until: int | None = None) -> dict[str, Any]:
    """Harbor's answer to a secret refresh: the secret it made, or `{}` for one given; with
    `previous_until`, when the secret it replaced stops working."""
    return SECRET.shape(
        secret=secret.reveal() if secret is not None else "",
        previous_secret_expires_at=previous_until,
    )


def issuer_json(issuer: Issuer) -> dict[str, Any]:
    return ISSUER.shape(
        name=issuer.name,
        url=issuer.url,
        audiences=list(issuer.audiences),
        jwks_file=issuer.jwks_file,
        ca_file=issuer.ca_file,
        max_token_lifetime=issuer.max_token_lifetime,
        creation_time=iso_time(issuer.created_at),
    )


def federation_rule_json(rule: FederationRule) -> dict[str, Any]:
    return FEDERATION_RULE.shape(
        id=rule.id,
        issuer=rule.issuer,
        claims=claims_json(rule.conditions),
        creation_time=iso_time(rule.created_at),
    )


def temporary_secret_json(secret: TemporarySecret) -> dict[str, Any]:
    """A temporary secret as listings show it: who got it and until when, never the secret."""
    who = secret.identity
    return TEMPORARY_SECRET.shape(
        id=secret.id,
        issuer=who.issuer,
        subject=who.sub,
        repository=who.repository,
        ref=who.ref,
        run_id=who.run_id,
        creation_time=iso_time(secret.created_at),
        expiry_time=iso_time(secret.expires_at),
    )


def robot_federation_json(
    rules: Iterable[FederationRule],
    warnings: Iterable[str],
    temporary_secrets: Iterable[TemporarySecret],
) -> dict[str, Any]:
    """A robot's rules as GET and PUT /robots/{id}/federation answer them."""
    return ROBOT_FEDERATION.shape(
        rules=[federation_rule_json(r) for r in rules],
        warnings=list(warnings),
        temporary_secrets=[temporary_secret_json(s) for s in temporary_secrets],
    )


def federation_login_json(login: FederationLogin) -> dict[str, Any]:
    who = login.identity
    return FEDERATION_LOGIN.shape(
        id=login.id,
        time=iso_time(login.at),
        issuer=who.issuer,
        iss=who.iss,
        subject=who.sub,
        audience=who.aud,
        rule_id=who.rule_id,
        token_expires=iso_time(who.expires_at),
        jti=who.jti,
        repository=who.repository,
        ref=who.ref,
        sha=who.sha,
        run_id=who.run_id,
    )


def federation_failure_json(failure: FederationFailure) -> dict[str, Any]:
    return FEDERATION_FAILURE.shape(
        id=failure.id,
        time=iso_time(failure.at),
        issuer=failure.issuer,
        subject=failure.subject,
        reason=failure.reason,
    )


# ---- webhooks --------------------------------------------------------------------------------


def webhook_policy_json(policy: WebhookPolicy) -> dict[str, Any]:
    """Harbor's WebhookPolicy; a target's auth header is masked (it is the receiver's
    credential, and every member of the project may read the policy)."""
    return WEBHOOK_POLICY.shape(
        id=policy.id,
        name=policy.name,
        description=policy.description,
        project_id=policy.project_id or 0,
        targets=[
            WEBHOOK_TARGET.shape(
                type=t.type,
                address=t.address,
                auth_header=MASKED if t.auth_header else "",
                skip_cert_verify=t.skip_cert_verify,
                payload_format=t.payload_format,
            )
            for t in policy.targets
        ],
        event_types=list(policy.event_types),
        creator=policy.creator,
        creation_time=iso_time(policy.creation_time),
        update_time=iso_time(policy.update_time),
        enabled=policy.enabled,
    )


def _optional_time(unix: int | None) -> str:
    return "" if unix is None else iso_time(unix)


def webhook_execution_json(delivery: Delivery) -> dict[str, Any]:
    """A delivery as Harbor's Execution of the policy (one per event and target)."""
    status = delivery.status
    done = status in (DeliveryStatus.SUCCESS, DeliveryStatus.ERROR)
    return WEBHOOK_EXECUTION.shape(
        id=delivery.id,
        vendor_type="WEBHOOK",
        vendor_id=delivery.policy_id,
        status=status.value if done else "Running",
        status_message=delivery.status_message if status is DeliveryStatus.ERROR else "",
        metrics=METRICS.shape(
            task_count=1,
            success_task_count=int(status is DeliveryStatus.SUCCESS),
            error_task_count=int(status is DeliveryStatus.ERROR),
            pending_task_count=int(status is DeliveryStatus.PENDING),
            running_task_count=int(status is DeliveryStatus.RUNNING),
            scheduled_task_count=0,
            stopped_task_count=0,
        ),
        trigger="EVENT",
        extra_attrs={
            "event_type": delivery.event_type,
            "event_id": delivery.event_id,
            "payload": delivery.payload,
            "address": delivery.target.address,
        },
        start_time=iso_time(delivery.creation_time),
        end_time=_optional_time(delivery.end_time),
    )


def webhook_task_json(delivery: Delivery) -> dict[str, Any]:
    """A delivery as the one Task of its Execution."""
    extra: dict[str, Any] = {"address": delivery.target.address}
    if delivery.status is DeliveryStatus.PENDING and delivery.attempts:
        extra["next_attempt_time"] = iso_time(delivery.next_attempt_at)
    return WEBHOOK_TASK.shape(
        id=delivery.id,
        execution_id=delivery.id,
        status=delivery.status.value,
        status_message=delivery.status_message,
        run_count=delivery.attempts,
        extra_attrs=extra,
        creation_time=iso_time(delivery.creation_time),
        update_time=iso_time(delivery.update_time),
        start_time=_optional_time(delivery.start_time),
        end_time=_optional_time(delivery.end_time),
    )


def webhook_event_types_json() -> dict[str, Any]:
    return WEBHOOK_EVENT_TYPES.shape(
        event_type=list(EVENT_TYPES),
        notify_type=list(NOTIFY_TYPES),
        payload_formats=[
            PAYLOAD_FORMAT.shape(notify_type=n, formats=list(PAYLOAD_FORMATS)) for n in NOTIFY_TYPES
        ],
    )
