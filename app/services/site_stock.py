"""A site's stock as the supply rules read it: available kits counted per content, expiry date,
shipment and stage pool, the numbers of the kits of chosen tiers only, and kits on their way.
A kit's shipment is the one it keeps (`kits.shipment_id`), so the reads touch the site's
available kits only, never its shipments.

Counting in SQL spares reading every available kit of the site into Python twice per
randomization or dosing visit (once to choose its kits, once for the resupply check after it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import BindParameter, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session

from app.db.models import Kit, Shipment, ShipmentKit
from app.domain.audit_replay import Discrepancy
from app.domain.common_expiry import KitGroup, Tier
from app.domain.kits import KitStatus

_SITE: BindParameter[str] = bindparam("site_id")
_brought_by = func.coalesce(Kit.shipment_id, 0)
_AVAILABLE = (Kit.site_id == _SITE) & (Kit.status == KitStatus.AVAILABLE.value)
# built once: the statements are the same for every site and visit but for their parameters
_STOCK = (
    select(Kit.content, Kit.expiry_date, Kit.shipment_id, Kit.pool, func.count())
    .where(_AVAILABLE)
    .group_by(Kit.content, Kit.expiry_date, Kit.shipment_id, Kit.pool)
)
_NUMBERS = select(Kit.kit_number, Kit.content, Kit.expiry_date, Kit.shipment_id).where(_AVAILABLE)


def available_stock(session: Session, site_id: str) -> list[KitGroup]:
    """The site's available kits of every content, counted per content, expiry date, the
    shipment that brought them (0 for none) and stage pool: a kit's tier for the common-tier
    rule is its expiry date and that shipment, within its pool."""
    rows = session.execute(_STOCK, {"site_id": site_id}).all()
    return [KitGroup(c, e, int(s or 0), p, int(n)) for c, e, s, p, n in rows]


def tier_kits(
    session: Session, *, site_id: str, content: str, pool: str | None, tiers: Iterable[Tier]
) -> dict[Tier, list[str]]:
    """The numbers of the site's available kits of `content` (and of `pool`, if given) in each
    of `tiers`, in kit number order. Every content's kits of the tiers are read, so that what
    the read costs does not follow the arm."""
    wanted = sorted(set(tiers))
    if not wanted:
        return {}
    statement = _NUMBERS.where(
        or_(*(and_(Kit.expiry_date == e, _brought_by == s) for e, s in wanted))
    )
    if pool is not None:
        statement = statement.where(Kit.pool == pool)
    found: defaultdict[Tier, list[str]] = defaultdict(list)
    for number, kit_content, expiry, shipment in session.execute(statement, {"site_id": site_id}):
        if kit_content == content:
            found[(expiry, int(shipment or 0))].append(number)
    return {tier: sorted(numbers) for tier, numbers in found.items()}


_IN_TRANSIT = (
    select(ShipmentKit.pool, Kit.content, func.count())
    .select_from(ShipmentKit)
    .join(Shipment, Shipment.id == ShipmentKit.shipment_id)
    .join(Kit, Kit.kit_number == ShipmentKit.kit_number)
    .where(Shipment.site_id == _SITE, Shipment.status.in_(("requested", "shipped")))
    .group_by(ShipmentKit.pool, Kit.content)
)


def in_transit(session: Session, site_id: str) -> dict[tuple[str | None, str], int]:
    """Kits per stage pool and content in the site's open shipments (requested or shipped)."""
    return {
        (pool, content): int(count)
        for pool, content, count in session.execute(_IN_TRANSIT, {"site_id": site_id})
    }


_CARRIED = (
    select(ShipmentKit.kit_number, func.max(ShipmentKit.shipment_id).label("shipment_id"))
    .join(Shipment, Shipment.id == ShipmentKit.shipment_id)
    .where(Shipment.status.not_in(("requested", "cancelled")))
    .group_by(ShipmentKit.kit_number)
    .subquery()
)
"""Per kit, the last shipment that took it from its depot (a kit leaves a depot once)."""


def shipment_drift(session: Session) -> list[Discrepancy]:
    """Every kit whose kept shipment differs from the shipments that carried it. An insider who
    edits it moves the kit to another tier: which kits a visit gets, and whether a visit or a
    randomization is refused, would then no longer follow the common-tier rule."""
    rows = session.execute(
        select(Kit.kit_number, Kit.shipment_id, _CARRIED.c.shipment_id)
        .outerjoin(_CARRIED, _CARRIED.c.kit_number == Kit.kit_number)
        .where(Kit.shipment_id.is_distinct_from(_CARRIED.c.shipment_id))
        .order_by(Kit.kit_number)
    )
    return [
        Discrepancy(
            "kits",
            number,
            "shipment_id",
            None if kept is None else str(kept),
            None if carried is None else str(carried),
            None,
            "the kit's shipment differs from the shipments that carried it",
        )
        for number, kept, carried in rows
    ]
