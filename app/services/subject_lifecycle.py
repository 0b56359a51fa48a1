"""Subject status changes (screen failure, discontinuation, withdrawal, completion) and their
signed corrections, in the caller's transaction; the rules are app/domain/lifecycle.py.

Each change locks the subject's row (the dispensing takes the same lock first, so a kit is
never handed out to a subject whose discontinuation commits at the same moment), writes one
history row, moves `Subject.status`, and is audited and confirmed with the act. A correction
never edits the row it undoes: it is a new row naming it, with the signer's signature."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Dispensing, Subject, SubjectStatusChange
from app.domain import lifecycle
from app.domain.errors import Conflict, not_found
from app.domain.lifecycle import Act, Change, Facts
from app.domain.reasons import check_reason
from app.domain.signatures import Signature, status_correction_meaning, with_signature
from app.domain.study import StudyDefinition
from app.services import audit, confirmations
from app.services.actor import Actor
from app.services.blinded_views import iso_utc
from app.services.results import SignatureOut
from app.services.subjects import get_visible_subject
from app.services.transaction import utcnow


class StatusChangeOut(BaseModel):
    """One row of a subject's status history, as site staff see it (nothing depends on the
    arm). `act` is None for a correction, which names the change it undoes in `corrects`."""

    change_id: int
    subject_id: int
    act: str | None
    from_status: str
    status: str
    effective_date: str | None
    reason_category: str | None
    reason: str
    corrects: int | None
    undone_by: int | None = None
    recorded_at: str
    recorded_by: str
    signature: SignatureOut | None = None


class StatusChangeResultOut(StatusChangeOut):
    """The answer to an act or a correction: the change and the id of its confirmation."""

    confirmation_id: int


class StatusHistoryOut(BaseModel):
    subject_id: int
    status: str
    status_label: str
    allowed_acts: list[str]
    """What may be recorded next (none for a blinded role that may not record changes)."""
    undoable_change_id: int | None
    """The change a correction would undo now (the latest act still standing)."""
    changes: list[StatusChangeOut]


def facts(session: Session, *, study: StudyDefinition, subject: Subject) -> Facts:
    """Registration and the last dosing visit of the subject, for the rules."""
    last = session.execute(
        select(Dispensing.visit_index, Dispensing.visit_date)
        .where(Dispensing.subject_id == subject.id)
        .order_by(Dispensing.visit_index.desc())
        .limit(1)
    ).first()
    final_index = len(study.schedule.visits()) - 1
    return Facts(
        registered_at=subject.created_at,
        last_dose_on=None if last is None else last[1],
        last_dosing_visit_done=last is not None and last[0] >= final_index,
    )


def record_change(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    subject_id: int,
    act: Act,
    effective_date: date,
    reason_category: str,
    reason: str,
) -> dict[str, Any]:
    """Record one act; refused (nothing written) when the move, the date or the reason is not
    allowed."""
    reason = check_reason(reason)
    lifecycle.check_reason_category(act, reason_category)
    subject = get_visible_subject(session, actor=actor, subject_id=subject_id, lock=True)
    target = lifecycle.check_move(subject.status, act)
    lifecycle.check_effective_date(
        act, effective_date, facts=facts(session, study=study, subject=subject), now=utcnow()
    )
    row = SubjectStatusChange(
        subject_id=subject.id,
        act=act.value,
        from_status=subject.status,
        to_status=target.value,
        effective_date=effective_date,
        reason_category=reason_category,
        reason=reason,
        recorded_at=utcnow(),
        recorded_by=actor.username,
        recorded_by_role=actor.audit_role,
    )
    return _apply(session, study=study, actor=actor, subject=subject, row=row, signature=None)


def undo_change(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    subject_id: int,
    change_id: int,
    reason: str,
    signature: Signature,
) -> dict[str, Any]:
    """Undo the latest act still standing (`change_id`, as the user saw it): a signed
    correction that brings the subject back to the state before it."""
    reason = check_reason(reason)
    subject = get_visible_subject(session, actor=actor, subject_id=subject_id, lock=True)
    correction = lifecycle.correction_of(
        _history(session, subject.id), status=subject.status, change_id=change_id
    )
    row = SubjectStatusChange(
        subject_id=subject.id,
        act=None,
        from_status=correction.from_status,
        to_status=correction.to_status,
        reason=reason,
        corrects_id=correction.corrects,
        signature_json=json.dumps(signature.as_record(), sort_keys=True),
        recorded_at=utcnow(),
        recorded_by=actor.username,
        recorded_by_role=actor.audit_role,
    )
    return _apply(session, study=study, actor=actor, subject=subject, row=row, signature=signature)


def undo_meaning(session: Session, *, actor: Actor, subject_id: int, change_id: int) -> str:
    """What the signer of the undo of `change_id` declares: the same text for every try of it
    (a retry after success is answered by its replay, not refused by the meaning)."""
    subject = get_visible_subject(session, actor=actor, subject_id=subject_id)
    row = session.get(SubjectStatusChange, change_id)
    if row is None or row.subject_id != subject.id:
        raise not_found(f"Status change {change_id} of subject {subject_id}")
    if row.act is None:
        raise Conflict(
            "not_an_act",
            f"Change {change_id} is itself a correction; record the act again instead.",
        )
    return status_correction_meaning(
        undone=lifecycle.ACT_LABELS[row.act].lower(),
        screening_number=subject.screening_number,
        site_id=subject.site_id,
    )


def history(session: Session, *, actor: Actor, subject_id: int) -> StatusHistoryOut:
    """The subject's status history, oldest first, and what may be done next."""
    subject = get_visible_subject(session, actor=actor, subject_id=subject_id)
    rows = list(
        session.execute(
            select(SubjectStatusChange)
            .where(SubjectStatusChange.subject_id == subject.id)
            .order_by(SubjectStatusChange.id)
        ).scalars()
    )
    undone = {r.corrects_id: r.id for r in rows if r.corrects_id is not None}
    latest = lifecycle.undoable(_changes(rows))
    return StatusHistoryOut(
        subject_id=subject.id,
        status=subject.status,
        status_label=lifecycle.label(subject.status),
        allowed_acts=[a.value for a in lifecycle.allowed_acts(subject.status)],
        undoable_change_id=None if latest is None else latest.change_id,
        changes=[
            StatusChangeOut.model_validate({**_view(r), "undone_by": undone.get(r.id)})
            for r in rows
        ],
    )


def _history(session: Session, subject_id: int) -> list[Change]:
    rows = session.execute(
        select(SubjectStatusChange)
        .where(SubjectStatusChange.subject_id == subject_id)
        .order_by(SubjectStatusChange.id)
    ).scalars()
    return _changes(rows)


def _changes(rows: Any) -> list[Change]:
    return [Change(r.id, r.from_status, r.to_status, r.corrects_id) for r in rows]


def _view(row: SubjectStatusChange) -> dict[str, Any]:
    return {
        "change_id": row.id,
        "subject_id": row.subject_id,
        "act": row.act,
        "from_status": row.from_status,
        "status": row.to_status,
        "effective_date": None if row.effective_date is None else row.effective_date.isoformat(),
        "reason_category": row.reason_category,
        "reason": row.reason,
        "corrects": row.corrects_id,
        "recorded_at": iso_utc(row.recorded_at),
        "recorded_by": row.recorded_by,
        "signature": None if row.signature_json is None else json.loads(row.signature_json),
    }


def _apply(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    subject: Subject,
    row: SubjectStatusChange,
    signature: Signature | None,
) -> dict[str, Any]:
    session.add(row)
    subject.status = row.to_status
    session.flush()
    view = _view(row)
    correction = row.corrects_id is not None
    audit.record(
        session,
        actor=actor,
        action="subject.status_correction" if correction else "subject.status_change",
        entity="subject",
        entity_id=subject.id,
        before={"status": row.from_status},
        after=with_signature(
            {
                "status": row.to_status,
                "change_id": row.id,
                "act": row.act,
                "corrects": row.corrects_id,
                "effective_date": view["effective_date"],
                "reason_category": row.reason_category,
            },
            signature,
        ),
        reason=row.reason,
    )
    kind: confirmations.Kind = "status_correction" if correction else "status_change"
    return confirmations.record(
        session, study=study, actor=actor, kind=kind, subject_id=subject.id, result=view
    )
