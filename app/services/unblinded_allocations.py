"""Unblinded views for the unblinded monitor only: allocations and the audit trail."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Randomization, Slot, Subject
from app.domain.csv_cells import csv_records
from app.domain.study import StudyDefinition
from app.services.blinded_views import day_one_kits, randomization_view
from app.services.subjects import visits_of


def allocations(session: Session, study: StudyDefinition) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Randomization, Slot, Subject)
        .join(Slot, Slot.id == Randomization.slot_id)
        .join(Subject, Subject.id == Randomization.subject_id)
        .order_by(Randomization.id)
    ).all()
    return [
        {
            **randomization_view(r, day_one_kits(visits_of(session, r.subject_id))),
            "site_id": subject.site_id,
            "screening_number": subject.screening_number,
            "randomized_by": r.randomized_by,
            "arm": slot.arm,
            "treatment": study.arm(slot.arm).name,
            "list_scope": r.scope,
            "slot_sequence": slot.sequence,
            "block": slot.block,
            "block_size": slot.block_size,
        }
        for r, slot, subject in rows
    ]


ALLOCATION_COLUMNS = (
    "subject_id",
    "site_id",
    "screening_number",
    "randomization_number",
    "stage",
    "cohort",
    "stratum",
    "arm",
    "treatment",
    "randomized_at",
    "randomized_by",
)


def allocations_csv(session: Session, study: StudyDefinition) -> str:
    """One row per randomized subject, in randomization order (the same data as `allocations`),
    with formula-like cells neutralised (`csv_records`)."""
    return csv_records(ALLOCATION_COLUMNS, allocations(session, study))
