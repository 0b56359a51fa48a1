"""Subject status changes: screen failure, discontinuation, withdrawal, completion, the signed
undo of the latest one, and the history (coordinators and investigators of the subject's site
record them; every site role reads the history). app/domain/lifecycle.py holds the rules."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from app.api.deps import DB, IdempotencyKeyHeader, RowId, SettingsDep, StudyDep, require
from app.api.schemas import CompletionIn, StatusChangeIn, StatusUndoIn
from app.domain.lifecycle import Act
from app.domain.roles import RANDOMIZERS, SITE_STAFF
from app.services import lifecycle_commands, subject_lifecycle
from app.services.actor import Actor
from app.services.commands import Done, Retry
from app.services.subject_lifecycle import StatusChangeResultOut, StatusHistoryOut
from app.settings import Settings

router = APIRouter(prefix="/subjects", tags=["subjects"])

SiteStaff = Annotated[Actor, Depends(require(*SITE_STAFF))]
Recorder = Annotated[Actor, Depends(require(*RANDOMIZERS))]


def _retry(key: str | None, settings: Settings) -> Retry:
    return Retry(key=key, lease_seconds=settings.idempotency_lease_seconds)


def _respond(response: Response, done: Done[StatusChangeResultOut]) -> StatusChangeResultOut:
    response.status_code = 201
    if done.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return done.result


def _act(
    act: Act,
    *,
    subject_id: int,
    body: StatusChangeIn,
    actor: Actor,
    db: DB,
    study: StudyDep,
    settings: Settings,
    response: Response,
    key: str | None,
) -> StatusChangeResultOut:
    done = lifecycle_commands.record_status_change(
        db=db,
        study=study,
        actor=actor,
        retry=_retry(key, settings),
        subject_id=subject_id,
        act=act,
        effective_date=body.effective_date,
        reason_category=body.reason_category,
        reason=body.reason,
    )
    return _respond(response, done)


@router.get("/{subject_id}/status-history", response_model=StatusHistoryOut)
def status_history(subject_id: RowId, actor: SiteStaff, db: DB) -> StatusHistoryOut:
    """The subject's status changes and their corrections, oldest first."""
    with db.read() as session:
        return subject_lifecycle.history(session, actor=actor, subject_id=subject_id)


@router.post("/{subject_id}/screen-fail", status_code=201, response_model=StatusChangeResultOut)
def screen_fail(
    subject_id: RowId,
    body: StatusChangeIn,
    actor: Recorder,
    db: DB,
    study: StudyDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> StatusChangeResultOut:
    """A registered subject failed screening: it can no longer be randomized."""
    return _act(
        Act.SCREEN_FAIL,
        subject_id=subject_id,
        body=body,
        actor=actor,
        db=db,
        study=study,
        settings=settings,
        response=response,
        key=idempotency_key,
    )


@router.post("/{subject_id}/discontinue", status_code=201, response_model=StatusChangeResultOut)
def discontinue(
    subject_id: RowId,
    body: StatusChangeIn,
    actor: Recorder,
    db: DB,
    study: StudyDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> StatusChangeResultOut:
    """A randomized subject stops treatment and stays in follow-up: no more kits."""
    return _act(
        Act.DISCONTINUE,
        subject_id=subject_id,
        body=body,
        actor=actor,
        db=db,
        study=study,
        settings=settings,
        response=response,
        key=idempotency_key,
    )


@router.post("/{subject_id}/withdraw", status_code=201, response_model=StatusChangeResultOut)
def withdraw(
    subject_id: RowId,
    body: StatusChangeIn,
    actor: Recorder,
    db: DB,
    study: StudyDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> StatusChangeResultOut:
    """The subject leaves the study (from registered, randomized or discontinued)."""
    return _act(
        Act.WITHDRAW,
        subject_id=subject_id,
        body=body,
        actor=actor,
        db=db,
        study=study,
        settings=settings,
        response=response,
        key=idempotency_key,
    )


@router.post("/{subject_id}/complete", status_code=201, response_model=StatusChangeResultOut)
def complete(
    subject_id: RowId,
    body: CompletionIn,
    actor: Recorder,
    db: DB,
    study: StudyDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> StatusChangeResultOut:
    """The subject completed the study, once the schedule's last dosing visit is dispensed."""
    return _act(
        Act.COMPLETE,
        subject_id=subject_id,
        body=body,
        actor=actor,
        db=db,
        study=study,
        settings=settings,
        response=response,
        key=idempotency_key,
    )


@router.post(
    "/{subject_id}/status-changes/{change_id}/undo",
    status_code=201,
    response_model=StatusChangeResultOut,
)
def undo(
    subject_id: RowId,
    change_id: RowId,
    body: StatusUndoIn,
    actor: Recorder,
    db: DB,
    study: StudyDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> StatusChangeResultOut:
    """Undo the latest status change still standing: a signed correction; the history keeps
    the change and its correction."""
    done = lifecycle_commands.undo_status_change(
        db=db,
        study=study,
        actor=actor,
        retry=_retry(idempotency_key, settings),
        settings=settings,
        subject_id=subject_id,
        change_id=change_id,
        reason=body.reason,
        signature=body.signature.given(),
    )
    return _respond(response, done)
