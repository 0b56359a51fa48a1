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
    SupplyLevel,
)
from app.domain.common_expiry import tally, usable_stock
from app.domain.dosing import calculate_dose, heaviest_visit_vials
from app.domain.errors import Conflict
from app.domain.forecast import NO_ENROLMENT, Enrolment, OnTreatment, places_shares, site_need
from app.domain.kits import KitCandidate, KitStatus, usable_on
from app.domain.lifecycle import ON_TREATMENT
from app.domain.reasons import check_reason
from app.domain.resupply import (
    DepotShelf,
    Levels,
    Position,
    need_shares,
    order_quantities,
    pick_depot_dates,
)
from app.domain.stages import CohortStatus, StageRuleError, route
from app.domain.study import PHASE_IB, StudyDefinition
from app.services import audit
from app.services.actor import Actor
from app.services.kits import move
from app.services.locks import lock_depot, lock_site
from app.services.study_state import cohort_statuses, randomized_counts
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


def site_levels(session: Session, *, study: StudyDefinition, site: Site) -> Levels:
    """The site's levels: its own trigger and target (the same for every content), lead time
    and cover, else the study's."""
    own = session.execute(
        select(SupplyLevel.trigger, SupplyLevel.target).where(SupplyLevel.site_id == site.id)
    ).first()
    trigger, target = own if own else (study.supply.resupply_trigger, study.supply.resupply_target)
    lead = site.lead_days if site.lead_days is not None else study.supply.shipping_lead_days
    cover = site.cover_weeks if site.cover_weeks is not None else study.supply.cover_weeks
    return Levels(trigger, target, lead, cover * 7)


def site_enrolment(
    session: Session, *, study: StudyDefinition, site: Site
) -> tuple[Enrolment, int]:
    """Subjects still to come at the site in the open stage, and the vials of one visit at the
    heaviest weight (what the site must hold of every content to randomize)."""
    phase2_dose = session.execute(select(Study.phase2_dose_mg_per_kg)).scalar_one_or_none()
    try:
        target = route(study, cohort_statuses(session), phase2_dose)
    except StageRuleError:
        levels = [c.dose_mg_per_kg for c in study.phase_ib.cohorts]
        highest = max([*levels, phase2_dose] if phase2_dose is not None else levels)
        return NO_ENROLMENT, heaviest_visit_vials(highest, study.drug, study.weight)
    in_scope, in_stage, in_total = randomized_counts(
        session, scope=target.scope, stage=target.stage
    )
    stage_cap = target.cap if target.stage == PHASE_IB else study.phase_ii.cap
    places = min(target.cap - in_scope, stage_cap - in_stage, study.total_cap - in_total)
    rate = site.subjects_per_week
    if rate is None:
        rate = study.supply.subjects_per_site_per_week
    level = target.dose_level_mg_per_kg
    typical = calculate_dose(
        study.supply.forecast_weight_kg,
        dose_level_mg_per_kg=level,
        drug=study.drug,
        accepted=study.weight,
    )
    shares = places_shares(_places_left(session, study))
    enrolment = Enrolment(float(rate), max(places, 0), shares, typical.vials)
    return enrolment, heaviest_visit_vials(level, study.drug, study.weight)


def _places_left(session: Session, study: StudyDefinition) -> list[tuple[int, dict[str, int]]]:
    """Each stage's places still open (none in a closed cohort) with its ratio."""
    statuses = cohort_statuses(session)
    used = dict(
        session.execute(
            select(Randomization.scope, func.count()).group_by(Randomization.scope)
        ).all()
    )
    return [
        (
            0
            if statuses.get(scope.code) == CohortStatus.CLOSED
            else scope.cap - int(used.get(scope.code, 0)),
            dict(scope.allocation.ratio),
        )
        for scope in study.scopes()
    ]


def on_treatment(session: Session, site_id: str) -> list[OnTreatment]:
    """The site's randomized subjects still on treatment, with their next visit and vials."""
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
    ).all()
    return [
        OnTreatment(arm, day_one, last_index + 1, vials) for arm, day_one, last_index, vials in rows
    ]


def available_kits(session: Session, site_id: str) -> list[KitCandidate]:
    """The site's available kits of every content, each with the shipment that brought it (a
    kit's tier for the common-tier rule is its expiry date and that shipment)."""
    brought = (
        select(ShipmentKit.kit_number, func.max(ShipmentKit.shipment_id).label("shipment_id"))
        .join(Shipment, Shipment.id == ShipmentKit.shipment_id)
        .where(Shipment.site_id == site_id, Shipment.status.not_in(("requested", "cancelled")))
        .group_by(ShipmentKit.kit_number)
        .subquery()
    )
    rows = session.execute(
        select(Kit.kit_number, Kit.content, Kit.expiry_date, brought.c.shipment_id)
        .outerjoin(brought, brought.c.kit_number == Kit.kit_number)
        .where(Kit.site_id == site_id, Kit.status == KitStatus.AVAILABLE.value)
    ).all()
    return [KitCandidate(n, c, e, int(s or 0)) for n, c, e, s in rows]


def in_transit(session: Session, site_id: str) -> dict[str, int]:
    """Kits per content in the site's open shipments (requested or shipped)."""
    return {
        content: int(count)
        for content, count in session.execute(
            select(Kit.content, func.count())
            .select_from(ShipmentKit)
            .join(Shipment, Shipment.id == ShipmentKit.shipment_id)
            .join(Kit, Kit.kit_number == ShipmentKit.kit_number)
            .where(Shipment.site_id == site_id, Shipment.status.in_(("requested", "shipped")))
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
) -> SitePosition:
    """The site's position per content; `extra_need` vials of every content are added (a visit
    just refused: the same for every content, so an urgent shipment does not follow the arm)."""
    levels = site_levels(session, study=study, site=site)
    enrolment, floor = site_enrolment(session, study=study, site=site)
    subjects = on_treatment(session, site.id)
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
    shelf = tally(available_kits(session, site.id), arrival, study.supply.do_not_dispense_days)
    shares = need_shares({c: need_cover[c] + extra_need for c in study.contents}, floor)
    stock = usable_stock(shelf, contents=study.contents, shares=shares)
    moving = in_transit(session, site.id)
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


def _in_open_shipment() -> Exists:
    return exists().where(
        ShipmentKit.kit_number == Kit.kit_number,
        ShipmentKit.shipment_id == Shipment.id,
        Shipment.status == "requested",
    )


def depot_shelf(*, kits: list[KitCandidate], today: date, window_days: int) -> DepotShelf:
    """Kits per content and expiry date that may be shipped today (do-not-ship window)."""
    shelf: dict[str, Counter[date]] = defaultdict(Counter)
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
    quantities: dict[str, int],
    kind: str,
    today: date,
    rng: random.Random,
) -> Shipment | None:
    """Pick kits into a new shipment: every content at the same expiry dates, earliest first
    among kits shippable today (app/domain/resupply.py). Short depot stock ships what there is;
    the shortfall is audited. None if nothing can be shipped."""
    if site.depot_id is None:
        raise Conflict("no_depot", f"Site {site.id} has no supplying depot.")
    lock_depot(session, site.depot_id)
    window = study.supply.do_not_ship_days
    shippable = [k for k in depot_stock(session, site.depot_id) if usable_on(k, today, window)]
    pools: dict[tuple[str, date], list[str]] = defaultdict(list)
    for kit in sorted(shippable, key=lambda k: k.kit_number):
        pools[(kit.content, kit.expiry_date)].append(kit.kit_number)
    shelf = depot_shelf(kits=shippable, today=today, window_days=window)
    picked_dates, short = pick_depot_dates(shelf, quantities, study.contents)
    picked = [
        number
        for content, dates in picked_dates.items()
        for expiry, count in sorted(dates.items())
        for number in rng.sample(pools[(content, expiry)], count)
    ]
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
    session.add_all(ShipmentKit(shipment_id=shipment.id, kit_number=n) for n in sorted(picked))
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
) -> Shipment | None:
    """Expire what may no longer be dispensed, then request the shipment the policy asks for
    (app/domain/resupply.py), if any. `extra_need`: vials of every content a refused visit
    needs on top of the forecast."""
    if not site.active or site.depot_id is None:
        return None
    expire_site_kits(
        session,
        actor=actor,
        site_id=site.id,
        today=today,
        window_days=study.supply.do_not_dispense_days,
    )
    position = site_position(session, study=study, site=site, today=today, extra_need=extra_need)
    quantities = order_quantities(position.positions, position.levels, position.floor)
    if not quantities:
        return None
    shipment = request_shipment(
        session,
        study=study,
        actor=actor,
        site=site,
        quantities=quantities,
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
    """A supply manager's own shipment: the same number of each content, so it reveals nothing."""
    reason = check_reason(reason)
    site = lock_site(session, site_id)
    quantities = dict.fromkeys(study.contents, kits_per_content)
    shipment = request_shipment(
        session,
        study=study,
        actor=actor,
        kind="manual",
        site=site,
        quantities=quantities,
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
