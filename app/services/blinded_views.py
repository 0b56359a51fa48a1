"""Blinded response views shared by the use cases: never an arm, a treatment or a kit content."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from app.db.models import Dispensing, Randomization, Subject
from app.domain.study import PHASE_IB


class DoseRecord(Protocol):
    dose_level_mg_per_kg: Decimal
    weight_kg: Decimal
    dose_mg: Decimal
    vials: int
    drug_volume_ml: Decimal


def dose_view(row: DoseRecord) -> dict[str, Any]:
    return {
        "dose_level_mg_per_kg": float(row.dose_level_mg_per_kg),
        "weight_kg": float(row.weight_kg),
        "dose_mg": float(row.dose_mg),
        "vials": row.vials,
        "drug_volume_ml": float(row.drug_volume_ml),
    }


def randomization_view(row: Randomization, kits: list[str]) -> dict[str, Any]:
    """The randomize response and the subject's randomization details."""
    return {
        "subject_id": row.subject_id,
        "randomization_number": row.randomization_number,
        "stage": row.stage,
        "cohort": row.scope if row.stage == PHASE_IB else None,
        "stratum": row.stratum,
        "randomized_at": iso_utc(row.randomized_at),
        "dose": dose_view(row),
        "kits": kits,
    }


def subject_view(
    *,
    subject: Subject,
    randomization: Randomization | None,
    visits: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "subject_id": subject.id,
        "site_id": subject.site_id,
        "screening_number": subject.screening_number,
        "sex": subject.sex,
        "year_of_birth": subject.year_of_birth,
        "status": subject.status,
        "unblinded": subject.unblinded_at is not None,
        "randomization": randomization_view(randomization, day_one_kits(visits))
        if randomization
        else None,
        "visits": visits or [],
    }


def iso_utc(moment: Any) -> str:
    return str(moment.isoformat().replace("+00:00", "Z"))


def day_one_kits(visits: list[dict[str, Any]] | None) -> list[str]:
    for visit in visits or []:
        if visit["visit"] == "D1":
            return list(visit["kits"])
    return []


def dispensing_view(dispensing: Dispensing, kit_numbers: list[str]) -> dict[str, Any]:
    """A dosing visit as the site sees it: dose and kit numbers."""
    return {
        "visit": dispensing.visit,
        "visit_date": dispensing.visit_date.isoformat(),
        "dose": dose_view(dispensing),
        "kits": kit_numbers,
    }
