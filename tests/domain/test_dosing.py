"""Weight-based dose: dose, vials and volume from weight and level only, never from the arm."""

from __future__ import annotations

import inspect
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.dosing import Dose, WeightOutOfRange, calculate_dose, check_weight
from app.domain.study import Drug, load_study

STUDY = load_study()
DRUG, WEIGHT = STUDY.drug, STUDY.weight


def expected_dose(weight_hundredths: int, level_tenths: int, vial_mg: int = 100) -> tuple:
    """Independent integer arithmetic (no Decimal rounding modes):
    weight (0.01 kg) x level (0.1 mg/kg) = dose in 0.001 mg; half up to 0.1 mg; vials =
    ceil(dose / vial strength); volume = dose / 10 mg/mL, half up to 0.1 mL."""
    assert (DRUG.vial_strength_mg, DRUG.concentration_mg_per_ml) == (vial_mg, 10)
    milli_mg = weight_hundredths * level_tenths
    dose_tenths = (milli_mg + 50) // 100  # round half up to 0.1 mg (all values positive)
    vials = -(-dose_tenths // (vial_mg * 10))  # ceil(dose_tenths / (vial_mg in tenths))
    # volume in 0.01 mL equals dose in 0.1 mg (10 mg/mL); half up to 0.1 mL
    volume_tenths = (dose_tenths + 5) // 10
    return Decimal(dose_tenths) / 10, vials, Decimal(volume_tenths) / 10


weights = st.integers(30 * 100, 200 * 100)  # 0.01 kg steps across the accepted range
levels = st.one_of(st.sampled_from([8, 12, 16]), st.integers(1, 40))  # 0.1 mg/kg steps


@settings(max_examples=300, deadline=None)
@given(weight=weights, level=levels)
def test_dose_vials_and_volume(weight: int, level: int) -> None:
    weight_kg = Decimal(weight).scaleb(-2)
    level_mg_per_kg = Decimal(level).scaleb(-1)
    dose = calculate_dose(
        weight_kg, dose_level_mg_per_kg=level_mg_per_kg, drug=DRUG, accepted=WEIGHT
    )
    dose_mg, vials, volume_ml = expected_dose(weight, level)
    assert dose.dose_mg == dose_mg
    assert dose.vials == vials
    assert dose.infusion_volume_ml == volume_ml
    # Quantized to 0.1 mg and 0.1 mL exactly.
    assert dose.dose_mg.as_tuple().exponent == -1
    assert dose.infusion_volume_ml.as_tuple().exponent == -1
    assert (dose.weight_kg, dose.dose_level_mg_per_kg) == (weight_kg, level_mg_per_kg)
    # Enough vials, and not one too many.
    assert (vials - 1) * 100 < dose.dose_mg <= vials * 100


@pytest.mark.parametrize(
    ("weight", "level", "dose_mg", "vials", "volume_ml"),
    [
        ("125", "0.8", "100.0", 1, "10.0"),  # exactly one vial
        ("125.1", "0.8", "100.1", 2, "10.0"),  # 100.08 -> 100.1 mg: a second vial
        ("125.06", "0.8", "100.0", 1, "10.0"),  # 100.048 -> 100.0 mg: still one vial
        ("125.0625", "0.8", "100.1", 2, "10.0"),  # 100.05 -> 100.1 (half up, not half even)
        ("100.25", "0.2", "20.1", 1, "2.0"),  # 20.05 -> 20.1 (half even would give 20.0)
        ("100.5", "1.0", "100.5", 2, "10.1"),  # 10.05 mL -> 10.1 (half up)
        ("30", "0.8", "24.0", 1, "2.4"),
        ("200", "1.6", "320.0", 4, "32.0"),
        ("187.5", "1.6", "300.0", 3, "30.0"),  # exact multiple of the vial strength
        ("187.6", "1.6", "300.2", 4, "30.0"),
    ],
)
def test_dose_edge_cases(weight: str, level: str, dose_mg: str, vials: int, volume_ml: str) -> None:
    dose = calculate_dose(
        Decimal(weight), dose_level_mg_per_kg=Decimal(level), drug=DRUG, accepted=WEIGHT
    )
    assert dose.dose_mg == Decimal(dose_mg)
    assert str(dose.dose_mg) == dose_mg
    assert dose.vials == vials
    assert str(dose.infusion_volume_ml) == volume_ml


def test_vial_strength_and_concentration_come_from_the_drug() -> None:
    small = Drug(
        vial_strength_mg=Decimal("50"),
        vial_volume_ml=Decimal("2"),
        concentration_mg_per_ml=Decimal("25"),
    )
    dose = calculate_dose(
        Decimal("125.1"), dose_level_mg_per_kg=Decimal("0.8"), drug=small, accepted=WEIGHT
    )
    assert dose.dose_mg == Decimal("100.1")
    assert dose.vials == 3
    assert dose.infusion_volume_ml == Decimal("4.0")  # 100.1 / 25 = 4.004


def test_there_is_no_arm_input() -> None:
    params = set(inspect.signature(calculate_dose).parameters)
    assert params == {"weight_kg", "dose_level_mg_per_kg", "drug", "accepted"}
    assert not any("arm" in p or "treatment" in p or "active" in p for p in params)
    assert not any("arm" in f for f in Dose.__dataclass_fields__)


@settings(max_examples=50, deadline=None)
@given(weight=weights, level=levels)
def test_same_inputs_same_dose(weight: int, level: int) -> None:
    args = {
        "weight_kg": Decimal(weight).scaleb(-2),
        "dose_level_mg_per_kg": Decimal(level).scaleb(-1),
        "drug": DRUG,
        "accepted": WEIGHT,
    }
    assert calculate_dose(**args) == calculate_dose(**args)


@pytest.mark.parametrize("weight", ["30", "30.0", "200", "200.00", "115.3"])
def test_weights_in_range_accepted(weight: str) -> None:
    check_weight(Decimal(weight), WEIGHT)
    calculate_dose(Decimal(weight), dose_level_mg_per_kg=Decimal("1.2"), drug=DRUG, accepted=WEIGHT)


@pytest.mark.parametrize("weight", ["29.99", "29.9", "0", "-70", "200.01", "200.1", "350"])
def test_weights_out_of_range_refused(weight: str) -> None:
    with pytest.raises(WeightOutOfRange):
        check_weight(Decimal(weight), WEIGHT)
    with pytest.raises(WeightOutOfRange, match="outside the accepted 30 to 200 kg"):
        calculate_dose(
            Decimal(weight), dose_level_mg_per_kg=Decimal("1.2"), drug=DRUG, accepted=WEIGHT
        )


@settings(max_examples=100, deadline=None)
@given(weight=st.one_of(st.integers(-1000, 2999), st.integers(20001, 100000)))
def test_any_weight_outside_range_refused(weight: int) -> None:
    with pytest.raises(WeightOutOfRange):
        calculate_dose(
            Decimal(weight).scaleb(-2),
            dose_level_mg_per_kg=Decimal("0.8"),
            drug=DRUG,
            accepted=WEIGHT,
        )
