"""The phase II stratum is derived from the answers at the cutoffs (SLEDAI 10, prednisone 10)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.stratification import stratum_of
from app.domain.study import NO_STRATUM, load_study
from tests.support.builders import eligible_answers

PHASE_II = load_study().phase_ii


@pytest.mark.parametrize(
    ("sledai", "prednisone", "stratum"),
    [
        (9, "9.99", "SLEDAI<10/PRED<10"),
        (9, "10", "SLEDAI<10/PRED>=10"),
        (10, "9.99", "SLEDAI>=10/PRED<10"),
        (10, "10", "SLEDAI>=10/PRED>=10"),
        (6, "0", "SLEDAI<10/PRED<10"),
        (105, "60", "SLEDAI>=10/PRED>=10"),
        (10, "10.00", "SLEDAI>=10/PRED>=10"),
    ],
)
def test_stratum_at_the_cutoffs(sledai: int, prednisone: str, stratum: str) -> None:
    answers = eligible_answers(
        sledai_2k_score=sledai, prednisone_equivalent_mg_per_day=Decimal(prednisone)
    )
    assert stratum_of(PHASE_II, answers) == stratum


@settings(max_examples=100, deadline=None)
@given(
    sledai=st.integers(0, 105),
    prednisone=st.decimals(min_value=0, max_value=100, places=2, allow_nan=False),
)
def test_stratum_is_always_one_of_the_list_strata(sledai: int, prednisone: Decimal) -> None:
    answers = eligible_answers(sledai_2k_score=sledai, prednisone_equivalent_mg_per_day=prednisone)
    stratum = stratum_of(PHASE_II, answers)
    assert stratum in PHASE_II.strata()
    high_sledai, high_pred = sledai >= 10, prednisone >= 10
    assert stratum == (f"SLEDAI{'>=' if high_sledai else '<'}10/PRED{'>=' if high_pred else '<'}10")


def test_unstratified_phase_ii_has_the_single_stratum() -> None:
    flat = PHASE_II.model_copy(update={"strata_factors": ()})
    assert stratum_of(flat, eligible_answers()) == NO_STRATUM
    assert flat.strata() == (NO_STRATUM,)
