"""Data corrections (pure): every correctable value reads back as it was written, a bad value is
refused with the accepted ones, and the actual stratum follows the corrected factors only."""

from __future__ import annotations

import json
from dataclasses import asdict
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.corrections import (
    CORRECTABLE,
    CorrectionRefused,
    actual_stratum,
    answers_from_json,
    parse_value,
    value_text,
    with_answer,
)
from app.domain.study import load_study
from tests.support.builders import eligible_answers

STUDY = load_study()
STORED = json.loads(json.dumps(asdict(eligible_answers()), default=str))


def test_the_correctable_fields() -> None:
    assert {"sex", "year_of_birth", "weight_kg"} < set(CORRECTABLE)
    factors = {f"eligibility.{f.field}" for f in STUDY.phase_ii.strata_factors}
    assert factors < set(CORRECTABLE)
    assert "eligibility.exclusions.active_or_unstable_lupus_nephritis" in CORRECTABLE


@settings(max_examples=200, deadline=None)
@given(
    sledai=st.integers(0, 105), prednisone=st.integers(0, 100000).map(lambda n: Decimal(n) / 100)
)
def test_actual_stratum_follows_the_corrected_factors(sledai: int, prednisone: Decimal) -> None:
    answers = with_answer(STORED, "eligibility.sledai_2k_score", sledai)
    answers = with_answer(answers, "eligibility.prednisone_equivalent_mg_per_day", str(prednisone))
    expected = f"SLEDAI{'<' if sledai < 10 else '>='}10/PRED{'<' if prednisone < 10 else '>='}10"
    assert actual_stratum(STUDY, stage="phase_ii", answers=answers) == expected
    assert actual_stratum(STUDY, stage="phase_ib", answers=answers) is None
    # an exclusion answer never moves the stratum
    excluded = with_answer(answers, "eligibility.exclusions.active_severe_infection", True)
    assert actual_stratum(STUDY, stage="phase_ii", answers=excluded) == expected
    assert answers_from_json(excluded).exclusions.active_severe_infection


@settings(max_examples=200, deadline=None)
@given(
    case=st.one_of(
        st.tuples(st.just("sex"), st.sampled_from(["F", "M"])),
        st.tuples(st.just("year_of_birth"), st.integers(1900, 2026).map(str)),
        st.tuples(st.just("weight_kg"), st.integers(300, 2000).map(lambda n: str(Decimal(n) / 10))),
        st.tuples(st.just("eligibility.sledai_2k_score"), st.integers(0, 105).map(str)),
        st.tuples(st.just("eligibility.on_soc_medication"), st.sampled_from(["yes", "no"])),
        st.tuples(st.just("eligibility.screening_date"), st.dates().map(lambda d: d.isoformat())),
    )
)
def test_a_value_reads_back_as_written(case: tuple[str, str]) -> None:
    field, text = case
    value = parse_value(STUDY, field, text, this_year=2026)
    assert value_text(value) == value_text(
        parse_value(STUDY, field, value_text(value), this_year=2026)
    )


@pytest.mark.parametrize(
    ("field", "text", "says"),
    [
        ("sex", "X", "F or M"),
        ("year_of_birth", "1850", "1900 to 2026"),
        ("year_of_birth", "2030", "1900 to 2026"),
        ("weight_kg", "250", "30 to 200 kg"),
        ("weight_kg", "70.55", "one decimal"),
        ("eligibility.sledai_2k_score", "106", "0 to 105"),
        ("eligibility.on_soc_medication", "maybe", "yes or no"),
        ("eligibility.screening_date", "03/06/2024", "YYYY-MM-DD"),
        ("eligibility.prednisone_equivalent_mg_per_day", "NaN", "a number"),
        ("stratum", "SLEDAI>=10/PRED<10", "cannot be corrected"),
    ],
)
def test_bad_values_are_refused_with_the_accepted_ones(field: str, text: str, says: str) -> None:
    with pytest.raises(CorrectionRefused, match=says.replace("(", r"\(")):
        parse_value(STUDY, field, text, this_year=2026)


def test_answers_recorded_with_the_old_exclusion_keys_still_read() -> None:
    old = {**STORED, "exclusions": {"active_lupus_nephritis": True}}
    assert answers_from_json(old).exclusions.active_or_unstable_lupus_nephritis
