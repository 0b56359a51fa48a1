"""Dispensing: kit numbers for a dosing visit, and replacement of a damaged or lost kit."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.engine import Database
from app.db.models import DispensedKit, Dispensing, Kit, Randomization, Shipment, Slot, Subject
from app.domain import lifecycle
from app.domain.common_expiry import draw, tally_groups, visit_tiers
from app.domain.dosing import WeightOutOfRange, calculate_dose, check_weight, weight_for_dose
from app.domain.errors import Conflict, NotPermitted, not_found, validation_error
from app.domain.kits import KitStatus
from app.domain.reasons import check_reason
from app.domain.roles import Role
from app.domain.study import StudyDefinition, Visit
from app.domain.visits import (
    VisitOutOfWindow,
    VisitWindow,
    check_gap,
    needs_override,
    shortest_gap_days,
    window_of,
)
from app.services import audit, confirmations, definitions
from app.services.actor import Actor, job
from app.services.blinded_views import dispensing_view
from app.services.kits import move
from app.services.locks import lock_site
from app.services.resupply import check_site
from app.services.site_stock import available_stock, tier_kits
from app.services.study_state import lock_study_shared
from app.services.subjects import get_visible_subject
from app.services.transaction import after_commit, utcnow, writing
from app.services.visits import missed_visits, standing

_rng = random.SystemRandom()


class NoKitsAvailable(Conflict):
    """The site cannot serve this visit from the expiry dates every content shares; the refusal
    and its message are the same whichever the subject's arm. An urgent resupply follows the
    rollback."""

    def __init__(self, site_id: str, needed: int, pool: str | None = None) -> None:
        super().__init__(
            "no_kits_available",
            f"Site {site_id} has not enough usable kits for this visit; nothing was allocated. "
            "The supply manager has been alerted and kits are requested for the site. Try again "
            "when the site has received them.",
        )
        self.site_id = site_id
        self.needed = needed
        self.pool = pool
        """The stage pool the visit drew on: the urgent shipment tops it up."""


def raise_urgent_resupply(
    db: Database, *, study: StudyDefinition, refusal: NoKitsAvailable, today: date
) -> Shipment | None:
    """After a no_kits_available rollback: request an urgent shipment in its own transaction,
    counting the refused visit's vials for every content alike (none when kits already on
    their way cover the need)."""
    with writing(db) as session:
        site = lock_site(session, refusal.site_id)
        return check_site(
            session,
            study=study,
            actor=job("resupply"),
            site=site,
            today=today,
            kind="urgent",
            extra_need=refusal.needed,
            extra_pool=refusal.pool,
        )


def choose_visit_kits(
    session: Session,
    *,
    study: StudyDefinition,
    site_id: str,
    content: str,
    vials: int,
    day: date,
    must_hold: int = 0,
    pool: str | None = None,
) -> list[str]:
    """Kit numbers for a visit at the expiry dates every content shares, from the subject's
    stage pool (the site row is locked by the caller); NoKitsAvailable, the same for either
    arm, when they do not suffice or do not hold `must_hold` vials of every content."""
    # the rule (app/domain/common_expiry.py, `choose_kits`) decides on the counts per tier; only
    # the numbers of the chosen tiers' kits are read
    shelf = tally_groups(
        available_stock(session, site_id), day, study.supply.do_not_dispense_days, pool=pool
    )
    tiers = visit_tiers(shelf, contents=study.contents, vials=vials, must_hold=must_hold)
    if tiers is None:
        raise NoKitsAvailable(site_id, max(vials, must_hold), pool)
    kits = tier_kits(session, site_id=site_id, content=content, pool=pool, tiers=tiers)
    return sorted(draw(tiers, kits, _rng))


def allocate_visit_kits(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    subject: Subject,
    randomization: Randomization,
    content: str,
    visit: Visit,
    visit_date: date,
    measured_weight: Decimal,
    must_hold: int = 0,
    window: VisitWindow | None = None,
    window_override_reason: str | None = None,
) -> dict[str, Any]:
    """Dose and kits for one visit, in the caller's transaction (the site row gets locked).
    `must_hold`: vials of every content the site must hold for it (a randomization); `window`:
    the visit's window, outside which only an override reason lets it through."""
    site = lock_site(session, subject.site_id)
    standing_ones = list(  # a subject's few visits, latest first, in one read
        session.execute(
            select(Dispensing)
            .where(Dispensing.subject_id == subject.id, standing())
            .order_by(Dispensing.visit_index.desc())
        ).scalars()
    )
    previous = standing_ones[0] if standing_ones else None
    if any(d.visit == visit.code for d in standing_ones):
        raise Conflict(
            "already_dispensed", f"Visit {visit.code} was already dispensed for this subject."
        )
    if previous is not None and visit.index < previous.visit_index:
        raise Conflict(
            "visit_out_of_order",
            f"Visit {visit.code} comes before the last dispensed visit "
            f"{previous.visit}; visits are dispensed in schedule order.",
        )
    if previous is not None and visit_date <= previous.visit_date:
        raise validation_error(
            "visit_date",
            f"The visit date must be after the last dosing "
            f"visit ({previous.visit_date.isoformat()}).",
        )
    check_gap(
        previous=previous.visit_date if previous else None,
        visit_date=visit_date,
        gap_days=shortest_gap_days(study.schedule),
    )
    override_by = None
    if window is not None and needs_override(window, visit_date):
        if window_override_reason is None:
            raise VisitOutOfWindow(window, visit_date)
        override_by = actor.username
    weight = weight_for_dose(measured_weight, previous.weight_kg if previous else None)
    dose = calculate_dose(
        weight,
        dose_level_mg_per_kg=randomization.dose_level_mg_per_kg,
        drug=study.drug,
        accepted=study.weight,
    )
    # the window holds on the visit date and on the day the kit is handed out (a visit may be
    # recorded later than it took place)
    numbers = choose_visit_kits(
        session,
        study=study,
        site_id=site.id,
        content=content,
        vials=dose.vials,
        day=max(visit_date, utcnow().date()),
        must_hold=must_hold,
        pool=randomization.stage,
    )
    now = utcnow()
    dispensing = Dispensing(
        subject_id=subject.id,
        visit=visit.code,
        visit_index=visit.index,
        visit_date=visit_date,
        weight_measured_kg=measured_weight,
        weight_kg=weight,
        dose_level_mg_per_kg=dose.dose_level_mg_per_kg,
        dose_mg=dose.dose_mg,
        vials=dose.vials,
        drug_volume_ml=dose.drug_volume_ml,
        dispensed_at=now,
        dispensed_by=actor.username,
        study_version=definitions.in_effect(session, on=visit_date)[0],
        window_override_by=override_by,
        window_override_reason=window_override_reason if override_by else None,
    )
    session.add(dispensing)
    # visits are dispensed in order: this one is the subject's latest (the forecast reads it)
    randomization.last_visit_index, randomization.last_vials = visit.index, dose.vials
    session.flush()
    kits = {
        k.kit_number: k for k in session.scalars(select(Kit).where(Kit.kit_number.in_(numbers)))
    }
    for number in numbers:
        kit = kits[number]
        move(
            session,
            actor=actor,
            kit=kit,
            target=KitStatus.DISPENSED,
            by="system",
            reason=None,
            subject_id=subject.id,
            visit=visit.code,
        )
        session.add(DispensedKit(dispensing_id=dispensing.id, kit_number=number))
    session.flush()
    view = dispensing_view(dispensing, numbers)
    audit.record(
        session,
        actor=actor,
        action="subject.dispense",
        entity="subject",
        entity_id=subject.id,
        before=None,
        after={**view, "weight_measured_kg": str(measured_weight), **_override(dispensing)},
        reason=dispensing.window_override_reason,
    )
    after_commit(
        session,
        _resupply_follow_up(study=study, actor=actor, site_id=site.id, today=now.date()),
        key=("resupply", site.id),
    )
    return view


def _override(dispensing: Dispensing) -> dict[str, Any]:
    """The window override in the dispensing's audit entry (its reason is the entry's)."""
    if dispensing.window_override_by is None:
        return {}
    return {"window_override": True, "window_override_by": dispensing.window_override_by}


def _resupply_follow_up(
    *, study: StudyDefinition, actor: Actor, site_id: str, today: date
) -> Callable[[Database], None]:
    """The site's resupply check, run after the dispensing commits: it holds the site's lock
    for about a dozen queries, which a randomization or dosing visit need not wait for. If it
    does not run (the process dies in between), the next event at the site or `irt supply
    check` does. On the server it runs on the follow-up thread: one check covers the events of
    a site that queued while it waited (app/services/follow_ups.py)."""

    def check(db: Database) -> None:
        with writing(db) as session:
            check_site(
                session, study=study, actor=actor, site=lock_site(session, site_id), today=today
            )

    return check


def subject_content(session: Session, subject_id: int) -> tuple[Randomization, str]:
    row = session.execute(
        select(Randomization, Slot.arm)
        .join(Slot, Slot.id == Randomization.slot_id)
        .where(Randomization.subject_id == subject_id)
    ).first()
    if row is None:
        raise Conflict("not_randomized", "This subject is not randomized yet.")
    return row[0], row[1]


def refuse_weight_out_of_range(study: StudyDefinition, weight_kg: Decimal) -> None:
    """422 on `weight_kg` for a weight outside the study's accepted range."""
    try:
        check_weight(weight_kg, study.weight)
    except WeightOutOfRange as exc:
        raise validation_error("weight_kg", f"The weight is refused: {exc}.") from None


def refuse_unless_on_treatment(subject: Subject) -> None:
    """No kit (a visit's or a replacement) for a subject off treatment: screen failed,
    discontinued, withdrawn or completed (app/domain/lifecycle.py)."""
    if not lifecycle.on_treatment(subject.status):
        raise Conflict(
            "subject_not_on_treatment",
            f"This subject's status is {lifecycle.label(subject.status).lower()}: "
            "no more kits are dispensed. If the status is wrong, undo the change on the "
            "subject's page first.",
            subject_status=subject.status,
        )


def dispense(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    subject_id: int,
    visit_code: str,
    visit_date: date,
    weight_kg: Decimal,
    window_override_reason: str | None = None,
) -> dict[str, Any]:
    """POST /subjects/{id}/dispense: a later dosing visit (day 1 is dispensed at randomization).
    Outside the visit's window only an investigator may dose it, with a reason."""
    if window_override_reason is not None:
        if actor.role != Role.INVESTIGATOR:
            raise NotPermitted(
                "window_override_not_permitted",
                "Only an investigator may dose a visit outside its window; leave the override "
                "empty or ask the investigator.",
            )
        window_override_reason = check_reason(window_override_reason)
    lock_study_shared(session)  # a new study version waits for this act, and this act for it
    _, study = definitions.in_effect(session, on=visit_date)  # the version the visit follows
    refuse_weight_out_of_range(study, weight_kg)
    try:
        visit = study.schedule.visit(visit_code)
    except KeyError:
        codes = ", ".join(v.code for v in study.schedule.visits())
        raise validation_error(
            "visit", f"Unknown visit {visit_code!r}; visits are {codes}."
        ) from None
    # the subject's row stays locked: a discontinuation cannot commit between check and kits
    subject = get_visible_subject(session, actor=actor, subject_id=subject_id, lock=True)
    randomization, content = subject_content(session, subject.id)
    refuse_unless_on_treatment(subject)
    if visit_date < randomization.visit_date:
        raise validation_error("visit_date", "The visit date is before the randomization visit.")
    refuse_missed(session, subject_id=subject.id, visit=visit)
    view = allocate_visit_kits(
        session,
        study=study,
        actor=actor,
        subject=subject,
        randomization=randomization,
        content=content,
        visit=visit,
        visit_date=visit_date,
        measured_weight=weight_kg,
        window=window_of(study.schedule, day_one=randomization.visit_date, code=visit.code),
        window_override_reason=window_override_reason,
    )
    return confirmations.record(
        session,
        study=study,
        actor=actor,
        kind="dispensing",
        subject_id=subject.id,
        result=view,
        randomized=(randomization, content),
    )


def refuse_missed(session: Session, *, subject_id: int, visit: Visit) -> None:
    """A visit recorded as missed, or one before a visit recorded as missed, is never dosed."""
    missed = missed_visits(session, subject_id)  # its dispensings are read with the kits
    if visit.code in missed:
        raise Conflict(
            "visit_missed",
            f"Visit {visit.code} was recorded as missed; it cannot be dispensed. Dose the next "
            "visit in its window.",
        )
    later = [m for m in missed.values() if m.visit_index > visit.index]
    if later:
        first = min(later, key=lambda m: m.visit_index)
        raise Conflict(
            "visit_out_of_order",
            f"Visit {visit.code} comes before visit {first.visit}, recorded as missed; visits "
            "are dispensed in schedule order.",
        )


def replace_kit(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    subject_id: int,
    kit_number: str,
    status: KitStatus,
    reason: str,
    today: date,
) -> dict[str, Any]:
    """Mark a dispensed kit damaged or lost and give a kit of the same content, in one step."""
    reason = check_reason(reason)
    subject = get_visible_subject(session, actor=actor, subject_id=subject_id, lock=True)
    refuse_unless_on_treatment(subject)
    site = lock_site(session, subject.site_id)
    given = session.execute(
        select(DispensedKit, Dispensing)
        .join(Dispensing, Dispensing.id == DispensedKit.dispensing_id)
        .where(DispensedKit.kit_number == kit_number, Dispensing.subject_id == subject.id)
    ).first()
    if given is None:
        raise not_found(f"Kit {kit_number} dispensed to subject {subject_id}")
    dispensed, dispensing = given
    if dispensed.replaced_at is not None:
        raise Conflict(
            "already_replaced",
            f"Kit {kit_number} was already replaced by {dispensed.replaced_by_kit}.",
        )
    old = session.get(Kit, kit_number)
    assert old is not None
    stage = session.execute(
        select(Randomization.stage).where(Randomization.subject_id == subject.id)
    ).scalar_one()
    (number,) = choose_visit_kits(
        session,
        study=study,
        site_id=site.id,
        content=old.content,
        vials=1,
        day=max(today, dispensing.visit_date),
        pool=stage,
    )
    new = session.get(Kit, number)
    assert new is not None
    move(
        session,
        actor=actor,
        kit=old,
        target=status,
        by="system",
        reason=reason,
        subject_id=subject.id,
        visit=dispensing.visit,
        replaced_by=new.kit_number,
    )
    move(
        session,
        actor=actor,
        kit=new,
        target=KitStatus.DISPENSED,
        by="system",
        reason=reason,
        subject_id=subject.id,
        visit=dispensing.visit,
        replaces=old.kit_number,
    )
    now = utcnow()
    dispensed.replaced_at, dispensed.replaced_by_kit = now, new.kit_number
    dispensed.replacement_reason = reason
    session.add(DispensedKit(dispensing_id=dispensing.id, kit_number=new.kit_number))
    session.flush()
    result = {"visit": dispensing.visit, "replaced_kit": old.kit_number, "kit": new.kit_number}
    audit.record(
        session,
        actor=actor,
        action="subject.replace_kit",
        entity="subject",
        entity_id=subject.id,
        before=None,
        after={**result, "status": status.value},
        reason=reason,
    )
    check_site(session, study=study, actor=actor, site=site, today=today)
    return confirmations.record(
        session, study=study, actor=actor, kind="replacement", subject_id=subject.id, result=result
    )


@contextmanager
def urgent_resupply_on_shortage(db: Database, study: StudyDefinition) -> Iterator[None]:
    """Let a no_kits_available refusal through, after requesting an urgent resupply."""
    try:
        yield
    except NoKitsAvailable as refusal:
        # one message whether a shipment was requested now or kits are already on their way:
        # which of the two happens depends on the stock per content
        raise_urgent_resupply(db, study=study, refusal=refusal, today=utcnow().date())
        raise
