"""The kept subject counts (migration 0017) on both engines: filled from the rows an older
database holds, kept by the triggers whatever writes a subject or a randomization, read by the
enrolment report, and named by the monitor's check when edited by hand."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from app.db.engine import Database
from app.db.migrate import alembic_config
from app.services import audit_integrity, reports, subject_counts
from app.services.transaction import writing
from tests.support.caps import SPONSOR, STUDY, randomize_many
from tests.support.databases import delete_randomization

Key = tuple[str, str, str, str]


def _both(db: Database) -> tuple[dict[Key, int], dict[Key, int]]:
    with db.read() as session:
        return subject_counts.kept(session), subject_counts.counted(session)


def _register(db: Database, count: int, site: str = "DE01") -> None:
    with db.engine.begin() as conn:
        for n in range(count):
            conn.execute(
                text(
                    "INSERT INTO subjects (site_id, screening_number, sex, year_of_birth, status, "
                    "created_at, created_by) VALUES (:site, :number, 'F', 1980, 'registered', "
                    "CURRENT_TIMESTAMP, 'test')"
                ),
                {"site": site, "number": f"SC-{site}-{n}"},
            )


def test_the_counts_follow_registrations_randomizations_and_status_changes(
    demo_db: Database,
) -> None:
    before = sum(_both(demo_db)[0].values())
    randomize_many(demo_db, 5, prefix="SC")
    _register(demo_db, 2)
    kept, counted = _both(demo_db)
    assert kept == counted
    assert sum(kept.values()) == before + 7
    randomized = {k: n for k, n in kept.items() if k[1] == "randomized"}
    assert sum(randomized.values()) >= 5 and all(k[2] and k[3] for k in randomized)
    with demo_db.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE subjects SET status = 'discontinued' WHERE id = "
                "(SELECT min(subject_id) FROM randomizations)"
            )
        )
        conn.execute(
            text("UPDATE subjects SET site_id = 'DE02' WHERE screening_number = 'SC-DE01-0'")
        )
    kept, counted = _both(demo_db)
    assert kept == counted
    assert any(k[1] == "discontinued" and k[2] for k in kept)


def test_the_triggers_keep_the_counts_whatever_writes_the_rows(demo_db: Database) -> None:
    """A randomization changed or removed by hand moves its subject's count too."""
    randomize_many(demo_db, 4, prefix="ST")
    with demo_db.engine.begin() as conn:
        first = conn.execute(text("SELECT min(id) FROM randomizations")).scalar_one()
        conn.execute(
            text("UPDATE randomizations SET stratum = 'OTHER' WHERE id = :id"), {"id": first}
        )
    kept, counted = _both(demo_db)
    assert kept == counted and any(k[3] == "OTHER" for k in kept)
    delete_randomization(demo_db, first)
    kept, counted = _both(demo_db)
    assert kept == counted
    assert any(k[1] == "randomized" and k[2] == "" for k in kept)


def test_the_report_reads_the_kept_counts(demo_db: Database) -> None:
    """The report's site lines equal a count of the subjects, and follow the kept rows."""
    randomize_many(demo_db, 6, prefix="SR")
    _register(demo_db, 3, "DE02")
    with writing(demo_db) as session:
        report = reports.enrolment(session, study=STUDY, actor=SPONSOR)
    registered = {s["site_id"]: s["registered"] for s in report["sites"]}
    counted = _both(demo_db)[1]
    for site, n in registered.items():
        assert n == sum(c for k, c in counted.items() if k[0] == site)
    with demo_db.engine.begin() as conn:
        conn.execute(text("UPDATE subject_counts SET subjects = subjects + 100"))
    with writing(demo_db) as session:
        inflated = reports.enrolment(session, study=STUDY, actor=SPONSOR)
    assert inflated["registered"] > report["registered"]


def test_the_migration_counts_what_an_older_database_holds(demo_db: Database) -> None:
    randomize_many(demo_db, 6, prefix="SM")
    _register(demo_db, 2)
    before = _both(demo_db)[1]
    postgres = demo_db.engine.dialect.name == "postgresql"
    with demo_db.engine.begin() as conn:
        if postgres:
            for table in ("subjects", "randomizations"):
                conn.execute(text(f"DROP TRIGGER subject_counts_keep ON {table}"))
                conn.execute(text(f"DROP FUNCTION subject_counts_keep_{table}()"))
            conn.execute(text("DROP FUNCTION subject_counts_move(text[], text[], integer)"))
        else:
            for table in ("subjects", "randomizations"):
                for event in ("insert", "delete", "update"):
                    conn.execute(text(f"DROP TRIGGER subject_counts_{table}_{event}"))
        conn.execute(text("DROP TABLE subject_counts"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0016'"))
    command.upgrade(alembic_config(str(demo_db.engine.url.render_as_string(False))), "0017")
    assert _both(demo_db) == (before, before)


def test_a_count_edited_by_hand_fails_the_monitors_check(demo_db: Database) -> None:
    """An insider inflating a site's enrolment is named by the monitor's full check."""
    randomize_many(demo_db, 3, prefix="SI")
    with demo_db.read() as session:
        assert audit_integrity.verify_all(session, checkpoint_log=None).ok
    with demo_db.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE subject_counts SET subjects = subjects + 1 WHERE status = 'randomized' "
                "AND site_id = 'DE01'"
            )
        )
    with demo_db.read() as session:
        report = audit_integrity.verify_all(session, checkpoint_log=None)
    assert not report.ok and report.chain.ok
    drift = [d for d in report.replay.discrepancies if d.table == "subject_counts"]
    assert drift and all(int(d.found) == int(d.recorded) + 1 for d in drift)
