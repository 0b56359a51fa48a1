"""The notification outbox: written in the same transaction as the event, drained later."""

from __future__ import annotations

import json
import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import httpx
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app.db.engine import Database
from app.db.models import OutboxMessage, User, UserSite
from app.domain.environment import LABEL, Mode, mark_subject
from app.services import audit, environment
from app.services.actor import job
from app.services.transaction import utcnow, writing
from app.settings import Settings

SPONSOR = "sponsor"
"""The recipient name of the sponsor; delivered to IRT_SPONSOR_EMAIL (SMTP) or the webhook."""


def enqueue(
    session: Session, *, kind: str, recipients: list[str], subject_line: str, body: dict[str, Any]
) -> OutboxMessage:
    mode = environment.mode_of(session)  # a training notification says so, subject and body
    if mode == Mode.TRAINING:
        body = {**body, "environment": LABEL}
    message = OutboxMessage(
        kind=kind,
        recipients=json.dumps(sorted(set(recipients))),
        subject_line=mark_subject(mode, subject_line),
        body=json.dumps(body, sort_keys=True),
        created_at=utcnow(),
        attempts=0,
    )
    session.add(message)
    session.flush()
    return message


_SITE_USERS = (
    select(User.username, User.email)
    .join(UserSite, UserSite.user_id == User.id)
    .where(UserSite.site_id == bindparam("site_id"), User.active.is_(True))
)


def site_users(session: Session, site_id: str) -> list[str]:
    """The site's active users, by e-mail where known, else by user name."""
    rows = session.execute(_SITE_USERS, {"site_id": site_id}).all()
    return [email or username for username, email in rows]


def message_view(message: OutboxMessage) -> dict[str, Any]:
    return {
        "message_id": message.id,
        "kind": message.kind,
        "recipients": json.loads(message.recipients),
        "subject": message.subject_line,
        "body": json.loads(message.body),
        "created_at": message.created_at.isoformat(),
        "sent_at": message.sent_at.isoformat() if message.sent_at else None,
        "attempts": message.attempts,
        "last_error": message.last_error,
    }


Sender = Callable[[dict[str, Any]], None]


def sender_for(settings: Settings) -> Sender:
    """A webhook POST (IRT_OUTBOX_WEBHOOK_URL) or an e-mail (IRT_SMTP_HOST) per message."""
    if settings.outbox_webhook_url:
        url = settings.outbox_webhook_url

        def post(message: dict[str, Any]) -> None:
            response = httpx.post(url, json=message, timeout=10)
            response.raise_for_status()

        return post
    if settings.smtp_host:
        host, port, sender = settings.smtp_host, settings.smtp_port, settings.smtp_from

        def mail(message: dict[str, Any]) -> None:
            email = EmailMessage()
            email["From"] = sender
            email["To"] = ", ".join(_addresses(message["recipients"], settings))
            email["Subject"] = message["subject"]
            email.set_content(json.dumps(message["body"], indent=2, sort_keys=True))
            with smtplib.SMTP(host, port, timeout=10) as smtp:
                smtp.send_message(email)

        return mail
    raise RuntimeError("Set IRT_OUTBOX_WEBHOOK_URL or IRT_SMTP_HOST to deliver the outbox.")


def _addresses(recipients: list[str], settings: Settings) -> list[str]:
    return [settings.sponsor_email if r == SPONSOR else r for r in recipients if r]


def drain(db: Database, *, send: Sender, limit: int = 100) -> tuple[int, int]:
    """Deliver unsent messages one by one; a failure stays unsent with its error, for a retry.
    Returns (sent, failed)."""
    with db.read() as session:
        ids = (
            session.execute(
                select(OutboxMessage.id)
                .where(OutboxMessage.sent_at.is_(None))
                .order_by(OutboxMessage.id)
                .limit(limit)
            )
            .scalars()
            .all()
        )
    sent = failed = 0
    for message_id in ids:
        with writing(db) as session:
            message = session.execute(
                select(OutboxMessage).where(OutboxMessage.id == message_id).with_for_update()
            ).scalar_one()
            if message.sent_at is not None:
                continue
            message.attempts += 1
            try:
                send(message_view(message))
            except Exception as exc:  # any delivery failure: keep it for the next drain
                message.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                failed += 1
            else:
                message.sent_at, message.last_error = utcnow(), None
                sent += 1
            audit.record(
                session,
                actor=job("outbox"),
                action="outbox.deliver",
                entity="outbox_message",
                entity_id=message.id,
                before=None,
                after={
                    "sent": message.sent_at is not None,
                    "attempts": message.attempts,
                    "error": message.last_error,
                },
            )
    return sent, failed


def pending_and_recent(session: Session, limit: int = 200) -> list[dict[str, Any]]:
    rows = session.execute(
        select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    ).scalars()
    return [message_view(m) for m in rows]
