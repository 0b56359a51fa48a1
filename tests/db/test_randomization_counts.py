"""The kept randomization counts (migration 0016) on both engines: filled from the rows an older
database holds, kept by the triggers whatever writes a randomization, and what the caps and the
next slot read."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from app.db.engine import Database
from app.db.migrate import alembic_config
from app.services import audit_integrity
from app.services.study_state import count_randomized, randomized_by_scope, randomized_counts
from app.services.transaction import writing
from tests.support.caps import randomize_many
from tests.support.databases import delete_randomization


def _counted(db: Database) -> dict[tuple[str, str], int]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT scope, stratum, count(*) FROM randomizations GROUP BY scope, stratum")
        ).all()
    return {(scope, stratum): int(n) for scope, stratum, n in rows}


def _kept(db: Database) -> dict[tuple[str, str], int]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT scope, stratum, randomized FROM randomization_counts")
        ).all()
    return {(scope, stratum): int(n) for scope, stratum, n in rows if n}


def test_the_counts_follow_every_randomization(demo_db: Database) -> None:
    randomize_many(demo_db, 5, prefix="RC")
    assert _kept(demo_db) == _counted(demo_db)
    assert sum(_kept(demo_db).values()) == 5
    with writing(demo_db) as session:
        scope = next(iter(_kept(demo_db)))[0]
        assert randomized_counts(session, scope=scope, stage="phase_ib") == (5, 5, 5)
        assert randomized_counts(session, scope="P2", stage="phase_ii") == (0, 0, 5)
        assert count_randomized(session, scope=scope) == 5
        assert count_randomized(session, stage="phase_ii") == 0
        assert randomized_by_scope(session) == {scope: 5}


def test_the_triggers_keep_the_counts_whatever_writes_the_rows(demo_db: Database) -> None:
    """A row changed or removed by hand (an owner's repair, a bulk load) moves its count too:
    caps and slots never read a count the table does not hold."""
    randomize_many(demo_db, 4, prefix="RT")
    with demo_db.engine.begin() as conn:
        first = conn.execute(text("SELECT min(id) FROM randomizations")).scalar_one()
        conn.execute(
            text("UPDATE randomizations SET stratum = 'OTHER' WHERE id = :id"), {"id": first}
        )
    assert _kept(demo_db) == _counted(demo_db)
    delete_randomization(demo_db, first)
    assert _kept(demo_db) == _counted(demo_db)
    assert sum(_kept(demo_db).values()) == 3


def test_the_migration_counts_what_an_older_database_holds(demo_db: Database) -> None:
    """A database randomized before 0016 (its table and triggers dropped, the revision set
    back) gets the counts of the rows it holds."""
    randomize_many(demo_db, 6, prefix="RM")
    before = _counted(demo_db)
    postgres = demo_db.engine.dialect.name == "postgresql"
    with demo_db.engine.begin() as conn:
        if postgres:
            conn.execute(text("DROP TRIGGER randomization_counts_keep ON randomizations"))
            conn.execute(text("DROP FUNCTION randomization_counts_keep()"))
        else:
            for event in ("insert", "delete", "update"):
                conn.execute(text(f"DROP TRIGGER randomization_counts_{event}"))
        conn.execute(text("DROP TABLE randomization_counts"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0015'"))
    command.upgrade(alembic_config(str(demo_db.engine.url.render_as_string(False))), "0016")
    assert _kept(demo_db) == before
    assert sum(before.values()) == 6


def test_a_count_edited_by_hand_fails_the_monitors_check(demo_db: Database) -> None:
    """An insider lowering a count (to pass a cap, or to draw a used slot again) is named by
    the monitor's full check; the untouched database passes it."""
    randomize_many(demo_db, 3, prefix="RI")
    with demo_db.read() as session:
        assert audit_integrity.verify_all(session, checkpoint_log=None).ok
    with demo_db.engine.begin() as conn:
        conn.execute(text("UPDATE randomization_counts SET randomized = randomized - 1"))
    with demo_db.read() as session:
        report = audit_integrity.verify_all(session, checkpoint_log=None)
    assert not report.ok and report.chain.ok
    drift = [d for d in report.replay.discrepancies if d.table == "randomization_counts"]
    assert [(d.found, d.recorded) for d in drift] == [("2", "3")]
