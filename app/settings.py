"""Settings from the environment (prefix IRT_); secrets never live in code."""

from __future__ import annotations

import ipaddress
import secrets
from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IRT_", extra="ignore")

    database_url: str = "sqlite:///./irt.db"
    secret_key: str = Field(default_factory=lambda: secrets.token_urlsafe(32))
    token_ttl_seconds: int = Field(default=1800, ge=60, le=86400)
    password_hash_profile: str = Field(default="standard", pattern="^(standard|fast)$")
    idempotency_lease_seconds: int = Field(default=60, ge=5)
    worker_threads: int = Field(default=8, ge=1, le=200)
    """Requests a server process works on at once; more wait their turn in its event loop."""
    study_file: str | None = None
    sponsor_email: str = "sponsor@example.org"
    outbox_webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "irt@example.org"
    login_max_failures: int = Field(default=5, ge=1)
    login_failure_window_seconds: int = Field(default=900, ge=1)
    max_request_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    cors_origins: list[str] = []
    forwarded_allow_ips: str | None = None
    """Proxies (IPs or networks, comma-separated, or `*`) whose X-Forwarded-Proto and
    X-Forwarded-For are believed; unset, the headers are ignored (docs/deployment.md)."""
    secure_cookies: bool = False
    """Always mark the cookies Secure, whatever scheme the request came in with."""

    @field_validator("forwarded_allow_ips")
    @classmethod
    def check_proxy_addresses(cls, value: str | None) -> str | None:
        """Refuse a typo at start: a wrong address would silently trust no proxy, or another."""
        if value is None or not value.strip():
            return None
        items = [item.strip() for item in value.split(",")]
        if items != ["*"]:
            for item in items:
                ipaddress.ip_network(item, strict=False)  # ValueError names the bad item
        return ",".join(items)


@lru_cache
def get_settings() -> Settings:
    return Settings()
