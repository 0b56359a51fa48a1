"""Subjects: register, list, view, randomize, dispense, replace kits (site roles, own sites)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from app.api.deps import DB, IdempotencyKeyHeader, RowId, SettingsDep, StudyDep, require
from app.api.schemas import (
    DispenseIn,
    DispenseOut,
    RandomizeIn,
    RandomizeOut,
    ReplaceIn,
    ReplaceResultOut,
    SubjectCreate,
    SubjectOut,
    UnblindIn,
    UnblindResultOut,
)
from app.db.engine import Database
from app.domain.errors import MalformedRequest
from app.domain.kits import KitStatus
from app.domain.roles import Role
from app.domain.study import StudyDefinition
from app.services import emergency_unblinding, idempotency, subjects
from app.services.actor import Actor
from app.services.dispensing import dispense as allocate_visit_kits
from app.services.dispensing import replace_kit, urgent_resupply_on_shortage
from app.services.randomization import randomize as randomize_subject
from app.services.transaction import utcnow, writing
from app.settings import Settings

router = APIRouter(prefix="/subjects", tags=["subjects"])

SiteStaff = Annotated[
    Actor, Depends(require(Role.SITE_COORDINATOR, Role.INVESTIGATOR, Role.PHARMACIST))
]
Randomizer = Annotated[Actor, Depends(require(Role.SITE_COORDINATOR, Role.INVESTIGATOR))]
Pharmacist = Annotated[Actor, Depends(require(Role.PHARMACIST))]


def _respond(response: Response, result: tuple[int, dict[str, Any], bool]) -> Any:
    status, body, replayed = result
    response.status_code = status
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return body


def _allocate(
    response: Response,
    *,
    db: Database,
    study: StudyDefinition,
    settings: Settings,
    actor: Actor,
    key: str | None,
    what: str,
    endpoint: str,
    body: BaseModel,
    work: Callable[[Session], dict[str, Any]],
) -> Any:
    """An allocating POST: Idempotency-Key required, at most once per key, and an urgent
    resupply when the site has no kits for it."""
    if key is None:
        raise MalformedRequest(
            "idempotency_key_required",
            f"{what} needs an Idempotency-Key header (any unique text, reused on retry).",
        )
    with urgent_resupply_on_shortage(db, study):
        return _respond(
            response,
            idempotency.run(
                db,
                actor=actor,
                key=key,
                endpoint=endpoint,
                payload=body.model_dump(mode="json"),
                lease_seconds=settings.idempotency_lease_seconds,
                work=lambda session: (201, work(session)),
            ),
        )


@router.post("", status_code=201, response_model=SubjectOut)
def register(
    body: SubjectCreate,
    actor: SiteStaff,
    db: DB,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    return _respond(
        response,
        idempotency.run(
            db,
            actor=actor,
            key=idempotency_key,
            endpoint="POST /subjects",
            payload=body.model_dump(mode="json"),
            lease_seconds=settings.idempotency_lease_seconds,
            work=lambda session: (
                201,
                subjects.register(session, actor=actor, **body.model_dump()),
            ),
        ),
    )


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
) -> Any:
    return _allocate(
        response,
        db=db,
        study=study,
        settings=settings,
        actor=actor,
        key=idempotency_key,
        what="Randomization",
        endpoint=f"POST /subjects/{subject_id}/randomize",
        body=body,
        work=lambda session: randomize_subject(
            session,
            study=study,
            actor=actor,
            subject_id=subject_id,
            visit_date=body.visit_date,
            weight_kg=body.weight_kg,
            answers=body.eligibility.to_domain(),
        ),
    )


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
) -> Any:
    return _allocate(
        response,
        db=db,
        study=study,
        settings=settings,
        actor=actor,
        key=idempotency_key,
        what="Dispensing",
        endpoint=f"POST /subjects/{subject_id}/dispense",
        body=body,
        work=lambda session: allocate_visit_kits(
            session,
            study=study,
            actor=actor,
            subject_id=subject_id,
            visit_code=body.visit,
            visit_date=body.visit_date,
            weight_kg=body.weight_kg,
        ),
    )


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
) -> Any:
    return _allocate(
        response,
        db=db,
        study=study,
        settings=settings,
        actor=actor,
        key=idempotency_key,
        what="Kit replacement",
        endpoint=f"POST /subjects/{subject_id}/kits/{kit_number}/replace",
        body=body,
        work=lambda session: replace_kit(
            session,
            study=study,
            actor=actor,
            subject_id=subject_id,
            kit_number=kit_number,
            status=KitStatus(body.status),
            reason=body.reason,
            today=utcnow().date(),
        ),
    )


Investigator = Annotated[Actor, Depends(require(Role.INVESTIGATOR))]


@router.post("/{subject_id}/unblind", response_model=UnblindResultOut)
def unblind(
    subject_id: RowId, body: UnblindIn, actor: Investigator, db: DB, study: StudyDep
) -> Any:
    """Emergency unblinding: the treatment of this one subject, with a reason; audited, and the
    sponsor and the site are notified (without the treatment)."""
    with writing(db) as session:
        return emergency_unblinding.unblind(
            session,
            study=study,
            actor=actor,
            subject_id=subject_id,
            reason_category=body.reason_category,
            reason=body.reason,
        )
