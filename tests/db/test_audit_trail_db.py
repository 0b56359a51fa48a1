"""The audit table is append-only in the database itself, and verification names tampering."""

from __future__ import annotations

from unittest.mock import ANY

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.db.engine import Database
from app.db.models import AuditHead
from app.domain.audit_chain import ChainReport
from app.services import audit
from tests.support.databases import unlock_audit_log


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


def test_verify_streams_in_chunks_and_tells_the_progress(
    demo_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "VERIFY_CHUNK", 4)  # many chunks (server-side cursor on PG)
    told: list[int] = []
    with demo_db.read() as session:
        head = session.get(AuditHead, 1)
        report = audit.verify(session, progress=told.append)
        assert head is not None and report.ok
        assert report.entries == head.seq == sum(told) and report.head_hash == head.hash
    assert len(told) > 2 and all(0 < n <= 4 for n in told)


def test_verify_in_chunks_names_a_tampered_entry_and_a_cut_tail(
    demo_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "VERIFY_CHUNK", 3)
    with demo_db.read() as session:
        length = audit.verify(session).entries
    unlock_audit_log(demo_db)
    with demo_db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = :seq"), {"seq": length})
    with demo_db.read() as session:  # a valid shorter chain: only the head shows the cut
        assert audit.verify(session) == ChainReport(False, length - 1, ANY, length)
    with demo_db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET after = 'Ünïcode \"x\"' WHERE seq = 8"))
    told: list[int] = []
    with demo_db.read() as session:
        report = audit.verify(session, progress=told.append)
    assert (report.ok, report.first_bad_seq, report.entries, told) == (False, 8, 7, [3, 3])
