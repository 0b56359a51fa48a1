"""The writing unit of work: audit entries and follow-ups after commit, on both engines."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import AuditEntry
from app.services import audit
from app.services.actor import SYSTEM
from app.services.transaction import after_commit, writing


def _actions(db: Database) -> list[str]:
    with db.read() as session:
        return list(session.execute(select(AuditEntry.action).order_by(AuditEntry.seq)).scalars())


def test_follow_ups_run_after_the_commit_in_their_own_transaction(db: Database) -> None:
    seen: list[list[str]] = []

    def follow_up(database: Database) -> None:
        seen.append(_actions(database))  # the event is committed: a new reader sees it
        with writing(database) as session:
            audit.record(
                session,
                actor=SYSTEM,
                action="test.follow_up",
                entity="test",
                entity_id=1,
                before=None,
                after=None,
            )

    with writing(db) as session:
        audit.record(
            session,
            actor=SYSTEM,
            action="test.event",
            entity="test",
            entity_id=1,
            before=None,
            after=None,
        )
        after_commit(session, follow_up)
        assert seen == []
    assert seen == [["test.event"]]
    assert _actions(db) == ["test.event", "test.follow_up"]


def test_a_failing_follow_up_is_logged_and_the_event_stands(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(database: Database) -> None:
        raise RuntimeError("resupply check failed")

    with caplog.at_level(logging.ERROR), writing(db) as session:
        audit.record(
            session,
            actor=SYSTEM,
            action="test.event",
            entity="test",
            entity_id=1,
            before=None,
            after=None,
        )
        after_commit(session, broken)
    assert _actions(db) == ["test.event"]
    assert "follow-up after commit failed" in caplog.text


def test_a_rolled_back_transaction_runs_no_follow_up(db: Database) -> None:
    ran: list[bool] = []
    with pytest.raises(ValueError), writing(db) as session:
        audit.record(
            session,
            actor=SYSTEM,
            action="test.event",
            entity="test",
            entity_id=1,
            before=None,
            after=None,
        )
        after_commit(session, lambda database: ran.append(True))
        raise ValueError("refused")
    assert ran == []
    assert _actions(db) == []
