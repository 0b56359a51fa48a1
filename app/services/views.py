"""Blinded response views shared by the use cases: never an arm, a treatment or a kit content."""

from __future__ import annotations

from typing import Any

from app.db.models import Randomization, Subject
from app.domain.study import PHASE_IB


def dose_view(row: Randomization) -> dict[str, Any]:
    return {
        "dose_level_mg_per_kg": float(row.dose_level_mg_per_kg),
        "weight_kg": float(row.weight_kg),
        "dose_mg": float(row.dose_mg),
        "vials": row.vials,
        "infusion_volume_ml": float(row.infusion_volume_ml),
    }


def randomization_view(row: Randomization) -> dict[str, Any]:
    """The randomize response and the subject's randomization details."""
    return {
        "subject_id": row.subject_id,
        "randomization_number": row.randomization_number,
        "stage": row.stage,
        "cohort": row.scope if row.stage == PHASE_IB else None,
        "stratum": row.stratum,
        "randomized_at": iso_utc(row.randomized_at),
        "dose": dose_view(row),
        "kits": [],
    }


def subject_view(subject: Subject, randomization: Randomization | None) -> dict[str, Any]:
    return {
        "subject_id": subject.id,
        "site_id": subject.site_id,
        "screening_number": subject.screening_number,
        "sex": subject.sex,
        "year_of_birth": subject.year_of_birth,
        "status": subject.status,
        "randomization": randomization_view(randomization) if randomization else None,
    }


def iso_utc(moment: Any) -> str:
    return str(moment.isoformat().replace("+00:00", "Z"))
