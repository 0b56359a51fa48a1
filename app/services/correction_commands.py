"""The data correction command, called by the API, the pages and the CLI alike: plan, sign,
apply once per Idempotency-Key, each refusal in the audit trail.

The signer's meaning names the field, the subject and the new value (not the old one), so that a
retry of the same correction signs the same text and, with the same key, gets the first answer
back; without a key a second identical correction is refused as `no_change`."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from app.db.engine import Database
from app.domain.reasons import check_reason
from app.domain.study import StudyDefinition
from app.services import attempts, corrections, signatures
from app.services.actor import Actor
from app.services.commands import Done, Retry, run_once
from app.services.corrections import CorrectionOut
from app.services.signatures import SignatureInput
from app.services.transaction import utcnow
from app.settings import Settings


def correct(
    *,
    db: Database,
    study: StudyDefinition,
    actor: Actor,
    retry: Retry,
    subject_id: int,
    field: str,
    visit: str | None,
    new_value: str,
    reason: str,
    settings: Settings,
    signature: SignatureInput,
) -> Done[CorrectionOut]:
    """Correct one value of a subject's data with a reason and the user's signature."""
    sent = {"field": field, "visit": visit, "new_value": new_value, "reason": reason}
    with _refusals_recorded(db, actor, subject_id, sent), db.read() as session:
        reason = check_reason(reason)
        planned = corrections.plan(
            session,
            study=study,
            actor=actor,
            subject_id=subject_id,
            field=field,
            visit=visit,
            new_value=new_value,
            today=utcnow().date(),
        )
    signed = signatures.sign(
        db, settings=settings, actor=actor, given=signature, meaning=planned.meaning
    )
    with _refusals_recorded(db, actor, subject_id, sent):
        return run_once(
            db,
            actor=actor,
            retry=retry,
            endpoint=f"POST /subjects/{subject_id}/corrections",
            payload=sent,
            result=CorrectionOut,
            work=lambda session: corrections.apply(
                session,
                study=study,
                actor=actor,
                planned=planned,
                reason=reason,
                signature=signed,
            ),
        )


def _refusals_recorded(
    db: Database, actor: Actor, subject_id: int, sent: dict[str, Any]
) -> AbstractContextManager[None]:
    return attempts.refusals_recorded(
        db,
        actor=actor,
        action="subject.correct_refused",
        entity="subject",
        entity_id=subject_id,
        sent=sent,
    )
