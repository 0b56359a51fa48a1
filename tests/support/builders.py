"""Shared builders for the pure-domain tests (no database, no web server)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from app.domain.eligibility import EligibilityAnswers, Exclusions

NO_EXCLUSIONS = Exclusions(
    active_or_unstable_neuropsychiatric_sle=False,
    active_or_unstable_lupus_nephritis=False,
    other_autoimmune_disease=False,
    uncontrolled_medical_condition=False,
    active_severe_infection=False,
    malignancy_within_5_years=False,
)


def eligible_answers(**changes: Any) -> EligibilityAnswers:
    """An answer set that meets every IMC-002 criterion, with `changes` applied."""
    base = EligibilityAnswers(
        sle_diagnosis_date=date(2020, 1, 15),
        screening_date=date(2024, 6, 3),
        sledai_2k_score=8,
        bilag_a_count=1,
        bilag_b_count=0,
        on_soc_medication=True,
        prednisone_equivalent_mg_per_day=Decimal("5"),
        exclusions=NO_EXCLUSIONS,
    )
    return replace(base, **changes)
