"""The 10 % weight rule and the dose arithmetic: identical for both arms, exact decimals."""

from __future__ import annotations

import inspect
import math
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.dosing import calculate_dose, weight_for_dose
from app.domain.study import load_study

STUDY = load_study()
DRUG, WEIGHT = STUDY.drug, STUDY.weight
LEVELS = [c.dose_mg_per_kg for c in STUDY.phase_ib.cohorts]

CENT = Decimal("0.01")
weights = st.integers(30 * 100, 200 * 100).map(lambda n: Decimal(n) * CENT)
levels = st.one_of(st.sampled_from(LEVELS), st.integers(1, 40).map(lambda n: Decimal(n) / 10))
PROPERTY = settings(max_examples=200, deadline=None)


# --- weight_for_dose ----------------------------------------------------------------------


@PROPERTY
@given(weights)
def test_first_dose_uses_the_measured_weight(measured: Decimal) -> None:
    assert weight_for_dose(measured, None) == measured


@PROPERTY
@given(weights, weights)
def test_ten_percent_rule(measured: Decimal, last: Decimal) -> None:
    used = weight_for_dose(measured, last)
    # Compare without division: |new - last| >= 10 % of last  <=>  10 |new - last| >= last.
    if 10 * abs(measured - last) >= last:
        assert used == measured
    else:
        assert used == last


@PROPERTY
@given(weights, st.sampled_from([Decimal("1.1"), Decimal("0.9")]))
def test_exactly_ten_percent_uses_the_new_weight(last: Decimal, factor: Decimal) -> None:
    measured = last * factor  # exact in Decimal: a change of exactly 10 %
    assert abs(measured - last) * 10 == last
    assert weight_for_dose(measured, last) == measured


@PROPERTY
@given(weights)
def test_just_under_ten_percent_keeps_the_last_weight(last: Decimal) -> None:
    up = last * Decimal("1.1") - CENT
    down = last * Decimal("0.9") + CENT
    assert weight_for_dose(up, last) == last
    assert weight_for_dose(down, last) == last


@pytest.mark.parametrize(
    ("measured", "last", "expected"),
    [
        ("110", "100", "110"),
        ("90", "100", "90"),
        ("109.99", "100", "100"),
        ("90.01", "100", "100"),
        ("110.00", "100.00", "110.00"),
        ("100", "100", "100"),
        ("77.00", "70.00", "77.00"),
        ("76.99", "70.00", "70.00"),
        ("63.00", "70.00", "63.00"),
        ("63.01", "70.00", "70.00"),
    ],
)
def test_boundary_examples(measured: str, last: str, expected: str) -> None:
    used = weight_for_dose(Decimal(measured), Decimal(last))
    assert used == Decimal(expected)


def test_rule_compares_with_the_last_used_weight_not_the_last_measured() -> None:
    """Drifting by under 10 % a visit never changes the dose until the total drift reaches it."""
    used = Decimal("80")
    for measured in ("77", "74.5", "72.5", "72.01"):
        used = weight_for_dose(Decimal(measured), used)
        assert used == Decimal("80")
    assert weight_for_dose(Decimal("72"), used) == Decimal("72")


# --- calculate_dose -----------------------------------------------------------------------


def test_calculate_dose_has_no_arm_input() -> None:
    names = set(inspect.signature(calculate_dose).parameters)
    assert names == {"weight_kg", "dose_level_mg_per_kg", "drug", "accepted"}
    assert not {"arm", "treatment", "content"} & names


@PROPERTY
@given(weights, levels)
def test_dose_is_the_same_whatever_the_arm(weight: Decimal, level: Decimal) -> None:
    """No arm enters the calculation, so an active and a placebo subject of the same weight and
    level get the same result: two calls agree field for field."""
    active = calculate_dose(weight, dose_level_mg_per_kg=level, drug=DRUG, accepted=WEIGHT)
    placebo = calculate_dose(weight, dose_level_mg_per_kg=level, drug=DRUG, accepted=WEIGHT)
    assert active == placebo


@PROPERTY
@given(weights, levels)
def test_dose_vials_and_volume(weight: Decimal, level: Decimal) -> None:
    dose = calculate_dose(weight, dose_level_mg_per_kg=level, drug=DRUG, accepted=WEIGHT)
    assert dose.weight_kg == weight
    assert dose.dose_level_mg_per_kg == level
    exact = weight * level
    # one rounding: the volume, dose / 10 mg/mL to the syringe's 0.1 mL, half up
    assert dose.drug_volume_ml == (exact / 10).quantize(Decimal("0.1"), ROUND_HALF_UP)
    assert dose.dose_mg == dose.drug_volume_ml * 10
    assert abs(dose.dose_mg - exact) <= Decimal("0.5")
    # vials on that same dose, 100 mg per vial
    assert dose.vials == math.ceil(int(dose.dose_mg) / 100)
    assert (dose.vials - 1) * 100 < dose.dose_mg <= dose.vials * 100
    assert dose.drug_volume_ml <= dose.vials * DRUG.vial_volume_ml


@pytest.mark.parametrize(
    ("weight", "level", "dose_mg", "vials", "volume"),
    [
        ("62.5", "1.6", "100.0", 1, "10.0"),  # exactly one vial
        ("62.57", "1.6", "100.0", 1, "10.0"),  # 10.0112 mL -> 10.0 mL: one vial holds it
        ("62.82", "1.6", "101.0", 2, "10.1"),  # 10.0512 mL -> 10.1 mL: a second vial
        ("70.65", "0.8", "57.0", 1, "5.7"),  # 5.652 mL -> 5.7 mL, so 57 mg
        ("200", "1.6", "320.0", 4, "32.0"),
        ("30", "0.8", "24.0", 1, "2.4"),
    ],
)
def test_dose_examples(weight: str, level: str, dose_mg: str, vials: int, volume: str) -> None:
    dose = calculate_dose(
        Decimal(weight), dose_level_mg_per_kg=Decimal(level), drug=DRUG, accepted=WEIGHT
    )
    assert (dose.dose_mg, dose.vials, dose.drug_volume_ml) == (
        Decimal(dose_mg),
        vials,
        Decimal(volume),
    )
