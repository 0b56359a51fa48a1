"""Resupply: forecast a site's need per content, and request the shipment the policy asks for.

The decisions are the pure functions of app/domain/forecast.py, app/domain/common_expiry.py and
app/domain/resupply.py, which the simulator calls too; this module only reads the state they
need from the database and writes the shipment.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Exists, exists, func, select
from sqlalchemy import true as sa_true
from sqlalchemy.orm import Session

from app.db.models import (
    Dispensing,
    Kit,
    Randomization,
    Shipment,
    ShipmentKit,
    Site,
    Slot,
    Study,
    Subject,
)
from app.domain.common_expiry import tally, usable_stock
from app.domain.dosing import heaviest_visit_vials
from app.domain.errors import Conflict
from app.domain.forecast import NO_ENROLMENT, OnTreatment, site_need
from app.domain.kits import KitCandidate, KitStatus, usable_on
from app.domain.lifecycle import ON_TREATMENT
from app.domain.reasons import check_reason
from app.domain.resupply import (
    Levels,
    Position,
    need_shares,
    order_quantities,
    pick_depot_dates,
)
from app.domain.stage_pools import live_pools, pool_level, shipment_by_pool
from app.domain.study import StudyDefinition
from app.services import audit
from app.services.actor import Actor
from app.services.kits import move
from app.services.locks import lock_depot, lock_site
from app.services.site_stages import recruiting, site_enrolment, site_levels
from app.services.transaction import utcnow


def expire_site_kits(
    session: Session, *, actor: Actor, site_id: str, today: date, window_days: int
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
        move(
            session,
            actor=actor,
            kit=kit,
            target=KitStatus.EXPIRED,
            by="system",
            reason="inside the do-not-dispense window",
        )


def on_treatment(session: Session, site_id: str, pool: str | None = None) -> list[OnTreatment]:
    """The site's randomized subjects still on treatment (of one stage pool, if given), with
    their next visit and vials."""
    last = (
        select(Dispensing.subject_id, func.max(Dispensing.visit_index).label("last_index"))
        .join(Subject, Subject.id == Dispensing.subject_id)
        .where(Subject.site_id == site_id, Dispensing.entered_in_error_at.is_(None))
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
            & (Dispensing.visit_index == last.c.last_index)
            & Dispensing.entered_in_error_at.is_(None),
        )
        .where(Subject.site_id == site_id, Subject.status.in_(ON_TREATMENT))
        .where(Randomization.stage == pool if pool is not None else sa_true())
    ).all()
    return [
        OnTreatment(arm, day_one, last_index + 1, vials) for arm, day_one, last_index, vials in rows
    ]


def available_kits(session: Session, site_id: str) -> list[KitCandidate]:
    """The site's available kits of every content, each with the shipment that brought it and
    its stage pool (a kit's tier for the common-tier rule is its expiry date and that shipment,
    within its pool)."""
    brought = (
        select(ShipmentKit.kit_number, func.max(ShipmentKit.shipment_id).label("shipment_id"))
        .join(Shipment, Shipment.id == ShipmentKit.shipment_id)
        .where(Shipment.site_id == site_id, Shipment.status.not_in(("requested", "cancelled")))
        .group_by(ShipmentKit.kit_number)
        .subquery()
    )
    rows = session.execute(
        select(Kit.kit_number, Kit.content, Kit.expiry_date, brought.c.shipment_id, Kit.pool)
        .outerjoin(brought, brought.c.kit_number == Kit.kit_number)
        .where(Kit.site_id == site_id, Kit.status == KitStatus.AVAILABLE.value)
    ).all()
    return [KitCandidate(n, c, e, int(s or 0), p) for n, c, e, s, p in rows]


def in_transit(session: Session, site_id: str, pool: str | None = None) -> dict[str, int]:
    """Kits per content in the site's open shipments (requested or shipped), of one stage pool
    if given."""
    return {
        content: int(count)
        for content, count in session.execute(
            select(Kit.content, func.count())
            .select_from(ShipmentKit)
            .join(Shipment, Shipment.id == ShipmentKit.shipment_id)
            .join(Kit, Kit.kit_number == ShipmentKit.kit_number)
            .where(Shipment.site_id == site_id, Shipment.status.in_(("requested", "shipped")))
            .where(ShipmentKit.pool == pool if pool is not None else sa_true())
            .group_by(Kit.content)
        ).all()
    }


@dataclass(frozen=True)
class SitePosition:
    """Everything the resupply decides on for one site, per content."""

    levels: Levels
    floor: int
    positions: dict[str, Position]


def site_position(
    session: Session,
    *,
    study: StudyDefinition,
    site: Site,
    today: date,
    extra_need: int = 0,
    cover_days: int | None = None,
    pool: str | None = None,
) -> SitePosition:
    """The site's position per content, of one stage pool if given (else of every kit and
    subject); `extra_need` vials of every content are added (a visit just refused: the same
    for every content, so an urgent shipment does not follow the arm). A pool other than the
    recruiting one expects no subjects to come, and holds one heaviest visit at its stage's
    highest dose level."""
    levels = site_levels(session, study=study, site=site)
    enrolment, floor = site_enrolment(session, study=study, site=site)
    if pool is not None and pool != recruiting(session, study=study):
        phase2_dose = session.execute(select(Study.phase2_dose_mg_per_kg)).scalar_one_or_none()
        level = pool_level(study, pool, phase2_dose)
        enrolment, floor = NO_ENROLMENT, heaviest_visit_vials(level, study.drug, study.weight)
    subjects = on_treatment(session, site.id, pool)
    visits = study.schedule.visits()
    lead = levels.lead_days
    cover = levels.cover_days if cover_days is None else cover_days
    need_lead, need_cover = (
        site_need(
            subjects,
            enrolment=enrolment,
            visits=visits,
            contents=study.contents,
            today=today,
            horizon_days=days,
        )
        for days in (lead, lead + cover)
    )
    # stock that will still be dispensable when a shipment ordered today arrives, counted as far
    # as its tiers can be used in the shares the site needs the contents
    arrival = today + timedelta(days=lead)
    kits = [k for k in available_kits(session, site.id) if pool is None or k.pool == pool]
    shelf = tally(kits, arrival, study.supply.do_not_dispense_days)
    shares = need_shares({c: need_cover[c] + extra_need for c in study.contents}, floor)
    stock = usable_stock(shelf, contents=study.contents, shares=shares)
    moving = in_transit(session, site.id, pool)
    positions = {
        c: Position(
            stock.get(c, 0),
            moving.get(c, 0),
            need_lead[c] + extra_need,
            need_cover[c] + extra_need,
        )
        for c in study.contents
    }
    return SitePosition(levels, floor, positions)


def site_positions(
    session: Session,
    *,
    study: StudyDefinition,
    site: Site,
    today: date,
    extra_need: int = 0,
    extra_pool: str | None = None,
) -> dict[str, SitePosition]:
    """The position of each stage pool the site reckons with: the recruiting one and every
    pool with subjects on treatment. `extra_need` goes to `extra_pool` (a refused visit's)."""
    treated = Counter(
        session.execute(
            select(Randomization.stage)
            .join(Subject, Subject.id == Randomization.subject_id)
            .where(Subject.site_id == site.id, Subject.status.in_(ON_TREATMENT))
        ).scalars()
    )
    pools = live_pools(
        [s.stage for s in study.scopes()],
        recruiting=recruiting(session, study=study),
        on_treatment=treated,
    )
    if extra_pool is not None and extra_pool not in pools:
        pools.append(extra_pool)
    return {
        pool: site_position(
            session,
            study=study,
            site=site,
            today=today,
            extra_need=extra_need if pool == extra_pool else 0,
            pool=pool,
        )
        for pool in dict.fromkeys(pools)
    }


def _in_open_shipment() -> Exists:
    return exists().where(
        ShipmentKit.kit_number == Kit.kit_number,
        ShipmentKit.shipment_id == Shipment.id,
        Shipment.status == "requested",
    )


def depot_shelf(
    *, kits: list[KitCandidate], today: date, window_days: int
) -> dict[str, Counter[date]]:
    """Kits per content and expiry date that may be shipped today (do-not-ship window)."""
    shelf: defaultdict[str, Counter[date]] = defaultdict(Counter)
    for kit in kits:
        if usable_on(kit, today, window_days):
            shelf[kit.content][kit.expiry_date] += 1
    return shelf


def depot_stock(session: Session, depot_id: str) -> list[KitCandidate]:
    """Kits at the depot not yet picked for a shipment, of every content."""
    rows = session.execute(
        select(Kit.kit_number, Kit.content, Kit.expiry_date).where(
            Kit.depot_id == depot_id,
            Kit.status == KitStatus.AT_DEPOT.value,
            ~_in_open_shipment(),
        )
    ).all()
    return [KitCandidate(*row) for row in rows]


def request_shipment(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    site: Site,
    orders: dict[str, dict[str, int]],
    kind: str,
    today: date,
    rng: random.Random,
) -> Shipment | None:
    """Pick kits into a new shipment, per stage pool (`orders`: pool -> kits per content; the
    kits get their pool now): every content at the same expiry dates, earliest first among
    kits shippable today (app/domain/resupply.py), the pools in the order the stages open.
    Short depot stock ships what there is; the shortfall is audited. None if nothing can be
    shipped."""
    if site.depot_id is None:
        raise Conflict("no_depot", f"Site {site.id} has no supplying depot.")
    lock_depot(session, site.depot_id)
    window = study.supply.do_not_ship_days
    shippable = [k for k in depot_stock(session, site.depot_id) if usable_on(k, today, window)]
    pools: dict[tuple[str, date], list[str]] = defaultdict(list)
    for kit in sorted(shippable, key=lambda k: k.kit_number):
        pools[(kit.content, kit.expiry_date)].append(kit.kit_number)
    shelf = depot_shelf(kits=shippable, today=today, window_days=window)
    picked: dict[str, str] = {}
    """Kit number -> the stage pool it is picked for."""
    short: Counter[str] = Counter()
    for pool, quantities in orders.items():
        picked_dates, missing = pick_depot_dates(shelf, quantities, study.contents)
        short.update(missing)
        numbers = []
        for content, dates in picked_dates.items():
            for expiry, count in sorted(dates.items()):
                left = pools[(content, expiry)]
                taken = set(rng.sample(left, count))
                numbers += sorted(taken)
                pools[(content, expiry)] = [n for n in left if n not in taken]
                shelf[content][expiry] -= count
        picked.update(dict.fromkeys(numbers, pool))
    if short:
        audit.record(
            session,
            actor=actor,
            action="depot.short",
            entity="depot",
            entity_id=site.depot_id,
            before=None,
            after={"site_id": site.id, "kind": kind, "kits_short": sum(short.values())},
            reason="the depot lacks shippable kits",
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
    session.add_all(
        ShipmentKit(shipment_id=shipment.id, kit_number=n, pool=picked[n]) for n in sorted(picked)
    )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="shipment.request",
        entity="shipment",
        entity_id=shipment.id,
        before=None,
        after={"site_id": site.id, "depot_id": site.depot_id, "kind": kind, "kits": sorted(picked)},
    )
    return shipment


def check_site(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    site: Site,
    today: date,
    kind: str = "resupply",
    extra_need: int = 0,
    extra_pool: str | None = None,
) -> Shipment | None:
    """Expire what may no longer be dispensed, then request the shipment the policy asks for
    (app/domain/resupply.py) for every stage pool that is short, if any. `extra_need`: vials of
    every content a refused visit needs on top of the forecast, in its pool `extra_pool`."""
    if not site.active or site.depot_id is None:
        return None
    expire_site_kits(
        session,
        actor=actor,
        site_id=site.id,
        today=today,
        window_days=study.supply.do_not_dispense_days,
    )
    positions = site_positions(
        session, study=study, site=site, today=today, extra_need=extra_need, extra_pool=extra_pool
    )
    orders = shipment_by_pool(
        {pool: order_quantities(p.positions, p.levels, p.floor) for pool, p in positions.items()}
    )
    if not orders:
        return None
    shipment = request_shipment(
        session,
        study=study,
        actor=actor,
        site=site,
        orders=orders,
        kind=kind,
        today=today,
        rng=random.Random(),
    )
    if shipment is not None:
        audit.record(
            session,
            actor=actor,
            action="site.resupply",
            entity="site",
            entity_id=site.id,
            before=None,
            after={"shipment_id": shipment.id, "kind": kind},
        )
    return shipment


def request_manual(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    site_id: str,
    kits_per_content: int,
    reason: str,
    today: date,
) -> Shipment:
    """A supply manager's own shipment: the same number of each content, so it reveals nothing;
    for the pool of the stage that recruits (or opens next)."""
    reason = check_reason(reason)
    site = lock_site(session, site_id)
    pool = recruiting(session, study=study) or study.scopes()[-1].stage
    shipment = request_shipment(
        session,
        study=study,
        actor=actor,
        kind="manual",
        site=site,
        orders={pool: dict.fromkeys(study.contents, kits_per_content)},
        today=today,
        rng=random.Random(),
    )
    if shipment is None:
        raise Conflict("depot_empty", "The depot has no shippable kits for this site.")
    audit.record(
        session,
        actor=actor,
        action="shipment.manual",
        entity="shipment",
        entity_id=shipment.id,
        before=None,
        after={"site_id": site_id, "kits_per_content": kits_per_content},
        reason=reason,
    )
    return shipment
