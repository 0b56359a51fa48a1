"""Eligibility at randomization: every criterion checked, every miss reported.

The protocol's criteria are the site's answers (`EligibilityAnswers`) and two facts the service
already holds: the subject's year of birth (registration) and the day of randomization. The
limits come from the study definition (`EligibilityRules`); docs/decisions.md, "Eligibility",
says why each default is what it is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from app.domain.date_display import format_date
from app.domain.study import EligibilityRules


@dataclass(frozen=True)
class Exclusions:
    active_or_unstable_neuropsychiatric_sle: bool
    active_or_unstable_lupus_nephritis: bool
    other_autoimmune_disease: bool
    uncontrolled_medical_condition: bool
    active_severe_infection: bool
    malignancy_within_5_years: bool


@dataclass(frozen=True)
class EligibilityAnswers:
    """What the site answers at randomization."""

    sle_diagnosis_date: date
    screening_date: date
    sledai_2k_score: int
    bilag_a_count: int
    bilag_b_count: int
    on_soc_medication: bool
    prednisone_equivalent_mg_per_day: Decimal
    exclusions: Exclusions


@dataclass(frozen=True)
class FailedCriterion:
    criterion: str
    message: str


EXCLUSION_MESSAGES = {
    "active_or_unstable_neuropsychiatric_sle": "active or unstable neuropsychiatric SLE",
    "active_or_unstable_lupus_nephritis": "active or unstable lupus nephritis",
    "other_autoimmune_disease": "another autoimmune or rheumatic disease",
    "uncontrolled_medical_condition": "a significant uncontrolled condition unrelated to SLE",
    "active_severe_infection": "an active and/or severe infection",
    "malignancy_within_5_years": "a malignancy within the last 5 years",
}


def possible_ages(year_of_birth: int, on: date) -> tuple[int, int]:
    """The ages a subject born in `year_of_birth` may have on a day: the service knows the year
    only, so the birthday may be before or after that day in its year."""
    reached = on.year - year_of_birth
    return reached - 1, reached


def check_eligibility(
    rules: EligibilityRules,
    answers: EligibilityAnswers,
    *,
    year_of_birth: int,
    randomization_date: date,
) -> list[FailedCriterion]:
    """Every criterion the answers miss; an empty list means eligible."""
    failed: list[FailedCriterion] = []
    youngest, oldest = possible_ages(year_of_birth, answers.screening_date)
    if oldest < rules.min_age_years or youngest > rules.max_age_years:
        failed.append(
            FailedCriterion(
                "age_at_screening",
                f"the age at screening must be {rules.min_age_years} to {rules.max_age_years} "
                f"years (born {year_of_birth}: {youngest} or {oldest} at screening on "
                f"{format_date(answers.screening_date)})",
            )
        )
    waited = (randomization_date - answers.screening_date).days
    if waited > rules.screening_window_days:
        failed.append(
            FailedCriterion(
                "screening_window",
                f"randomization must be within {rules.screening_window_days} days of screening "
                f"({waited} days after screening on {format_date(answers.screening_date)})",
            )
        )
    weeks = rules.min_weeks_since_diagnosis
    if answers.sle_diagnosis_date > answers.screening_date - timedelta(weeks=weeks):
        failed.append(
            FailedCriterion(
                "sle_diagnosis_duration",
                f"SLE must be diagnosed at least {weeks} weeks before screening",
            )
        )
    if answers.sledai_2k_score < rules.min_sledai_2k:
        failed.append(
            FailedCriterion(
                "sledai_2k_score",
                f"SLEDAI-2K at screening must be at least {rules.min_sledai_2k} "
                f"(answered {answers.sledai_2k_score})",
            )
        )
    if answers.bilag_a_count < rules.min_bilag_a and answers.bilag_b_count < rules.min_bilag_b:
        failed.append(
            FailedCriterion(
                "bilag_2004",
                f"BILAG-2004 needs at least {rules.min_bilag_a} A or {rules.min_bilag_b} B "
                f"organ scores (answered {answers.bilag_a_count} A, {answers.bilag_b_count} B)",
            )
        )
    if not answers.on_soc_medication:
        failed.append(
            FailedCriterion(
                "on_soc_medication",
                "the subject must be on at least one standard-of-care medication "
                "(oral corticosteroid, antimalarial and/or immunosuppressant)",
            )
        )
    failed += _soc_consistency(answers)
    for name in rules.exclusions:
        if getattr(answers.exclusions, name):
            failed.append(
                FailedCriterion(
                    f"exclusion.{name}", f"excluded: the subject has {EXCLUSION_MESSAGES[name]}"
                )
            )
    return failed


def _soc_consistency(answers: EligibilityAnswers) -> list[FailedCriterion]:
    """An oral prednisone-equivalent dose above 0 is an oral corticosteroid, a standard-of-care
    medication: answering "not on standard of care" beside it is a contradiction (the reverse,
    standard of care without a corticosteroid, is an antimalarial or an immunosuppressant)."""
    dose = answers.prednisone_equivalent_mg_per_day
    if dose <= 0 or answers.on_soc_medication:
        return []
    return [
        FailedCriterion(
            "soc_consistency",
            f"the answers disagree: a prednisone-equivalent dose of {dose.normalize():f} mg/day "
            "is an oral corticosteroid, a standard-of-care medication, yet the subject is "
            "answered as on none",
        )
    ]
