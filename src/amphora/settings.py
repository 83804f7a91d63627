"""The one settings object: every choice between embedded defaults and a scaled-out deployment.

Nothing else in the code base reads the environment or branches on "embedded or not"; it asks
the properties defined here (``embedded_jobs``, ``uses_redis``, …).
"""

from __future__ import annotations

import ipaddress
import secrets
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "dev", "development"})
SECRET_FILE = "secret_key"  # noqa: S105 (a file name)


class Env(StrEnum):
    development = "development"
    production = "production"
    test = "test"


class Settings(BaseSettings):
    """Configuration, read from ``AMPHORA_*`` environment variables (or a ``.env`` file)."""

    model_config = SettingsConfigDict(
        env_prefix="AMPHORA_", env_file=".env", extra="ignore", frozen=True
    )

    env: Env = Env.development
    data_dir: Path = Path("./amphora-data")
    database_url: str = ""
    base_url: str = "http://localhost:8000"
    secret_key: SecretStr = SecretStr("")
    redis_url: str | None = None
    storage_url: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_allow_http: bool = False
    public_media_base_url: str | None = None
    smtp_url: SecretStr | None = None
    mail_from: str = "Amphora <no-reply@localhost>"
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 8000
    log_format: str = "text"
    log_level: str = "INFO"
    max_json_body_bytes: int = 1024 * 1024
    session_ttl_days: int = 30
    login_failures_per_minute: int = 10
    job_workers: int = 2
    default_storage_quota_bytes: int = 10 * 1024**3
    max_direct_upload_bytes: int = 200 * 1024**2
    max_upload_bytes: int = 4 * 1024**3
    delete_grace_days: int = 30
    superseded_media_grace_days: int = 7
    cache_max_bytes: int = 256 * 1024**2
    # Telling aggregators a feed changed (amphora.feed.pings).
    websub_hubs: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["https://pubsubhubbub.appspot.com/"]
    )
    podcastindex_pubnotify_url: str = "https://api.podcastindex.org/api/1.0/hub/pubnotify"
    podping_url: str = "https://podping.cloud/"
    podping_token: SecretStr | None = None
    ping_local_feeds: bool = False
    ping_retries: int = Field(default=6, ge=0, le=20)
    ping_retry_delay_seconds: float = Field(default=30.0, ge=0)
    # Media delivery (amphora.delivery): the raw hit log and redirects to object storage.
    record_hits: bool = True
    hit_batch_size: int = Field(default=500, ge=1, le=100_000)
    hit_flush_seconds: float = Field(default=1.0, gt=0, le=60)
    media_url_seconds: int = Field(default=3600, ge=60, le=7 * 86400)
    # Imports (amphora.feed_import): downloads at a time per import, when a silent import is
    # resumed, and how often feeds kept in sync are read again.
    import_concurrency: int = Field(default=4, ge=1, le=32)
    import_stall_minutes: int = Field(default=10, ge=1)
    import_sync_minutes: int = Field(default=60, ge=5)
    import_feed_deadline_seconds: float = Field(default=120.0, gt=0)
    # Show exports (amphora.feed_import.export): days a finished export zip is kept.
    export_retention_days: int = Field(default=7, ge=1, le=365)
    # Audience analytics (amphora.analytics): the OPAWG user-agent data set (installed by
    # `amphora analytics update-user-agents`), an optional MaxMind-format GeoIP database, how
    # long raw hits are kept, how often new hits are counted, and the listening beacons' limit.
    user_agents_dir: Path | None = None
    user_agents_url: str = "https://raw.githubusercontent.com/opawg/user-agents-v2/master/src/"
    geoip_database: Path | None = None
    hit_retention_days: int = Field(default=90, ge=2, le=3650)
    analytics_interval_minutes: int = Field(default=5, ge=1, le=60)
    listen_events_per_minute: int = Field(default=120, ge=1)
    # Outgoing fetches of user-given URLs (amphora.kit.http) refuse private, loopback and other
    # non-public addresses; networks listed here are reachable anyway (tests, intranets).
    fetch_allowed_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("trusted_proxies", "fetch_allowed_networks", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies", "fetch_allowed_networks")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value

    @field_validator("websub_hubs", mode="before")
    @classmethod
    def _split_hubs(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("websub_hubs", "podcastindex_pubnotify_url", "podping_url")
    @classmethod
    def _http_urls(cls, value: str | list[str]) -> str | list[str]:
        for url in [value] if isinstance(value, str) else value:
            if url and not url.startswith(("http://", "https://")):
                raise ValueError(f"not an http(s) URL: {url!r}")
        return value

    @field_validator("base_url", "public_media_base_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        if value not in {"text", "json"}:
            raise ValueError("log_format must be 'text' or 'json'")
        return value

    @model_validator(mode="after")
    def _production_needs_real_secret(self) -> Settings:
        if self.env is Env.production:
            key = self.secret_key.get_secret_value()
            if key.lower() in PLACEHOLDER_SECRETS or len(key) < 32:
                raise ValueError(
                    "AMPHORA_SECRET_KEY must be set to a random value of at least 32 characters "
                    "in production (for example: python -c 'import secrets; "
                    "print(secrets.token_urlsafe(48))')"
                )
            if not self.database_url:
                raise ValueError("AMPHORA_DATABASE_URL must be set in production")
        return self

    # --- derived values -------------------------------------------------------------------

    @cached_property
    def resolved_data_dir(self) -> Path:
        path = self.data_dir.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @cached_property
    def resolved_database_url(self) -> str:
        """The SQLAlchemy async URL; embedded default is a SQLite file in the data dir."""
        url = self.database_url
        if not url:
            return f"sqlite+aiosqlite:///{self.resolved_data_dir / 'amphora.db'}"
        for prefix, driver in (
            ("postgres://", "postgresql+asyncpg://"),
            ("postgresql://", "postgresql+asyncpg://"),
            ("sqlite://", "sqlite+aiosqlite://"),
        ):
            if url.startswith(prefix):
                return driver + url[len(prefix) :]
        return url

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def uses_redis(self) -> bool:
        return bool(self.redis_url)

    @property
    def embedded_jobs(self) -> bool:
        """Without Redis, jobs live in a SQLite file and the consumer runs inside `serve`."""
        return not self.uses_redis

    @cached_property
    def resolved_secret_key(self) -> str:
        """The configured secret, or (outside production) one generated once and kept on disk."""
        key = self.secret_key.get_secret_value()
        if key and key.lower() not in PLACEHOLDER_SECRETS:
            return key
        path = self.resolved_data_dir / SECRET_FILE
        if path.exists():
            return path.read_text().strip()
        generated = secrets.token_urlsafe(48)
        path.touch(mode=0o600)
        path.write_text(generated)
        return generated

    @property
    def resolved_user_agents_dir(self) -> Path:
        return self.user_agents_dir or self.resolved_data_dir / "user-agents"

    @cached_property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(item, strict=False) for item in self.trusted_proxies)

    @property
    def cookie_secure(self) -> bool:
        return self.base_url.startswith("https://")


def get_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
