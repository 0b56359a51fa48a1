"""Resupply: forecast a site's need per content, and request the shipment the policy asks for.

The decisions are the pure functions of app/domain/forecast.py, app/domain/common_expiry.py and
app/domain/resupply.py, which the simulator calls too; this module only reads the state they
need from the database and writes the shipment.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import BindParameter, bindparam, select
from sqlalchemy.orm import Session

from app.db.models import (
    Kit,
    Randomization,
    Shipment,
    ShipmentKit,
    Site,
    Slot,
    Subject,
)
from app.domain.common_expiry import KitGroup, tally_groups, usable_stock
from app.domain.dosing import heaviest_visit_vials
from app.domain.errors import Conflict
from app.domain.forecast import NO_ENROLMENT, Enrolment, OnTreatment, site_need
from app.domain.kits import KitStatus
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
from app.services.depot_shelf import shippable_counts, shippable_numbers
from app.services.kits import move
from app.services.locks import lock_depot, lock_site
from app.services.site_stages import recruiting, site_enrolment, site_levels, stage_state
from app.services.site_stock import available_stock, in_transit
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


_SITE: BindParameter[str] = bindparam("site_id")
_TREATED = (
    select(
        Randomization.stage,
        Slot.arm,
        Randomization.visit_date,
        Randomization.last_visit_index,
        Randomization.last_vials,
    )
    .join(Subject, Subject.id == Randomization.subject_id)
    .join(Slot, Slot.id == Randomization.slot_id)
    .where(Subject.site_id == _SITE, Subject.status.in_(ON_TREATMENT))
)
"""Built once (the same for every site but for its parameter). The latest standing dispensing
is the one each randomization keeps (migration 0021): no lookup per subject."""


def _treated(session: Session, site_id: str) -> list[tuple[str, OnTreatment | None]]:
    """Every randomized subject of the site still on treatment, with its stage and, when it has
    a standing dispensing, its next visit and vials."""
    # plain rows through the connection: a site may have hundreds of subjects on treatment,
    # and the ORM's result handling cost more per row than building OnTreatment
    rows = session.connection().execute(_TREATED, {"site_id": site_id})
    return [
        (
            stage,
            None
            if last_index is None or vials is None
            else OnTreatment(arm, day_one, last_index + 1, vials),
        )
        for stage, arm, day_one, last_index, vials in rows
    ]


def _dosed(treated: list[tuple[str, OnTreatment | None]], pool: str | None) -> list[OnTreatment]:
    return [s for stage, s in treated if s is not None and (pool is None or stage == pool)]


def on_treatment(session: Session, site_id: str, pool: str | None = None) -> list[OnTreatment]:
    """The site's randomized subjects still on treatment (of one stage pool, if given), with
    their next visit and vials."""
    return _dosed(_treated(session, site_id), pool)


@dataclass(frozen=True)
class SitePosition:
    """Everything the resupply decides on for one site, per content."""

    levels: Levels
    floor: int
    positions: dict[str, Position]


@dataclass(frozen=True)
class _SiteState:
    """What the positions of a site's stage pools are reckoned from, read once per check."""

    levels: Levels
    enrolment: Enrolment
    floor: int
    recruiting: str | None
    treated: list[tuple[str, OnTreatment | None]]
    stock: list[KitGroup]
    moving: dict[tuple[str | None, str], int]
    phase2_dose: Decimal | None


def _site_state(session: Session, *, study: StudyDefinition, site: Site) -> _SiteState:
    stages = stage_state(session)
    enrolment, floor = site_enrolment(session, study=study, site=site, state=stages)
    return _SiteState(
        levels=site_levels(session, study=study, site=site),
        enrolment=enrolment,
        floor=floor,
        recruiting=recruiting(session, study=study, state=stages),
        treated=_treated(session, site.id),
        stock=available_stock(session, site.id),
        moving=in_transit(session, site.id),
        phase2_dose=stages.phase2_dose,
    )


def _off_stage(pool: str | None, state: _SiteState) -> bool:
    """A pool other than the recruiting one: no subjects to come, a floor of its own."""
    return pool is not None and pool != state.recruiting


def _position(
    study: StudyDefinition,
    state: _SiteState,
    *,
    pool: str | None,
    today: date,
    extra_need: int,
    cover_days: int | None,
) -> SitePosition:
    """`site_position` from what was read (the phase II dose matters only off stage)."""
    levels, enrolment, floor = state.levels, state.enrolment, state.floor
    if _off_stage(pool, state):
        assert pool is not None
        level = pool_level(study, pool, state.phase2_dose)
        enrolment, floor = NO_ENROLMENT, heaviest_visit_vials(level, study.drug, study.weight)
    subjects = _dosed(state.treated, pool)
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
    shelf = tally_groups(state.stock, arrival, study.supply.do_not_dispense_days, pool=pool)
    shares = need_shares({c: need_cover[c] + extra_need for c in study.contents}, floor)
    stock = usable_stock(shelf, contents=study.contents, shares=shares)
    moving: Counter[str] = Counter()
    for (kits_pool, content), count in state.moving.items():
        if pool is None or kits_pool == pool:
            moving[content] += count
    positions = {
        c: Position(
            stock.get(c, 0),
            moving[c],
            need_lead[c] + extra_need,
            need_cover[c] + extra_need,
        )
        for c in study.contents
    }
    return SitePosition(levels, floor, positions)


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
    state = _site_state(session, study=study, site=site)
    return _position(
        study,
        state,
        pool=pool,
        today=today,
        extra_need=extra_need,
        cover_days=cover_days,
    )


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
    pool with subjects on treatment. `extra_need` goes to `extra_pool` (a refused visit's).
    The site's state is read once for all pools."""
    state = _site_state(session, study=study, site=site)
    pools = live_pools(
        [s.stage for s in study.scopes()],
        recruiting=state.recruiting,
        on_treatment=Counter(stage for stage, _ in state.treated),
    )
    if extra_pool is not None and extra_pool not in pools:
        pools.append(extra_pool)
    live = list(dict.fromkeys(pools))
    return {
        pool: _position(
            study,
            state,
            pool=pool,
            today=today,
            extra_need=extra_need if pool == extra_pool else 0,
            cover_days=None,
        )
        for pool in live
    }


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
    shelf = shippable_counts(session, depot_id=site.depot_id, today=today, window_days=window)
    pools: dict[tuple[str, date], list[str]] = {}
    """Per content and expiry date, the kit numbers still to pick from (read when first
    picked)."""
    picked: dict[str, str] = {}
    """Kit number -> the stage pool it is picked for."""
    short: Counter[str] = Counter()
    for pool, quantities in orders.items():
        picked_dates, missing = pick_depot_dates(shelf, quantities, study.contents)
        short.update(missing)
        numbers = []
        for content, dates in picked_dates.items():
            for expiry, count in sorted(dates.items()):
                left = pools.get((content, expiry))
                if left is None:
                    left = shippable_numbers(
                        session,
                        depot_id=site.depot_id,
                        today=today,
                        window_days=window,
                        content=content,
                        expiry=expiry,
                    )
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
