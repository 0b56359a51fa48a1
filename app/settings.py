"""Settings from the environment (prefix IRT_); secrets never live in code."""

from __future__ import annotations

import secrets
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IRT_", extra="ignore")

    database_url: str = "sqlite:///./irt.db"
    secret_key: str = Field(default_factory=lambda: secrets.token_urlsafe(32))
    token_ttl_seconds: int = Field(default=1800, ge=60, le=86400)
    password_hash_profile: str = Field(default="standard", pattern="^(standard|fast)$")
    idempotency_lease_seconds: int = Field(default=60, ge=5)
    study_file: str | None = None


@lru_cache
def get_settings() -> Settings:
    return Settings()
