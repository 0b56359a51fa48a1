"""The latest standing dispensing each randomization keeps (migration 0021) on both engines:
set by a dosing visit, set back when the visit is marked entered in error, filled from the
dispensings an older database holds, and named by the monitor's check when edited by hand."""

from __future__ import annotations

from typing import Any

from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.db.engine import Database
from app.db.migrate import alembic_config
from app.services import audit_integrity
from tests.support.helpers import login, today
from tests.support.supply import API, Users, days_ago, dispense, ok, randomize_on

Latest = dict[int, tuple[int | None, int | None]]

STANDING = (
    "SELECT d.subject_id, d.visit_index, d.vials FROM dispensings d "
    "WHERE d.entered_in_error_at IS NULL ORDER BY d.subject_id, d.visit_index"
)


def _kept(db: Database) -> Latest:
    with db.engine.connect() as conn:
        return {
            s: (i, v)
            for s, i, v in conn.execute(
                text("SELECT subject_id, last_visit_index, last_vials FROM randomizations")
            )
        }


def _standing(db: Database) -> Latest:
    """The test's own reading: each randomized subject's standing dispensing of its latest
    visit (the rows come in visit order, the last one stays)."""
    latest: Latest = {}
    with db.engine.connect() as conn:
        randomized = conn.execute(text("SELECT subject_id FROM randomizations")).scalars()
        latest = dict.fromkeys(randomized, (None, None))
        for subject_id, index, vials in conn.execute(text(STANDING)):
            latest[subject_id] = (index, vials)
    return latest


def _dosed_at_w4(client: TestClient, users: Users, weight_kg: float = 70.0) -> tuple[int, Any]:
    """A subject randomized at DE01 four weeks ago (70 kg) and dosed at week 4: its id and the
    week 4 dispensing."""
    subject_id, _ = randomize_on(client, users["coordinator"], "DE01", days_ago(28))
    week_4 = dispense(client, users["pharmacist"], subject_id, "W4", today(), weight_kg=weight_kg)
    return subject_id, ok(week_4, 201)


def test_a_visit_sets_it_and_a_visit_entered_in_error_sets_it_back(
    client: TestClient, demo_db: Database
) -> None:
    users = Users(client)
    pharmacist = users["pharmacist"]
    subject_id, heavier = _dosed_at_w4(client, users, weight_kg=130.0)  # more vials than day 1
    day_one = (0, 1)  # 70 kg at 0.8 mg/kg: 56 mg, one 100 mg vial
    assert _kept(demo_db)[subject_id] == (1, len(heavier["kits"])) != (1, day_one[1])
    assert _kept(demo_db) == _standing(demo_db)
    url = f"{API}/subjects/{subject_id}/visits/W4/entered-in-error"
    ok(client.post(url, json={"reason": "recorded for the wrong subject"}, headers=pharmacist))
    assert _kept(demo_db)[subject_id] == day_one and _kept(demo_db) == _standing(demo_db)
    ok(dispense(client, pharmacist, subject_id, "W4", today()), 201)
    assert _kept(demo_db)[subject_id][0] == 1 and _kept(demo_db) == _standing(demo_db)
    verify = ok(client.get(f"{API}/admin/audit/verify", headers=login(client, "monitor")))
    assert verify["ok"], verify


def test_the_migration_fills_it_from_the_dispensings_an_older_database_holds(
    client: TestClient, demo_db: Database
) -> None:
    users = Users(client)
    dosed, _ = _dosed_at_w4(client, users)
    randomize_on(client, users["coordinator"], "DE01", days_ago(2))
    before = _kept(demo_db)
    assert before[dosed][0] == 1 and len(before) == 2
    with demo_db.engine.begin() as conn:
        for column in ("last_visit_index", "last_vials"):
            conn.execute(text(f"ALTER TABLE randomizations DROP COLUMN {column}"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0020'"))
    command.upgrade(alembic_config(str(demo_db.engine.url.render_as_string(False))), "0021")
    assert _kept(demo_db) == before


def test_a_latest_dispensing_edited_by_hand_fails_the_monitors_check(
    client: TestClient, demo_db: Database
) -> None:
    """An insider who sets a subject back a visit (its kits would be forecast again) is named."""
    subject_id, _ = _dosed_at_w4(client, Users(client))
    with demo_db.read() as session:
        assert audit_integrity.verify_all(session, checkpoint_log=None).ok
    with demo_db.engine.begin() as conn:
        conn.execute(
            text("UPDATE randomizations SET last_visit_index = 0 WHERE subject_id = :s"),
            {"s": subject_id},
        )
    with demo_db.read() as session:
        report = audit_integrity.verify_all(session, checkpoint_log=None)
    assert not report.ok and report.chain.ok
    assert [
        (d.table, d.key, d.field, d.found, d.recorded) for d in report.replay.discrepancies
    ] == [("randomizations", str(subject_id), "last_visit_index", "0", "1")]
