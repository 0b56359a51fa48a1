"""The depot's shippable stock counted in SQL is the kit-by-kit reading of the same rule: kits
at the depot, not in a requested shipment, expiring after today + the do-not-ship window."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta
from typing import Any

from sqlalchemy import event, select

from app.db.engine import Database
from app.db.models import Kit, Shipment, ShipmentKit, Site
from app.domain.kits import KitCandidate, KitStatus, usable_on
from app.domain.study import load_study
from app.services.actor import SYSTEM
from app.services.depot_shelf import shippable_counts, shippable_numbers
from app.services.resupply import request_shipment
from app.services.transaction import utcnow, writing

STUDY = load_study()


def _by_hand(db: Database, depot: str, today: date, window: int) -> dict[str, Counter[date]]:
    with writing(db) as session:
        picked = set(
            session.execute(
                select(ShipmentKit.kit_number)
                .join(Shipment, Shipment.id == ShipmentKit.shipment_id)
                .where(Shipment.status == "requested")
            ).scalars()
        )
        kits = session.execute(
            select(Kit.kit_number, Kit.content, Kit.expiry_date).where(
                Kit.depot_id == depot, Kit.status == KitStatus.AT_DEPOT.value
            )
        ).all()
    shelf: dict[str, Counter[date]] = {}
    for number, content, expiry in kits:
        if number not in picked and usable_on(KitCandidate(number, content, expiry), today, window):
            shelf.setdefault(content, Counter())[expiry] += 1
    return shelf


def test_counted_and_read_kit_by_kit_agree(demo_db: Database) -> None:
    today = utcnow().date()
    window = STUDY.supply.do_not_ship_days
    with writing(demo_db) as session:
        site = session.get(Site, "DE01")
        assert site is not None and site.depot_id is not None
        depot = site.depot_id
        made = request_shipment(
            session,
            study=STUDY,
            actor=SYSTEM,
            site=site,
            orders={"phase_ib": dict.fromkeys(STUDY.contents, 3)},
            kind="manual",
            today=today,
            rng=random.Random(1),
        )
        assert made is not None  # some kits are now in a requested shipment
    for day, days in ((today, window), (today + timedelta(days=400), window), (today, 0)):
        expected = _by_hand(demo_db, depot, day, days)
        with writing(demo_db) as session:
            counted = shippable_counts(session, depot_id=depot, today=day, window_days=days)
            assert {c: +n for c, n in counted.items() if +n} == expected
            for content, dates in expected.items():
                for expiry, n in dates.items():
                    numbers = shippable_numbers(
                        session,
                        depot_id=depot,
                        today=day,
                        window_days=days,
                        content=content,
                        expiry=expiry,
                    )
                    assert len(numbers) == n and numbers == sorted(numbers)


def test_picked_kits_are_read_once_per_statement_not_per_depot_kit(demo_db: Database) -> None:
    """Counting the shelf must not look up the shipped kits once per depot kit: planned that
    way, SQLite scanned every shipment's kits for each of the depot's, and setting up a study
    of 2,000 subjects took minutes instead of seconds."""
    seen: list[tuple[str, Any]] = []

    def keep(_c: object, _k: object, statement: str, parameters: Any, *_: object) -> None:
        seen.append((statement, parameters))

    event.listen(demo_db.engine, "before_cursor_execute", keep)
    try:
        with writing(demo_db) as session:
            shippable_counts(session, depot_id="DEPOT-EU", today=utcnow().date(), window_days=30)
    finally:
        event.remove(demo_db.engine, "before_cursor_execute", keep)
    statement, parameters = seen[-1]
    with demo_db.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            plan = " ".join(
                str(row[-1])
                for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            )
            assert "CORRELATED" not in plan, plan
        else:
            plan = " ".join(
                str(row[0]) for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters)
            )
            assert "SubPlan" not in plan or "hashed SubPlan" in plan, plan
