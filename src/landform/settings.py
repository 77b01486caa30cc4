"""The one settings object. Built once at start-up from ``LANDFORM_*`` variables
and passed in; nothing reads the environment after that."""

from __future__ import annotations

import difflib
import ipaddress
import os
import secrets
from collections.abc import Mapping
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from landform.core.origins import normalized_origin

# A secret key given in the environment: 32 characters at the least.
MIN_SECRET_KEY_LENGTH = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LANDFORM_", extra="ignore")

    env: Literal["development", "production", "test"] = "development"

    # The server (`landform serve`; its --workers wins over workers)
    workers: int = Field(default=0, ge=0)  # 0: one per CPU core
    backlog: int = Field(default=1024, ge=1)
    header_read_timeout: float = Field(default=30.0, gt=0)
    # Seconds a request body may take to arrive once the app reads it
    # (core/body_deadlines.py): 408 and the connection closed after that. A
    # body over max_body_bytes (an upload) gets as long again per further
    # max_body_bytes, so a slow, steady link still sends one.
    body_read_timeout: float = Field(default=30.0, gt=0)
    # Graceful shutdown (core/draining.py): on SIGTERM a worker drains this
    # long (serving, not ready, closing keep-alive connections), then stops
    # accepting and finishes what is in flight; one still running when the
    # grace period ends is killed.
    shutdown_drain_seconds: float = Field(default=3.0, ge=0)
    shutdown_grace_seconds: int = Field(default=25, ge=1)
    # API responses at least this large are compressed (by Accept-Encoding)
    compress_min_bytes: int = Field(default=1024, ge=0)
    data_dir: Path = Path("data")
    public_url: str = "http://127.0.0.1:8000"
    secret_key: str = ""

    # Database
    database_url: str = ""
    database_replica_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    database_pool_size: int = Field(default=10, ge=1)
    database_pool_timeout: float = Field(default=5.0, gt=0)
    database_statement_timeout: float = Field(default=5.0, gt=0)
    # Failover (docs/operations.md, "Database failover"): one connection
    # attempt gives up after connect_timeout (asyncpg's own is 60 s); while
    # the database cannot be reached (a restart, a promotion) requests wait
    # for it up to reconnect_wait seconds from the outage's start, then get
    # 503 database_unavailable at once until it answers again.
    database_connect_timeout: float = Field(default=3.0, gt=0)
    database_reconnect_wait: float = Field(default=5.0, ge=0)
    # A read replica further behind the primary than this, or unreachable,
    # gets no reads until it catches up; checked this often by every worker.
    database_replica_max_lag_seconds: float = Field(default=10.0, gt=0)
    database_replica_check_interval: float = Field(default=2.0, gt=0)
    # How long after a write the writer's reads go only where the write
    # already is; unset: as long as a replica in rotation can be behind
    # (``read_your_writes_window``).
    read_your_writes_seconds: float | None = Field(default=None, ge=0)
    migrate_on_start: bool | None = None

    redis_url: str = ""

    # Mail
    smtp_url: str = ""
    mail_from: str = "Landform <no-reply@landform.local>"

    # Accounts
    access_token_ttl: int = Field(default=900, ge=1)
    refresh_token_ttl: int = Field(default=30 * 24 * 3600, ge=1)
    verification_token_ttl: int = Field(default=24 * 3600, ge=1)
    # At most one verification mail per address this often (resend's)
    verification_resend_seconds: int = Field(default=60, ge=0)
    # How long a password-reset link works (short: it opens the account)
    password_reset_token_ttl: int = Field(default=3600, ge=1)
    # The failed-login throttle (auth/throttle.py), each per window: per
    # account from one client address (the lockout a guesser meets), per
    # address across accounts, and per account across addresses (a ceiling
    # that also stops the owner, so kept far above the first: one address
    # alone cannot reach it)
    login_max_failures: int = Field(default=10, ge=1)
    login_max_failures_per_address: int = Field(default=30, ge=1)
    login_max_failures_per_account: int = Field(default=100, ge=1)
    login_window_seconds: int = Field(default=60, ge=1)

    # HTTP
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    # Idempotency-Key on POST (core/idempotency.py): answers kept this long;
    # a duplicate waits this long for the first request's answer; a claim
    # whose worker died lapses after this long.
    idempotency_key_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    idempotency_wait_seconds: float = Field(default=10.0, ge=0)
    idempotency_lock_seconds: int = Field(default=60, ge=1)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Peers whose X-Forwarded-For is believed (addresses or CIDR networks).
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Files
    storage_url: str = ""
    s3_endpoint_url: str = ""
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_region: str = ""
    s3_asset_delivery: Literal["proxy", "redirect"] = "proxy"
    s3_signed_url_ttl: int = Field(default=3600, ge=1)
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    storage_quota_bytes: int = Field(default=1024 * 1024 * 1024, ge=0)
    max_image_pixels: int = Field(default=40_000_000, ge=1)
    # Animated images with more frames are refused before they are decoded.
    max_image_frames: int = Field(default=1000, ge=1)

    # Pages: the newest versions of each page kept (older ones are deleted as
    # new ones are published; each holds its content and rendered bytes).
    page_versions_kept: int = Field(default=100, ge=1)

    # Public pages
    page_store_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    page_change_poll_interval: float = Field(default=0.25, gt=0)
    public_max_age: int = Field(default=60, ge=0)
    public_s_maxage: int = Field(default=300, ge=0)
    public_stale_while_revalidate: int = Field(default=86400, ge=0)
    # Warming: the most viewed pages are loaded at start and this often (0: off)
    page_warm_interval: float = Field(default=300.0, ge=0)
    page_warm_count: int = Field(default=1000, ge=1)

    # Analytics
    analytics_batch_size: int = Field(default=1000, ge=1)
    analytics_batch_interval: float = Field(default=1.0, gt=0)
    analytics_max_pending: int = Field(default=1_000_000, ge=1)
    analytics_max_body_bytes: int = Field(default=4096, ge=256)
    analytics_rate_per_second: float = Field(default=20.0, gt=0)
    analytics_rate_burst: int = Field(default=200, ge=1)
    analytics_country_header: str = ""
    analytics_retention_days: int = Field(default=180, ge=1)
    analytics_report_cache_seconds: float = Field(default=10.0, ge=0)
    # How far behind new data a cached report may be (refreshed meanwhile)
    analytics_report_max_lag: float = Field(default=5.0, ge=0)
    # ... and how old it must be before new data has it computed again
    analytics_report_refresh_after: float = Field(default=2.0, ge=0)
    analytics_query_max_cost: int = Field(default=2000, ge=1)
    # An account's custom queries computing at once per worker, and waiting
    # for a turn beyond those (analytics/query_turns.py); more get a 429.
    analytics_queries_running: int = Field(default=2, ge=1)
    analytics_queries_waiting: int = Field(default=8, ge=0)
    analytics_stream_claim_seconds: float = Field(default=30.0, gt=0)
    analytics_ws_heartbeat: float = Field(default=20.0, gt=0)
    analytics_ws_queue: int = Field(default=64, ge=1)
    analytics_ws_recheck_seconds: float = Field(default=10.0, gt=0)
    # Live streams (/ws/analytics and GraphQL's liveViews) one account may
    # hold open on one worker: WebSockets are exempt from the rate limits
    ws_max_per_account: int = Field(default=50, ge=1)
    # Largest message a WebSocket client may send (core/ws_limits.py): the
    # live view and GraphQL's graphql-transport-ws take only small ones. A
    # bigger one closes the connection with 1009 (message too big).
    ws_max_message_bytes: int = Field(default=64 * 1024, ge=1024)

    # Cache (see cache/): Redis calls time out and trip a circuit breaker
    cache_redis_timeout: float = Field(default=0.1, gt=0)
    cache_breaker_failures: int = Field(default=5, ge=1)
    cache_breaker_reset_seconds: float = Field(default=5.0, gt=0)
    # Per-kind lifetimes in each worker's L1 (capped at five minutes, so a
    # missed invalidation heals by itself); analytics results live
    # analytics_report_cache_seconds; the template catalogue is served with
    # this max-age (templates change only with a release)
    cache_ttl_pages: float = Field(default=300.0, gt=0, le=300)
    cache_ttl_assets: float = Field(default=300.0, gt=0, le=300)
    cache_ttl_templates: int = Field(default=3600, ge=0)
    # The general L1 in each worker (analytics results, …), in bytes
    cache_l1_bytes: int = Field(default=32 * 1024 * 1024, ge=0)
    # How often each replica checks it missed no invalidation (cache/bus.py)
    cache_bus_check_interval: float = Field(default=1.0, gt=0)

    # Rate limits per route group (docs/rate-limits.md): token buckets,
    # `per_second` refill up to `burst` at once; shared by every replica
    # through Redis when configured, per worker otherwise. Tracking has its
    # own (analytics_rate_*).
    rate_limit_enabled: bool = True
    rate_limit_public_per_second: float = Field(default=50.0, gt=0)
    rate_limit_public_burst: int = Field(default=500, ge=1)
    rate_limit_auth_per_second: float = Field(default=1.0, gt=0)
    rate_limit_auth_burst: int = Field(default=30, ge=1)
    rate_limit_api_per_second: float = Field(default=50.0, gt=0)
    rate_limit_api_burst: int = Field(default=300, ge=1)

    # Operations (docs/operations.md). The ops token lets scripts and
    # Prometheus in without an account; probes and /metrics are open to these
    # networks (comma-separated CIDRs)
    ops_token: str = ""
    # Logs: one JSON object per line (with the request id), or plain text
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Record latencies (off only to measure what recording costs)
    ops_metrics_enabled: bool = True
    ops_open_networks: Annotated[list[str], NoDecode] = Field(
        default=["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
    )
    ops_slow_query_ms: float = Field(default=100.0, gt=0)
    # The SLA's thresholds, in the spec's terms (default: ops/sla.toml)
    sla_file: str = ""
    # A breach lasting this long fires the alert webhook once (and its end once)
    sla_alert_hold_seconds: float = Field(default=60.0, ge=0)
    sla_alert_url: str = ""
    # Signs the alert webhook (default: the CDN purge secret, else the secret key)
    sla_alert_secret: str = ""

    # CDN purge webhook (see cache/purge.py); signed with the secret key
    # unless a secret of its own is given
    cdn_purge_url: str = ""
    cdn_purge_secret: str = ""

    # GraphQL abuse limits (see docs/graphql.md)
    graphql_max_depth: int = Field(default=10, ge=1)
    graphql_max_aliases: int = Field(default=15, ge=0)
    graphql_max_tokens: int = Field(default=2000, ge=10)
    graphql_max_cost: int = Field(default=1000, ge=1)
    graphql_max_batch: int = Field(default=10, ge=1)
    graphql_persisted_queries: int = Field(default=1000, ge=0)
    # Answers to queries kept per worker, checked against the caller's data
    # before each use (see graphql/answers.py); 0 seconds turns it off
    graphql_answer_cache_seconds: float = Field(default=10.0, ge=0)
    graphql_answer_cache_bytes: int = Field(default=32 * 1024 * 1024, ge=0)

    @field_validator(
        "database_replica_urls",
        "cors_origins",
        "trusted_proxies",
        "ops_open_networks",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies", "ops_open_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network (e.g. 10.0.0.0/8, ::1)"
                ) from None
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return _database_url(value) if value else value

    @field_validator("database_replica_urls")
    @classmethod
    def _replica_urls(cls, value: list[str]) -> list[str]:
        return [_database_url(url) for url in value]

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if not _is_http_url(value):
            raise ValueError(
                "must be the address visitors use, http(s)://host[:port] "
                "(e.g. https://pages.example.com)"
            )
        return value

    @field_validator("sla_alert_url", "cdn_purge_url")
    @classmethod
    def _webhook_url(cls, value: str) -> str:
        # Checked at start: a webhook with no address to go to would be
        # retried and then given up on, the alert or the purge lost.
        if value and not _is_http_url(value):
            raise ValueError(
                "must be the webhook's address, http(s)://host[:port]/path "
                "(e.g. https://hooks.example.com/landform), or empty for none"
            )
        return value

    @field_validator("mail_from")
    @classmethod
    def _mail_from(cls, value: str) -> str:
        _name, address = parseaddr(value)
        local, at, domain = address.rpartition("@")
        if not (at and local and domain) or " " in address:
            raise ValueError(
                "must be a sender address, e.g. Landform <no-reply@pages.example.com> "
                "or no-reply@pages.example.com"
            )
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and (
                not _is_http_url(origin) or urlsplit(origin).path not in ("", "/")
            ):
                raise ValueError(
                    f"{origin!r} is not an origin (scheme://host[:port], e.g. "
                    "https://app.example.com), nor *"
                )
        # As browsers send them, or no request would ever match one
        # written with a capital, a trailing slash or a default port.
        return [normalized_origin(origin) for origin in value]

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, value: str) -> str:
        # Unset, one is generated (load_settings); set, it signs every
        # token and must not be guessable.
        if value and len(value) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(
                f"at least {MIN_SECRET_KEY_LENGTH} characters (make one with "
                "`python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`), "
                "or unset to have one generated in the data folder"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.shutdown_drain_seconds >= self.shutdown_grace_seconds:
            raise ValueError(
                f"LANDFORM_SHUTDOWN_DRAIN_SECONDS ({self.shutdown_drain_seconds:g}) must be "
                f"shorter than LANDFORM_SHUTDOWN_GRACE_SECONDS ({self.shutdown_grace_seconds}): "
                "the drain is the first part of the grace period"
            )
        if self.login_max_failures_per_account <= self.login_max_failures:
            raise ValueError(
                "LANDFORM_LOGIN_MAX_FAILURES_PER_ACCOUNT "
                f"({self.login_max_failures_per_account}) must be above "
                f"LANDFORM_LOGIN_MAX_FAILURES ({self.login_max_failures}): at or below it, "
                "one guesser's address would lock the account's owner out"
            )
        return self

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if value and urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError(
                f"{_scheme_of(value)} is not Redis: use redis://host:6379/0, rediss:// "
                "or unix:///path/to/socket (or leave it empty: no Redis)"
            )
        if value and urlsplit(value).scheme != "unix":
            from redis.connection import parse_url  # only when Redis is configured

            try:
                parse_url(value)  # type: ignore[no-untyped-call] # its port
            except ValueError as exc:
                raise ValueError(f"{exc} (e.g. redis://host:6379/0)") from None
            # redis-py takes a path that is no number as database 0, silently.
            database = urlsplit(value).path.strip("/")
            if database and not (database.isascii() and database.isdigit()):
                raise ValueError(
                    f"the database after the host must be a number, not {database!r} "
                    "(e.g. redis://host:6379/0)"
                )
        return value

    @field_validator("storage_url")
    @classmethod
    def _storage_url(cls, value: str) -> str:
        if value and not (urlsplit(value).scheme == "s3" and urlsplit(value).netloc):
            raise ValueError(
                "must look like s3://bucket/prefix (or be empty: files under LANDFORM_DATA_DIR)"
            )
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_scheme(cls, value: str) -> str:
        # Refused here, where every command names it, not in each worker.
        if value and not value.startswith(("smtp://", "smtps://")):
            raise ValueError("must start with smtp:// or smtps:// (or be empty: the outbox)")
        return value

    @property
    def primary_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'landform.db'}"

    @property
    def read_your_writes_window(self) -> float:
        """A replica in rotation was at most max_lag behind at its last
        check, which came at most a check interval and the check's own time
        limit (the connect timeout) ago: a write older than all three is on
        every replica that still gets reads."""
        if self.read_your_writes_seconds is not None:
            return self.read_your_writes_seconds
        return (
            self.database_replica_max_lag_seconds
            + self.database_replica_check_interval
            + self.database_connect_timeout
        )

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def analytics_spool_dir(self) -> Path:
        return self.data_dir / "analytics-spool"

    @property
    def run_dir(self) -> Path:
        """Sockets through which this machine's workers talk to each other."""
        return self.data_dir / "run"

    @property
    def is_sqlite(self) -> bool:
        return self.primary_database_url.startswith("sqlite")

    @property
    def should_migrate_on_start(self) -> bool:
        return self.is_sqlite if self.migrate_on_start is None else self.migrate_on_start


# The drivers Landform runs on: SQLAlchemy's async ones it is tested with.
DATABASE_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")


def _database_url(url: str) -> str:
    scheme = urlsplit(url).scheme if "://" in url else ""
    if scheme in DATABASE_SCHEMES:
        return url
    hint = ""
    if scheme.split("+")[0] in ("sqlite", "postgresql", "postgres"):
        driver = "sqlite+aiosqlite" if scheme.startswith("sqlite") else "postgresql+asyncpg"
        hint = f" (for {scheme}:// write {driver}://, the rest unchanged)"
    supported = " or ".join(f"{name}://…" for name in DATABASE_SCHEMES)
    raise ValueError(f"{_scheme_of(url)} is not a supported database: use {supported}{hint}")


def _scheme_of(url: str) -> str:
    """What a refused URL is called in the message: its scheme, never the
    rest (a password may follow it)."""
    scheme = url.partition("://")[0] if "://" in url else ""
    return f"{scheme}://" if scheme else "a URL with no scheme"


def unknown_settings(environment: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """``LANDFORM_*`` names in ``environment`` that are no setting (a typo
    is otherwise silently ignored), each with the likeliest one meant. The
    test scripts' own ``LANDFORM_TEST_*`` are not settings and not asked."""
    known = [f"LANDFORM_{name.upper()}" for name in Settings.model_fields]
    return [
        (name, next(iter(difflib.get_close_matches(name, known, n=1)), None))
        for name in sorted(environment)
        if name.startswith("LANDFORM_")
        and not name.startswith("LANDFORM_TEST_")
        and name not in known
    ]


class DataDirUnusable(Exception):
    """The data folder cannot be made (a file is in the way, no permission)."""


def _is_http_url(value: str) -> bool:
    """An http(s) address with a host (what a browser or a webhook client
    can go to)."""
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def load_settings(**overrides: object) -> Settings:
    """Read the environment once, make the data folder, and settle the secret key.

    With no ``LANDFORM_SECRET_KEY`` the embedded default keeps a generated key in
    the data folder, so tokens survive restarts and every worker agrees on it."""
    settings = Settings(**overrides)  # type: ignore[arg-type]
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirUnusable(
            f"LANDFORM_DATA_DIR: cannot use {settings.data_dir} as the data folder: "
            f"{exc.strerror or exc}"
        ) from exc
    # The folders a server makes inside it as it needs them: a file in the
    # way of one would fail a worker at start (a crash loop) or every
    # upload (500s), far from this one clear line.
    local_files = [] if settings.storage_url else [settings.files_dir]
    for folder in (*local_files, settings.spool_dir, settings.analytics_spool_dir):
        if folder.exists() and not folder.is_dir():
            raise DataDirUnusable(
                f"LANDFORM_DATA_DIR: {folder} is a file, where Landform keeps a folder: "
                "move it away"
            )
    if not settings.secret_key:
        key_file = settings.data_dir / "secret.key"
        try:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        settings.secret_key = key_file.read_text().strip()
    return settings
