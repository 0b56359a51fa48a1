"""Password hashing with Argon2id."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.settings import get_settings


@lru_cache
def _hasher(profile: str) -> PasswordHasher:
    if profile == "fast":  # tests only: the same algorithm with small costs
        return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    return PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher(get_settings().password_hash_profile).hash(password)


def dummy_hash() -> str:
    """A hash made with the same parameters as real ones, to check a password against when the
    user does not exist: an unknown user then costs as much time as a real one."""
    return _dummy_hash(get_settings().password_hash_profile)


@lru_cache
def _dummy_hash(profile: str) -> str:
    return _hasher(profile).hash("no user has this password")


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return bool(_hasher(get_settings().password_hash_profile).verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False
