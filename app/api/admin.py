"""Admin endpoints: unblinded views (unblinded monitor) and stage decisions (sponsor admin)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from app.api.deps import DB, MAX_ID, StudyDep, require
from app.api.downloads import CSV_RESPONSE, csv_download
from app.api.schemas import (
    AllocationOut,
    AuditEntryOut,
    AuditVerifyOut,
    KitImportOut,
    ListCommitmentOut,
    OutboxMessageOut,
    Phase2DoseIn,
    ReasonIn,
    ReconciliationOut,
    SiteActivateIn,
    UnblindedKitOut,
    UnblindingLogOut,
)
from app.db.engine import Database
from app.domain.roles import KIT_IMPORTERS, SPONSOR_ADMINS, UNBLINDED_MONITORS
from app.domain.study import StudyDefinition
from app.services import (
    admin_commands,
    audit,
    emergency_unblinding,
    inventory,
    kits,
    lists,
    outbox,
    sites,
    stages,
    unblinded_allocations,
)
from app.services.actor import Actor
from app.services.results import CohortOut, Phase2Out, SiteActivatedOut, SiteOut
from app.services.transaction import utcnow, writing

router = APIRouter(prefix="/admin", tags=["admin"])

Monitor = Annotated[Actor, Depends(require(*UNBLINDED_MONITORS))]
Sponsor = Annotated[Actor, Depends(require(*SPONSOR_ADMINS))]


@router.get("/allocations", response_model=list[AllocationOut])
def allocations(actor: Monitor, db: DB, study: StudyDep) -> Any:
    with db.read() as session:
        return unblinded_allocations.allocations(session, study)


@router.get("/exports/allocations.csv", response_class=Response, responses=CSV_RESPONSE)
def export_allocations(actor: Monitor, db: DB, study: StudyDep) -> Response:
    """One row per randomized subject, with arm and treatment (unblinded)."""
    with db.read() as session:
        return csv_download(
            unblinded_allocations.allocations_csv(session, study), "allocations.csv"
        )


@router.get("/exports/list.csv", response_class=Response, responses=CSV_RESPONSE)
def export_list(
    actor: Monitor,
    db: DB,
    study: StudyDep,
    list_format: Annotated[Literal["canonical", "redcap"], Query(alias="format")] = "canonical",
    scope: Annotated[str | None, Query(max_length=8, pattern=r"^[A-Z0-9]+$")] = None,
) -> Response:
    """The stored list: canonical CSV (every scope, or `scope`) or REDCap's allocation table of
    `scope` (default P2). See docs/randomization.md."""
    with db.read() as session:
        text = lists.export_text(session, study=study, file_format=list_format, scope=scope)
    return csv_download(text, f"list-{list_format}{'-' + scope if scope else ''}.csv")


@router.get("/lists", response_model=list[ListCommitmentOut])
def list_commitments(actor: Monitor, db: DB) -> Any:
    with db.read() as session:
        return lists.commitments(session)


@router.get("/audit", response_model=list[AuditEntryOut])
def audit_log(
    actor: Monitor,
    db: DB,
    after_seq: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    with db.read() as session:
        return audit.entries_after(session, after_seq=after_seq, limit=limit)


@router.get("/audit/verify", response_model=AuditVerifyOut)
def audit_verify(actor: Monitor, db: DB) -> Any:
    with db.read() as session:
        return audit.verify(session)


@router.get("/cohorts", response_model=list[CohortOut])
def cohorts(actor: Sponsor, db: DB) -> Any:
    with db.read() as session:
        return stages.list_cohorts(session)


@router.post("/cohorts/{code}/open", response_model=CohortOut)
def open_cohort(code: str, body: ReasonIn, actor: Sponsor, db: DB, study: StudyDep) -> Any:
    return admin_commands.change_cohort(
        db=db, study=study, actor=actor, code=code, action="open", reason=body.reason
    )


@router.post("/cohorts/{code}/close", response_model=CohortOut)
def close_cohort(code: str, body: ReasonIn, actor: Sponsor, db: DB, study: StudyDep) -> Any:
    return admin_commands.change_cohort(
        db=db, study=study, actor=actor, code=code, action="close", reason=body.reason
    )


@router.get("/phase2-dose", response_model=Phase2Out)
def phase2_dose(actor: Sponsor, db: DB) -> Any:
    with db.read() as session:
        return stages.phase2_view(session)


@router.post("/phase2-dose", response_model=Phase2Out)
def select_phase2_dose(body: Phase2DoseIn, actor: Sponsor, db: DB, study: StudyDep) -> Any:
    return admin_commands.select_phase2_dose(
        db=db, study=study, actor=actor, dose_mg_per_kg=body.dose_mg_per_kg, reason=body.reason
    )


Importer = Annotated[Actor, Depends(require(*KIT_IMPORTERS))]


@router.post(
    "/kits/import",
    status_code=201,
    response_model=KitImportOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
async def import_kits(request: Request, actor: Importer, db: DB, study: StudyDep) -> Any:
    """The packager's kit list as text/csv. The answer holds totals only (never contents)."""
    text = kits.decode_upload(await request.body())
    return await run_in_threadpool(_import_kits, text, actor=actor, db=db, study=study)


def _import_kits(text: str, *, actor: Actor, db: Database, study: StudyDefinition) -> Any:
    with writing(db) as session:
        return kits.import_kit_list(
            session, study=study, actor=actor, text=text, today=utcnow().date()
        )


@router.get("/kits", response_model=list[UnblindedKitOut])
def all_kits(actor: Monitor, db: DB, site_id: str | None = None, status: str | None = None) -> Any:
    with db.read() as session:
        return inventory.all_kits(session, site_id=site_id, status=status)


@router.get("/reconciliation", response_model=list[ReconciliationOut])
def reconciliation(actor: Monitor, db: DB, study: StudyDep) -> Any:
    with db.read() as session:
        return inventory.reconciliation(session, study)


@router.get("/sites", response_model=list[SiteOut])
def list_sites(actor: Sponsor, db: DB) -> Any:
    with db.read() as session:
        return sites.list_sites(session, actor)


@router.post("/sites/{site_id}/activate", response_model=SiteActivatedOut)
def activate_site(
    site_id: str, body: SiteActivateIn, actor: Sponsor, db: DB, study: StudyDep
) -> Any:
    return admin_commands.activate_site(
        db=db, study=study, actor=actor, site_id=site_id, depot_id=body.depot_id, reason=body.reason
    )


@router.get("/unblindings", response_model=list[UnblindingLogOut])
def unblindings(actor: Monitor, db: DB, study: StudyDep) -> Any:
    with db.read() as session:
        return emergency_unblinding.unblinding_log(session, study)


@router.get("/outbox", response_model=list[OutboxMessageOut])
def outbox_messages(actor: Monitor, db: DB) -> Any:
    with db.read() as session:
        return outbox.pending_and_recent(session)
