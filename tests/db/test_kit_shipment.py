"""The shipment each kit keeps (migration 0020) on both engines: set when the kit leaves the
depot, filled from the shipments an older database holds, and named by the monitor's check
when edited by hand (it decides the kit's tier for the common-tier rule)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from app.db.engine import Database
from app.db.migrate import alembic_config
from app.domain.roles import Role
from app.services import audit_integrity, resupply, shipments
from app.services.actor import Actor
from app.services.site_stock import available_stock
from app.services.transaction import utcnow, writing
from tests.support.caps import STUDY
from tests.support.databases import forget_kit_shipment

Kept = dict[str, int | None]

CARRIED = (
    "SELECT sk.kit_number, max(sk.shipment_id) FROM shipment_kits sk "
    "JOIN shipments s ON s.id = sk.shipment_id "
    "WHERE s.status IN ('shipped', 'received') GROUP BY sk.kit_number"
)


def _kept(db: Database) -> Kept:
    with db.engine.connect() as conn:
        return {n: s for n, s in conn.execute(text("SELECT kit_number, shipment_id FROM kits"))}


def _carried(db: Database) -> Kept:
    """The test's own reading of the shipments: the shipment that carried each kit, if any."""
    with db.engine.connect() as conn:
        carried = {n: s for n, s in conn.execute(text(CARRIED))}
        numbers = conn.execute(text("SELECT kit_number FROM kits")).scalars().all()
    return {n: carried.get(n) for n in numbers}


SUPPLY = Actor("supply", Role.SUPPLY_MANAGER, frozenset())


def _ship_one(db: Database, site_id: str) -> int:
    """A manual shipment to the site, shipped (its kits in transit)."""
    today = utcnow().date()
    with writing(db) as session:
        shipment = resupply.request_manual(
            session,
            study=STUDY,
            actor=SUPPLY,
            site_id=site_id,
            kits_per_content=2,
            reason="a test shipment",
            today=today,
        )
        shipment_id = shipment.id
    with writing(db) as session:
        shipments.ship(session, study=STUDY, actor=SUPPLY, shipment_id=shipment_id, today=today)
    return shipment_id


def test_each_shipped_kit_keeps_the_shipment_that_carried_it(demo_db: Database) -> None:
    requested = _ship_one(demo_db, "DE02")
    kept = _kept(demo_db)
    assert sum(1 for s in kept.values() if s == requested) == 2 * len(STUDY.contents)
    assert kept == _carried(demo_db)
    with demo_db.engine.connect() as conn:
        statuses = {
            status: int(n)
            for status, n in conn.execute(
                text(
                    "SELECT status, count(*) FROM kits WHERE shipment_id IS NOT NULL "
                    "GROUP BY status"
                )
            )
        }
    # the demo's received shipments (kits available) and the one on its way
    assert statuses.get("available", 0) > 0 and statuses.get("in_transit", 0) > 0
    assert sum(1 for s in kept.values() if s is None) > 0  # the depots' kits have none


def test_the_migration_fills_it_from_the_shipments_an_older_database_holds(
    demo_db: Database,
) -> None:
    _ship_one(demo_db, "DE02")
    before = _kept(demo_db)
    with demo_db.read() as session:
        stock = sorted(available_stock(session, "DE01"), key=repr)
    with demo_db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE kits DROP COLUMN shipment_id"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0019'"))
    command.upgrade(alembic_config(str(demo_db.engine.url.render_as_string(False))), "0020")
    assert _kept(demo_db) == before
    with demo_db.read() as session:
        assert sorted(available_stock(session, "DE01"), key=repr) == stock
        assert audit_integrity.verify_all(session, checkpoint_log=None).ok


def test_a_shipment_edited_by_hand_fails_the_monitors_check(demo_db: Database) -> None:
    """An insider moving a kit to another tier (no shipment, or another one) is named."""
    with demo_db.read() as session:
        assert audit_integrity.verify_all(session, checkpoint_log=None).ok
    number, shipment = forget_kit_shipment(demo_db, "DE01")
    with demo_db.read() as session:
        report = audit_integrity.verify_all(session, checkpoint_log=None)
        tiers = {(g.expiry_date, g.shipment) for g in available_stock(session, "DE01")}
    assert not report.ok and report.chain.ok
    drift = [d for d in report.replay.discrepancies if d.field == "shipment_id"]
    assert [(d.table, d.key, d.found, d.recorded) for d in drift] == [
        ("kits", number, None, str(shipment))
    ]
    assert any(s == 0 for _, s in tiers)  # the edited kit sits in a tier of its own
