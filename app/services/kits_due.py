"""The kits due at a site: the vials the coming days' dosing visits will take, per visit.

A read-only report for the pharmacist preparing the week. It uses the forecast's own rule for
which visits a subject still has to come for (`pending_visits`, as the resupply does) and never
reads a subject's arm or a kit's content, so it is blinded by construction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Randomization, Subject
from app.domain.forecast import OnTreatment, pending_visits
from app.domain.lifecycle import ON_TREATMENT
from app.domain.study import StudyDefinition
from app.services.actor import Actor
from app.services.reports import visible_sites


@dataclass(frozen=True)
class DueVisit:
    subject_id: int
    screening_number: str
    visit: str
    due_on: date
    vials: int


@dataclass(frozen=True)
class KitsDue:
    """Visits due from `today` to `until` (overdue ones first), and their vials in all."""

    site_id: str
    today: date
    until: date
    visits: tuple[DueVisit, ...]
    vials: int


def kits_due(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    site_id: str,
    today: date,
    days: int = 7,
) -> KitsDue:
    """Every visit due on or before `today + days - 1` of the site's subjects on treatment;
    a site the user may not see is not found, as in the other reports."""
    visible_sites(session, actor=actor, site_id=site_id)  # another site's: 404, as reports do
    until = today + timedelta(days=days - 1)
    visits = study.schedule.visits()
    rows = session.execute(
        select(
            Subject.id,
            Subject.screening_number,
            Randomization.visit_date,
            Randomization.last_visit_index,
            Randomization.last_vials,
        )
        .join(Randomization, Randomization.subject_id == Subject.id)
        .where(Subject.site_id == site_id, Subject.status.in_(ON_TREATMENT))
    ).all()
    due: list[DueVisit] = []
    for subject_id, number, day_one, last_index, vials in rows:
        if last_index is None or vials is None:
            continue  # not dosed yet: nothing to come back for
        on = OnTreatment("", day_one, last_index + 1, vials)
        for visit, (day, vials) in zip(
            visits[on.next_index :], pending_visits(on, visits), strict=True
        ):
            if day > until:
                break
            due.append(DueVisit(subject_id, number, visit.code, day, vials))
    due.sort(key=lambda v: (v.due_on, v.screening_number))
    return KitsDue(site_id, today, until, tuple(due), sum(v.vials for v in due))
