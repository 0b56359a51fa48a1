"""Reports as JSON and CSV: enrolment, inventory and expiry outlook, unblinding log.

Roles: enrolment for every role (site roles: their sites; stage progress is study-wide);
inventory for pharmacists (their sites) and supply managers (every site and depot); the
unblinding log for the unblinded monitor (with the treatment) and the sponsor admin (without)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from app.api.deps import DB, StudyDep, require
from app.api.downloads import CSV_RESPONSE, csv_download
from app.domain.roles import EVERYONE, MISSTRATIFICATION_READERS, OVERSIGHT, PHARMACY, Role
from app.services import corrections, reports, unblinded_reads
from app.services.actor import Actor
from app.services.kits_due import KitsDue, kits_due
from app.services.transaction import utcnow

router = APIRouter(prefix="/reports", tags=["reports"])

Anyone = Annotated[Actor, Depends(require(*EVERYONE))]
Pharmacy = Annotated[Actor, Depends(require(*PHARMACY))]
Oversight = Annotated[Actor, Depends(require(*OVERSIGHT))]
SiteFilter = Annotated[str | None, Query(max_length=12, description="One of your sites.")]
SiteId = Annotated[str, Query(min_length=1, max_length=12, description="One of your sites.")]
Days = Annotated[int, Query(ge=1, le=31, description="Days ahead, today included.")]


class StageLineOut(BaseModel):
    stage: str
    scope: str
    status: str
    cap: int
    randomized: int
    remaining: int


class StratumLineOut(BaseModel):
    stage: str
    scope: str
    stratum: str
    randomized: int


_EVER_REGISTERED = "Every subject ever registered, whatever their status now."
_EVER_RANDOMIZED = (
    "Every subject ever randomized (discontinued, withdrawn and completed ones included)."
)


class SiteLineOut(BaseModel):
    site_id: str
    registered: int = Field(description=_EVER_REGISTERED)
    randomized: int = Field(description=_EVER_RANDOMIZED)
    by_scope: dict[str, int]
    by_status: dict[str, int]
    """Subjects per lifecycle status (app/domain/lifecycle.py), every status named."""


class EnrolmentOut(BaseModel):
    site_ids: list[str]
    target: int
    registered: int = Field(description=_EVER_REGISTERED)
    randomized: int = Field(description=_EVER_RANDOMIZED)
    by_status: dict[str, int] = Field(
        description="The reader's subjects per lifecycle status today: `registered` there "
        "counts those not yet randomized, `randomized` those still on treatment."
    )
    stages: list[StageLineOut]
    strata: list[StratumLineOut]
    sites: list[SiteLineOut]


class LocationStockOut(BaseModel):
    location: str
    kind: str
    total: int
    by_status: dict[str, int]
    in_stock: int
    by_window: dict[str, int]
    next_expiry: str | None


class InventoryReportOut(BaseModel):
    as_of: str
    do_not_dispense_days: int
    do_not_ship_days: int
    windows: list[str]
    locations: list[LocationStockOut]


class UnblindingReportOut(BaseModel):
    subject_id: int
    site_id: str
    screening_number: str
    randomization_number: str
    unblinded_at: str
    unblinded_by: str
    reason_category: str
    reason: str
    treatment: str | None = None
    """Only in the unblinded monitor's variant (left out, not null, for the sponsor)."""


@router.get("/enrolment", response_model=EnrolmentOut)
def enrolment(actor: Anyone, db: DB, study: StudyDep) -> Any:
    with db.read() as session:
        return reports.enrolment(session, study=study, actor=actor)


@router.get("/enrolment.csv", response_class=Response, responses=CSV_RESPONSE)
def enrolment_csv(actor: Anyone, db: DB, study: StudyDep) -> Response:
    """Rows per stage, stratum, site, and site and scope (column `level`)."""
    with db.read() as session:
        return csv_download(
            reports.enrolment_csv(reports.enrolment(session, study=study, actor=actor)),
            "enrolment.csv",
        )


@router.get("/inventory", response_model=InventoryReportOut)
def inventory(actor: Pharmacy, db: DB, study: StudyDep, site_id: SiteFilter = None) -> Any:
    with db.read() as session:
        return reports.inventory(
            session, study=study, actor=actor, today=utcnow().date(), site_id=site_id
        )


@router.get("/inventory.csv", response_class=Response, responses=CSV_RESPONSE)
def inventory_csv(actor: Pharmacy, db: DB, study: StudyDep, site_id: SiteFilter = None) -> Response:
    """One row per site (and depot): kits per status, stock per expiry window."""
    with db.read() as session:
        report = reports.inventory(
            session, study=study, actor=actor, today=utcnow().date(), site_id=site_id
        )
    return csv_download(reports.inventory_csv(report), "inventory.csv")


@router.get("/kits-due", response_model=KitsDue)
def kits_due_report(
    actor: Pharmacy, db: DB, study: StudyDep, site_id: SiteId, days: Days = 7
) -> KitsDue:
    """The vials the site's dosing visits due in the next `days` days (and overdue ones) will
    take, per visit: blinded (no content)."""
    with db.read() as session:
        return kits_due(
            session, study=study, actor=actor, site_id=site_id, today=utcnow().date(), days=days
        )


def _unblinded(actor: Actor) -> bool:
    return actor.role == Role.UNBLINDED_MONITOR


class MisstratifiedOut(BaseModel):
    subject_id: int
    site_id: str
    screening_number: str
    randomization_number: str
    stratum_randomized: str
    stratum_actual: str
    corrected_at: str
    corrected_by: str
    arm: str | None = None
    """Only in the unblinded monitor's variant (left out, not null, for everyone else)."""
    treatment: str | None = None


Misstratification = Annotated[Actor, Depends(require(*MISSTRATIFICATION_READERS))]


@router.get(
    "/misstratified", response_model=list[MisstratifiedOut], response_model_exclude_none=True
)
def misstratified(actor: Misstratification, db: DB, study: StudyDep) -> Any:
    """Subjects whose corrected stratification factors give another stratum than the one they
    were randomized in (they keep their allocation); the arm for the unblinded monitor only."""
    return unblinded_reads.misstratified(
        db=db, study=study, actor=actor, with_arm=_unblinded(actor)
    )


@router.get("/misstratified.csv", response_class=Response, responses=CSV_RESPONSE)
def misstratified_csv(actor: Misstratification, db: DB, study: StudyDep) -> Response:
    """The arm and treatment columns only in the unblinded monitor's file."""
    rows = unblinded_reads.misstratified(
        db=db, study=study, actor=actor, with_arm=_unblinded(actor)
    )
    return csv_download(
        corrections.misstratified_csv(rows, with_arm=_unblinded(actor)), "misstratified.csv"
    )


@router.get(
    "/unblindings", response_model=list[UnblindingReportOut], response_model_exclude_none=True
)
def unblindings(actor: Oversight, db: DB, study: StudyDep) -> Any:
    with db.read() as session:
        return reports.unblindings(
            session, study=study, actor=actor, with_treatment=_unblinded(actor)
        )


@router.get("/unblindings.csv", response_class=Response, responses=CSV_RESPONSE)
def unblindings_csv(actor: Oversight, db: DB, study: StudyDep) -> Response:
    """The treatment column only in the unblinded monitor's file."""
    with db.read() as session:
        rows = reports.unblindings(
            session, study=study, actor=actor, with_treatment=_unblinded(actor)
        )
    return csv_download(reports.unblindings_csv(rows, _unblinded(actor)), "unblindings.csv")
