"""Subject status changes: screen failure, discontinuation, withdrawal, completion, the signed
undo of the latest one, and the history (coordinators and investigators of the subject's site
record them; every site role reads the history). app/domain/lifecycle.py holds the rules."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from app.api.deps import (
    DB,
    OptionalIdempotencyKeyHeader,
    RowId,
    SettingsDep,
    StudyDep,
    require,
)
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


@router.get("/{subject_id}/status-history", response_model=StatusHistoryOut)
def status_history(subject_id: RowId, actor: SiteStaff, db: DB) -> StatusHistoryOut:
    """The subject's status changes and their corrections, oldest first."""
    with db.read() as session:
        return subject_lifecycle.history(session, actor=actor, subject_id=subject_id)


def _status_route(act: Act, path: str, body_model: type[StatusChangeIn], doc: str) -> None:
    """One route per act: the same command, the act fixed by the path."""

    def record(
        subject_id: RowId,
        body: StatusChangeIn,
        actor: Recorder,
        db: DB,
        study: StudyDep,
        settings: SettingsDep,
        response: Response,
        idempotency_key: OptionalIdempotencyKeyHeader = None,
    ) -> StatusChangeResultOut:
        done = lifecycle_commands.record_status_change(
            db=db,
            study=study,
            actor=actor,
            retry=_retry(idempotency_key, settings),
            subject_id=subject_id,
            act=act,
            effective_date=body.effective_date,
            reason_category=body.reason_category,
            reason=body.reason,
        )
        return _respond(response, done)

    record.__doc__ = doc
    record.__annotations__["body"] = body_model  # completion defaults its reason category
    router.add_api_route(
        f"/{{subject_id}}/{path}",
        record,
        methods=["POST"],
        status_code=201,
        response_model=StatusChangeResultOut,
        name=act.value,
    )


_status_route(
    Act.SCREEN_FAIL,
    "screen-fail",
    StatusChangeIn,
    "A registered subject failed screening: it can no longer be randomized.",
)
_status_route(
    Act.DISCONTINUE,
    "discontinue",
    StatusChangeIn,
    "A randomized subject stops treatment and stays in follow-up: no more kits.",
)
_status_route(
    Act.WITHDRAW,
    "withdraw",
    StatusChangeIn,
    "The subject leaves the study (from registered, randomized or discontinued).",
)
_status_route(
    Act.COMPLETE,
    "complete",
    CompletionIn,
    "The subject completed the study, once the schedule's last dosing visit is dispensed.",
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
    idempotency_key: OptionalIdempotencyKeyHeader = None,
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
