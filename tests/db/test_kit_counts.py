"""The kept kit counts (migration 0019) on both engines: filled from the kits an older database
holds, kept by the triggers' changes whatever writes a kit, folded without loss while kits
move, read by the stock report, and named by the monitor's check when edited by hand."""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any

from alembic import command
from sqlalchemy import text

from app.db.engine import Database
from app.db.migrate import alembic_config
from app.services import admin_commands, audit_integrity, kit_counts, reports
from app.services.demo import demo_kit_list
from app.services.transaction import utcnow, writing
from tests.support.caps import SIGNATURE, SPONSOR, STUDY, randomize_many, settings

Key = tuple[str, str, str, str]


def _kits(db: Database) -> Counter[Key]:
    """The test's own count of the kits (not the service's)."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT coalesce(site_id, ''), coalesce(depot_id, ''), status, expiry_date, "
                "count(*) FROM kits GROUP BY 1, 2, 3, 4"
            )
        )
        return Counter({(s, d, st, str(e)): int(n) for s, d, st, e, n in rows})


def _kept(db: Database, *, pending: bool = True) -> Counter[Key]:
    tables = ["kit_counts", "kit_count_changes"] if pending else ["kit_counts"]
    kept: Counter[Key] = Counter()
    with db.engine.connect() as conn:
        for table in tables:
            for s, d, st, e, n in conn.execute(
                text(f"SELECT site_id, depot_id, status, expiry_date, kits FROM {table}")
            ):
                kept[(s, d, st, str(e))] += int(n)
    return +kept  # keys at zero dropped


def _pending(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM kit_count_changes")).scalar_one())


def _fold(db: Database) -> int:
    return kit_counts.fold_kit_counts(db)


def test_the_counts_follow_randomizations_and_fold_into_the_kept_rows(demo_db: Database) -> None:
    _fold(demo_db)
    before = _kits(demo_db)
    assert _kept(demo_db, pending=False) == before and _pending(demo_db) == 0
    randomize_many(demo_db, 6, prefix="KC")
    after = _kits(demo_db)
    assert after != before and _kept(demo_db) == after
    assert _pending(demo_db) > 0 and _kept(demo_db, pending=False) == before
    assert _fold(demo_db) > 0
    assert _pending(demo_db) == 0 and _kept(demo_db, pending=False) == after
    assert _fold(demo_db) == 0 and _kept(demo_db, pending=False) == after


def test_the_triggers_note_whatever_writes_a_kit(demo_db: Database) -> None:
    """A kit inserted, moved in bulk, edited and deleted by hand: each is counted; an update
    that moves no kit notes nothing."""
    with demo_db.engine.begin() as conn:
        import_id = conn.execute(text("SELECT min(id) FROM kit_imports")).scalar_one()
        depot = conn.execute(text("SELECT min(id) FROM depots")).scalar_one()
        for n in range(3):
            conn.execute(
                text(
                    "INSERT INTO kits (kit_number, content, lot, expiry_date, status, depot_id, "
                    "site_id, import_id, updated_at) VALUES (:k, 'placebo', 'L-X', '2031-01-31', "
                    "'at_depot', :depot, NULL, :imp, CURRENT_TIMESTAMP)"
                ),
                {"k": f"KC-{n}", "depot": depot, "imp": import_id},
            )
    assert _kept(demo_db) == _kits(demo_db)
    pending = _pending(demo_db)
    with demo_db.engine.begin() as conn:
        conn.execute(text("UPDATE kits SET pool = NULL WHERE kit_number LIKE 'KC-%'"))
    assert _pending(demo_db) == pending
    with demo_db.engine.begin() as conn:
        conn.execute(text("UPDATE kits SET status = 'quarantined' WHERE kit_number LIKE 'KC-%'"))
        conn.execute(text("UPDATE kits SET expiry_date = '2031-02-28' WHERE kit_number = 'KC-0'"))
        conn.execute(text("UPDATE kits SET site_id = 'DE01' WHERE kit_number = 'KC-1'"))
        conn.execute(text("DELETE FROM kits WHERE kit_number = 'KC-2'"))
    counted = _kits(demo_db)
    assert _kept(demo_db) == counted
    assert counted[("", depot, "quarantined", "2031-02-28")] == 1
    assert counted[("DE01", depot, "quarantined", "2031-01-31")] == 1


def test_folds_lose_nothing_while_kits_move(demo_db: Database, db_url: str) -> None:
    """Kits moving back and forth in many transactions while two folders fold again and again:
    at the end every move is counted exactly once."""
    with demo_db.engine.connect() as conn:
        kits = [
            k
            for (k,) in conn.execute(
                text("SELECT kit_number FROM kits WHERE status = 'at_depot' ORDER BY kit_number")
            )
        ][:40]
    stop = threading.Event()
    errors: list[BaseException] = []

    def mover(own: list[str]) -> None:
        db = Database(db_url)
        try:
            for round_ in range(6):
                status = "quarantined" if round_ % 2 == 0 else "at_depot"
                for kit in own:
                    with db.engine.begin() as conn:
                        conn.execute(
                            text("UPDATE kits SET status = :s WHERE kit_number = :k"),
                            {"s": status, "k": kit},
                        )
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    def folder() -> None:
        db = Database(db_url)
        try:
            while not stop.is_set():
                with writing(db) as session:
                    kit_counts.fold(session)
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    movers = [threading.Thread(target=mover, args=(kits[i::2],)) for i in range(2)]
    folders = [threading.Thread(target=folder) for _ in range(2)]
    for thread in [*movers, *folders]:
        thread.start()
    for thread in movers:
        thread.join()
    stop.set()
    for thread in folders:
        thread.join()
    assert not errors, errors
    assert _kept(demo_db) == _kits(demo_db)
    _fold(demo_db)
    assert _pending(demo_db) == 0 and _kept(demo_db, pending=False) == _kits(demo_db)


def _stock(report: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {line["location"]: line["by_status"] for line in report["locations"]}


def test_the_stock_report_reads_the_kept_counts(demo_db: Database) -> None:
    """The report's lines equal a count of the kits, before and after a fold, and follow the
    kept rows (what an edit of them would show)."""
    randomize_many(demo_db, 4, prefix="KR")
    today = utcnow().date()

    def report() -> dict[str, dict[str, int]]:
        with demo_db.read() as session:
            return _stock(reports.inventory(session, study=STUDY, actor=SPONSOR, today=today))

    counted: dict[str, Counter[str]] = {}
    for (site, depot, status, _), n in _kits(demo_db).items():
        counted.setdefault(site or depot, Counter())[status] += n
    expected = {place: dict(sorted(c.items())) for place, c in counted.items()}
    assert {k: v for k, v in report().items() if v} == expected
    _fold(demo_db)
    assert {k: v for k, v in report().items() if v} == expected
    rows = sum(1 for key in _kept(demo_db, pending=False) if key[0] == "DE01")
    with demo_db.engine.begin() as conn:
        conn.execute(text("UPDATE kit_counts SET kits = kits + 100 WHERE site_id = 'DE01'"))
    assert rows > 0
    assert sum(report()["DE01"].values()) == sum(expected["DE01"].values()) + 100 * rows


def test_the_migration_counts_what_an_older_database_holds(demo_db: Database) -> None:
    randomize_many(demo_db, 3, prefix="KM")
    before = _kits(demo_db)
    with demo_db.engine.begin() as conn:
        if demo_db.engine.dialect.name == "postgresql":
            for event in ("insert", "update", "delete"):
                conn.execute(text(f"DROP TRIGGER kit_counts_{event} ON kits"))
                conn.execute(text(f"DROP FUNCTION kit_counts_note_{event}()"))
        else:
            for event in ("insert", "update", "delete"):
                conn.execute(text(f"DROP TRIGGER kit_counts_{event}"))
        conn.execute(text("DROP TABLE kit_counts"))
        conn.execute(text("DROP TABLE kit_count_changes"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0018'"))
    command.upgrade(alembic_config(str(demo_db.engine.url.render_as_string(False))), "0019")
    assert _pending(demo_db) == 0 and _kept(demo_db, pending=False) == before
    randomize_many(demo_db, 2, prefix="KN")
    assert _kept(demo_db) == _kits(demo_db)


def test_a_count_edited_by_hand_fails_the_monitors_check(demo_db: Database) -> None:
    """An insider inflating a site's stock, in the kept rows or in a pending change, is named
    by the monitor's full check."""
    randomize_many(demo_db, 2, prefix="KI")
    _fold(demo_db)
    randomize_many(demo_db, 1, prefix="KJ")  # some counts folded, some pending
    with demo_db.read() as session:
        assert audit_integrity.verify_all(session, checkpoint_log=None).ok
    with demo_db.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE kit_counts SET kits = kits + 1 WHERE site_id = 'DE01' "
                "AND status = 'available'"
            )
        )
    with demo_db.read() as session:
        report = audit_integrity.verify_all(session, checkpoint_log=None)
    assert not report.ok and report.chain.ok
    drift = [d for d in report.replay.discrepancies if d.table == "kit_counts"]
    assert drift and all(int(d.found) == int(d.recorded) + 1 for d in drift)
    assert all(d.key.startswith("DE01/") for d in drift)
    with demo_db.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE kit_counts SET kits = kits - 1 WHERE site_id = 'DE01' "
                "AND status = 'available'"
            )
        )
        conn.execute(
            text(
                "INSERT INTO kit_count_changes (site_id, depot_id, status, expiry_date, kits) "
                "SELECT 'US01', depot_id, status, expiry_date, 5 FROM kit_counts LIMIT 1"
            )
        )
    with demo_db.read() as session:
        report = audit_integrity.verify_all(session, checkpoint_log=None)
    drift = [d for d in report.replay.discrepancies if d.table == "kit_counts"]
    assert not report.ok and len(drift) == 1 and drift[0].key.startswith("US01/")
    assert int(drift[0].found) == int(drift[0].recorded) + 5


def test_the_demo_set_up_and_a_kit_import_leave_nothing_to_fold(demo_db: Database) -> None:
    """The two moments that move thousands of kits at once fold what they moved: the stock
    report reads kept rows, not a change per kit, from the start."""
    assert _pending(demo_db) == 0 and _kept(demo_db, pending=False) == _kits(demo_db)
    before = sum(_kits(demo_db).values())
    today = utcnow().date()
    text_ = demo_kit_list(study=STUDY, today=today, per_content=50, rng=random.Random(7))
    admin_commands.import_kit_list(
        db=demo_db,
        study=STUDY,
        actor=SPONSOR,
        text=text_,
        settings=settings(demo_db),
        signature=SIGNATURE,
    )
    assert sum(_kits(demo_db).values()) == before + 50 * len(STUDY.contents)
    assert _pending(demo_db) == 0 and _kept(demo_db, pending=False) == _kits(demo_db)
