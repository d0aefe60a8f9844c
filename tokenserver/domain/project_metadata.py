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
