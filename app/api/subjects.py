"""Subjects: register, list, view, randomize (site roles, own sites only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from app.api.deps import DB, IdempotencyKeyHeader, SettingsDep, StudyDep, require
from app.api.schemas import RandomizationOut, RandomizeIn, SubjectCreate, SubjectOut
from app.domain.roles import Role
from app.services import idempotency, subjects
from app.services.actor import Actor
from app.services.errors import ServiceError
from app.services.randomization import randomize as randomize_subject
from app.services.views import subject_view

router = APIRouter(prefix="/subjects", tags=["subjects"])

SiteStaff = Annotated[
    Actor, Depends(require(Role.SITE_COORDINATOR, Role.INVESTIGATOR, Role.PHARMACIST))
]
Randomizer = Annotated[Actor, Depends(require(Role.SITE_COORDINATOR, Role.INVESTIGATOR))]


def _respond(response: Response, status: int, body: dict[str, Any], replayed: bool) -> Any:
    response.status_code = status
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return body


@router.post("", status_code=201, response_model=SubjectOut)
def register(
    body: SubjectCreate,
    actor: SiteStaff,
    db: DB,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    status, out, replayed = idempotency.run(
        db,
        actor,
        idempotency_key,
        "POST /subjects",
        body.model_dump(mode="json"),
        settings.idempotency_lease_seconds,
        lambda session: (201, subjects.register(session, actor, **body.model_dump())),
    )
    return _respond(response, status, out, replayed)


@router.get("", response_model=list[SubjectOut])
def list_subjects(actor: SiteStaff, db: DB, site_id: str | None = None) -> Any:
    with db.read() as session:
        return subjects.list_visible(session, actor, site_id)


@router.get("/{subject_id}", response_model=SubjectOut)
def get_subject(subject_id: int, actor: SiteStaff, db: DB) -> Any:
    with db.read() as session:
        subject = subjects.get_visible_subject(session, actor, subject_id)
        return subject_view(subject, subjects.randomization_of(session, subject))


@router.post("/{subject_id}/randomize", status_code=201, response_model=RandomizationOut)
def randomize(
    subject_id: int,
    body: RandomizeIn,
    actor: Randomizer,
    db: DB,
    study: StudyDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    if idempotency_key is None:
        raise ServiceError(
            400,
            "idempotency_key_required",
            "Randomization needs an Idempotency-Key header (any unique text, reused on retry).",
        )
    status, out, replayed = idempotency.run(
        db,
        actor,
        idempotency_key,
        f"POST /subjects/{subject_id}/randomize",
        body.model_dump(mode="json"),
        settings.idempotency_lease_seconds,
        lambda session: (
            201,
            randomize_subject(
                session,
                study,
                actor,
                subject_id,
                body.visit_date,
                body.weight_kg,
                body.eligibility.to_domain(),
            ),
        ),
    )
    return _respond(response, status, out, replayed)
