"""The audit table is append-only in the database itself, and verification names tampering."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.db.engine import Database
from app.services import audit


def test_update_and_delete_are_refused_by_the_database(demo_db: Database) -> None:
    for statement in (
        "UPDATE audit_log SET reason = 'edited' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 1",
    ):
        with pytest.raises(DBAPIError, match="append-only"), demo_db.engine.begin() as conn:
            conn.execute(text(statement))
    with demo_db.read() as session:
        assert audit.verify(session).ok


def test_verify_names_the_first_tampered_entry(demo_db: Database) -> None:
    with demo_db.read() as session:
        before = audit.verify(session)
    assert before.ok and before.entries > 5
    with demo_db.engine.begin() as conn:
        if demo_db.engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_update_delete ON audit_log"))
        conn.execute(text("UPDATE audit_log SET reason = 'rewritten' WHERE seq = 4"))
    with demo_db.read() as session:
        report = audit.verify(session)
    assert not report.ok and report.first_bad_seq == 4
