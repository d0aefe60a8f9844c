"""Every JSON body of the management API, request and response, declared once (Harbor v2.0's
field names and types). The handlers parse requests with them, domain/harbor_json.py shapes
responses with them, and the OpenAPI document's schemas are generated from them.

A response field is `omit_empty` where Harbor's answer leaves it out when empty: its server's
models are generated from its swagger with Go's `omitempty` on every field that is not marked
`x-omitempty: false` (clients tell "no comment" by the key's absence: Harbor's own tests
assert None). Fields that are never empty here are left required, which Harbor's document
allows. A field Harbor does not define is described "tokenserver: ..."."""

from __future__ import annotations

from tokenserver.domain.bodies import Array, Body, Field
from tokenserver.domain.federation import DEFAULT_MAX_TOKEN_LIFETIME
from tokenserver.domain.federation_rules import (
    ISSUER_NAME,
    MAX_AUDIENCE_LENGTH,
    MAX_AUDIENCES,
    MAX_CLAIM_LENGTH,
    MAX_CONDITIONS,
    MAX_PATTERN_LENGTH,
    MAX_PATTERNS,
    MAX_RULES,
    MAX_TOKEN_LIFETIME,
    MAX_URL_LENGTH,
    MIN_TOKEN_LIFETIME,
)
from tokenserver.domain.lifetimes import (
    FOLLOW_GLOBAL,
    LONGEST_TOKEN_LIFETIME,
    MIN_ROBOT_TOKEN_LIFETIME,
)
from tokenserver.domain.models import MAX_DURATION_DAYS, MAX_KEEP_PREVIOUS, NEVER, Level
from tokenserver.domain.names import NAME_MAX_LENGTH
from tokenserver.domain.permissions import Effect, PermissionKind
from tokenserver.domain.project_metadata import KEPT_METADATA_KEYS

# NOTE: declared with the rules on them; re-exported for code that imports it from here.
from tokenserver.domain.project_metadata import PROJECT_METADATA_KEYS as PROJECT_METADATA_KEYS
from tokenserver.domain.repositories import MAX_PATTERN_LENGTH as MAX_REPOSITORY_PATTERN
from tokenserver.domain.repositories import MAX_PATTERNS as MAX_REPOSITORY_PATTERNS
from tokenserver.domain.roles import Role
from tokenserver.domain.webhooks import (
    EVENT_TYPES,
    MASKED,
    MAX_ADDRESS,
    MAX_AUTH_HEADER,
    MAX_DESCRIPTION,
    MAX_POLICY_NAME,
    MAX_TARGETS,
    NOTIFY_TYPES,
    PAYLOAD_FORMATS,
)

TIME = "date-time"

# ---- errors ----------------------------------------------------------------------------------

ERROR = Body(None, Field("code", str), Field("message", str))
ERRORS = Body("Errors", Field("errors", Array(ERROR)))

# ---- projects --------------------------------------------------------------------------------

PROJECT_METADATA = Body(
    "ProjectMetadata", *(Field(key, str) for key in PROJECT_METADATA_KEYS), where="metadata"
)
# NOTE: `metadata.public` is text ("true"/"false", any case): the handler reads it.
PROJECT_UPDATE = Body(
    "ProjectUpdate",
    Field("project_name", str, rules={"maxLength": NAME_MAX_LENGTH}),
    Field("public", bool),
    Field("metadata", PROJECT_METADATA),
    Field("storage_limit", int, ignored=True),
    Field("registry_id", int, ignored=True),
    Field("cve_allowlist", dict, ignored=True),
    where="project",
)
PROJECT_CREATE = PROJECT_UPDATE.derive("ProjectReq", required=["project_name"])

# NOTE: a key the project does not keep is left out, as Harbor leaves out its unset ones.
PROJECT_METADATA_RESP = Body(
    None,
    Field("public", str, choices=("true", "false")),
    *(Field(key, str, omit_empty=True) for key in KEPT_METADATA_KEYS),
)
# One key of a project's metadata (GET /projects/{p}/metadatas/{key}): none for a key it
# does not hold, as in Harbor.
PROJECT_METADATA_ENTRY = Body(
    None,
    *(Field(key, str, omit_empty=True) for key in ("public", *KEPT_METADATA_KEYS)),
)
PROJECT = Body(
    "Project",
    Field("project_id", int),
    Field("name", str),
    # NOTE: no owner (a project made at the command line) is no owner_id, not null.
    Field("owner_id", int, omit_empty=True),
    Field("owner_name", str, omit_empty=True),
    Field("registry_id", int, omit_empty=True),
    Field("deleted", bool, omit_empty=True),
    Field("togglable", bool, omit_empty=True),
    Field("repo_count", int),  # x-omitempty: false
    Field("current_user_role_id", int, omit_empty=True),
    Field("current_user_role_ids", Array(int), omit_empty=True),
    Field("metadata", PROJECT_METADATA_RESP),
    Field("creation_time", str, format=TIME),
    Field("update_time", str, format=TIME),
)

PROJECT_SUMMARY = Body(
    "ProjectSummary",
    Field("repo_count", int, description="always 0: tokenserver does not see the registry"),
    # NOTE: as in Harbor, the counts are there only for a caller who may list the members,
    # and a count of 0 is left out.
    *(
        Field(f"{role}_count", int, omit_empty=True)
        for role in ("project_admin", "maintainer", "developer", "guest", "limited_guest")
    ),
)
PROJECT_DELETABLE = Body(
    "ProjectDeletable",
    Field("deletable", bool),
    Field("message", str, omit_empty=True, description="why it cannot be deleted"),
)

# ---- members ---------------------------------------------------------------------------------

MEMBER_CREATE = Body(
    "ProjectMember",
    Field("role_id", int, required=True, choices=Role),
    Field(
        "member_user",
        Body(None, Field("user_id", int), Field("username", str), where="member_user"),
    ),
    where="member",
    unsupported={"member_group": "groups are not supported; use member_user"},
)
ROLE_UPDATE = Body("RoleRequest", MEMBER_CREATE.field("role_id"), where="role")

MEMBER = Body(
    "ProjectMemberEntity",
    Field("id", int),
    Field("project_id", int),
    Field("entity_name", str),
    Field("role_name", str, choices=tuple(r.harbor_name for r in Role)),
    Field("role_id", int, choices=Role),
    Field("entity_id", int),
    Field("entity_type", str, choices=("u",)),
)

# ---- users -----------------------------------------------------------------------------------

USER_CREATE = Body(
    "UserCreationReq",
    Field("username", str, required=True),
    Field("password", str, required=True),
    Field("email", str),
    Field("realname", str),
    Field("comment", str),
    where="user",
)
PASSWORD_CHANGE = Body(
    "PasswordReq",
    Field("old_password", str),
    Field("new_password", str, required=True),
    where="password",
)
USER_PROFILE = Body(
    "UserProfile",
    Field("email", str),
    Field("realname", str),
    Field("comment", str),
    where="profile",
)
USER_SYSADMIN = Body(
    "UserSysAdminFlag", Field("sysadmin_flag", bool, required=True), where="sysadmin_flag"
)
USER_SEARCH_ITEM = Body("UserSearchRespItem", Field("user_id", int), Field("username", str))
PERMISSION = Body("Permission", Field("resource", str), Field("action", str))
USER = Body(
    "UserResp",
    Field("user_id", int),
    Field("username", str),
    Field("email", str, omit_empty=True),
    Field("realname", str, omit_empty=True),
    Field("comment", str, omit_empty=True),
    Field("sysadmin_flag", bool),  # x-omitempty: false, as admin_role_in_auth
    Field("admin_role_in_auth", bool),
    Field("creation_time", str, format=TIME),
    Field("update_time", str, format=TIME),
)

# ---- robots ----------------------------------------------------------------------------------

ACCESS = Body(
    "Access",
    Field("resource", str, required=True),
    Field("action", str, required=True),
    Field("effect", str, choices=Effect),
    where="access",
    request_name="AccessReq",
)
ROBOT_PERMISSION = Body(
    "RobotPermission",
    # NOTE: a kind outside the set is refused (and audited) where the robot is checked.
    Field("kind", str, required=True, rules={"enum": [k.value for k in PermissionKind]}),
    Field("namespace", str, required=True),
    Field("access", Array(ACCESS), required=True),
    Field(
        "repositories",
        Array(str),
        omit_empty=True,
        rules={
            "minItems": 1,
            "maxItems": MAX_REPOSITORY_PATTERNS,
            "items": {"type": "string", "minLength": 1, "maxLength": MAX_REPOSITORY_PATTERN},
        },
        description=(
            "tokenserver: project entries only: the repositories (relative to the project) "
            "its per-repository actions reach: 'app' (exact), 'team-a/*' (one path segment), "
            "'team-a/**' (any depth below team-a), '**' (every one: the default, left out)"
        ),
    ),
    where="permission",
    request_name="RobotPermissionReq",
)

ROBOT = Body(
    "Robot",
    Field("id", int),
    Field("name", str),
    Field("description", str, omit_empty=True),
    Field("expires_at", int, description="Unix seconds, -1 for never"),
    Field("duration", int, description="days, -1 for never"),
    Field("level", str, choices=Level),
    Field("disable", bool),  # x-omitempty: false, as editable
    Field("editable", bool),
    Field("legacy", bool, description="tokenserver: a legacy (pre-Harbor 2.2) robot"),
    Field("creation_time", str, format=TIME),
    Field("update_time", str, format=TIME),
    Field("permissions", Array(ROBOT_PERMISSION), omit_empty=True),
    Field(
        "last_used_at",
        str,
        nullable=True,
        format=TIME,
        description="tokenserver: when the robot last authenticated (null: never)",
    ),
    Field(
        "secret_login",
        bool,
        description=(
            "tokenserver: whether the robot's secret logs it in; false: only its federation "
            "rules do (a robot without rules keeps it)"
        ),
    ),
    Field(
        "token_lifetime",
        int,
        omit_empty=True,
        description=(
            "tokenserver: seconds the robot's registry tokens last, as set for it; absent: "
            "it has none of its own (token.lifetime)"
        ),
    ),
    Field(
        "effective_token_lifetime",
        int,
        description=(
            "tokenserver: seconds the robot's registry tokens last now: its token_lifetime "
            "capped at token.max_lifetime, or token.lifetime"
        ),
    ),
    Field(
        "previous_secret_expires_at",
        int,
        omit_empty=True,
        description=(
            "tokenserver: Unix seconds when the secret a refresh with keep_previous_for "
            "replaced stops working; absent when there is none that works"
        ),
    ),
)
_TOKEN_LIFETIME = Field(
    "token_lifetime",
    int,
    rules={"minimum": FOLLOW_GLOBAL, "maximum": LONGEST_TOKEN_LIFETIME},
    description=(
        f"tokenserver: seconds the robot's registry tokens last, {MIN_ROBOT_TOKEN_LIFETIME} to "
        f"token.max_lifetime; {FOLLOW_GLOBAL}: none of its own (token.lifetime); absent: "
        "none on create, the robot's own kept on update"
    ),
)
_ROBOT_WRITABLE = (
    "name",
    "description",
    "level",
    "disable",
    "duration",
    "permissions",
    "secret_login",
    "token_lifetime",
)
_ROBOT_REQUIRED = ("name", "level", "duration", "permissions")
ROBOT_CREATE = ROBOT.derive(
    "RobotCreate",
    required=_ROBOT_REQUIRED,
    without=[f.name for f in ROBOT.fields if f.name not in _ROBOT_WRITABLE],
    replacing=[
        Field(
            "duration",
            int,
            rules={"minimum": NEVER, "maximum": MAX_DURATION_DAYS},
            description=f"days (1 to {MAX_DURATION_DAYS}), -1 for never",
        ),
        _TOKEN_LIFETIME,
    ],
    also=[Field("secret", str, description="tokenserver: a chosen secret instead of one made")],
    where="robot",
)
# PUT takes the robot as GET shows it (Terraform sends it back whole): read-only fields are
# accepted and ignored. Without `duration` the robot keeps its own, as in Harbor.
ROBOT_UPDATE = ROBOT.derive(
    "RobotUpdate",
    required=tuple(f for f in _ROBOT_REQUIRED if f != "duration"),
    ignored=[f.name for f in ROBOT.fields if f.name not in _ROBOT_WRITABLE],
    # NOTE: not bounded here: the duration a robot has kept since before durations were
    # bounded may be sent back as it is (a PUT that only disables it).
    replacing=[
        Field(
            "duration",
            int,
            description=(
                f"days: a new one 1 to {MAX_DURATION_DAYS}, or -1 for never; "
                "the robot's own (or none) keeps its duration and expiry"
            ),
        ),
        _TOKEN_LIFETIME,
    ],
    also=[Field("secret", str, ignored=True)],
    where="robot",
)
ROBOT_CREATED = Body(
    "RobotCreated",
    Field("id", int),
    Field("name", str),
    Field("secret", str),
    Field("creation_time", str, format=TIME),
    Field("expires_at", int),
)
SECRET_REFRESH = Body(
    "RobotSecReq",
    Field("secret", str),
    Field(
        "restart_expiry",
        bool,
        description="tokenserver: also restart the expiry period from now",
    ),
    Field(
        "keep_previous_for",
        int,
        rules={"minimum": 0, "maximum": MAX_KEEP_PREVIOUS},
        description=(
            "tokenserver: seconds the secret replaced keeps working beside the new one "
            f"(at most {MAX_KEEP_PREVIOUS}, 30 days; never past the robot's expiry), with "
            "its refresh tokens; absent or 0: it stops at once, as in Harbor"
        ),
    ),
    where="robot secret",
)
# Harbor leaves `secret` out when it is empty: the answer to a secret given is `{}`.
SECRET = Body(
    "RobotSec",
    Field("secret", str, omit_empty=True),
    Field(
        "previous_secret_expires_at",
        int,
        omit_empty=True,
        description=(
            "tokenserver: Unix seconds when the secret replaced stops working (only with "
            "keep_previous_for)"
        ),
    ),
)
REFRESH_TOKEN = Body(
    "RefreshToken",
    Field("id", int),
    Field("client_id", str),
    Field("created_at", str, format=TIME),
)

# ---- robot federation (tokenserver) ----------------------------------------------------------

_ISSUER_NAME = f"^{ISSUER_NAME.pattern}$"
ISSUER = Body(
    "FederationIssuer",
    Field("name", str, rules={"pattern": _ISSUER_NAME}),
    Field(
        "url",
        str,
        rules={"maxLength": MAX_URL_LENGTH},
        description=(
            "compared exactly with an ID token's iss: https://HOST[/PATH], or http:// on a "
            "loopback address; no user, query or fragment"
        ),
    ),
    Field(
        "audiences",
        Array(str),
        rules={
            "minItems": 1,
            "maxItems": MAX_AUDIENCES,
            "items": {"type": "string", "minLength": 1, "maxLength": MAX_AUDIENCE_LENGTH},
        },
        description="a token's aud must be exactly one of these",
    ),
    Field(
        "jwks_file",
        str,
        omit_empty=True,
        description="an absolute path on the server: the issuer's keys, when they cannot be "
        "fetched (none: from its discovery document)",
    ),
    Field(
        "ca_file",
        str,
        omit_empty=True,
        description="an absolute path on the server: the CA bundle its HTTPS server is checked "
        "against (none: the system's)",
    ),
    Field(
        "max_token_lifetime",
        int,
        rules={"minimum": MIN_TOKEN_LIFETIME, "maximum": MAX_TOKEN_LIFETIME},
        description="seconds: the longest an ID token may live (exp - iat)",
    ),
    Field("creation_time", str, format=TIME),
)
ISSUER_CREATE = ISSUER.derive(
    "FederationIssuerCreate",
    required=["name", "url", "audiences"],
    without=["creation_time"],
    replacing=[
        Field(
            "max_token_lifetime",
            int,
            rules={"minimum": MIN_TOKEN_LIFETIME, "maximum": MAX_TOKEN_LIFETIME},
            description=f"seconds (default {DEFAULT_MAX_TOKEN_LIFETIME}): the longest an ID "
            "token may live (exp - iat)",
        )
    ],
    where="issuer",
)
_CLAIMS_RULES = {
    "minProperties": 1,
    "maxProperties": MAX_CONDITIONS,
    "propertyNames": {"minLength": 1, "maxLength": MAX_CLAIM_LENGTH},
    "additionalProperties": {
        "anyOf": [
            {"type": "string", "minLength": 1, "maxLength": MAX_PATTERN_LENGTH},
            {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_PATTERNS,
                "items": {"type": "string", "minLength": 1, "maxLength": MAX_PATTERN_LENGTH},
            },
        ]
    },
}
FEDERATION_RULE = Body(
    "FederationRule",
    Field("id", int),
    Field("issuer", str, description="the issuer's name"),
    Field(
        "claims",
        dict,
        rules=_CLAIMS_RULES,
        description=(
            "claim (a dotted path reaches a nested one) to a pattern or a list of patterns, "
            "each exact or a glob (*, ?, [...], case-sensitive); every claim must match one "
            "of its patterns. A rule must pin a claim beyond iss and aud; exp, iat, nbf and "
            "jti cannot be named"
        ),
    ),
    Field("creation_time", str, format=TIME),
)
# A PUT may send the rules back as GET shows them: their ids and times are ignored.
FEDERATION_RULE_REQ = FEDERATION_RULE.derive(
    "FederationRuleReq",
    required=["issuer", "claims"],
    ignored=["id", "creation_time"],
    where="rule",
)
TEMPORARY_SECRET = Body(
    "TemporarySecret",
    Field("id", int),
    Field("issuer", str, description="the issuer's name"),
    Field("subject", str, description="the sub of the ID token exchanged for it"),
    Field("repository", str, omit_empty=True, description="the token's repository, if any"),
    Field("ref", str, omit_empty=True, description="the token's ref, if any"),
    Field("run_id", str, omit_empty=True, description="the token's run (pipeline) id, if any"),
    Field("creation_time", str, format=TIME),
    Field("expiry_time", str, format=TIME),
)
ROBOT_FEDERATION = Body(
    "RobotFederation",
    Field(
        "rules", Array(FEDERATION_RULE), description="by id; a token matching any one is the robot"
    ),
    Field(
        "warnings",
        Array(str),
        description="rules weaker than they look (GitHub or GitLab rules that pin no immutable id)",
    ),
    Field(
        "temporary_secrets",
        Array(TEMPORARY_SECRET),
        omit_empty=True,
        description="the live temporary secrets token exchanges handed out (never the secrets), "
        "newest first: which workload got each, and until when it works (none: left out)",
    ),
)
ROBOT_FEDERATION_UPDATE = Body(
    "RobotFederationUpdate",
    Field(
        "rules",
        Array(FEDERATION_RULE_REQ),
        required=True,
        rules={"maxItems": MAX_RULES},
        description="the robot's rules from now on (none: it has none)",
    ),
    Field("warnings", Array(str), ignored=True),
    # NOTE: objects of any shape: the secrets as GET shows them, sent back, are dropped.
    Field("temporary_secrets", Array(dict), ignored=True),
    where="federation",
)
FEDERATION_FAILURE = Body(
    "FederationFailure",
    Field("id", int),
    Field("time", str, format=TIME),
    Field("issuer", str, description="the issuer's name, or the token's iss"),
    Field("subject", str, description="the token's sub"),
    Field("reason", str, description="why it was refused: which claim did not match"),
)
FEDERATION_LOGIN = Body(
    "FederationLogin",
    Field("id", int),
    Field("time", str, format=TIME),
    Field("issuer", str, description="the issuer's name"),
    Field("iss", str),
    Field("subject", str, description="the token's sub"),
    Field("audience", str, description="the token's aud"),
    Field("rule_id", int, description="the rule that admitted it"),
    Field("token_expires", str, format=TIME, description="when the ID token expired"),
    Field("jti", str, description="the token's jti (empty when it had none)"),
    Field("repository", str, description="GitHub's repository or GitLab's project_path"),
    Field("ref", str),
    Field("sha", str),
    Field("run_id", str, description="GitHub's run_id or GitLab's pipeline_id"),
)

# ---- permissions, audit log ------------------------------------------------------------------

RESOURCE_ACTION = Body(None, Field("resource", str), Field("action", str))
# Harbor leaves out `system` for a caller who may not see it (a project admin).
PERMISSION_TABLE = Body(
    None,
    Field("system", Array(RESOURCE_ACTION), omit_empty=True),
    Field("project", Array(RESOURCE_ACTION), omit_empty=True),
)
AUDIT_LOG = Body(
    "AuditLog",
    Field("id", int),
    Field("username", str, omit_empty=True),
    Field("resource", str, omit_empty=True),
    Field("resource_type", str),
    Field("operation", str),
    Field("op_time", str, format=TIME),
    Field("outcome", str, description="tokenserver: success, or failure: CODE"),
)
AUDIT_LOG_EXT = Body(
    "AuditLogExt",
    Field("id", int),
    Field("username", str),
    Field("resource", str),
    Field("resource_type", str),
    Field("operation", str),
    Field("operation_description", str),
    Field("operation_result", bool, description="true: it succeeded"),
    Field("op_time", str, format=TIME),
)

# ---- webhook policies ------------------------------------------------------------------------

WEBHOOK_TARGET = Body(
    "WebhookTargetObject",
    Field("type", str, choices=NOTIFY_TYPES, description="the notify type: http (default)"),
    Field(
        "address",
        str,
        required=True,
        rules={"maxLength": MAX_ADDRESS},
        description=(
            "http:// or https:// URL the events are POSTed to (any host, internal ones too; "
            "no user or password, no fragment); redirects are not followed"
        ),
    ),
    Field(
        "auth_header",
        str,
        omit_empty=True,
        rules={"maxLength": MAX_AUTH_HEADER},
        description=(
            f"the Authorization header sent with each event; answers show {MASKED!r} for "
            "one that is set, which a PUT may send back to keep it (same address only)"
        ),
    ),
    Field("skip_cert_verify", bool, description="do not check the receiver's certificate"),
    Field("payload_format", str, choices=PAYLOAD_FORMATS, description="Default (the only one)"),
    where="target",
    request_name="WebhookTargetObjectReq",
)
WEBHOOK_POLICY = Body(
    "WebhookPolicy",
    Field("id", int),
    Field("name", str, rules={"minLength": 1, "maxLength": MAX_POLICY_NAME}),
    Field("description", str, omit_empty=True, rules={"maxLength": MAX_DESCRIPTION}),
    Field("project_id", int, omit_empty=True, description="absent for a system policy"),
    Field(
        "targets",
        Array(WEBHOOK_TARGET),
        rules={"minItems": 1, "maxItems": MAX_TARGETS},
    ),
    Field(
        "event_types",
        Array(str),
        rules={"minItems": 1, "items": {"type": "string", "enum": list(EVENT_TYPES)}},
        description="the robot events sent: " + ", ".join(EVENT_TYPES),
    ),
    Field("creator", str),
    Field("creation_time", str, format=TIME),
    Field("update_time", str, format=TIME),
    Field("enabled", bool),  # x-omitempty: false
)
# PUT takes the policy as GET shows it: its read-only fields are accepted and ignored.
WEBHOOK_POLICY_REQ = WEBHOOK_POLICY.derive(
    "WebhookPolicyReq",
    required=["name", "targets", "event_types"],
    ignored=["id", "project_id", "creator", "creation_time", "update_time"],
    replacing=[Field("enabled", bool, description="default true")],
    where="policy",
)
METRICS = Body(
    "Metrics",
    Field("task_count", int),
    Field("success_task_count", int),
    Field("error_task_count", int),
    Field("pending_task_count", int),
    Field("running_task_count", int),
    Field("scheduled_task_count", int),
    Field("stopped_task_count", int),
)
WEBHOOK_EXECUTION = Body(
    "Execution",
    Field("id", int),
    Field("vendor_type", str, description="WEBHOOK"),
    Field("vendor_id", int, description="the policy's id"),
    Field("status", str, description="Running (not delivered yet), Success or Error"),
    Field("status_message", str, omit_empty=True),
    Field("metrics", METRICS),
    Field("trigger", str, description="EVENT"),
    Field(
        "extra_attrs",
        dict,
        description="event_type, event_id, payload (what the receiver gets) and address",
    ),
    Field("start_time", str, omit_empty=True, format=TIME),
    Field("end_time", str, omit_empty=True, format=TIME),
)
WEBHOOK_TASK = Body(
    "Task",
    Field("id", int),
    Field("execution_id", int),
    Field(
        "status",
        str,
        description="Pending (waiting for a try), Running, Success, Error (gave up)",
    ),
    Field("status_message", str, omit_empty=True, description="the last try's outcome"),
    Field("run_count", int, description="tries so far"),
    Field(
        "extra_attrs",
        dict,
        description="address, and next_attempt_time while a failed delivery waits",
    ),
    Field("creation_time", str, format=TIME),
    Field("update_time", str, format=TIME),
    Field("start_time", str, omit_empty=True, format=TIME),
    Field("end_time", str, omit_empty=True, format=TIME),
)
PAYLOAD_FORMAT = Body("PayloadFormat", Field("notify_type", str), Field("formats", Array(str)))
WEBHOOK_EVENT_TYPES = Body(
    "SupportedWebhookEventTypes",
    Field("event_type", Array(str)),
    Field("notify_type", Array(str)),
    Field("payload_formats", Array(PAYLOAD_FORMAT)),
)
