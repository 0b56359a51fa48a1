"""Eligibility at randomization: every criterion checked, every miss reported."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from app.domain.study import EligibilityRules


@dataclass(frozen=True)
class Exclusions:
    active_neuropsychiatric_sle: bool
    active_lupus_nephritis: bool
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
    "active_neuropsychiatric_sle": "active or unstable neuropsychiatric SLE",
    "active_lupus_nephritis": "active lupus nephritis",
    "other_autoimmune_disease": "another autoimmune or rheumatic disease",
    "uncontrolled_medical_condition": "a significant uncontrolled condition unrelated to SLE",
    "active_severe_infection": "an active and/or severe infection",
    "malignancy_within_5_years": "a malignancy within the last 5 years",
}


def check_eligibility(
    rules: EligibilityRules, answers: EligibilityAnswers
) -> list[FailedCriterion]:
    """Every criterion the answers miss; an empty list means eligible."""
    failed: list[FailedCriterion] = []
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
    for name in rules.exclusions:
        if getattr(answers.exclusions, name):
            failed.append(
                FailedCriterion(
                    f"exclusion.{name}", f"excluded: the subject has {EXCLUSION_MESSAGES[name]}"
                )
            )
    return failed
