"""Emergency unblinding of one subject by an investigator of its site."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Randomization, Slot, Subject, Unblinding
from app.domain.errors import Conflict
from app.domain.reasons import check_reason
from app.domain.signatures import Signature
from app.domain.study import StudyDefinition
from app.services import audit, confirmations, outbox
from app.services.actor import Actor
from app.services.blinded_views import iso_utc
from app.services.locks import lock_site
from app.services.subjects import get_visible_subject
from app.services.transaction import utcnow

REASON_CATEGORIES = ("adverse_event", "overdose", "pregnancy", "other")


def unblind(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    subject_id: int,
    reason_category: str,
    reason: str,
    signature: Signature | None = None,
) -> dict[str, Any]:
    """Reveal one subject's treatment to the investigator; flag, outbox and audit together. The
    investigator's signature goes into the audit entry and onto the confirmation."""
    reason = check_reason(reason)
    subject = get_visible_subject(session, actor=actor, subject_id=subject_id)
    lock_site(session, subject.site_id)
    subject = session.execute(
        select(Subject).where(Subject.id == subject_id).with_for_update()
    ).scalar_one()
    row = session.execute(
        select(Randomization, Slot.arm)
        .join(Slot, Slot.id == Randomization.slot_id)
        .where(Randomization.subject_id == subject.id)
    ).first()
    if row is None:
        raise Conflict(
            "not_randomized",
            "This subject is not randomized: there is no treatment to reveal.",
        )
    if subject.unblinded_at is not None:
        raise Conflict(
            "already_unblinded",
            f"This subject was already unblinded at {iso_utc(subject.unblinded_at)}.",
        )
    randomization, arm = row
    now = utcnow()
    subject.unblinded_at = now
    session.add(
        Unblinding(
            subject_id=subject.id,
            unblinded_at=now,
            unblinded_by=actor.username,
            reason_category=reason_category,
            reason=reason,
        )
    )
    recipients = [outbox.SPONSOR, *outbox.site_users(session, subject.site_id)]
    notice = {
        "subject_id": subject.id,
        "screening_number": subject.screening_number,
        "site_id": subject.site_id,
        "unblinded_at": iso_utc(now),
        "unblinded_by": actor.username,
        "reason_category": reason_category,
    }
    outbox.enqueue(
        session,
        kind="emergency_unblinding",
        recipients=recipients,
        subject_line=f"Emergency unblinding at site {subject.site_id}",
        body=notice,
    )
    audit.record(
        session,
        actor=actor,
        action="subject.unblind",
        entity="subject",
        entity_id=subject.id,
        before={"unblinded": False},
        after={
            "unblinded": True,
            "reason_category": reason_category,
            **({} if signature is None else {"signature": signature.as_record()}),
        },
        reason=reason,
    )
    session.flush()
    result = {
        "subject_id": subject.id,
        "treatment": study.treatment_label(arm, randomization.dose_level_mg_per_kg),
        "unblinded_at": iso_utc(now),
    }
    event = {
        **result,
        "reason_category": reason_category,
        "signature": None if signature is None else signature.as_record(),
    }
    return confirmations.record(
        session, study=study, actor=actor, kind="unblinding", subject_id=subject.id, result=event
    )


def unblinding_log(session: Session, study: StudyDefinition) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Unblinding, Subject, Randomization, Slot.arm)
        .join(Subject, Subject.id == Unblinding.subject_id)
        .join(Randomization, Randomization.subject_id == Subject.id)
        .join(Slot, Slot.id == Randomization.slot_id)
        .order_by(Unblinding.id)
    ).all()
    return [
        {
            "subject_id": s.id,
            "site_id": s.site_id,
            "screening_number": s.screening_number,
            "randomization_number": r.randomization_number,
            "unblinded_at": iso_utc(u.unblinded_at),
            "unblinded_by": u.unblinded_by,
            "reason_category": u.reason_category,
            "reason": u.reason,
            "treatment": study.treatment_label(arm, r.dose_level_mg_per_kg),
        }
        for u, s, r, arm in rows
    ]
