"""The subject status commands (screen failure, discontinuation, withdrawal, completion, and
the signed undo), called by the API and the pages alike.

Like registration, each runs at most once per Idempotency-Key when one is given; without one,
a second try is refused by the rule itself (the subject is no longer in a state the act starts
from). A refusal is recorded in the audit trail (`subject.<act>_refused`) and changes nothing
else. The undo is signed first, as the emergency unblinding is: a wrong password stops it
before its transaction starts."""

from __future__ import annotations

from datetime import date

from app.db.engine import Database
from app.domain.lifecycle import Act
from app.domain.study import StudyDefinition
from app.services import attempts, signatures, subject_lifecycle
from app.services.actor import Actor
from app.services.commands import Done, Retry, run_once
from app.services.signatures import SignatureInput
from app.services.subject_lifecycle import StatusChangeResultOut
from app.settings import Settings

PATHS: dict[Act, str] = {
    Act.SCREEN_FAIL: "screen-fail",
    Act.DISCONTINUE: "discontinue",
    Act.WITHDRAW: "withdraw",
    Act.COMPLETE: "complete",
}
"""The last segment of each act's route, POST /subjects/{id}/<path>, API and pages alike."""


def record_status_change(
    *,
    db: Database,
    study: StudyDefinition,
    actor: Actor,
    retry: Retry,
    subject_id: int,
    act: Act,
    effective_date: date,
    reason_category: str,
    reason: str,
) -> Done[StatusChangeResultOut]:
    """One act on one subject, at most once per key."""
    payload: dict[str, object] = {
        "effective_date": effective_date,
        "reason_category": reason_category,
        "reason": reason,
    }
    with attempts.refusals_recorded(
        db,
        actor=actor,
        action=f"subject.{act.value}_refused",
        entity="subject",
        entity_id=subject_id,
        sent=payload,
    ):
        return run_once(
            db,
            actor=actor,
            retry=retry,
            endpoint=f"POST /subjects/{subject_id}/{PATHS[act]}",
            payload=payload,
            result=StatusChangeResultOut,
            work=lambda session: subject_lifecycle.record_change(
                session,
                study=study,
                actor=actor,
                subject_id=subject_id,
                act=act,
                effective_date=effective_date,
                reason_category=reason_category,
                reason=reason,
            ),
        )


def undo_status_change(
    *,
    db: Database,
    study: StudyDefinition,
    actor: Actor,
    retry: Retry,
    settings: Settings,
    subject_id: int,
    change_id: int,
    reason: str,
    signature: SignatureInput,
) -> Done[StatusChangeResultOut]:
    """Undo the latest act still standing (`change_id`): signed, audited, at most once per key."""
    payload: dict[str, object] = {"change_id": change_id, "reason": reason}
    with attempts.refusals_recorded(
        db,
        actor=actor,
        action="subject.status_undo_refused",
        entity="subject",
        entity_id=subject_id,
        sent=payload,
    ):
        with db.read() as session:
            meaning = subject_lifecycle.undo_meaning(
                session, actor=actor, subject_id=subject_id, change_id=change_id
            )
        signed = signatures.sign(
            db, settings=settings, actor=actor, given=signature, meaning=meaning
        )
        return run_once(
            db,
            actor=actor,
            retry=retry,
            endpoint=f"POST /subjects/{subject_id}/status-changes/{change_id}/undo",
            payload=payload,
            result=StatusChangeResultOut,
            work=lambda session: subject_lifecycle.undo_change(
                session,
                study=study,
                actor=actor,
                subject_id=subject_id,
                change_id=change_id,
                reason=reason,
                signature=signed,
            ),
        )
