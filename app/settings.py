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
    session_idle_seconds: int = Field(default=1800, ge=10, le=86400)
    """A web session ends this long after its last page request (docs/web.md, Session)."""
    session_max_seconds: int = Field(default=12 * 3600, ge=10, le=7 * 86400)
    """A web session ends this long after its login, however active."""
    session_warning_seconds: int = Field(default=120, ge=5, le=3600)
    """The pages warn this long before the session ends, with a button to extend it."""
    session_kept_form_seconds: int = Field(default=1800, ge=60, le=86400)
    """A form sent after the session ended is kept this long for its user to send again."""
    password_hash_profile: str = Field(default="standard", pattern="^(standard|fast)$")
    idempotency_lease_seconds: int = Field(default=60, ge=5)
    worker_threads: int = Field(default=8, ge=1, le=200)
    """Requests a server process works on at once; more wait their turn in its event loop."""
    follow_ups: str = Field(default="background", pattern="^(background|inline)$")
    """Where the resupply check after a randomization or dosing visit runs: on a thread of the
    server process, queued at the commit, the answer not waiting for it (checks of one site
    that wait coalesce), or inline before the answer (app/services/follow_ups.py)."""
    study_file: str | None = None
    sponsor_email: str = "sponsor@example.org"
    outbox_webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "irt@example.org"
    login_free_failures: int = Field(default=5, ge=1)
    """Failed logins per source and user name (or per known device) before the delays start."""
    login_account_free_failures: int = Field(default=10, ge=1)
    """Failed logins per user name from devices it has never logged in on, before delays."""
    login_source_free_failures: int = Field(default=100, ge=1)
    """Failed logins per source address, whatever the user names, before delays."""
    login_backoff_base_seconds: float = Field(default=1.0, gt=0)
    """The first delay; each further failure doubles it, up to `login_backoff_max_seconds`."""
    login_backoff_max_seconds: int = Field(default=900, ge=1)
    login_failure_window_seconds: int = Field(default=3600, ge=1)
    """A key's failures are forgotten this long after its last one (and no delay runs)."""
    device_proof_days: int = Field(default=180, ge=1)
    """How long the proof that a device has logged in as a user (its cookie or token) lasts."""
    max_request_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    cors_origins: list[str] = []
    forwarded_allow_ips: str | None = None
    """Proxies (IPs or networks, comma-separated, or `*`) whose X-Forwarded-Proto and
    X-Forwarded-For are believed; unset, the headers are ignored (docs/deployment.md)."""
    secure_cookies: bool = False
    """Always mark the cookies Secure, whatever scheme the request came in with."""
    checkpoint_file: str | None = None
    """Append-only JSON-lines file of signed audit checkpoints, outside the database; unset,
    none are written (docs/deployment.md, "Audit checkpoints")."""
    checkpoint_key_file: str | None = None
    """The Ed25519 private key (PEM) that signs the checkpoints (`irt audit keygen`)."""
    checkpoint_public_key_file: str | None = None
    """The public key that verifies them; default: derived from the private key."""
    checkpoint_every: int = Field(default=100, ge=1)
    """A checkpoint at least every this many entries (and at every stage change)."""
    metrics_token: str | None = Field(default=None, min_length=16)
    """The bearer token Prometheus sends to read GET /metrics; unset, /metrics is not served
    (docs/deployment.md, "Metrics")."""

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
