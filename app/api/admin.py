"""Admin endpoints: unblinded views (unblinded monitor) and stage decisions (sponsor admin)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from app.api.audit_schemas import AuditEntryOut, AuditVerifyOut, CheckpointsOut
from app.api.deps import DB, MAX_ID, SettingsDep, StudyDep, require
from app.api.downloads import CSV_RESPONSE, csv_download
from app.api.schemas import (
    AllocationOut,
    KitImportOut,
    ListCommitmentOut,
    OutboxMessageOut,
    Phase2DoseIn,
    ReconciliationOut,
    SignedReasonIn,
    SiteActivateIn,
    SiteTimezoneIn,
    UnblindedKitOut,
    UnblindingLogOut,
)
from app.domain.kits import KitStatus
from app.domain.roles import KIT_IMPORTERS, SPONSOR_ADMINS, UNBLINDED_MONITORS
from app.services import (
    admin_commands,
    audit,
    audit_integrity,
    checkpoints,
    kits,
    lists,
    outbox,
    sites,
    stages,
    unblinded_reads,
)
from app.services.actor import Actor
from app.services.results import CohortOut, Phase2Out, SiteActivatedOut, SiteOut
from app.services.signatures import SignatureInput

router = APIRouter(prefix="/admin", tags=["admin"])

Monitor = Annotated[Actor, Depends(require(*UNBLINDED_MONITORS))]
Sponsor = Annotated[Actor, Depends(require(*SPONSOR_ADMINS))]


@router.get("/allocations", response_model=list[AllocationOut])
def allocations(actor: Monitor, db: DB, study: StudyDep) -> Any:
    return unblinded_reads.allocations(db=db, study=study, actor=actor)


@router.get("/exports/allocations.csv", response_class=Response, responses=CSV_RESPONSE)
def export_allocations(actor: Monitor, db: DB, study: StudyDep) -> Response:
    """One row per randomized subject, with arm and treatment (unblinded)."""
    text = unblinded_reads.allocations_csv(db=db, study=study, actor=actor)
    return csv_download(text, "allocations.csv")


@router.get("/exports/list.csv", response_class=Response, responses=CSV_RESPONSE)
def export_list(
    actor: Monitor,
    db: DB,
    study: StudyDep,
    list_format: Annotated[
        Literal["canonical", "redcap", "sealed-envelope"], Query(alias="format")
    ] = "canonical",
    scope: Annotated[str | None, Query(max_length=8, pattern=r"^[A-Z0-9]+$")] = None,
) -> Response:
    """The stored list: canonical CSV (every scope, or `scope`), REDCap's allocation table or
    Sealed Envelope's list of `scope` (default P2), with numbers that tell nothing of blocks.
    See docs/randomization.md."""
    text = unblinded_reads.list_export(
        db=db, study=study, actor=actor, file_format=list_format, scope=scope
    )
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
    username: Annotated[str | None, Query(max_length=80)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> Any:
    """The trail in chain order, a page at a time; `username` and `action` keep only one
    user's or one kind's entries (e.g. `action=subject.randomize_refused`)."""
    with db.read() as session:
        return audit.entries_after(
            session, after_seq=after_seq, limit=limit, username=username, action=action
        )


@router.get("/audit/verify", response_model=AuditVerifyOut)
def audit_verify(actor: Monitor, db: DB) -> Any:
    """The chain, the chain against the signed checkpoints, and the replay of the trail
    against the business tables (docs/threat-model.md)."""
    with db.read() as session:
        report = audit_integrity.verify_all(session, checkpoint_log=checkpoints.log_of(db))
    return audit_integrity.summary(report)


@router.get("/audit/checkpoints", response_model=CheckpointsOut)
def audit_checkpoints(actor: Monitor, db: DB) -> Any:
    """The latest signed checkpoints of the chain head and the public key that verifies them."""
    return audit_integrity.checkpoints_view(db)


@router.get("/cohorts", response_model=list[CohortOut])
def cohorts(actor: Sponsor, db: DB) -> Any:
    with db.read() as session:
        return stages.list_cohorts(session)


def _cohort_route(action: Literal["open", "close"]) -> Callable[..., Any]:
    """Open or close a cohort: one route per action, one body."""

    def route(
        code: str,
        body: SignedReasonIn,
        actor: Sponsor,
        db: DB,
        study: StudyDep,
        settings: SettingsDep,
    ) -> Any:
        return admin_commands.change_cohort(
            db=db,
            study=study,
            actor=actor,
            code=code,
            action=action,
            reason=body.reason,
            settings=settings,
            signature=body.signature.given(),
        )

    route.__name__ = f"{action}_cohort"
    verb = "opening" if action == "open" else "closing"
    route.__doc__ = (
        f"Signed: `signature.password` is the sponsor's own; the meaning is \"I approve {verb} "
        'cohort <code>".'
    )
    return route


for _action in ("open", "close"):
    router.post(f"/cohorts/{{code}}/{_action}", response_model=CohortOut)(_cohort_route(_action))


@router.get("/phase2-dose", response_model=Phase2Out)
def phase2_dose(actor: Sponsor, db: DB) -> Any:
    with db.read() as session:
        return stages.phase2_view(session)


@router.post("/phase2-dose", response_model=Phase2Out)
def select_phase2_dose(
    body: Phase2DoseIn, actor: Sponsor, db: DB, study: StudyDep, settings: SettingsDep
) -> Any:
    """Signed: "I approve <dose> mg/kg as the phase II dose"."""
    return admin_commands.select_phase2_dose(
        db=db,
        study=study,
        actor=actor,
        dose_mg_per_kg=body.dose_mg_per_kg,
        reason=body.reason,
        settings=settings,
        signature=body.signature.given(),
    )


Importer = Annotated[Actor, Depends(require(*KIT_IMPORTERS))]
SignaturePassword = Annotated[
    str,
    Header(alias="Signature-Password", max_length=200, description="The signer's own password."),
]
SignatureMeaning = Annotated[
    str | None,
    Header(alias="Signature-Meaning", max_length=500, description="The meaning shown, if any."),
]


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
async def import_kits(
    request: Request,
    actor: Importer,
    db: DB,
    study: StudyDep,
    settings: SettingsDep,
    signature_password: SignaturePassword,
    signature_meaning: SignatureMeaning = None,
) -> Any:
    """The packager's kit list as text/csv, signed in headers (the body is the file): the
    meaning is "I approve the kit list with SHA-256 <hex of the body> for import". The answer
    holds totals only (never contents)."""
    text = kits.decode_upload(await request.body())
    given = SignatureInput(password=signature_password, meaning=signature_meaning)
    return await run_in_threadpool(
        admin_commands.import_kit_list,
        db=db,
        study=study,
        actor=actor,
        text=text,
        settings=settings,
        signature=given,
    )


@router.get("/kits", response_model=list[UnblindedKitOut])
def all_kits(
    actor: Monitor,
    db: DB,
    site_id: Annotated[str | None, Query(max_length=12)] = None,
    status: KitStatus | None = None,
) -> Any:
    return unblinded_reads.all_kits(db=db, actor=actor, site_id=site_id, status=status)


@router.get("/reconciliation", response_model=list[ReconciliationOut])
def reconciliation(actor: Monitor, db: DB, study: StudyDep) -> Any:
    return unblinded_reads.reconciliation(db=db, study=study, actor=actor)


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


@router.put("/sites/{site_id}/timezone", response_model=SiteOut)
def set_site_timezone(site_id: str, body: SiteTimezoneIn, actor: Sponsor, db: DB) -> Any:
    """The site's IANA time zone: its local dates in the SDTM export and the pages."""
    return admin_commands.set_site_timezone(
        db=db, actor=actor, site_id=site_id, timezone=body.timezone
    )


@router.get("/unblindings", response_model=list[UnblindingLogOut])
def unblindings(actor: Monitor, db: DB, study: StudyDep) -> Any:
    return unblinded_reads.unblinding_log(db=db, study=study, actor=actor)


@router.get("/outbox", response_model=list[OutboxMessageOut])
def outbox_messages(actor: Monitor, db: DB) -> Any:
    with db.read() as session:
        return outbox.pending_and_recent(session)
