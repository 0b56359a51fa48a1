"""Report pages and their CSV files: enrolment, inventory and expiry outlook, unblinding log.
The same services and roles as /api/v1/reports (app/api/reports.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.api.deps import DB, StudyDep
from app.api.downloads import csv_download
from app.domain.roles import (
    EVERYONE,
    MISSTRATIFICATION_READERS,
    OVERSIGHT,
    PHARMACY,
    SITE_STAFF,
    Role,
)
from app.services import reports, unblinded_reads
from app.services.actor import Actor
from app.services.kits_due import kits_due
from app.services.transaction import utcnow
from app.web.rendering import render
from app.web.session import page_actor

router = APIRouter()

Anyone = Annotated[Actor, Depends(page_actor(*EVERYONE))]
Pharmacy = Annotated[Actor, Depends(page_actor(*PHARMACY))]
Oversight = Annotated[Actor, Depends(page_actor(*OVERSIGHT))]
SiteFilter = Annotated[str | None, Query(max_length=12)]


def _links(actor: Actor) -> list[tuple[str, str]]:
    """The reports the user may open, for the menu on each report page."""
    links = [("/reports/enrolment", "Enrolment")]
    if actor.role in SITE_STAFF:
        links.append(("/reports/visits", "Visits"))
    if actor.role in PHARMACY:
        links.append(("/reports/inventory", "Inventory and expiry"))
        links.append(("/reports/kits-due", "Kits due"))
    if actor.role in OVERSIGHT:
        links.append(("/reports/unblindings", "Unblindings"))
    if actor.role in MISSTRATIFICATION_READERS:
        links.append(("/reports/misstratified", "Mis-stratified subjects"))
    return links


@router.get("/reports/enrolment", response_class=HTMLResponse)
def enrolment(request: Request, actor: Anyone, db: DB, study: StudyDep) -> Response:
    with db.read() as session:
        report = reports.enrolment(session, study=study, actor=actor)
    return render(
        request, "reports/enrolment.html", title="Enrolment", report=report, links=_links(actor)
    )


@router.get("/reports/enrolment.csv")
def enrolment_csv(actor: Anyone, db: DB, study: StudyDep) -> Response:
    with db.read() as session:
        report = reports.enrolment(session, study=study, actor=actor)
    return csv_download(reports.enrolment_csv(report), "enrolment.csv")


@router.get("/reports/inventory", response_class=HTMLResponse)
def inventory(
    request: Request, actor: Pharmacy, db: DB, study: StudyDep, site_id: SiteFilter = None
) -> Response:
    with db.read() as session:
        report = reports.inventory(
            session, study=study, actor=actor, today=utcnow().date(), site_id=site_id or None
        )
    return render(
        request,
        "reports/inventory.html",
        title="Inventory and expiry",
        report=report,
        site_id=site_id or "",
        links=_links(actor),
    )


@router.get("/reports/kits-due", response_class=HTMLResponse)
def kits_due_page(
    request: Request,
    actor: Pharmacy,
    db: DB,
    study: StudyDep,
    site_id: SiteFilter = None,
    days: Annotated[int, Query(ge=1, le=31)] = 7,
) -> Response:
    """The vials the coming days' visits at one site will take (the first visible site unless
    the user picks another)."""
    with db.read() as session:
        choices = reports.visible_sites(session, actor=actor)
        chosen = site_id or (choices[0] if choices else None)
        report = (
            kits_due(
                session, study=study, actor=actor, site_id=chosen, today=utcnow().date(), days=days
            )
            if chosen
            else None
        )
    return render(
        request,
        "reports/kits_due.html",
        title="Kits due",
        report=report,
        sites=choices,
        days=days,
        links=_links(actor),
    )


@router.get("/reports/inventory.csv")
def inventory_csv(actor: Pharmacy, db: DB, study: StudyDep, site_id: SiteFilter = None) -> Response:
    with db.read() as session:
        report = reports.inventory(
            session, study=study, actor=actor, today=utcnow().date(), site_id=site_id or None
        )
    return csv_download(reports.inventory_csv(report), "inventory.csv")


def _unblinded(actor: Actor) -> bool:
    return actor.role == Role.UNBLINDED_MONITOR


@router.get("/reports/unblindings", response_class=HTMLResponse)
def unblindings(request: Request, actor: Oversight, db: DB, study: StudyDep) -> Response:
    rows = unblinded_reads.unblindings_report(
        db=db, study=study, actor=actor, with_treatment=_unblinded(actor)
    )
    return render(
        request,
        "reports/unblindings.html",
        title="Unblindings",
        rows=rows,
        with_treatment=_unblinded(actor),
        links=_links(actor),
    )


@router.get("/reports/unblindings.csv")
def unblindings_csv(actor: Oversight, db: DB, study: StudyDep) -> Response:
    rows = unblinded_reads.unblindings_report(
        db=db, study=study, actor=actor, with_treatment=_unblinded(actor)
    )
    return csv_download(reports.unblindings_csv(rows, _unblinded(actor)), "unblindings.csv")
