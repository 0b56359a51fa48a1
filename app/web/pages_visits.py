"""Dosing visit pages: the dosing form (next due visit offered, an investigator's window
override, a review when the weight changed since the last dose), a missed visit, a dispensing
entered in error, and the visit report of a site with its CSV. The same use cases and roles as
the API (app/api/subjects.py, app/api/visits.py); docs/visits.md."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from app.api.deps import DB, RowId, SettingsDep, StudyDep
from app.api.downloads import csv_download
from app.api.problems import status_of
from app.api.schemas import DispenseIn, VisitReasonIn
from app.domain.dosing import weight_for_dose
from app.domain.errors import DomainError
from app.domain.roles import SITE_STAFF, Role
from app.services import commands, reports, visit_commands, visits
from app.services.actor import Actor
from app.services.transaction import utcnow
from app.services.visit_report import visit_report, visit_report_csv
from app.services.visits import SubjectSchedule
from app.web.common import form_retry
from app.web.forms import (
    Form,
    FormState,
    errors_from_service,
    errors_from_validation,
    form_decimal,
    form_text,
    form_values,
    invalid_form,
    new_idempotency_key,
    post_form,
    present,
    render_form,
    today_iso,
)
from app.web.pages_subjects import subject_view
from app.web.rendering import render, see_other
from app.web.session import page_actor

router = APIRouter()

SiteStaff = Annotated[Actor, Depends(page_actor(*SITE_STAFF))]
FIELD_OF = {
    "already_dispensed": "visit",
    "visit_out_of_order": "visit",
    "visit_missed": "visit",
    "visit_out_of_window": "visit_date",
    "window_override_not_permitted": "window_override_reason",
}
"""Where a dosing refusal is shown: next to the value it is about."""


def schedule_of(db: DB, actor: Actor, study: StudyDep, subject_id: int) -> SubjectSchedule:
    with db.read() as session:
        return visits.subject_schedule(
            session, study=study, actor=actor, subject_id=subject_id, today=utcnow().date()
        )


def _dispense_page(
    request: Request,
    *,
    db: DB,
    actor: Actor,
    study: StudyDep,
    subject: dict[str, Any],
    form: FormState,
) -> Response:
    schedule = schedule_of(db, actor, study, subject["subject_id"])
    title = f"Dosing visit of subject {subject['screening_number']}"
    return render_form(
        request,
        "subjects/dispense.html",
        form=form,
        title=title,
        subject=subject,
        schedule=schedule,
        visits=[line for line in schedule.visits if line.visit != "D1"],
        may_override=actor.role == Role.INVESTIGATOR,
    )


def _dispense_body(form: FormData) -> dict[str, Any]:
    return present(
        {
            "visit": form_text(form, "visit"),
            "visit_date": form_text(form, "visit_date"),
            "weight_kg": form_decimal(form, "weight_kg"),
            "window_override_reason": form_text(form, "window_override_reason"),
        }
    )


def _last_weight(subject: dict[str, Any]) -> Decimal | None:
    """The weight the last dose used (None before any)."""
    if not subject["visits"]:
        return None
    return Decimal(str(subject["visits"][-1]["dose"]["weight_kg"]))


@router.get("/subjects/{subject_id}/dispense")
def dispense_form(
    request: Request, subject_id: RowId, actor: SiteStaff, db: DB, study: StudyDep
) -> Response:
    subject = subject_view(db, actor, subject_id)
    schedule = schedule_of(db, actor, study, subject_id)
    values = {
        "idempotency_key": new_idempotency_key(),
        "visit": schedule.next_due or "",
        "visit_date": today_iso(),
    }
    return _dispense_page(
        request, db=db, actor=actor, study=study, subject=subject, form=FormState(values)
    )


@router.post("/subjects/{subject_id}/dispense")
def dispense_submit(
    request: Request,
    subject_id: RowId,
    actor: SiteStaff,
    form: Form,
    db: DB,
    study: StudyDep,
    settings: SettingsDep,
) -> Response:
    """Assign the kits; a weight other than the last dose's is shown for review first (the
    dose may change with it), and assigned only once confirmed."""
    subject = subject_view(db, actor, subject_id)
    values = {k: v for k, v in form_values(form).items() if k not in ("action", "reviewed")}

    def again(state: FormState) -> Response:
        return _dispense_page(request, db=db, actor=actor, study=study, subject=subject, form=state)

    if form.get("action") == "edit":
        return again(FormState(values))
    try:
        body = DispenseIn.model_validate(_dispense_body(form))
    except ValidationError as exc:
        return again(invalid_form(request, values, errors_from_validation(exc), sent=values))
    last = _last_weight(subject)
    if last is not None and body.weight_kg != last and form.get("reviewed") != "yes":
        used = weight_for_dose(body.weight_kg, last)
        return render(
            request,
            "subjects/dispense_review.html",
            title=f"Review the dosing visit of subject {subject['screening_number']}",
            subject=subject,
            body=body,
            last_weight=last,
            weight_used=used,
            change_percent=round((body.weight_kg - last) / last * 100, 1),
            values=values,
        )
    try:
        result = commands.dispense(
            db=db,
            study=study,
            actor=actor,
            retry=form_retry(form_text(form, "idempotency_key"), settings),
            subject_id=subject_id,
            visit_code=body.visit,
            visit_date=body.visit_date,
            weight_kg=body.weight_kg,
            window_override_reason=body.window_override_reason,
        ).result
    except DomainError as exc:
        errors = errors_from_service(exc)
        if exc.code in FIELD_OF:
            errors.fields[FIELD_OF[exc.code]] = exc.detail
        return again(FormState(values, errors, status_of(exc)))
    return see_other(f"/confirmations/{result.confirmation_id}")


# --- missed visit, entered in error ------------------------------------------------------------

VisitCode = Annotated[str, Path(min_length=1, max_length=8)]
TITLES = {
    "missed": "Record visit {visit} as missed",
    "entered-in-error": "Mark visit {visit} as entered in error",
}


def _act_page(
    request: Request, *, act: str, visit: str, subject: dict[str, Any], form: FormState
) -> Response:
    return render_form(
        request,
        "subjects/visit_act.html",
        form=form,
        title=TITLES[act].format(visit=visit) + f", subject {subject['screening_number']}",
        act=act,
        visit=visit,
        subject=subject,
    )


def _act_submit(
    request: Request,
    *,
    act: str,
    visit: str,
    subject: dict[str, Any],
    form: FormData,
    run: Callable[[VisitReasonIn], object],
) -> Response:
    values = form_values(form)
    return post_form(
        values,
        parse=lambda: VisitReasonIn.model_validate(present({"reason": form_text(form, "reason")})),
        run=run,
        again=lambda state: _act_page(request, act=act, visit=visit, subject=subject, form=state),
        done=f"/subjects/{subject['subject_id']}",
    )


@router.get("/subjects/{subject_id}/visits/{visit}/missed")
def missed_form(
    request: Request, subject_id: RowId, visit: VisitCode, actor: SiteStaff, db: DB
) -> Response:
    subject = subject_view(db, actor, subject_id)
    return _act_page(request, act="missed", visit=visit, subject=subject, form=FormState())


@router.post("/subjects/{subject_id}/visits/{visit}/missed")
def missed_submit(
    request: Request,
    subject_id: RowId,
    visit: VisitCode,
    actor: SiteStaff,
    form: Form,
    db: DB,
    study: StudyDep,
) -> Response:
    """Record that the visit did not take place; the next one keeps its target date."""
    subject = subject_view(db, actor, subject_id)
    return _act_submit(
        request,
        act="missed",
        visit=visit,
        subject=subject,
        form=form,
        run=lambda body: visit_commands.record_missed_visit(
            db=db,
            study=study,
            actor=actor,
            subject_id=subject_id,
            visit_code=visit,
            reason=body.reason,
        ),
    )


@router.get("/subjects/{subject_id}/visits/{visit}/entered-in-error")
def entered_in_error_form(
    request: Request, subject_id: RowId, visit: VisitCode, actor: SiteStaff, db: DB
) -> Response:
    subject = subject_view(db, actor, subject_id)
    return _act_page(
        request, act="entered-in-error", visit=visit, subject=subject, form=FormState()
    )


@router.post("/subjects/{subject_id}/visits/{visit}/entered-in-error")
def entered_in_error_submit(
    request: Request,
    subject_id: RowId,
    visit: VisitCode,
    actor: SiteStaff,
    form: Form,
    db: DB,
    study: StudyDep,
) -> Response:
    """The latest dosing visit was recorded in error: it stays, marked; the visit is due again."""
    subject = subject_view(db, actor, subject_id)
    return _act_submit(
        request,
        act="entered-in-error",
        visit=visit,
        subject=subject,
        form=form,
        run=lambda body: visit_commands.mark_entered_in_error(
            db=db,
            study=study,
            actor=actor,
            subject_id=subject_id,
            visit_code=visit,
            reason=body.reason,
        ),
    )


# --- visit report ------------------------------------------------------------------------------


@router.get("/reports/visits", response_class=HTMLResponse)
def visit_report_page(
    request: Request,
    actor: SiteStaff,
    db: DB,
    study: StudyDep,
    site_id: Annotated[str | None, Query(max_length=12)] = None,
) -> Response:
    """Due, overdue and missed visits at one site (the first visible site unless the user
    picks another)."""
    with db.read() as session:
        choices = reports.visible_sites(session, actor=actor)
        chosen = site_id or (choices[0] if choices else None)
        report = (
            visit_report(session, study=study, actor=actor, site_id=chosen, today=utcnow().date())
            if chosen
            else None
        )
    return render(request, "reports/visits.html", title="Visits", report=report, sites=choices)


@router.get("/reports/visits.csv")
def visit_report_download(
    actor: SiteStaff,
    db: DB,
    study: StudyDep,
    site_id: Annotated[str | None, Query(max_length=12)] = None,
) -> Response:
    """The report as CSV (the first visible site unless `site_id` names another)."""
    with db.read() as session:
        choices = reports.visible_sites(session, actor=actor)
        chosen = site_id or (choices[0] if choices else "")
        report = visit_report(
            session, study=study, actor=actor, site_id=chosen, today=utcnow().date()
        )
    return csv_download(visit_report_csv(report), f"visits-{chosen}.csv")
