"""Configuration from environment variables and an optional `.env` file.

Every setting is documented in README.md (Configuration). Names that operators
already know (`DATABASE_URL`, `GITHUB_TOKEN`, ...) are used unprefixed; the
rest carry a `LYTICS_` prefix.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lytics.warehouse import logins
from lytics.warehouse.logins import RoleLogin

# The longest raw-event retention a deployment or a project may set (a century):
# longer windows are "keep forever", and date arithmetic stays in range.
MAX_RETENTION_DAYS = 36_500


class MissingSettingError(RuntimeError):
    """A setting the current command needs is not configured."""

    def __init__(self, env_name: str, why: str) -> None:
        super().__init__(f"{env_name} is not set: {why}")
        self.env_name = env_name


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    environment: Literal["development", "production", "test"] = Field(
        "development", validation_alias=_env("LYTICS_ENV")
    )

    # --- storage -----------------------------------------------------------------
    database_url: SecretStr | None = Field(None, validation_alias=_env("DATABASE_URL"))
    dagster_database_url: SecretStr | None = Field(
        None, validation_alias=_env("LYTICS_DAGSTER_DATABASE_URL")
    )
    # Each role's own login, for poolers that refuse startup options (lytics.warehouse.logins).
    ingest_database_url: SecretStr | None = Field(
        None, validation_alias=_env("LYTICS_INGEST_DATABASE_URL")
    )
    reader_database_url: SecretStr | None = Field(
        None, validation_alias=_env("LYTICS_READER_DATABASE_URL")
    )
    pipeline_database_url: SecretStr | None = Field(
        None, validation_alias=_env("LYTICS_PIPELINE_DATABASE_URL")
    )
    data_dir: Path = Field(Path(".lytics"), validation_alias=_env("LYTICS_DATA_DIR"))

    # --- secrets -----------------------------------------------------------------
    secret_key: SecretStr | None = Field(None, validation_alias=_env("LYTICS_SECRET_KEY"))

    # --- processes ---------------------------------------------------------------
    api_host: str = Field("127.0.0.1", validation_alias=_env("LYTICS_API_HOST"))
    api_port: int = Field(8000, ge=0, le=65535, validation_alias=_env("LYTICS_API_PORT"))
    api_workers: int = Field(1, ge=1, le=64, validation_alias=_env("LYTICS_API_WORKERS"))
    dagster_host: str = Field("127.0.0.1", validation_alias=_env("LYTICS_DAGSTER_HOST"))
    dagster_port: int = Field(3000, ge=0, le=65535, validation_alias=_env("LYTICS_DAGSTER_PORT"))
    dagster_graphql_url: str | None = Field(
        None, validation_alias=_env("LYTICS_DAGSTER_GRAPHQL_URL")
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias=_env("LOG_LEVEL")
    )
    log_format: Literal["json", "text"] = Field("json", validation_alias=_env("LOG_FORMAT"))

    # --- ingest behaviour ----------------------------------------------------------
    # Segment's published limits, measured after decompression.
    max_event_bytes: int = Field(
        32 * 1024, ge=1024, validation_alias=_env("LYTICS_MAX_EVENT_BYTES")
    )
    max_batch_bytes: int = Field(
        500 * 1024, ge=1024, validation_alias=_env("LYTICS_MAX_BATCH_BYTES")
    )
    # Events further ahead than this (after clock-skew correction) are clamped to receipt time.
    max_future_hours: float = Field(23.0, ge=0, validation_alias=_env("LYTICS_MAX_FUTURE_HOURS"))
    # Requests per second per key (token bucket); 0 disables the limit.
    rate_limit_per_second: float = Field(
        200.0, ge=0, validation_alias=_env("LYTICS_RATE_LIMIT_PER_SECOND")
    )
    rate_limit_burst: int = Field(400, ge=1, validation_alias=_env("LYTICS_RATE_LIMIT_BURST"))
    # Share the rate limits between every API worker and host (redis://host:6379/0);
    # unset: each process limits on its own. Keys start with the prefix, so several
    # deployments can share one Redis.
    redis_url: SecretStr | None = Field(None, validation_alias=_env("LYTICS_REDIS_URL"))
    redis_prefix: str = Field(
        "lytics", min_length=1, max_length=64, validation_alias=_env("LYTICS_REDIS_PREFIX")
    )
    # Comma-separated addresses/CIDRs whose X-Forwarded-For we believe.
    trusted_proxies: str = Field("", validation_alias=_env("LYTICS_TRUSTED_PROXIES"))
    # How long a verified key is remembered; a revoked key dies within this time.
    key_cache_seconds: float = Field(30.0, ge=0, validation_alias=_env("LYTICS_KEY_CACHE_SECONDS"))
    writer_max_rows: int = Field(500, ge=1, validation_alias=_env("LYTICS_WRITER_MAX_ROWS"))
    # No linger by default: batches grow on their own while earlier commits are in flight,
    # and a timer only adds latency (docs/benchmarks.md, single-event requests).
    writer_max_wait_ms: float = Field(0.0, ge=0, validation_alias=_env("LYTICS_WRITER_MAX_WAIT_MS"))
    writer_concurrency: int = Field(
        3, ge=1, le=32, validation_alias=_env("LYTICS_WRITER_CONCURRENCY")
    )
    # The longest a pool backs off between connection attempts while Postgres is down
    # (psycopg_pool doubles its delay without a cap until this runs out, then a new
    # attempt starts at once): writes resume at most about this long after it returns.
    database_reconnect_timeout_s: float = Field(
        1.0, gt=0, le=60, validation_alias=_env("LYTICS_DATABASE_RECONNECT_TIMEOUT_S")
    )
    # The longest any read API statement may run (SET LOCAL statement_timeout in each
    # reader transaction): a costly read is cancelled with a 503 before it can starve
    # ingest of the database. Reads are built to answer in tens of milliseconds.
    reader_statement_timeout_ms: int = Field(
        3000, ge=1, le=600_000, validation_alias=_env("LYTICS_READER_STATEMENT_TIMEOUT_MS")
    )

    # --- metrics (dbt) -------------------------------------------------------------
    # The first day the daily metric partitions cover; earlier events are not modelled.
    partitions_start: date = Field(
        date(2025, 1, 1), validation_alias=_env("LYTICS_PARTITIONS_START")
    )
    # dbt models and tests built side by side in a metrics run; unset: one per CPU core
    # (see `dbt_thread_count`).
    dbt_threads: int | None = Field(None, ge=1, le=64, validation_alias=_env("LYTICS_DBT_THREADS"))

    # --- retention -----------------------------------------------------------------
    # Days of raw events kept per project (a project's `raw_retention_days` setting
    # wins); unset: kept forever. Whole UTC days older than that are removed daily.
    raw_retention_days: int | None = Field(
        None, ge=1, le=MAX_RETENTION_DAYS, validation_alias=_env("LYTICS_RAW_RETENTION_DAYS")
    )
    # Rows removed per transaction: short transactions, so ingest and the pipeline
    # never wait long on the delete's locks and WAL stays steady.
    retention_batch_rows: int = Field(
        10_000, ge=1, le=1_000_000, validation_alias=_env("LYTICS_RETENTION_BATCH_ROWS")
    )

    # --- alerts --------------------------------------------------------------------
    # Failed Dagster runs are always logged; also posted here and emailed (through
    # Resend, from MAIL_FROM) when set.
    alert_webhook_url: str | None = Field(None, validation_alias=_env("LYTICS_ALERT_WEBHOOK_URL"))
    alert_email: str | None = Field(None, validation_alias=_env("LYTICS_ALERT_EMAIL"))

    # --- external services (base URLs so tests can point at local stand-ins) ----
    github_api_url: str = Field("https://api.github.com", validation_alias=_env("GITHUB_API_URL"))
    github_token: SecretStr | None = Field(None, validation_alias=_env("GITHUB_TOKEN"))
    resend_api_url: str = Field("https://api.resend.com", validation_alias=_env("RESEND_API_URL"))
    resend_api_key: SecretStr | None = Field(None, validation_alias=_env("RESEND_API_KEY"))
    # The sender of every email Lytics sends (digests and alerts), see `mail_sender`.
    mail_from: str = Field("digest@lytics.localhost", validation_alias=_env("MAIL_FROM"))
    mail_from_name: str = Field("Lytics", validation_alias=_env("MAIL_FROM_NAME"))
    s3_endpoint_url: str | None = Field(None, validation_alias=_env("S3_ENDPOINT_URL"))
    s3_region: str = Field("us-east-1", validation_alias=_env("S3_REGION"))
    backup_bucket: str | None = Field(None, validation_alias=_env("LYTICS_BACKUP_BUCKET"))
    public_url: str = Field("http://127.0.0.1:8000", validation_alias=_env("LYTICS_PUBLIC_URL"))

    # --- github --------------------------------------------------------------------
    # Requests kept in hand: a run starts only with more than this left in the hour.
    github_reserve: int = Field(200, ge=0, validation_alias=_env("LYTICS_GITHUB_RESERVE"))
    github_per_page: int = Field(100, ge=1, le=100, validation_alias=_env("LYTICS_GITHUB_PER_PAGE"))
    # Pause between requests (PyGithub's pacing), against GitHub's secondary limits.
    github_request_interval: float = Field(
        0.25, ge=0, validation_alias=_env("LYTICS_GITHUB_REQUEST_INTERVAL")
    )
    # Longest Retry-After honoured in-run; longer waits stop the run cleanly instead.
    github_max_wait_seconds: float = Field(
        120.0, ge=0, validation_alias=_env("LYTICS_GITHUB_MAX_WAIT_SECONDS")
    )
    github_retries: int = Field(4, ge=0, le=10, validation_alias=_env("LYTICS_GITHUB_RETRIES"))
    # Incremental streams re-read this much before their cursor (late updates, clock skew).
    github_lookback_minutes: int = Field(
        60, ge=0, validation_alias=_env("LYTICS_GITHUB_LOOKBACK_MINUTES")
    )

    # --- digests -------------------------------------------------------------------
    # The weekly schedule: Monday at this hour in this zone; weeks (partitions) are
    # Monday-to-Sunday in the same zone.
    digest_timezone: str = Field(
        "America/Los_Angeles", validation_alias=_env("LYTICS_DIGEST_TIMEZONE")
    )
    digest_send_hour: int = Field(8, ge=0, le=23, validation_alias=_env("LYTICS_DIGEST_SEND_HOUR"))
    # The first week that exists as a partition (a Monday).
    digest_start_date: date = Field(
        date(2025, 1, 6), validation_alias=_env("LYTICS_DIGEST_START_DATE")
    )
    # No two digest runs start closer together than this (enforced by the database).
    digest_cooldown_seconds: int = Field(
        600, ge=0, le=86_400, validation_alias=_env("LYTICS_DIGEST_COOLDOWN_SECONDS")
    )
    # Requests per second to Resend while its ratelimit-* headers have not said otherwise.
    resend_rate_per_second: float = Field(
        2.0, gt=0, le=1000, validation_alias=_env("RESEND_RATE_PER_SECOND")
    )
    resend_max_retries: int = Field(3, ge=0, le=10, validation_alias=_env("RESEND_MAX_RETRIES"))
    resend_backoff_seconds: float = Field(
        0.5, ge=0, le=60, validation_alias=_env("RESEND_BACKOFF_SECONDS")
    )
    # Emails per /emails/batch call (Resend allows 100); 1 sends each email on its own.
    resend_batch_size: int = Field(100, ge=1, le=100, validation_alias=_env("RESEND_BATCH_SIZE"))
    resend_timeout_seconds: float = Field(
        15.0, gt=0, le=300, validation_alias=_env("RESEND_TIMEOUT_SECONDS")
    )

    # --- exports -------------------------------------------------------------------
    # Where exports go when no S3 is configured (default: <data dir>/exports).
    exports_local_dir: Path | None = Field(None, validation_alias=_env("LYTICS_EXPORTS_LOCAL_DIR"))
    # Create a deployment-wide backup destination on the first export when none exists:
    # S3 (LYTICS_BACKUP_BUCKET) when set, else the local folder, so `make dev` exports at once.
    exports_default_backup: bool = Field(
        True, validation_alias=_env("LYTICS_EXPORTS_DEFAULT_BACKUP")
    )
    exports_start: date = Field(date(2025, 1, 1), validation_alias=_env("LYTICS_EXPORTS_START"))
    # Schedules run this long after a window closes: rows whose transaction began before
    # the window's end may commit a little after it (received_at is the transaction start).
    exports_hourly_lag_minutes: int = Field(
        15, ge=0, le=59, validation_alias=_env("LYTICS_EXPORTS_HOURLY_LAG_MINUTES")
    )
    exports_daily_lag_minutes: int = Field(
        60, ge=0, le=23 * 60 + 59, validation_alias=_env("LYTICS_EXPORTS_DAILY_LAG_MINUTES")
    )
    # A data file is closed and uploaded once it reaches this size (compressed).
    exports_file_mb: float = Field(256.0, gt=0, validation_alias=_env("LYTICS_EXPORTS_FILE_MB"))
    # Rows are read from Postgres in blocks of this many bytes of CSV: the unit of memory
    # (16 MB peaked at 510 MB RSS on a million rows, 4 MB at 260 MB, ~25 % slower).
    exports_block_mb: float = Field(
        4.0, gt=0, le=512, validation_alias=_env("LYTICS_EXPORTS_BLOCK_MB")
    )
    # Multipart threshold and part size; up to `concurrency` parts are in memory at once.
    exports_multipart_mb: int = Field(
        16, ge=5, le=5120, validation_alias=_env("LYTICS_EXPORTS_MULTIPART_MB")
    )
    exports_upload_concurrency: int = Field(
        4, ge=1, le=64, validation_alias=_env("LYTICS_EXPORTS_UPLOAD_CONCURRENCY")
    )
    # Attempts per S3 request (botocore's standard retry mode: exponential backoff, jitter).
    exports_s3_max_attempts: int = Field(
        8, ge=1, le=20, validation_alias=_env("LYTICS_EXPORTS_S3_MAX_ATTEMPTS")
    )

    @field_validator(
        "dbt_threads",
        "alert_webhook_url",
        "alert_email",
        "github_token",
        "resend_api_key",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `NAME=` in a .env file or a compose file means "not set", not "empty".
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("alert_webhook_url")
    @classmethod
    def _webhook_is_http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("alert_email")
    @classmethod
    def _email_has_at(cls, value: str | None) -> str | None:
        if value is not None and "@" not in value:
            raise ValueError("must be an email address")
        return value

    @property
    def dbt_thread_count(self) -> int:
        """The dbt threads a metrics run uses: LYTICS_DBT_THREADS, else one per core."""
        return self.dbt_threads or os.cpu_count() or 2

    @property
    def mail_sender(self) -> str:
        """The From header of every email Lytics sends (digests and alerts)."""
        name = self.mail_from_name.replace('"', "")
        return f"{name} <{self.mail_from}>" if name else self.mail_from

    @property
    def exports_local_path(self) -> Path:
        if self.exports_local_dir is not None:
            return self.exports_local_dir.expanduser().resolve()
        return self.data_path / "exports"

    @model_validator(mode="after")
    def _production_requires_explicit_storage_and_secret(self) -> Settings:
        # In production nothing is generated or embedded behind the operator's back.
        if self.environment == "production":
            if self.database_url is None:
                raise MissingSettingError("DATABASE_URL", "production needs an external Postgres")
            if self.secret_key is None:
                raise MissingSettingError(
                    "LYTICS_SECRET_KEY", "production needs a fixed key to encrypt secrets at rest"
                )
        return self

    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def graphql_url(self) -> str:
        """Dagster's GraphQL endpoint: the setting, else where `lytics dev` serves it."""
        from lytics.addresses import served_addresses

        return served_addresses(self).graphql_url

    def require_secret_key(self) -> str:
        """LYTICS_SECRET_KEY; in development, the one kept in the data folder (made once)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        if self.environment == "development":
            return _development_secret_key(self.data_path / "secret_key")
        raise MissingSettingError(
            "LYTICS_SECRET_KEY", "it encrypts tokens and credentials stored in the database"
        )

    def require_database_url(self) -> str:
        if self.database_url is None:
            raise MissingSettingError(
                "DATABASE_URL", "start the platform with `lytics dev` or point it at Postgres"
            )
        return self.database_url.get_secret_value()

    def login(self, role: str) -> RoleLogin:
        """How to connect as `role`: its own login URL when set, else DATABASE_URL assuming it."""
        own = {
            logins.INGEST: self.ingest_database_url,
            logins.READER: self.reader_database_url,
            logins.PIPELINE: self.pipeline_database_url,
        }.get(role)
        if own is not None:
            return logins.role_login(role, None, own.get_secret_value())
        return logins.role_login(role, self.require_database_url(), None)


def _development_secret_key(path: Path) -> str:
    """The generated key every development process shares: `lytics dev`, its services, the CLI."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
        try:
            # A link never replaces: of two first uses at once, both end up with one key.
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
        finally:
            draft.unlink()
    key = path.read_text().strip()
    if not key:
        raise MissingSettingError("LYTICS_SECRET_KEY", f"{path} is empty; delete it or set it")
    return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
