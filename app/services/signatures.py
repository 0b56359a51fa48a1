"""Signing a decision (21 CFR 11.50, 11.200): the signer enters their password again at the
moment of signing, and the signature (printed name, user name, UTC time, meaning) goes into the
audit entry of the signed action and onto its confirmation.

`sign` runs before the action's own transaction: a refused signature changes nothing but the
trail (one `signature.refused` entry), and the action never starts. The password is checked
with the login's hasher (app/services/passwords.py); wrong signatures are counted from the
trail itself, so the pause needs no table of its own and no part of the login. Any use case
that needs a signature (e.g. a future data correction) calls `sign` with its meaning from
app/domain/signatures.py and passes the `Signature` to its service function."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select

from app.db.engine import Database
from app.db.models import AuditEntry, User
from app.domain.errors import InvalidInput, NotPermitted, TooManyAttempts
from app.domain.signatures import Signature, same_meaning
from app.services import audit
from app.services.actor import Actor
from app.services.blinded_views import iso_utc
from app.services.passwords import verify_password
from app.services.transaction import utcnow, writing
from app.settings import Settings

PASSWORD_FIELD = "signature.password"
MEANING_FIELD = "signature.meaning"
MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60
"""Wrong signatures by one user within the window before signing pauses (429), as logins did:
a stolen session cannot be used to guess its user's password."""


@dataclass(frozen=True)
class SignatureInput:
    """What the signer gives: the password, and the meaning they were shown (None: the
    service's own meaning is recorded as it is)."""

    password: str
    meaning: str | None = None


def sign(
    db: Database, *, settings: Settings, actor: Actor, given: SignatureInput, meaning: str
) -> Signature:
    """The signature of `actor` under `meaning`, or a refusal (422 wrong password or changed
    meaning, 429 after too many wrong passwords); a refused signature is audited in a
    transaction of its own. `settings` chooses the password hasher's profile."""
    if actor.is_system:
        raise NotPermitted("signature_not_allowed", "Only a person can sign; a job cannot.")
    if given.meaning is not None and not same_meaning(given.meaning, meaning):
        message = f"The meaning of this signature is: {meaning}. Confirm that text to sign."
        raise InvalidInput(
            "signature_meaning_changed",
            message,
            errors=[{"field": MEANING_FIELD, "message": message}],
            meaning=meaning,
        )
    now = utcnow()
    since = (now - timedelta(seconds=WINDOW_SECONDS)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with db.read() as session:
        refused = int(
            session.execute(
                select(func.count())
                .select_from(AuditEntry)
                .where(
                    AuditEntry.username == actor.username,
                    AuditEntry.action == "signature.refused",
                    AuditEntry.occurred_at > since,
                )
            ).scalar_one()
        )
        user = session.execute(
            select(User).where(User.username == actor.username)
        ).scalar_one_or_none()
        throttled = refused >= MAX_FAILURES
        if (
            not throttled
            and user is not None
            and user.active
            and verify_password(user.password_hash, given.password)
        ):
            return Signature(
                printed_name=user.full_name or user.username,
                username=user.username,
                signed_at=iso_utc(now),
                meaning=meaning,
            )
    _record_refusal(db, actor=actor, meaning=meaning, throttled=throttled)
    if throttled:
        raise TooManyAttempts(
            "too_many_attempts",
            f"Too many wrong passwords: signing is paused for {WINDOW_SECONDS // 60} minutes. "
            "Nothing was done.",
            retry_after=WINDOW_SECONDS,  # by then every refusal counted has left the window
        )
    message = "The password is wrong. Nothing was done; enter your own password to sign."
    raise InvalidInput(
        "signature_invalid", message, errors=[{"field": PASSWORD_FIELD, "message": message}]
    )


def _record_refusal(db: Database, *, actor: Actor, meaning: str, throttled: bool) -> None:
    with writing(db) as session:
        audit.record(
            session,
            actor=actor,
            action="signature.refused",
            entity="user",
            entity_id=actor.username,
            before=None,
            after={"meaning": meaning, "why": "throttled" if throttled else "wrong_password"},
        )
