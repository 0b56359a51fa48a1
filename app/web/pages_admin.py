"""Sponsor admin pages: sites and their activation, cohorts open and close, the phase II dose."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.api.deps import DB, StudyDep
from app.api.problems import status_of
from app.api.schemas import Phase2DoseIn, ReasonIn, SiteActivateIn
from app.domain.errors import DomainError, NotFound
from app.domain.roles import Role
from app.services import sites, stages
from app.services.actor import Actor
from app.services.transaction import utcnow, writing
from app.web.common import (
    Form,
    FormErrors,
    blank_to_none,
    errors_from_service,
    errors_from_validation,
    form_values,
    page_actor,
    render,
    see_other,
)

router = APIRouter()

Sponsor = Annotated[Actor, Depends(page_actor(Role.SPONSOR_ADMIN))]
Code = Annotated[str, Path(max_length=8, pattern=r"^[A-Z0-9]+$")]
SiteId = Annotated[str, Path(max_length=12)]


def _submit(
    db: DB,
    *,
    parse: Callable[[], Any],
    work: Callable[[Session, Any], object],
    field_prefix: str,
) -> tuple[int, FormErrors] | None:
    """Validate the form and run the use case in one transaction: None when done, else the
    status and the errors (fields named with `field_prefix`, as in the page's forms)."""
    try:
        body = parse()
    except ValidationError as exc:
        status, errors = 422, errors_from_validation(exc)
    else:
        try:
            with writing(db) as session:
                work(session, body)
            return None
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise
            status, errors = status_of(exc), errors_from_service(exc)
    errors.fields = {f"{field_prefix}{k}": v for k, v in errors.fields.items()}
    return status, errors


# --- sites --------------------------------------------------------------------------------------


def _sites_page(
    request: Request,
    db: DB,
    actor: Actor,
    status_code: int = 200,
    errors: FormErrors | None = None,
    values: dict[str, str] | None = None,
    done: str = "",
) -> Response:
    with db.read() as session:
        rows = sites.list_sites(session, actor)
    return render(
        request,
        "admin/sites.html",
        status_code=status_code,
        title="Sites",
        sites=rows,
        errors=errors or FormErrors(),
        values=values or {},
        done=done,
    )


@router.get("/admin/sites", response_class=HTMLResponse)
def site_list(request: Request, actor: Sponsor, db: DB, done: str = "") -> Response:
    return _sites_page(request, db=db, actor=actor, done=done[:12])


@router.post("/admin/sites/{site_id}/activate", response_class=HTMLResponse)
def activate(
    request: Request, site_id: SiteId, actor: Sponsor, form: Form, db: DB, study: StudyDep
) -> Response:
    """Open the site for enrolment; its initial shipment is requested from its depot."""
    values = form_values(form)
    prefix = f"{site_id}."
    refused = _submit(
        db,
        parse=lambda: SiteActivateIn(
            reason=values.get(f"{prefix}reason", ""),
            depot_id=blank_to_none(values.get(f"{prefix}depot_id")),
        ),
        work=lambda s, body: sites.activate(
            s,
            study=study,
            actor=actor,
            site_id=site_id,
            depot_id=body.depot_id,
            reason=body.reason,
            today=utcnow().date(),
        ),
        field_prefix=prefix,
    )
    if refused:
        return _sites_page(request, db, actor, *refused, values)
    return see_other(f"/admin/sites?done={site_id}")


# --- cohorts ------------------------------------------------------------------------------------


def _cohorts_page(
    request: Request,
    db: DB,
    status_code: int = 200,
    errors: FormErrors | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    with db.read() as session:
        rows = stages.list_cohorts(session)
    return render(
        request,
        "admin/cohorts.html",
        status_code=status_code,
        title="Cohorts",
        cohorts=rows,
        errors=errors or FormErrors(),
        values=values or {},
    )


@router.get("/admin/cohorts", response_class=HTMLResponse)
def cohorts(request: Request, actor: Sponsor, db: DB) -> Response:
    return _cohorts_page(request, db=db)


def _change(
    request: Request, *, code: str, action: str, actor: Actor, form: Any, db: DB, study: Any
) -> Response:
    values = form_values(form)
    prefix = f"{code}.{action}."
    refused = _submit(
        db,
        parse=lambda: ReasonIn(reason=values.get(f"{prefix}reason", "")),
        work=lambda s, body: stages.change_cohort(
            s, study=study, actor=actor, code=code, action=action, reason=body.reason
        ),
        field_prefix=prefix,
    )
    if refused:
        return _cohorts_page(request, db, *refused, values)
    return see_other("/admin/cohorts")


@router.post("/admin/cohorts/{code}/open", response_class=HTMLResponse)
def open_cohort(
    request: Request, code: Code, actor: Sponsor, form: Form, db: DB, study: StudyDep
) -> Response:
    return _change(request, code=code, action="open", actor=actor, form=form, db=db, study=study)


@router.post("/admin/cohorts/{code}/close", response_class=HTMLResponse)
def close_cohort(
    request: Request, code: Code, actor: Sponsor, form: Form, db: DB, study: StudyDep
) -> Response:
    return _change(request, code=code, action="close", actor=actor, form=form, db=db, study=study)


# --- phase II dose ------------------------------------------------------------------------------


def _phase2_page(
    request: Request,
    db: DB,
    study: StudyDep,
    status_code: int = 200,
    errors: FormErrors | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    with db.read() as session:
        current = stages.phase2_view(session)
        cohorts = stages.list_cohorts(session)
    levels = [(str(c.dose_mg_per_kg), f"{c.dose_mg_per_kg} mg/kg") for c in study.phase_ib.cohorts]
    return render(
        request,
        "admin/phase2.html",
        status_code=status_code,
        title="Phase II dose",
        current=current,
        cohorts=cohorts,
        levels=levels,
        errors=errors or FormErrors(),
        values=values or {},
    )


@router.get("/admin/phase2-dose", response_class=HTMLResponse)
def phase2(request: Request, actor: Sponsor, db: DB, study: StudyDep) -> Response:
    return _phase2_page(request, db=db, study=study)


@router.post("/admin/phase2-dose", response_class=HTMLResponse)
def select_phase2(
    request: Request, actor: Sponsor, form: Form, db: DB, study: StudyDep
) -> Response:
    """Record the phase II dose once (every cohort closed), audited with the reason."""
    values = form_values(form)
    refused = _submit(
        db,
        parse=lambda: Phase2DoseIn.model_validate(
            {"dose_mg_per_kg": values.get("dose_mg_per_kg", ""), "reason": values.get("reason")}
        ),
        work=lambda s, body: stages.select_phase2_dose(
            s, study=study, actor=actor, dose=body.dose_mg_per_kg, reason=body.reason
        ),
        field_prefix="",
    )
    if refused:
        return _phase2_page(request, db, study, *refused, values)
    return see_other("/admin/phase2-dose")
