"""A depot's shippable stock as the resupply reads it: kits counted per content and expiry date
in SQL, and the numbers of the kits of one content and date only when a shipment picks them.

A depot holds most of a trial's kits (600,000 at a hundred times IMC-002's size); reading them
all into Python for every shipment request cost more the larger the depot, so it is counted
where it lies and only the picked dates' kits are read."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from app.db.models import Kit, Shipment, ShipmentKit
from app.domain.kits import KitStatus
from app.services.kits import usable_after

_PICKED = (
    select(ShipmentKit.kit_number)
    .join(Shipment, Shipment.id == ShipmentKit.shipment_id)
    .where(Shipment.status == "requested")
)
"""Kits picked for a shipment not sent yet: read once per statement, not per kit (a correlated
NOT EXISTS was planned by SQLite as a scan of every shipped kit for every depot kit)."""


def _shippable(depot_id: str, today: date, window_days: int) -> list[ColumnElement[bool]]:
    """Kits at the depot, not picked for a shipment yet, expiring after today + the
    do-not-ship window (`usable_on`)."""
    return [
        Kit.depot_id == depot_id,
        Kit.status == KitStatus.AT_DEPOT.value,
        usable_after(today, window_days),
        Kit.kit_number.not_in(_PICKED),
    ]


def shippable_counts(
    session: Session, *, depot_id: str, today: date, window_days: int
) -> dict[str, Counter[date]]:
    """Kits per content and expiry date that may be shipped today."""
    shelf: defaultdict[str, Counter[date]] = defaultdict(Counter)
    for content, expiry, count in session.execute(
        select(Kit.content, Kit.expiry_date, func.count())
        .where(*_shippable(depot_id, today, window_days))
        .group_by(Kit.content, Kit.expiry_date)
    ):
        shelf[content][expiry] = int(count)
    return dict(shelf)


def shippable_numbers(
    session: Session, *, depot_id: str, today: date, window_days: int, content: str, expiry: date
) -> list[str]:
    """The numbers of the shippable kits of one content and expiry date, in kit number order
    (sorted here: a database's collation may order them otherwise)."""
    return sorted(
        session.execute(
            select(Kit.kit_number)
            .where(*_shippable(depot_id, today, window_days))
            .where(Kit.content == content, Kit.expiry_date == expiry)
        ).scalars()
    )
