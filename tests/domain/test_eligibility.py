"""Eligibility at randomization: every criterion checked, every miss reported with its code."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.eligibility import EligibilityAnswers, Exclusions, check_eligibility
from app.domain.study import EXCLUSION_FIELDS, load_study
from tests.support.builders import NO_EXCLUSIONS, eligible_answers

RULES = load_study().eligibility
SCREENING = date(2024, 6, 3)


def codes(answers: EligibilityAnswers) -> list[str]:
    return [f.criterion for f in check_eligibility(RULES, answers)]


def test_eligible_answers_pass() -> None:
    assert check_eligibility(RULES, eligible_answers()) == []


# --- diagnosis at least 12 weeks before screening ----------------------------------------------


def test_diagnosis_exactly_12_weeks_before_screening_passes() -> None:
    answers = eligible_answers(
        screening_date=SCREENING, sle_diagnosis_date=SCREENING - timedelta(weeks=12)
    )
    assert codes(answers) == []


@pytest.mark.parametrize("days_before", [83, 1, 0, -5])
def test_diagnosis_under_12_weeks_before_screening_fails(days_before: int) -> None:
    answers = eligible_answers(
        screening_date=SCREENING, sle_diagnosis_date=SCREENING - timedelta(days=days_before)
    )
    failed = check_eligibility(RULES, answers)
    assert [f.criterion for f in failed] == ["sle_diagnosis_duration"]
    assert "12 weeks" in failed[0].message


# --- SLEDAI-2K >= 6 ----------------------------------------------------------------------------


def test_sledai_6_passes_and_5_fails() -> None:
    assert codes(eligible_answers(sledai_2k_score=6)) == []
    failed = check_eligibility(RULES, eligible_answers(sledai_2k_score=5))
    assert [f.criterion for f in failed] == ["sledai_2k_score"]
    assert "(answered 5)" in failed[0].message


# --- BILAG-2004: at least 1 A or 2 B -----------------------------------------------------------


@pytest.mark.parametrize(("a", "b"), [(1, 0), (0, 2), (1, 1), (2, 0), (0, 5), (3, 4)])
def test_bilag_enough_passes(a: int, b: int) -> None:
    assert codes(eligible_answers(bilag_a_count=a, bilag_b_count=b)) == []


@pytest.mark.parametrize(("a", "b"), [(0, 0), (0, 1)])
def test_bilag_too_few_fails(a: int, b: int) -> None:
    failed = check_eligibility(RULES, eligible_answers(bilag_a_count=a, bilag_b_count=b))
    assert [f.criterion for f in failed] == ["bilag_2004"]
    assert f"answered {a} A, {b} B" in failed[0].message


# --- standard of care and exclusions -----------------------------------------------------------


def test_not_on_soc_fails() -> None:
    assert codes(eligible_answers(on_soc_medication=False)) == ["on_soc_medication"]


@pytest.mark.parametrize("name", sorted(EXCLUSION_FIELDS))
def test_each_exclusion_fails_with_its_code(name: str) -> None:
    answers = eligible_answers(exclusions=replace(NO_EXCLUSIONS, **{name: True}))
    failed = check_eligibility(RULES, answers)
    assert [f.criterion for f in failed] == [f"exclusion.{name}"]
    assert failed[0].message.startswith("excluded:")


def test_thresholds_come_from_the_rules_not_the_code() -> None:
    lenient = RULES.model_copy(
        update={"min_weeks_since_diagnosis": 0, "min_sledai_2k": 4, "exclusions": ()}
    )
    answers = eligible_answers(
        screening_date=SCREENING,
        sle_diagnosis_date=SCREENING,
        sledai_2k_score=4,
        exclusions=replace(NO_EXCLUSIONS, malignancy_within_5_years=True),
    )
    assert check_eligibility(lenient, answers) == []
    assert len(check_eligibility(RULES, answers)) == 3


def test_all_misses_at_once_are_all_reported() -> None:
    answers = EligibilityAnswers(
        sle_diagnosis_date=SCREENING,
        screening_date=SCREENING,
        sledai_2k_score=0,
        bilag_a_count=0,
        bilag_b_count=0,
        on_soc_medication=False,
        prednisone_equivalent_mg_per_day=Decimal("5"),
        exclusions=Exclusions(**dict.fromkeys(EXCLUSION_FIELDS, True)),
    )
    assert sorted(codes(answers)) == sorted(
        ["sle_diagnosis_duration", "sledai_2k_score", "bilag_2004", "on_soc_medication"]
        + [f"exclusion.{name}" for name in EXCLUSION_FIELDS]
    )


# --- every miss reported, not just the first ---------------------------------------------------


@st.composite
def answers_with_misses(draw: st.DrawFn) -> tuple[EligibilityAnswers, set[str]]:
    """Answers whose misses are chosen independently; returns them with the expected codes."""
    expected: set[str] = set()
    screening = draw(st.dates(date(2015, 1, 1), date(2035, 12, 31)))
    if draw(st.booleans()):
        days_before = draw(st.integers(-30, 83))
        expected.add("sle_diagnosis_duration")
    else:
        days_before = draw(st.integers(84, 20 * 365))
    sledai_miss = draw(st.booleans())
    sledai = draw(st.integers(0, 5) if sledai_miss else st.integers(6, 105))
    if sledai_miss:
        expected.add("sledai_2k_score")
    bilag_a, bilag_b = draw(st.integers(0, 9)), draw(st.integers(0, 9))
    if bilag_a < 1 and bilag_b < 2:
        expected.add("bilag_2004")
    on_soc = draw(st.booleans())
    if not on_soc:
        expected.add("on_soc_medication")
    flags = {name: draw(st.booleans()) for name in sorted(EXCLUSION_FIELDS)}
    expected |= {f"exclusion.{name}" for name, on in flags.items() if on}
    answers = eligible_answers(
        screening_date=screening,
        sle_diagnosis_date=screening - timedelta(days=days_before),
        sledai_2k_score=sledai,
        bilag_a_count=bilag_a,
        bilag_b_count=bilag_b,
        on_soc_medication=on_soc,
        exclusions=Exclusions(**flags),
    )
    return answers, expected


@settings(max_examples=200, deadline=None)
@given(case=answers_with_misses())
def test_every_independent_miss_is_reported(case: tuple[EligibilityAnswers, set[str]]) -> None:
    answers, expected = case
    failed = check_eligibility(RULES, answers)
    assert len(failed) == len(expected)
    assert {f.criterion for f in failed} == expected
    assert all(f.message for f in failed)
