"""Site inventory (blinded) and kit reconciliation (unblinded)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from app.db.models import Kit, Shipment, ShipmentKit, Site
from app.domain.errors import not_found
from app.domain.kits import KitStatus
from app.domain.reasons import check_reason
from app.domain.study import StudyDefinition
from app.services.actor import Actor
from app.services.kits import (
    BLINDED_COLUMNS,
    blinded_kit,
    blinded_view,
    get_kit,
    move,
    unblinded_kit,
    usable_after,
)
from app.services.locks import lock_site
from app.services.resupply import check_site

ON_HAND = tuple(s for s in KitStatus if s is not KitStatus.DISPENSED)
"""What the inventory lists unless asked otherwise: every kit at the site but those already
dispensed (a subject's kits are on its dispensing record). A site's dispensed kits grow with
its history; what is on its shelf follows its enrolment rate."""


def site_inventory(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    site_id: str,
    today: date,
    statuses: Sequence[KitStatus] = ON_HAND,
) -> dict[str, Any]:
    """The site's totals over every kit it holds or held (per status, never per content) and
    the kits of `statuses` with their status and expiry."""
    if session.get(Site, site_id) is None or not actor.sees_site(site_id):
        raise not_found(f"Site {site_id}")
    dispensable = func.count().filter(
        Kit.status == KitStatus.AVAILABLE.value,
        usable_after(today, study.supply.do_not_dispense_days),
    )
    totals = session.execute(
        select(Kit.status, func.count(), dispensable)
        .where(Kit.site_id == site_id)
        .group_by(Kit.status)
    ).all()
    listed = sorted({KitStatus(s).value for s in statuses})
    kits = session.execute(_LISTED, {"site_id": site_id, "statuses": listed}) if listed else ()
    return {
        "site_id": site_id,
        "total": sum(n for _, n, _ in totals),
        "dispensable": sum(d for _, _, d in totals),
        "by_status": {status: n for status, n, _ in sorted(totals)},
        "listed_statuses": listed,
        "kits": [blinded_view(*k) for k in kits],
    }


_LISTED = (
    select(*BLINDED_COLUMNS)
    .where(
        Kit.site_id == bindparam("site_id"),
        Kit.status.in_(bindparam("statuses", expanding=True)),
    )
    .order_by(Kit.expiry_date, Kit.kit_number)
)


def quarantined(session: Session, actor: Actor) -> dict[str, Any]:
    """What waits for the supply manager's decision: quarantined shipments and every
    quarantined kit (at a site or a depot), with the quarantined shipment it arrived in."""
    held = (
        select(ShipmentKit.kit_number, Shipment.id.label("shipment_id"))
        .join(Shipment, Shipment.id == ShipmentKit.shipment_id)
        .where(Shipment.status == "quarantined")
        .subquery()
    )
    rows = session.execute(
        select(Kit, held.c.shipment_id)
        .outerjoin(held, held.c.kit_number == Kit.kit_number)
        .where(Kit.status == KitStatus.QUARANTINED.value)
        .order_by(Kit.site_id, Kit.depot_id, Kit.kit_number)
    ).all()
    shipments = session.execute(
        select(Shipment).where(Shipment.status == "quarantined").order_by(Shipment.id)
    ).scalars()
    still_held = Counter(shipment_id for _, shipment_id in rows if shipment_id is not None)
    return {
        "shipments": [
            {
                "shipment_id": s.id,
                "site_id": s.site_id,
                "depot_id": s.depot_id,
                "received_on": s.received_on.isoformat() if s.received_on else None,
                "quarantined_kits": still_held[s.id],
            }
            for s in shipments
            if actor.sees_site(s.site_id)
        ],
        "kits": [
            {**blinded_kit(kit), "shipment_id": shipment_id}
            for kit, shipment_id in rows
            if kit.site_id is None or actor.sees_site(kit.site_id)
        ],
    }


def all_kits(session: Session, *, site_id: str | None, status: str | None) -> list[dict[str, Any]]:
    query = select(Kit).order_by(Kit.kit_number)
    if site_id:
        query = query.where(Kit.site_id == site_id)
    if status:
        query = query.where(Kit.status == status)
    return [unblinded_kit(k) for k in session.execute(query).scalars()]


def reconciliation(session: Session, study: StudyDefinition) -> list[dict[str, Any]]:
    """Per site and content: kits shipped to the site against where each one is now. Every
    kit sent is counted exactly once by its current status, so the balance must be zero."""
    shipped = dict(
        ((site, content), int(count))
        for site, content, count in session.execute(
            select(Shipment.site_id, Kit.content, func.count())
            .join(ShipmentKit, ShipmentKit.shipment_id == Shipment.id)
            .join(Kit, Kit.kit_number == ShipmentKit.kit_number)
            .where(Shipment.status.not_in(("requested", "cancelled")))
            .group_by(Shipment.site_id, Kit.content)
        ).all()
    )
    held: dict[tuple[str, str], Counter[str]] = {}
    for site, content, status, count in session.execute(
        select(Kit.site_id, Kit.content, Kit.status, func.count())
        .where(Kit.site_id.is_not(None))
        .group_by(Kit.site_id, Kit.content, Kit.status)
    ).all():
        held.setdefault((str(site), content), Counter())[status] = int(count)
    report = []
    for site_id in session.execute(select(Site.id).order_by(Site.id)).scalars():
        for content in study.contents:
            statuses = held.get((site_id, content), Counter())
            sent = shipped.get((site_id, content), 0)
            accounted = sum(statuses.values())
            report.append(
                {
                    "site_id": site_id,
                    "content": content,
                    "shipped_to_site": sent,
                    "by_status": {
                        s.value: statuses.get(s.value, 0)
                        for s in KitStatus
                        if s is not KitStatus.AT_DEPOT
                    },
                    "accounted": accounted,
                    "balance": sent - accounted,
                }
            )
    return report


def change_status(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    kit_number: str,
    target: KitStatus,
    reason: str,
    today: date,
) -> dict[str, Any]:
    """A hand-made status change (quarantine, release, damaged, lost, returned, destroyed)."""
    reason = check_reason(reason)
    kit = get_kit(session, kit_number=kit_number, actor=actor)
    site = lock_site(session, kit.site_id) if kit.site_id else None
    kit = get_kit(session, kit_number=kit_number, actor=actor)
    move(session, actor=actor, kit=kit, target=target, by=str(actor.role), reason=reason)
    if site is not None:
        check_site(session, study=study, actor=actor, site=site, today=today)
    return blinded_kit(kit)
