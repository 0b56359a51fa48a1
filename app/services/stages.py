"""Sponsor decisions on stages: open and close phase Ib cohorts, record the phase II dose."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Cohort, Study
from app.domain import stages as rules
from app.domain.errors import Conflict, NotFound
from app.domain.reasons import check_reason
from app.domain.signatures import Signature, with_signature
from app.domain.study import StudyDefinition
from app.services import audit
from app.services.actor import Actor
from app.services.blinded_views import iso_utc
from app.services.study_state import (
    cohort_statuses,
    count_randomized,
    current_study,
    lock_study_exclusive,
)
from app.services.transaction import utcnow


def cohort_view(session: Session, cohort: Cohort) -> dict[str, Any]:
    return {
        "code": cohort.code,
        "dose_mg_per_kg": float(cohort.dose_mg_per_kg),
        "cap": cohort.cap,
        "status": cohort.status,
        "randomized": count_randomized(session, scope=cohort.code),
        "opened_at": iso_utc(cohort.opened_at) if cohort.opened_at else None,
        "closed_at": iso_utc(cohort.closed_at) if cohort.closed_at else None,
    }


def list_cohorts(session: Session) -> list[dict[str, Any]]:
    cohorts = session.execute(select(Cohort).order_by(Cohort.position)).scalars()
    return [cohort_view(session, c) for c in cohorts]


def change_cohort(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    code: str,
    action: str,
    reason: str,
    signature: Signature | None = None,
) -> dict[str, Any]:
    """`action` is "open" or "close"; audited with the reason (and the sponsor's signature;
    None only for the service's own jobs, such as the demo's set-up)."""
    reason = check_reason(reason)
    study_row = lock_study_exclusive(session)
    statuses = cohort_statuses(session)
    try:
        if action == "open":
            rules.check_open(
                study, code=code, statuses=statuses, phase2_dose=study_row.phase2_dose_mg_per_kg
            )
        else:
            rules.check_close(code, statuses)
    except rules.StageRuleError as exc:
        kind = NotFound if exc.code == "not_found" else Conflict
        raise kind(exc.code, str(exc)) from None
    cohort = session.get(Cohort, code)
    assert cohort is not None
    before = cohort_view(session, cohort)
    if action == "open":
        cohort.status, cohort.opened_at = rules.CohortStatus.OPEN, utcnow()
    else:
        cohort.status, cohort.closed_at = rules.CohortStatus.CLOSED, utcnow()
    session.flush()
    after = cohort_view(session, cohort)
    audit.record(
        session,
        actor=actor,
        action=f"cohort.{action}",
        entity="cohort",
        entity_id=code,
        before=before,
        after=with_signature(after, signature),
        reason=reason,
    )
    return after


def phase2_view(session: Session, study_row: Study | None = None) -> dict[str, Any]:
    study_row = study_row or current_study(session)
    dose = study_row.phase2_dose_mg_per_kg
    return {
        "dose_mg_per_kg": float(dose) if dose is not None else None,
        "selected_at": iso_utc(study_row.phase2_dose_selected_at)
        if study_row.phase2_dose_selected_at
        else None,
        "randomized": count_randomized(session, stage="phase_ii"),
    }


def select_phase2_dose(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    dose: Decimal,
    reason: str,
    signature: Signature | None = None,
) -> dict[str, Any]:
    reason = check_reason(reason)
    study_row = lock_study_exclusive(session)
    try:
        rules.check_phase2_dose(
            study,
            dose=dose,
            statuses=cohort_statuses(session),
            current=study_row.phase2_dose_mg_per_kg,
        )
    except rules.StageRuleError as exc:
        raise Conflict(exc.code, str(exc)) from None
    before = phase2_view(session, study_row)
    study_row.phase2_dose_mg_per_kg = dose
    study_row.phase2_dose_selected_at = utcnow()
    session.flush()
    after = phase2_view(session, study_row)
    audit.record(
        session,
        actor=actor,
        action="phase2.select_dose",
        entity="study",
        entity_id=study_row.code,
        before=before,
        after=with_signature(after, signature),
        reason=reason,
    )
    return after
