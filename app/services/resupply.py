"""Resupply: compare a site's stock per content with its levels and request what is missing."""

from __future__ import annotations

import random
from datetime import date, timedelta

from sqlalchemy import Exists, exists, func, select
from sqlalchemy.orm import Session

from app.db.models import (
    Dispensing,
    Kit,
    Randomization,
    Shipment,
    ShipmentKit,
    Site,
    Slot,
    Subject,
    SupplyLevel,
)
from app.domain.kits import KitCandidate, KitStatus, select_kits, usable_on
from app.domain.resupply import Stock, next_visit, predicted_need, resupply_quantity
from app.domain.study import StudyDefinition
from app.services import audit
from app.services.actor import Actor
from app.services.errors import ServiceError
from app.services.kits import move
from app.services.locks import lock_depot, lock_site
from app.services.transaction import utcnow


def expire_site_kits(
    session: Session, actor: Actor, site_id: str, today: date, window_days: int
) -> None:
    """Available kits inside the do-not-dispense window leave the stock (status expired)."""
    cutoff = today + timedelta(days=window_days)
    for kit in session.execute(
        select(Kit)
        .where(
            Kit.site_id == site_id,
            Kit.status == KitStatus.AVAILABLE.value,
            Kit.expiry_date <= cutoff,
        )
        .order_by(Kit.kit_number)
    ).scalars():
        move(session, actor, kit, KitStatus.EXPIRED, "system", "inside the do-not-dispense window")


def site_levels(
    session: Session, study: StudyDefinition, site_id: str
) -> dict[str, tuple[int, int]]:
    """(trigger, target) per content: the site's own levels, else the study's."""
    own = {
        row.content: (row.trigger, row.target)
        for row in session.execute(
            select(SupplyLevel).where(SupplyLevel.site_id == site_id)
        ).scalars()
    }
    default = (study.supply.resupply_trigger, study.supply.resupply_target)
    return {content: own.get(content, default) for content in study.contents}


def site_stock(
    session: Session, study: StudyDefinition, site_id: str, today: date
) -> dict[str, Stock]:
    """The stock of every content at the site: three grouped queries, whatever the contents."""
    available: dict[str, int] = dict(
        session.execute(
            select(Kit.content, func.count())
            .where(
                Kit.site_id == site_id,
                Kit.status == KitStatus.AVAILABLE.value,
                Kit.expiry_date > today + timedelta(days=study.supply.do_not_dispense_days),
            )
            .group_by(Kit.content)
        ).all()
    )
    in_transit: dict[str, int] = dict(
        session.execute(
            select(Kit.content, func.count())
            .select_from(ShipmentKit)
            .join(Shipment, Shipment.id == ShipmentKit.shipment_id)
            .join(Kit, Kit.kit_number == ShipmentKit.kit_number)
            .where(
                Shipment.site_id == site_id,
                Shipment.status.in_(("requested", "shipped")),
            )
            .group_by(Kit.content)
        ).all()
    )
    predicted = _predicted(session, study, site_id, today)
    return {
        content: Stock(
            int(available.get(content, 0)),
            int(in_transit.get(content, 0)),
            predicted.get(content, 0),
        )
        for content in study.contents
    }


def _predicted(
    session: Session, study: StudyDefinition, site_id: str, today: date
) -> dict[str, int]:
    """Vials per content the site's subjects will need within the shipping lead time."""
    last = (  # the last visit of each subject of this site (not of every site)
        select(Dispensing.subject_id, func.max(Dispensing.visit_index).label("last_index"))
        .join(Subject, Subject.id == Dispensing.subject_id)
        .where(Subject.site_id == site_id)
        .group_by(Dispensing.subject_id)
        .subquery()
    )
    rows = session.execute(
        select(Slot.arm, Randomization.visit_date, last.c.last_index, Dispensing.vials)
        .join(Subject, Subject.id == Randomization.subject_id)
        .join(Slot, Slot.id == Randomization.slot_id)
        .join(last, last.c.subject_id == Randomization.subject_id)
        .join(
            Dispensing,
            (Dispensing.subject_id == Randomization.subject_id)
            & (Dispensing.visit_index == last.c.last_index),
        )
        .where(Subject.site_id == site_id, Subject.status == "randomized")
    ).all()
    due: dict[str, list[tuple[date, int]]] = {}
    for arm, day_one, last_index, vials in rows:
        upcoming = next_visit(study.schedule, day_one, last_index)
        if upcoming is not None:
            due.setdefault(arm, []).append((upcoming[1], vials))
    lead = study.supply.shipping_lead_days
    return {arm: predicted_need(visits, today, lead) for arm, visits in due.items()}


def _in_open_shipment() -> Exists:
    return exists().where(
        ShipmentKit.kit_number == Kit.kit_number,
        ShipmentKit.shipment_id == Shipment.id,
        Shipment.status == "requested",
    )


def depot_stock(session: Session, depot_id: str, content: str) -> list[KitCandidate]:
    """Kits of one content at the depot and not yet picked for a shipment."""
    rows = session.execute(
        select(Kit.kit_number, Kit.content, Kit.expiry_date).where(
            Kit.depot_id == depot_id,
            Kit.status == KitStatus.AT_DEPOT.value,
            Kit.content == content,
            ~_in_open_shipment(),
        )
    ).all()
    return [KitCandidate(*row) for row in rows]


def request_shipment(
    session: Session,
    study: StudyDefinition,
    actor: Actor,
    site: Site,
    quantities: dict[str, int],
    kind: str,
    today: date,
    rng: random.Random,
) -> Shipment | None:
    """Pick kits (first expiry first among those shippable today) into a new shipment.
    Short depot stock ships what there is; the shortfall is audited. None if nothing to ship."""
    if site.depot_id is None:
        raise ServiceError(409, "no_depot", f"Site {site.id} has no supplying depot.")
    lock_depot(session, site.depot_id)
    picked: list[str] = []
    short: dict[str, int] = {}
    for content, quantity in sorted(quantities.items()):
        window = study.supply.do_not_ship_days
        shippable = [
            k for k in depot_stock(session, site.depot_id, content) if usable_on(k, today, window)
        ]
        take = min(quantity, len(shippable))
        chosen = select_kits(shippable, content, take, today, window, rng) or []
        picked += [k.kit_number for k in chosen]
        if take < quantity:
            short[content] = quantity - take
    if short:
        audit.record(
            session,
            actor,
            "depot.short",
            "depot",
            site.depot_id,
            None,
            {"site_id": site.id, "kind": kind, "kits_short": sum(short.values())},
            "the depot lacks shippable kits",
        )
    if not picked:
        return None
    shipment = Shipment(
        depot_id=site.depot_id,
        site_id=site.id,
        kind=kind,
        status="requested",
        requested_at=utcnow(),
        requested_by=actor.username,
        temperature_excursion=False,
    )
    session.add(shipment)
    session.flush()
    session.add_all(ShipmentKit(shipment_id=shipment.id, kit_number=n) for n in sorted(picked))
    session.flush()
    audit.record(
        session,
        actor,
        "shipment.request",
        "shipment",
        shipment.id,
        None,
        {"site_id": site.id, "depot_id": site.depot_id, "kind": kind, "kits": sorted(picked)},
    )
    return shipment


def check_site(
    session: Session,
    study: StudyDefinition,
    actor: Actor,
    site: Site,
    today: date,
    kind: str = "resupply",
    extra_need: dict[str, int] | None = None,
) -> Shipment | None:
    """When any content is below its trigger, request one shipment holding every content in
    the same number (the largest shortfall), so that a shipment reveals nothing."""
    if not site.active or site.depot_id is None:
        return None
    expire_site_kits(session, actor, site.id, today, study.supply.do_not_dispense_days)
    quantities: dict[str, int] = {}
    stocks = site_stock(session, study, site.id, today)
    own_levels = site_levels(session, study, site.id)
    for content in study.contents:
        stock = stocks[content]
        need = (extra_need or {}).get(content, 0)
        stock = Stock(stock.available, stock.in_transit, stock.predicted_need + need)
        trigger, target = own_levels[content]
        quantity = resupply_quantity(stock, trigger, target)
        if quantity:
            quantities[content] = quantity
    if not quantities:
        return None
    # Every content in equal numbers: a shipment of one content would let a blinded user who
    # sees which kits arrive together and which subject gets which kit group subjects by arm.
    quantities = dict.fromkeys(study.contents, max(quantities.values()))
    shipment = request_shipment(
        session, study, actor, site, quantities, kind, today, random.Random()
    )
    if shipment is not None:
        audit.record(
            session,
            actor,
            "site.resupply",
            "site",
            site.id,
            None,
            {"shipment_id": shipment.id, "kind": kind},
        )
    return shipment


def request_manual(
    session: Session,
    study: StudyDefinition,
    actor: Actor,
    site_id: str,
    kits_per_content: int,
    reason: str,
    today: date,
) -> Shipment:
    """A supply manager's own shipment: the same number of each content, so it reveals nothing."""
    site = lock_site(session, site_id)
    quantities = dict.fromkeys(study.contents, kits_per_content)
    shipment = request_shipment(
        session, study, actor, site, quantities, "manual", today, random.SystemRandom()
    )
    if shipment is None:
        raise ServiceError(409, "depot_empty", "The depot has no shippable kits for this site.")
    audit.record(
        session,
        actor,
        "shipment.manual",
        "shipment",
        shipment.id,
        None,
        {"site_id": site_id, "kits_per_content": kits_per_content},
        reason,
    )
    return shipment
