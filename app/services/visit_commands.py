"""The visit commands of the site staff: record a missed visit, mark a dispensing entered in
error. Each owns its transaction and records its refusal in the audit trail, as the commands of
app/services/commands.py do. Not keyed: a second try is refused by the rule itself (the visit is
already missed, the dispensing no longer stands), so a retry never acts twice."""

from __future__ import annotations

from app.db.engine import Database
from app.domain.study import StudyDefinition
from app.services import attempts, visits
from app.services.actor import Actor
from app.services.transaction import utcnow, writing
from app.services.visits import EnteredInErrorOut, MissedVisitOut


def record_missed_visit(
    *,
    db: Database,
    study: StudyDefinition,
    actor: Actor,
    subject_id: int,
    visit_code: str,
    reason: str,
) -> MissedVisitOut:
    with (
        attempts.refusals_recorded(
            db,
            actor=actor,
            action="subject.visit_missed_refused",
            entity="subject",
            entity_id=subject_id,
            sent={"visit": visit_code, "reason": reason},
        ),
        writing(db) as session,
    ):
        return visits.record_missed_visit(
            session,
            study=study,
            actor=actor,
            subject_id=subject_id,
            visit_code=visit_code,
            reason=reason,
            today=utcnow().date(),
        )


def mark_entered_in_error(
    *,
    db: Database,
    study: StudyDefinition,
    actor: Actor,
    subject_id: int,
    visit_code: str,
    reason: str,
) -> EnteredInErrorOut:
    with (
        attempts.refusals_recorded(
            db,
            actor=actor,
            action="subject.dispensing_entered_in_error_refused",
            entity="subject",
            entity_id=subject_id,
            sent={"visit": visit_code, "reason": reason},
        ),
        writing(db) as session,
    ):
        return visits.mark_entered_in_error(
            session,
            study=study,
            actor=actor,
            subject_id=subject_id,
            visit_code=visit_code,
            reason=reason,
        )
