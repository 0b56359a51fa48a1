"""Depot stock for the supply manager and the monitor: totals by status and by expiry date.

Blinded: never a content, a lot or a count per content. Every expiry date of a kit list carries
every content (app/domain/kits.py) and every shipment takes each content in equal numbers, so
totals per expiry date say nothing about which content is left."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Depot, Kit, Shipment, ShipmentKit
from app.domain.errors import not_found
from app.domain.kits import KitStatus
from app.domain.study import StudyDefinition


def list_depots(session: Session) -> list[dict[str, Any]]:
    return [
        {"depot_id": d.id, "name": d.name, "country": d.country}
        for d in session.execute(select(Depot).order_by(Depot.id)).scalars()
    ]


def depot_stock(
    session: Session, *, study: StudyDefinition, depot_id: str, today: date
) -> dict[str, Any]:
    """The kits at the depot (not yet sent to a site) by status and by expiry date; how many
    are picked for a requested shipment, and how many could still be shipped today (at the
    depot, not picked, outside the do-not-ship window)."""
    depot = session.get(Depot, depot_id)
    if depot is None:
        raise not_found(f"Depot {depot_id}")
    at_depot = (Kit.depot_id == depot_id, Kit.site_id.is_(None))
    grid: dict[date, Counter[str]] = {}
    for status, expiry, count in session.execute(
        select(Kit.status, Kit.expiry_date, func.count())
        .where(*at_depot)
        .group_by(Kit.status, Kit.expiry_date)
    ).all():
        grid.setdefault(expiry, Counter())[status] += int(count)
    picked = (
        select(Kit.expiry_date, func.count())
        .join(ShipmentKit, ShipmentKit.kit_number == Kit.kit_number)
        .join(Shipment, Shipment.id == ShipmentKit.shipment_id)
        .where(*at_depot, Kit.status == KitStatus.AT_DEPOT.value, Shipment.status == "requested")
        .group_by(Kit.expiry_date)
    )
    reserved: dict[date, int] = {e: int(n) for e, n in session.execute(picked).all()}
    cutoff = today + timedelta(days=study.supply.do_not_ship_days)  # as domain.kits.usable_on
    by_status: Counter[str] = Counter()
    for counts in grid.values():
        by_status.update(counts)
    shippable = sum(
        counts[KitStatus.AT_DEPOT.value] - reserved.get(expiry, 0)
        for expiry, counts in grid.items()
        if expiry > cutoff
    )
    return {
        "depot_id": depot.id,
        "name": depot.name,
        "country": depot.country,
        "as_of": today.isoformat(),
        "do_not_ship_days": study.supply.do_not_ship_days,
        "total": sum(by_status.values()),
        "shippable": shippable,
        "reserved": sum(reserved.values()),
        "by_status": dict(sorted(by_status.items())),
        "by_expiry": [
            {
                "expiry_date": expiry.isoformat(),
                "total": sum(counts.values()),
                "reserved": reserved.get(expiry, 0),
                "by_status": dict(sorted(counts.items())),
            }
            for expiry, counts in sorted(grid.items())
        ],
    }
