"""Sponsor admin pages: sites and their activation, cohorts open and close, the phase II dose.
Each form runs the use case of the API route it mirrors (app/services/admin_commands.py,
app/api/admin.py) with the same request schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response

from app.api.deps import DB, SettingsDep, StudyDep
from app.api.schemas import Phase2DoseIn, SignedReasonIn, SiteActivateIn, SiteTimezoneIn
from app.domain import signatures as meanings
from app.domain.errors import DomainError, not_found
from app.domain.reasons import check_reason
from app.domain.roles import SPONSOR_ADMINS
from app.domain.study import StudyDefinition
from app.services import admin_commands, sites, stages
from app.services.actor import Actor
from app.settings import Settings
from app.web.forms import (
    Form,
    FormState,
    blank_to_none,
    form_values,
    post_form,
    refused_form,
    render_form,
    without_passwords,
)
from app.web.rendering import render
from app.web.session import page_actor

router = APIRouter()

Sponsor = Annotated[Actor, Depends(page_actor(*SPONSOR_ADMINS))]
Code = Annotated[str, Path(max_length=8, pattern=r"^[A-Z0-9]+$")]
SiteId = Annotated[str, Path(max_length=12)]


# --- sites --------------------------------------------------------------------------------------


def _sites_page(
    request: Request,
    *,
    db: DB,
    actor: Actor,
    form: FormState | None = None,
    done: str = "",
    zone: str = "",
) -> Response:
    with db.read() as session:
        rows = sites.list_sites(session, actor)
    return render_form(
        request, "admin/sites.html", form=form, title="Sites", sites=rows, done=done, zone=zone
    )


@router.get("/admin/sites", response_class=HTMLResponse)
def site_list(request: Request, actor: Sponsor, db: DB, done: str = "", zone: str = "") -> Response:
    return _sites_page(request, db=db, actor=actor, done=done[:12], zone=zone[:12])


@router.post("/admin/sites/{site_id}/timezone", response_class=HTMLResponse)
def set_timezone(request: Request, site_id: SiteId, actor: Sponsor, form: Form, db: DB) -> Response:
    """The site's IANA time zone (its local dates in the exports and pages)."""
    values = form_values(form)
    prefix = f"{site_id}."
    return post_form(
        values,
        parse=lambda: SiteTimezoneIn(timezone=values.get(f"{prefix}timezone", "")),
        run=lambda body: admin_commands.set_site_timezone(
            db=db, actor=actor, site_id=site_id, timezone=body.timezone
        ),
        again=lambda refused: _sites_page(request, db=db, actor=actor, form=refused),
        done=f"/admin/sites?zone={site_id}",
        prefix=prefix,
    )


@router.post("/admin/sites/{site_id}/activate", response_class=HTMLResponse)
def activate(
    request: Request, site_id: SiteId, actor: Sponsor, form: Form, db: DB, study: StudyDep
) -> Response:
    """Open the site for enrolment; its initial shipment is requested from its depot."""
    values = form_values(form)
    prefix = f"{site_id}."
    return post_form(
        values,
        parse=lambda: SiteActivateIn(
            reason=values.get(f"{prefix}reason", ""),
            depot_id=blank_to_none(values.get(f"{prefix}depot_id")),
        ),
        run=lambda body: admin_commands.activate_site(
            db=db,
            study=study,
            actor=actor,
            site_id=site_id,
            depot_id=body.depot_id,
            reason=body.reason,
        ),
        again=lambda refused: _sites_page(request, db=db, actor=actor, form=refused),
        done=f"/admin/sites?done={site_id}",
        prefix=prefix,
    )


# --- cohorts ------------------------------------------------------------------------------------


def _cohorts_page(request: Request, *, db: DB, form: FormState | None = None) -> Response:
    with db.read() as session:
        rows = stages.list_cohorts(session)
    for row in rows:  # the meaning each form's signature carries, shown next to its password
        action = {"planned": "open", "open": "close"}.get(row["status"])
        row["meaning"] = meanings.cohort_meaning(code=row["code"], action=action or "")
    return render_form(request, "admin/cohorts.html", form=form, title="Cohorts", cohorts=rows)


@router.get("/admin/cohorts", response_class=HTMLResponse)
def cohorts(request: Request, actor: Sponsor, db: DB) -> Response:
    return _cohorts_page(request, db=db)


def _change(
    request: Request,
    *,
    code: str,
    action: Literal["open", "close"],
    actor: Actor,
    form: Form,
    db: DB,
    study: StudyDefinition,
    settings: Settings,
) -> Response:
    """Open or close a cohort from its row's form (fields named `<code>.<action>.`), signed."""
    values = form_values(form)
    prefix = f"{code}.{action}."
    return post_form(
        without_passwords(values),
        parse=lambda: SignedReasonIn.model_validate(
            {
                "reason": values.get(f"{prefix}reason", ""),
                "signature": {
                    "password": values.get(f"{prefix}signature.password", ""),
                    "meaning": values.get(f"{prefix}signature.meaning"),
                },
            }
        ),
        run=lambda body: admin_commands.change_cohort(
            db=db,
            study=study,
            actor=actor,
            code=code,
            action=action,
            reason=body.reason,
            settings=settings,
            signature=body.signature.given(),
        ),
        again=lambda refused: _cohorts_page(request, db=db, form=refused),
        done="/admin/cohorts",
        prefix=prefix,
    )


def _cohort_page_route(action: Literal["open", "close"]) -> Callable[..., Response]:
    """The form post that opens or closes a cohort: one route per action, one body."""

    def route(
        request: Request,
        code: Code,
        actor: Sponsor,
        form: Form,
        db: DB,
        study: StudyDep,
        settings: SettingsDep,
    ) -> Response:
        return _change(
            request,
            code=code,
            action=action,
            actor=actor,
            form=form,
            db=db,
            study=study,
            settings=settings,
        )

    route.__name__ = f"{action}_cohort"
    return route


for _action in ("open", "close"):
    router.post(f"/admin/cohorts/{{code}}/{_action}", response_class=HTMLResponse)(
        _cohort_page_route(_action)
    )


@router.post("/admin/cohorts/{code}/close/review", response_class=HTMLResponse)
def close_cohort_review(
    request: Request, code: Code, actor: Sponsor, form: Form, db: DB
) -> Response:
    """Closing a cohort cannot be undone: what it means, for a last look, where the sponsor
    signs; "Change" goes back to the cohorts (docs/visits.md, "Review steps")."""
    values = form_values(form)
    reason = values.get(f"{code}.close.reason", "")
    try:
        check_reason(reason)
    except DomainError as exc:
        refused = refused_form(exc, values)
        refused.errors.fields = {f"{code}.close.{k}": v for k, v in refused.errors.fields.items()}
        return _cohorts_page(request, db=db, form=refused)
    with db.read() as session:
        cohort = next((c for c in stages.list_cohorts(session) if c["code"] == code), None)
    if cohort is None:
        raise not_found(f"Cohort {code}")
    return render(
        request,
        "admin/cohort_close_review.html",
        title=f"Review closing cohort {code}",
        cohort=cohort,
        reason=reason,
        meaning=meanings.cohort_meaning(code=code, action="close"),
        errors=None,
    )


# --- phase II dose ------------------------------------------------------------------------------


def _phase2_page(
    request: Request, *, db: DB, study: StudyDefinition, form: FormState | None = None
) -> Response:
    with db.read() as session:
        current = stages.phase2_view(session)
        cohorts = stages.list_cohorts(session)
    levels = [(str(c.dose_mg_per_kg), f"{c.dose_mg_per_kg} mg/kg") for c in study.phase_ib.cohorts]
    signing = [meanings.phase2_dose_meaning(c.dose_mg_per_kg) for c in study.phase_ib.cohorts]
    return render_form(
        request,
        "admin/phase2.html",
        form=form,
        title="Phase II dose",
        current=current,
        cohorts=cohorts,
        levels=levels,
        meanings=signing,
    )


@router.get("/admin/phase2-dose", response_class=HTMLResponse)
def phase2(request: Request, actor: Sponsor, db: DB, study: StudyDep) -> Response:
    return _phase2_page(request, db=db, study=study)


@router.post("/admin/phase2-dose", response_class=HTMLResponse)
def select_phase2(
    request: Request, actor: Sponsor, form: Form, db: DB, study: StudyDep, settings: SettingsDep
) -> Response:
    """Record the phase II dose once (every cohort closed), signed and audited with the reason.
    The meaning follows the dose chosen, so it is not echoed: the service's own is recorded."""
    values = form_values(form)
    return post_form(
        without_passwords(values),
        parse=lambda: Phase2DoseIn.model_validate(
            {
                "dose_mg_per_kg": values.get("dose_mg_per_kg", ""),
                "reason": values.get("reason"),
                "signature": {"password": values.get("signature.password", "")},
            }
        ),
        run=lambda body: admin_commands.select_phase2_dose(
            db=db,
            study=study,
            actor=actor,
            dose_mg_per_kg=body.dose_mg_per_kg,
            reason=body.reason,
            settings=settings,
            signature=body.signature.given(),
        ),
        again=lambda refused: _phase2_page(request, db=db, study=study, form=refused),
        done="/admin/phase2-dose",
    )
