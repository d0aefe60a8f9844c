"""Wiring: the storage adapter and every service, built from settings, shared by CLI and HTTP."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from tokenserver.config import Settings
from tokenserver.domain.lifetimes import TokenLifetimes
from tokenserver.errors import ConfigError
from tokenserver.sealing import KEY_SETTING, HeaderSeal
from tokenserver.services.access import AccessService
from tokenserver.services.audit import AuditService
from tokenserver.services.auth import Authenticator
from tokenserver.services.exchange import TokenExchange
from tokenserver.services.federated_login import FederatedLogin
from tokenserver.services.federation import FederationService
from tokenserver.services.harbor_import import HarborImportService
from tokenserver.services.keyring import KeyringService
from tokenserver.services.legacy import LegacyAuthenticator, load_legacy_key
from tokenserver.services.oidc import IdTokenVerifier
from tokenserver.services.projects import ProjectService
from tokenserver.services.refresh import RefreshTokenService
from tokenserver.services.robots import RobotService
from tokenserver.services.sessions import SessionService
from tokenserver.services.temporary_secrets import TemporarySecrets
from tokenserver.services.throttle import Throttle
from tokenserver.services.tokens import TokenService, TokenSigner
from tokenserver.services.usage import UsageTracker
from tokenserver.services.users import MemberService, UserService
from tokenserver.services.verifier import SecretVerifier
from tokenserver.services.webhooks import RobotEvents, WebhookService
from tokenserver.storage.sql import SqlStore
from tokenserver.storage.sqlite import SqliteStore

# Rows a server's PostgreSQL store keeps for the token path (as many as SQLite's cache).
READ_CACHE_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    store: SqlStore
    verifier: SecretVerifier
    usage: UsageTracker
    throttle: Throttle
    authenticator: Authenticator
    access: AccessService
    audit: AuditService
    projects: ProjectService
    robots: RobotService
    federation: FederationService
    refresh: RefreshTokenService
    harbor_import: HarborImportService
    users: UserService
    members: MemberService
    sessions: SessionService
    tokens: TokenService | None
    keyring: KeyringService
    signer: TokenSigner | None
    webhooks: WebhookService
    robot_events: RobotEvents
    header_seal: HeaderSeal


async def open_store(
    settings: Settings, *, create_database: bool = True, cache: bool = False
) -> SqlStore:
    """The configured database: PostgreSQL for a `database.url`, else the SQLite file. One
    that does not exist (a missing file, a PostgreSQL database without the schema) is created
    only if `create_database`, else StorageError: only `tokenserver init` creates one. `cache`:
    a server's PostgreSQL store keeps a read cache, on a listening connection of its own
    (SQLite's costs nothing to keep: always)."""
    if settings.database.url:
        # NOTE: imported here, so that SQLite deployments never load asyncpg.
        from tokenserver.storage.postgres import PostgresStore

        return await PostgresStore.open(
            settings.database.url,
            pool_size=settings.database.pool_size,
            create=create_database,
            cache_size=READ_CACHE_ROWS if cache else 0,
        )
    return await SqliteStore.open(settings.database.path, create=create_database)


def database_name(settings: Settings) -> str:
    """The database for messages: the file, or the URL without its password."""
    if settings.database.url:
        from tokenserver.storage.postgres import safe_url

        return safe_url(settings.database.url)
    return str(settings.database.path)


async def _warn_of_headers_sealed_before(store: SqlStore, seal: HeaderSeal) -> None:
    """The webhook key was just created: headers the database holds were sealed under
    another key (a database restored without its key file, a replica given another keys
    directory) and never open again. Their deliveries fail closed, one by one; say it once,
    at start."""
    count = await store.count_webhook_policies_with_auth_headers()
    if count:
        policies = "1 webhook policy has" if count == 1 else f"{count} webhook policies have"
        logging.getLogger("tokenserver.webhooks").warning(
            "%s: %s was just created, but %s auth headers sealed under another key, which "
            "this one cannot open: their deliveries fail. Restore the key file from the backup "
            "taken with the database (and restart), or set those targets' auth headers again",
            KEY_SETTING,
            seal.path,
            policies,
        )


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    sign: bool,
    clock: Callable[[], float] = time.time,
    create_database: bool = True,
    shared_lockouts: bool = False,
) -> AsyncIterator[Runtime]:
    """Open storage and build the services; `sign` loads the signing key and the webhook
    key, creating the latter if there is none (the server needs them, management commands
    do not). `clock` is the token path's time (authentication, refresh tokens, signing,
    lockouts kept in the database): tests move it instead of sleeping. `create_database`:
    see `open_store`. The lockouts' scores are kept in the database, for every process that
    serves it, on PostgreSQL (replicas) and with `shared_lockouts` (SQLite opened by several
    `serve --workers` processes); else in memory. A server (`sign`) keeps a read cache on
    PostgreSQL too (storage/pg_cache.py). Raises ConfigError or StorageError."""
    store = await open_store(settings, create_database=create_database, cache=sign)
    verifier = SecretVerifier(
        cache_size=settings.security.verify_cache_size,
        cache_ttl=settings.security.verify_cache_ttl,
        kdf_cost=settings.kdf_cost,
    )
    federated: FederatedLogin | None = None
    try:
        usage = UsageTracker(store, clock)
        access = AccessService(store)
        audit = AuditService(store, access)
        keyring = KeyringService(store, settings, access, audit)
        signer = None
        # NOTE: loaded by management commands only when they seal a header: a command that
        # never does needs neither the file nor a writable directory to create it in.
        header_seal = HeaderSeal(settings.webhooks.secret_key)
        if sign and await header_seal.load():
            await _warn_of_headers_sealed_before(store, header_seal)
        if sign:
            signer = TokenSigner(
                # NOTE: the keyring's active key once it has entries; the configured pair is
                # not checked then (after a rotation, the bundle left in token.certificate no
                # longer holds the configured key's certificate).
                await keyring.signing_key(),
                issuer=settings.token.issuer,
                service=settings.token.service,
                lifetime=settings.token.lifetime,
                max_lifetime=settings.token.max_lifetime,
                kid_format=settings.token.kid_format,
                x5c=settings.token.x5c,
            )
        projects = ProjectService(
            store,
            access,
            audit,
            only_admins_create=settings.security.project_creation_restriction == "adminonly",
        )
        legacy = (
            LegacyAuthenticator(store, usage, load_legacy_key(settings.legacy.verification_key))
            if sign and settings.legacy.verification_key is not None
            else None
        )
        shared = shared_lockouts or bool(settings.database.url)
        throttle = Throttle(
            pair_threshold=settings.security.lockout_threshold,
            address_threshold=settings.security.lockout_address_threshold,
            max_seconds=settings.security.lockout_max_seconds,
            clock=clock if shared else time.monotonic,
            shared=store if shared else None,
        )
        temporary: TemporarySecrets | None = None
        if sign:
            # Logins with a workload's ID token: the server's, not the management commands'.
            federated = FederatedLogin(
                store, IdTokenVerifier(clock=clock), usage, settings.robots.name_prefix, clock
            )
            temporary = TemporarySecrets(
                store,
                usage,
                settings.robots.name_prefix,
                clock,
                lifetime=settings.federation.session_lifetime,
            )
        authenticator = Authenticator(
            store,
            verifier,
            usage,
            settings.robots.name_prefix,
            clock,
            legacy=legacy,
            throttle=throttle,
            federation=federated,
            temporary=temporary,
        )
        robot_events = RobotEvents(store, settings.robots.name_prefix, clock)
        robots = RobotService(
            store,
            access,
            audit,
            projects,
            verifier,
            usage,
            settings.robots.name_prefix,
            TokenLifetimes(settings.token.lifetime, settings.token.max_lifetime),
            events=robot_events,
        )
        refresh = RefreshTokenService(
            store,
            robots,
            usage,
            settings.robots.name_prefix,
            clock,
            throttle=throttle,
            idle_days=settings.token.refresh_token_idle_days,
            legacy=legacy is not None,
            federated_lifetime=settings.federation.session_lifetime,
        )
        users = UserService(
            store,
            access,
            audit,
            projects,
            verifier,
            name_prefix=settings.robots.name_prefix,
            throttle=throttle,
        )
        clashing = await users.named_like_robots()
        if clashing:
            # NOTE: the prefix is not stored, so changing it can turn existing users' names into
            # robot names: a robot would answer for them at the token endpoint and the web page
            # would refuse them. Refuse to start rather than serve them as robots.
            shown = ", ".join(repr(name) for name in clashing[:20])
            more = f" and {len(clashing) - 20} more" if len(clashing) > 20 else ""
            raise ConfigError(
                "robots.name_prefix",
                f"under the prefix {settings.robots.name_prefix!r}, these users' names read as "
                f"robot account names, so robots would answer for them: {shown}{more}. Choose a "
                "prefix under which no user's name reads as a robot's (such as the one they were "
                "created under)",
            )
        tokens = None
        if signer is not None:
            tokens = TokenService(
                store,
                authenticator,
                refresh,
                access,
                signer,
                service=settings.token.service,
                name_prefix=settings.robots.name_prefix,
                clock=clock,
                exchange=(
                    None
                    if federated is None or temporary is None
                    else TokenExchange(
                        store, federated, temporary, settings.robots.name_prefix, throttle
                    )
                ),
            )
        yield Runtime(
            settings=settings,
            store=store,
            verifier=verifier,
            usage=usage,
            throttle=throttle,
            authenticator=authenticator,
            access=access,
            audit=audit,
            projects=projects,
            robots=robots,
            federation=FederationService(store, audit, robots),
            refresh=refresh,
            harbor_import=HarborImportService(store, access, audit, robots.lifetimes),
            users=users,
            members=MemberService(store, access, audit, projects),
            sessions=SessionService(
                store,
                authenticator,
                name_prefix=settings.robots.name_prefix,
                lifetime=settings.web.session_lifetime,
            ),
            tokens=tokens,
            keyring=keyring,
            signer=signer,
            webhooks=WebhookService(store, access, audit, projects, header_seal),
            robot_events=robot_events,
            header_seal=header_seal,
        )
    finally:
        verifier.close()
        try:
            if federated is not None:
                await federated.close()
            await usage.flush()
        finally:
            await store.close()
