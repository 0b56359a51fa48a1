"""Visit windows: a subject's schedule, missed visits, dispensings entered in error, and the
visit report per site (site roles, own sites; docs/visits.md). Blinded: no arm, no content."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from app.api.deps import DB, RowId, StudyDep, require
from app.api.downloads import CSV_RESPONSE, csv_download
from app.api.schemas import VisitReasonIn
from app.domain.roles import SITE_STAFF
from app.services import visit_commands, visits
from app.services.actor import Actor
from app.services.transaction import utcnow
from app.services.visit_report import VisitReport, visit_report, visit_report_csv
from app.services.visits import EnteredInErrorOut, MissedVisitOut, SubjectSchedule

router = APIRouter(tags=["visits"])

SiteStaff = Annotated[Actor, Depends(require(*SITE_STAFF))]
VisitCode = Annotated[str, Path(min_length=1, max_length=8, description="Visit code, e.g. W8")]
SiteId = Annotated[str, Query(min_length=1, max_length=12, description="One of your sites.")]


@router.get("/subjects/{subject_id}/visits", response_model=SubjectSchedule)
def schedule(subject_id: RowId, actor: SiteStaff, db: DB, study: StudyDep) -> SubjectSchedule:
    """Each dosing visit's target date (from day 1), window and state; `next_due` is the visit
    to dose next."""
    with db.read() as session:
        return visits.subject_schedule(
            session, study=study, actor=actor, subject_id=subject_id, today=utcnow().date()
        )


@router.post(
    "/subjects/{subject_id}/visits/{visit}/missed", status_code=201, response_model=MissedVisitOut
)
def missed(
    subject_id: RowId,
    visit: VisitCode,
    body: VisitReasonIn,
    actor: SiteStaff,
    db: DB,
    study: StudyDep,
) -> MissedVisitOut:
    """Record that a visit did not take place; the next one keeps its target date."""
    return visit_commands.record_missed_visit(
        db=db, study=study, actor=actor, subject_id=subject_id, visit_code=visit, reason=body.reason
    )


@router.post(
    "/subjects/{subject_id}/visits/{visit}/entered-in-error", response_model=EnteredInErrorOut
)
def entered_in_error(
    subject_id: RowId,
    visit: VisitCode,
    body: VisitReasonIn,
    actor: SiteStaff,
    db: DB,
    study: StudyDep,
) -> EnteredInErrorOut:
    """The latest dosing visit was recorded in error: it stays, marked, its kits stay
    dispensed and accounted for, and the visit is due again."""
    return visit_commands.mark_entered_in_error(
        db=db, study=study, actor=actor, subject_id=subject_id, visit_code=visit, reason=body.reason
    )


@router.get("/reports/visits", response_model=VisitReport)
def report(actor: SiteStaff, db: DB, study: StudyDep, site_id: SiteId) -> VisitReport:
    """Visits due today, overdue and recorded missed at one site."""
    with db.read() as session:
        return visit_report(
            session, study=study, actor=actor, site_id=site_id, today=utcnow().date()
        )


@router.get("/reports/visits.csv", response_class=Response, responses=CSV_RESPONSE)
def report_csv(actor: SiteStaff, db: DB, study: StudyDep, site_id: SiteId) -> Response:
    """One row per due, overdue or missed visit (column `state`)."""
    with db.read() as session:
        found = visit_report(
            session, study=study, actor=actor, site_id=site_id, today=utcnow().date()
        )
    return csv_download(visit_report_csv(found), f"visits-{site_id}.csv")
