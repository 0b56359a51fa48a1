"""Known-device proofs (OWASP "device cookies"): after a successful login the server hands the
device a signed proof naming the user and a random device id. A later login for that user that
carries it is throttled under the device only, so an outsider hammering the user name cannot
delay the user's own devices. Checked with the secret key alone (no database read); signed with
a key derived for this purpose, so a proof is never a bearer token and a bearer token never a
proof."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

import jwt

from app.services.transaction import utcnow

ALGORITHM = "HS256"
COOKIE_PREFIX = "irt_device_"
_PURPOSE = b"irt known-device proof v1"


def _key(secret: str) -> str:
    return hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).hexdigest()


def issue(*, username: str, secret: str, days: int) -> str:
    """A new proof that this device logged in as `username`."""
    now = utcnow()
    claims = {
        "typ": "device",
        "sub": username,
        "did": secrets.token_hex(16),
        "iat": now,
        "exp": now + timedelta(days=days),
    }
    return jwt.encode(claims, _key(secret), algorithm=ALGORITHM)


def device_id(*, proof: str | None, username: str, secret: str) -> str | None:
    """The device id of a valid, unexpired proof issued for exactly `username`; else None."""
    if not proof:
        return None
    try:
        claims = jwt.decode(
            proof, _key(secret), algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
        )
    except jwt.PyJWTError:
        return None
    did = claims.get("did")
    if claims.get("typ") != "device" or claims.get("sub") != username or not isinstance(did, str):
        return None
    return did[:32]


def cookie_name(*, username: str, secret: str) -> str:
    """One cookie per user on a shared browser; the name does not show the user name."""
    tag = hmac.new(secret.encode(), b"device-cookie:" + username.encode(), hashlib.sha256)
    return COOKIE_PREFIX + tag.hexdigest()[:16]
