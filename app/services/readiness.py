"""Whether this process can serve: its database answers, is at the schema this code needs, and
holds a study. Read by GET /ready (an orchestrator stops sending traffic while it is false)."""

from __future__ import annotations

from dataclasses import dataclass

from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Study


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str
    """What is wrong, in words an operator acts on ("" when ready)."""
    revision: str | None = None


def readiness(db: Database, *, head: str | None) -> Readiness:
    """Every failure is an answer, never an exception: an unreachable database is a reason."""
    try:
        with db.read() as session:
            current = MigrationContext.configure(session.connection()).get_current_revision()
            loaded = session.execute(select(Study.id).limit(1)).first() is not None
    except Exception as exc:  # any failure to read means: not ready
        return Readiness(False, f"the database cannot be read ({type(exc).__name__})")
    if current != head:
        return Readiness(
            False, f"the database is at schema revision {current}, this version needs {head}"
        )
    if not loaded:
        return Readiness(False, "no study is loaded", current)
    return Readiness(True, "", current)
