"""The chain verified in parts by several processes (app/services/audit_parts.py), on both
engines: the same report as one pass, whatever is wrong and wherever it is (inside a part, at
a seam between parts, a gap, a cut tail), and the progress told part by part."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.db.engine import Database
from app.db.models import AuditHead
from app.domain.audit_chain import ChainReport
from app.services import audit, audit_parts
from tests.support.databases import unlock_audit_log

PART = 5


def _both(db: Database, jobs: int = 2) -> tuple[ChainReport, ChainReport, list[int]]:
    told: list[int] = []
    with db.read() as session:
        one = audit.verify(session)
    with db.read() as session:
        parts = audit_parts.verify(session, jobs=jobs, progress=told.append, part=PART)
    return one, parts, told


def test_parts_report_what_one_pass_reports(demo_db: Database) -> None:
    one, parts, told = _both(demo_db)
    with demo_db.read() as session:
        head = session.get(AuditHead, 1)
        assert head is not None
        length = head.seq
    assert length > 3 * PART
    assert one.ok and parts == one
    assert sum(told) == length and len(told) == -(-length // PART)
    assert all(0 < n <= PART for n in told)


@pytest.mark.parametrize(
    ("statement", "seq"),
    [
        ("UPDATE audit_log SET reason = 'rewritten' WHERE seq = :seq", 2 * PART + 3),
        ("UPDATE audit_log SET after = 'Ünïcode \"x\"' WHERE seq = :seq", 2 * PART + 1),
        (  # another first digit: 'f' alone left a hash already starting with it unchanged
            "UPDATE audit_log SET hash = CASE WHEN hash LIKE 'f%' THEN 'e' ELSE 'f' END "
            "|| substr(hash, 2) WHERE seq = :seq",
            2 * PART,
        ),
        ("UPDATE audit_log SET prev_hash = hash WHERE seq = :seq", PART + 1),
        ("DELETE FROM audit_log WHERE seq = :seq", 3 * PART),
        ("DELETE FROM audit_log WHERE seq = :seq", 2 * PART + 1),
        ("UPDATE audit_log SET seq = seq + 1000 WHERE seq = :seq", 1),
    ],
)
def test_parts_name_the_first_bad_entry_as_one_pass_does(
    demo_db: Database, statement: str, seq: int
) -> None:
    unlock_audit_log(demo_db)
    with demo_db.engine.begin() as conn:
        conn.execute(text(statement), {"seq": seq})
    one, parts, _ = _both(demo_db)
    assert not one.ok and one.first_bad_seq == seq
    assert parts == one


def test_parts_see_a_cut_tail(demo_db: Database) -> None:
    with demo_db.read() as session:
        head = session.get(AuditHead, 1)
        assert head is not None
        length = head.seq
    unlock_audit_log(demo_db)
    with demo_db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = :seq"), {"seq": length})
    one, parts, _ = _both(demo_db)
    assert (one.ok, one.first_bad_seq) == (False, length)
    assert (parts.ok, parts.first_bad_seq) == (False, length)


def test_one_job_or_a_short_trail_is_one_pass(demo_db: Database) -> None:
    told: list[int] = []
    with demo_db.read() as session:
        report = audit_parts.verify(session, jobs=1, progress=told.append, part=PART)
        short = audit_parts.verify(session, jobs=4, part=10**9)
        assert report == short == audit.verify(session)
    assert report.ok
