"""Harbor's project metadata (`metadata` of a project body): which keys a project keeps, how a
request's values are checked, how kept values are shown.

Every value is a string, as in Harbor. tokenserver acts on `public` alone (a column of its own);
it keeps the other keys so that clients that set them (Harbor's UI, Terraform's provider) read
back what they wrote, as Harbor would answer them."""

from __future__ import annotations

from collections.abc import Mapping

from tokenserver.errors import BadRequest

# Every key of Harbor's ProjectMetadata, in its swagger's order.
PROJECT_METADATA_KEYS = (
    "public",
    "enable_content_trust",
    "enable_content_trust_cosign",
    "prevent_vul",
    "severity",
    "auto_scan",
    "auto_sbom_generation",
    "reuse_sys_cve_allowlist",
    "retention_id",
    "proxy_speed_kb",
    "max_upstream_conn",
    "proxy_cache_local_on_not_found",
    "proxy_referrer_api",
    "proxy_cache_filter_pattern",
    "proxy_cache_filter_kind",
)

# NOTE: Harbor drops these on create and update of a project that is not a proxy cache (and
# never shows the filter keys of one); no project here is a proxy cache.
PROXY_CACHE_ONLY = frozenset(
    {"proxy_speed_kb", "max_upstream_conn", "proxy_cache_filter_pattern", "proxy_cache_filter_kind"}
)
# The id of the tag retention policy Harbor makes for a project: no project here has one.
RETENTION_ID = "retention_id"

# What a project keeps besides `public`, in Harbor's order.
KEPT_METADATA_KEYS = tuple(
    k
    for k in PROJECT_METADATA_KEYS
    if k not in PROXY_CACHE_ONLY and k not in ("public", RETENTION_ID)
)

# Harbor's project_metadata.value is a varchar(255).
MAX_METADATA_VALUE = 255

_SEVERITIES = ("none", "low", "medium", "high", "critical")


def metadata_to_keep(metadata: Mapping[str, str], *, creating: bool) -> dict[str, str]:
    """The keys of a request's `metadata` (`public` aside) that the project keeps, as Harbor's
    create (`creating`) and update do. Raises BadRequest for a value longer than Harbor
    stores, and for a `retention_id` (Harbor's messages): on create only an empty one is
    accepted, and no update may name one, as no project here has a retention policy."""
    retention = metadata.get(RETENTION_ID)
    if retention is not None:
        if not creating:
            raise BadRequest(
                "the retention_id in the request's payload when updating a project should be "
                "omitted, alternatively passing the one that has already been associated to "
                "this project"
            )
        if retention:
            raise BadRequest(
                "the retention_id in the request's payload when creating a project should be "
                "omitted, alternatively passing an empty string"
            )
    kept = {k: v for k, v in metadata.items() if k in KEPT_METADATA_KEYS}
    for key, value in kept.items():
        if len(value) > MAX_METADATA_VALUE:
            raise BadRequest(f"metadata.{key} is longer than {MAX_METADATA_VALUE} characters")
        if "\x00" in value:
            # NOTE: PostgreSQL cannot store one and SQLite can: refused on both alike.
            raise BadRequest(f"metadata.{key} must not contain a NUL character")
    return kept


def shown_severity(value: str) -> str:
    """A kept `severity` as Harbor shows it: a CVSS v3 rating in lower case (`negligible` is
    `none`), `unknown` for anything else."""
    rating = value.lower()
    if rating == "negligible":
        return "none"
    return rating if rating in _SEVERITIES else "unknown"


# What Harbor's /metadatas endpoints take: Go's strconv.ParseBool texts for its boolean keys,
# stored as "true"/"false", and a CVSS v3 rating for `severity`, stored in lower case.
BOOLEAN_KEYS = (
    "public",
    "enable_content_trust",
    "enable_content_trust_cosign",
    "auto_sbom_generation",
    "prevent_vul",
    "auto_scan",
    "reuse_sys_cve_allowlist",
    "proxy_cache_local_on_not_found",
    "proxy_referrer_api",
)
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def _shown(text: str) -> str:
    """A caller's text in a message: quoted, and not at any length."""
    return repr(text) if len(text) <= 64 else f"a text of {len(text)} characters"


def check_metadata_key(key: str) -> None:
    """Raise BadRequest unless the /metadatas endpoints may set `key` (Harbor's messages).
    Harbor refuses its proxy cache keys for a project that is not a proxy cache, and no
    project here is one; it never sets `retention_id` there."""
    if key in PROXY_CACHE_ONLY:
        raise BadRequest(f"can not update the normal project with proxy cache metadata {key!r}")
    if key not in BOOLEAN_KEYS and key != "severity":
        raise BadRequest(f"invalid key: {_shown(key)}")


def metadata_entry(metadata: Mapping[str, str]) -> tuple[str, str]:
    """The one key and value of a /metadatas request, as Harbor stores the value. Raises
    BadRequest for none or several, a key it may not set, a value the key does not take."""
    if len(metadata) != 1:
        raise BadRequest("only allow one key/value pair")
    ((key, value),) = metadata.items()
    check_metadata_key(key)
    if key == "severity":
        rating = value.lower()
        if rating in _SEVERITIES or rating == "negligible":
            return key, shown_severity(rating)
    elif value in _TRUE or value in _FALSE:
        return key, "true" if value in _TRUE else "false"
    raise BadRequest(f"invalid value for {key}: {_shown(value)}")
