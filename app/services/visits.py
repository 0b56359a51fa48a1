"""Visit windows at the site: a subject's schedule, missed visits and dispensings entered in
error (docs/visits.md). The rules (targets from day 1, windows, states) are the domain's
(app/domain/visits.py); this module reads and records what happened. Nothing here reads an arm
or a kit's content, so every answer is blinded by construction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pydantic import BaseModel
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from app.db.models import DispensedKit, Dispensing, MissedVisit, Randomization, Subject
from app.domain.errors import Conflict, validation_error
from app.domain.lifecycle import on_treatment
from app.domain.reasons import check_reason
from app.domain.study import StudyDefinition, Visit
from app.domain.visits import (
    ScheduledVisit,
    next_due,
    schedule_states,
    window_of,
)
from app.services import audit
from app.services.actor import Actor
from app.services.subjects import get_visible_subject
from app.services.transaction import utcnow


def standing() -> ColumnElement[bool]:
    """The dispensings that count for their visit (not entered in error)."""
    return Dispensing.entered_in_error_at.is_(None)


@dataclass(frozen=True)
class ScheduleLine:
    visit: str
    target_date: date
    window_opens: date
    window_closes: date
    state: str
    visit_date: date | None
    """The day the visit was dosed (a standing dispensing), else None."""
    window_override_reason: str | None
    missed_reason: str | None


@dataclass(frozen=True)
class SubjectSchedule:
    """A subject's dosing visits on `today`; empty before randomization. `next_due` is the
    visit the dosing form offers (None when nothing is left or the subject is off treatment)."""

    subject_id: int
    screening_number: str
    site_id: str
    day_one: date | None
    today: date
    next_due: str | None
    visits: tuple[ScheduleLine, ...]


class MissedVisitOut(BaseModel):
    subject_id: int
    visit: str
    target_date: str
    reason: str
    recorded_at: str
    recorded_by: str


class EnteredInErrorOut(BaseModel):
    subject_id: int
    visit: str
    visit_date: str
    kits: list[str]
    reason: str
    entered_in_error_at: str
    entered_in_error_by: str


def dispensed_and_missed(
    session: Session, subject_id: int
) -> tuple[dict[str, Dispensing], dict[str, MissedVisit]]:
    """The subject's standing dispensings and recorded missed visits, by visit code."""
    dispensed = {
        d.visit: d
        for d in session.scalars(
            select(Dispensing).where(Dispensing.subject_id == subject_id, standing())
        )
    }
    return dispensed, missed_visits(session, subject_id)


def missed_visits(session: Session, subject_id: int) -> dict[str, MissedVisit]:
    """The subject's recorded missed visits, by visit code."""
    return {
        m.visit: m
        for m in session.scalars(select(MissedVisit).where(MissedVisit.subject_id == subject_id))
    }


def states_of(
    study: StudyDefinition,
    *,
    day_one: date,
    dispensed: dict[str, Dispensing],
    missed: dict[str, MissedVisit],
    today: date,
) -> tuple[ScheduledVisit, ...]:
    return schedule_states(
        study.schedule, day_one=day_one, dispensed=dispensed, missed=missed, today=today
    )


def subject_schedule(
    session: Session, *, study: StudyDefinition, actor: Actor, subject_id: int, today: date
) -> SubjectSchedule:
    """GET /subjects/{id}/visits: target dates, windows and states (404 for another site's)."""
    subject = get_visible_subject(session, actor=actor, subject_id=subject_id)
    randomization = session.scalars(
        select(Randomization).where(Randomization.subject_id == subject.id)
    ).one_or_none()
    if randomization is None:
        return SubjectSchedule(
            subject.id, subject.screening_number, subject.site_id, None, today, None, ()
        )
    dispensed, missed = dispensed_and_missed(session, subject.id)
    states = states_of(
        study, day_one=randomization.visit_date, dispensed=dispensed, missed=missed, today=today
    )
    lines = []
    for item in states:
        code = item.window.visit.code
        dosed, skipped = dispensed.get(code), missed.get(code)
        lines.append(
            ScheduleLine(
                visit=code,
                target_date=item.window.target,
                window_opens=item.window.opens,
                window_closes=item.window.closes,
                state=item.state.value,
                visit_date=dosed.visit_date if dosed else None,
                window_override_reason=dosed.window_override_reason if dosed else None,
                missed_reason=skipped.reason if skipped else None,
            )
        )
    upcoming = next_due(states) if on_treatment(subject.status) else None
    return SubjectSchedule(
        subject.id,
        subject.screening_number,
        subject.site_id,
        randomization.visit_date,
        today,
        upcoming.window.visit.code if upcoming else None,
        tuple(lines),
    )


def later_visit(study: StudyDefinition, code: str) -> Visit:
    """A visit after day 1 by its code; 422 on `visit` otherwise."""
    try:
        visit = study.schedule.visit(code)
    except KeyError:
        codes = ", ".join(v.code for v in study.schedule.visits()[1:])
        raise validation_error("visit", f"Unknown visit {code!r}; visits are {codes}.") from None
    if visit.index == 0:
        raise validation_error(
            "visit", "Day 1 is the randomization visit; it is recorded with the randomization."
        )
    return visit


def _randomized(session: Session, subject: Subject) -> Randomization:
    randomization = session.scalars(
        select(Randomization).where(Randomization.subject_id == subject.id)
    ).one_or_none()
    if randomization is None:
        raise Conflict("not_randomized", "This subject is not randomized yet.")
    return randomization


def record_missed_visit(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    subject_id: int,
    visit_code: str,
    reason: str,
    today: date,
) -> MissedVisitOut:
    """Site staff record that a visit did not take place. It is never dosed afterwards, nor is
    any visit before it; the next visit keeps its target date from day 1."""
    reason = check_reason(reason)
    visit = later_visit(study, visit_code)
    subject = get_visible_subject(session, actor=actor, subject_id=subject_id, lock=True)
    randomization = _randomized(session, subject)
    window = window_of(study.schedule, day_one=randomization.visit_date, code=visit.code)
    dispensed, missed = dispensed_and_missed(session, subject.id)
    if visit.code in dispensed:
        raise Conflict(
            "already_dispensed",
            f"Visit {visit.code} was dispensed on {dispensed[visit.code].visit_date.isoformat()};"
            " it cannot be recorded as missed. If the dispensing was entered in error, correct "
            "it first.",
        )
    if visit.code in missed:
        raise Conflict("visit_already_missed", f"Visit {visit.code} is already recorded as missed.")
    if today < window.opens:
        raise Conflict(
            "visit_not_yet_due",
            f"Visit {visit.code}'s window opens on {window.opens.isoformat()}; a visit can be "
            "recorded as missed once its window has opened.",
        )
    now = utcnow()
    session.add(
        MissedVisit(
            subject_id=subject.id,
            visit=visit.code,
            visit_index=visit.index,
            reason=reason,
            recorded_at=now,
            recorded_by=actor.username,
        )
    )
    session.flush()
    result = MissedVisitOut(
        subject_id=subject.id,
        visit=visit.code,
        target_date=window.target.isoformat(),
        reason=reason,
        recorded_at=now.isoformat().replace("+00:00", "Z"),
        recorded_by=actor.username,
    )
    audit.record(
        session,
        actor=actor,
        action="subject.visit_missed",
        entity="subject",
        entity_id=subject.id,
        before=None,
        after={
            "visit": visit.code,
            "target_date": window.target.isoformat(),
            "window_opens": window.opens.isoformat(),
            "window_closes": window.closes.isoformat(),
        },
        reason=reason,
    )
    return result


def mark_entered_in_error(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    subject_id: int,
    visit_code: str,
    reason: str,
) -> EnteredInErrorOut:
    """The subject's latest dosing visit was recorded in error: the dispensing stays, marked,
    with its kits (they stay dispensed to the subject and accounted for); the visit is due
    again, and its next dispensing takes new kits."""
    reason = check_reason(reason)
    visit = later_visit(study, visit_code)
    subject = get_visible_subject(session, actor=actor, subject_id=subject_id, lock=True)
    randomization = _randomized(session, subject)
    dispensed, _ = dispensed_and_missed(session, subject.id)
    row = dispensed.get(visit.code)
    if row is None:
        raise Conflict("not_dispensed", f"Visit {visit.code} has no dispensing to correct.")
    latest = max(dispensed.values(), key=lambda d: d.visit_index)
    if latest.id != row.id:
        raise Conflict(
            "not_latest_dispensing",
            f"Only the latest dosing visit ({latest.visit}) can be marked as entered in error; "
            f"correct {latest.visit} first.",
        )
    kits = sorted(
        session.scalars(
            select(DispensedKit.kit_number).where(DispensedKit.dispensing_id == row.id)
        ).all()
    )
    now = utcnow()
    row.entered_in_error_at, row.entered_in_error_by = now, actor.username
    row.entered_in_error_reason = reason
    # the visit before it is the subject's latest again (day 1 always stands)
    earlier = max((d for d in dispensed.values() if d.id != row.id), key=lambda d: d.visit_index)
    randomization.last_visit_index, randomization.last_vials = earlier.visit_index, earlier.vials
    session.flush()
    result = EnteredInErrorOut(
        subject_id=subject.id,
        visit=row.visit,
        visit_date=row.visit_date.isoformat(),
        kits=kits,
        reason=reason,
        entered_in_error_at=now.isoformat().replace("+00:00", "Z"),
        entered_in_error_by=actor.username,
    )
    audit.record(
        session,
        actor=actor,
        action="subject.dispensing_entered_in_error",
        entity="subject",
        entity_id=subject.id,
        before={"visit": row.visit, "visit_date": row.visit_date.isoformat(), "kits": kits},
        after={"visit": row.visit, "entered_in_error": True, "kits": kits},
        reason=reason,
    )
    return result
