"""A writing unit of work: one transaction that ends by chaining its audit entries."""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from app.db.engine import Database
from app.services import audit, checkpoints, follow_ups
from app.services.follow_ups import FollowUp

_FOLLOW_UPS = "irt_follow_ups"


@contextmanager
def writing(db: Database) -> Iterator[Session]:
    """Commit the work and its audit entries together; on any error, neither. Follow-ups
    registered with `after_commit` run after the commit, each in its own transaction (now, or
    on the server's follow-up thread: app/services/follow_ups.py)."""
    with db.write() as session:
        try:
            yield session
        except BaseException:
            audit.discard(session)
            session.info.pop(_FOLLOW_UPS, None)
            raise
        audit.flush(session)
        queued: list[tuple[FollowUp, Hashable | None]] = session.info.pop(_FOLLOW_UPS, [])
        chained: checkpoints.Chained | None = session.info.pop(audit.CHAINED, None)
        committed = session.info.pop(audit.COMMITTED, [])
    audit.announce(committed)
    if chained is not None:
        checkpoints.after_commit(db, chained)
    for follow_up, key in queued:
        follow_ups.dispatch(db, follow_up, key)


def after_commit(session: Session, follow_up: FollowUp, *, key: Hashable | None = None) -> None:
    """Run `follow_up(db)` once this transaction has committed, outside its locks.

    For work that may lag the event without harm and is redone by the next event or by a
    periodic command (the resupply check after a dispensing). A failing follow-up is logged,
    never raised: the committed work and its answer to the client stand. Queued follow-ups
    with the same `key` run once (app/services/follow_ups.py)."""
    session.info.setdefault(_FOLLOW_UPS, []).append((follow_up, key))


def utcnow() -> datetime:
    return datetime.now(UTC)
