"""Subjects: register, list, view, randomize, dispense, replace kits (site roles, own sites)."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel

from app.api.deps import (
    DB,
    IdempotencyKeyHeader,
    OptionalIdempotencyKeyHeader,
    RowId,
    SettingsDep,
    StudyDep,
    require,
)
from app.api.schemas import (
    DispenseIn,
    RandomizeIn,
    ReplaceIn,
    SubjectCreate,
    UnblindIn,
)
from app.domain.kits import KitStatus
from app.domain.roles import INVESTIGATORS, PHARMACISTS, RANDOMIZERS, SITE_STAFF
from app.services import commands, subjects
from app.services.actor import Actor
from app.services.results import (
    DispenseOut,
    RandomizeOut,
    ReplaceResultOut,
    SubjectOut,
    UnblindResultOut,
)
from app.settings import Settings

Result = TypeVar("Result", bound=BaseModel)

router = APIRouter(prefix="/subjects", tags=["subjects"])

SiteStaff = Annotated[Actor, Depends(require(*SITE_STAFF))]
Randomizer = Annotated[Actor, Depends(require(*RANDOMIZERS))]
Pharmacist = Annotated[Actor, Depends(require(*PHARMACISTS))]


def _respond(response: Response, done: commands.Done[Result]) -> Result:
    response.status_code = 201
    if done.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return done.result


def _retry(key: str | None, settings: Settings) -> commands.Retry:
    return commands.Retry(key=key, lease_seconds=settings.idempotency_lease_seconds)


@router.post("", status_code=201, response_model=SubjectOut)
def register(
    body: SubjectCreate,
    actor: SiteStaff,
    db: DB,
    settings: SettingsDep,
    response: Response,
    idempotency_key: OptionalIdempotencyKeyHeader = None,
) -> SubjectOut:
    done = commands.register_subject(
        db=db,
        actor=actor,
        retry=_retry(idempotency_key, settings),
        site_id=body.site_id,
        screening_number=body.screening_number,
        sex=body.sex,
        year_of_birth=body.year_of_birth,
    )
    return _respond(response, done)


@router.get("", response_model=list[SubjectOut])
def list_subjects(actor: SiteStaff, db: DB, site_id: str | None = None) -> Any:
    with db.read() as session:
        return subjects.list_visible(session, actor=actor, site_id=site_id)


@router.get("/{subject_id}", response_model=SubjectOut)
def get_subject(subject_id: RowId, actor: SiteStaff, db: DB) -> Any:
    with db.read() as session:
        return subjects.subject_detail(session, actor=actor, subject_id=subject_id)


@router.post("/{subject_id}/randomize", status_code=201, response_model=RandomizeOut)
def randomize(
    subject_id: RowId,
    body: RandomizeIn,
    actor: Randomizer,
    db: DB,
    study: StudyDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> RandomizeOut:
    done = commands.randomize(
        db=db,
        study=study,
        actor=actor,
        retry=_retry(idempotency_key, settings),
        subject_id=subject_id,
        visit_date=body.visit_date,
        weight_kg=body.weight_kg,
        answers=body.eligibility.to_domain(),
    )
    return _respond(response, done)


@router.post("/{subject_id}/dispense", status_code=201, response_model=DispenseOut)
def dispense(
    subject_id: RowId,
    body: DispenseIn,
    actor: SiteStaff,
    db: DB,
    study: StudyDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> DispenseOut:
    done = commands.dispense(
        db=db,
        study=study,
        actor=actor,
        retry=_retry(idempotency_key, settings),
        subject_id=subject_id,
        visit_code=body.visit,
        visit_date=body.visit_date,
        weight_kg=body.weight_kg,
        window_override_reason=body.window_override_reason,
    )
    return _respond(response, done)


@router.post(
    "/{subject_id}/kits/{kit_number}/replace", status_code=201, response_model=ReplaceResultOut
)
def replace(
    subject_id: RowId,
    kit_number: str,
    body: ReplaceIn,
    actor: Pharmacist,
    db: DB,
    study: StudyDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> ReplaceResultOut:
    done = commands.replace_kit(
        db=db,
        study=study,
        actor=actor,
        retry=_retry(idempotency_key, settings),
        subject_id=subject_id,
        kit_number=kit_number,
        status=KitStatus(body.status),
        reason=body.reason,
    )
    return _respond(response, done)


Investigator = Annotated[Actor, Depends(require(*INVESTIGATORS))]


@router.post("/{subject_id}/unblind", response_model=UnblindResultOut)
def unblind(
    subject_id: RowId,
    body: UnblindIn,
    actor: Investigator,
    db: DB,
    study: StudyDep,
    settings: SettingsDep,
) -> UnblindResultOut:
    """Emergency unblinding: the treatment of this one subject, with a reason; audited, and the
    sponsor and the site are notified (without the treatment)."""
    return commands.unblind(
        db=db,
        study=study,
        actor=actor,
        subject_id=subject_id,
        reason_category=body.reason_category,
        reason=body.reason,
        settings=settings,
        signature=body.signature.given(),
    )
