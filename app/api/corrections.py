"""Data corrections of a subject: signed, with a reason, never a new allocation or dose
(app/services/correction_commands.py). Coordinators and investigators of the subject's site."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from app.api.deps import (
    DB,
    OptionalIdempotencyKeyHeader,
    RowId,
    SettingsDep,
    StudyDep,
    require,
)
from app.api.schemas import CorrectionIn
from app.domain.roles import CORRECTORS, SITE_STAFF
from app.services import corrections
from app.services.actor import Actor
from app.services.commands import Retry
from app.services.correction_commands import correct
from app.services.corrections import CorrectionOut

router = APIRouter(prefix="/subjects", tags=["corrections"])

Corrector = Annotated[Actor, Depends(require(*CORRECTORS))]
SiteStaff = Annotated[Actor, Depends(require(*SITE_STAFF))]


@router.post("/{subject_id}/corrections", status_code=201, response_model=CorrectionOut)
def create_correction(
    subject_id: RowId,
    body: CorrectionIn,
    actor: Corrector,
    db: DB,
    study: StudyDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: OptionalIdempotencyKeyHeader = None,
) -> CorrectionOut:
    """Correct one value; a stratification factor's correction keeps the allocation and
    records the actual stratum beside the stratum as randomized."""
    done = correct(
        db=db,
        study=study,
        actor=actor,
        retry=Retry(key=idempotency_key, lease_seconds=settings.idempotency_lease_seconds),
        subject_id=subject_id,
        field=body.field,
        visit=body.visit,
        new_value=body.new_value,
        reason=body.reason,
        settings=settings,
        signature=body.signature.given(),
    )
    if done.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return done.result


@router.get("/{subject_id}/corrections", response_model=list[CorrectionOut])
def list_corrections(subject_id: RowId, actor: SiteStaff, db: DB) -> Any:
    with db.read() as session:
        return corrections.list_for_subject(session, actor=actor, subject_id=subject_id)
