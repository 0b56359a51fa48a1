"""The visit report of one site: visits due now, overdue and recorded missed, per subject.

For the site staff planning their days and chasing what was not recorded. It reads the same
schedule rule as the subject's page (app/domain/visits.py) and never an arm or a kit's content:
blinded by construction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Randomization, Subject
from app.domain.csv_cells import csv_text
from app.domain.lifecycle import on_treatment
from app.domain.study import StudyDefinition
from app.domain.visits import VisitState
from app.services.actor import Actor
from app.services.reports import visible_sites
from app.services.visits import dispensed_and_missed, states_of

LISTED = (VisitState.DUE, VisitState.OVERDUE, VisitState.MISSED)
COLUMNS = (
    "site_id",
    "subject_id",
    "screening_number",
    "visit",
    "state",
    "target_date",
    "window_opens",
    "window_closes",
    "missed_reason",
)


@dataclass(frozen=True)
class VisitReportLine:
    subject_id: int
    screening_number: str
    visit: str
    state: str
    target_date: date
    window_opens: date
    window_closes: date
    missed_reason: str | None


@dataclass(frozen=True)
class VisitReport:
    """Due (window open today), overdue (window closed, nothing recorded) and missed visits.
    Due and overdue only for subjects on treatment; missed ones for every subject."""

    site_id: str
    today: date
    due: tuple[VisitReportLine, ...]
    overdue: tuple[VisitReportLine, ...]
    missed: tuple[VisitReportLine, ...]


def visit_report(
    session: Session, *, study: StudyDefinition, actor: Actor, site_id: str, today: date
) -> VisitReport:
    """A site the user may not see is not found, as in the other reports."""
    visible_sites(session, actor=actor, site_id=site_id)
    rows = session.execute(
        select(Subject, Randomization.visit_date)
        .join(Randomization, Randomization.subject_id == Subject.id)
        .where(Subject.site_id == site_id)
        .order_by(Subject.screening_number)
    ).all()
    lines: dict[VisitState, list[VisitReportLine]] = {state: [] for state in LISTED}
    for subject, day_one in rows:
        dispensed, missed = dispensed_and_missed(session, subject.id)
        treated = on_treatment(subject.status)
        for item in states_of(
            study, day_one=day_one, dispensed=dispensed, missed=missed, today=today
        ):
            if item.state not in LISTED or (item.state != VisitState.MISSED and not treated):
                continue
            code = item.window.visit.code
            lines[item.state].append(
                VisitReportLine(
                    subject.id,
                    subject.screening_number,
                    code,
                    item.state.value,
                    item.window.target,
                    item.window.opens,
                    item.window.closes,
                    missed[code].reason if code in missed else None,
                )
            )
    ordered = {
        state: tuple(sorted(found, key=lambda v: (v.target_date, v.screening_number)))
        for state, found in lines.items()
    }
    return VisitReport(
        site_id,
        today,
        ordered[VisitState.DUE],
        ordered[VisitState.OVERDUE],
        ordered[VisitState.MISSED],
    )


def visit_report_csv(report: VisitReport) -> str:
    """One row per listed visit; `state` is due, overdue or missed."""
    return csv_text(
        COLUMNS,
        (
            [
                report.site_id,
                line.subject_id,
                line.screening_number,
                line.visit,
                line.state,
                line.target_date.isoformat(),
                line.window_opens.isoformat(),
                line.window_closes.isoformat(),
                line.missed_reason,
            ]
            for line in (*report.due, *report.overdue, *report.missed)
        ),
    )
