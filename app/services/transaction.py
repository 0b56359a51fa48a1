"""A writing unit of work: one transaction that ends by chaining its audit entries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from app.db.engine import Database
from app.services import audit


@contextmanager
def writing(db: Database) -> Iterator[Session]:
    """Commit the work and its audit entries together; on any error, neither."""
    with db.write() as session:
        try:
            yield session
        except BaseException:
            audit.discard(session)
            raise
        audit.flush(session)


def utcnow() -> datetime:
    return datetime.now(UTC)
