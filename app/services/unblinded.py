"""Unblinded views for the unblinded monitor only: allocations and the audit trail."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Randomization, Slot, Subject
from app.domain.study import StudyDefinition
from app.services.subjects import visits_of
from app.services.views import day_one_kits, randomization_view


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
