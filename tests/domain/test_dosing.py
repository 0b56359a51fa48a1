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
    weight (0.01 kg) x level (0.1 mg/kg) = prescribed dose in 0.001 mg; at 10 mg/mL that is
    0.0001 mL, rounded half up to 0.1 mL; the dose is the volume x 10 mg/mL (0.1 mL = 1 mg);
    vials = ceil(dose / vial strength)."""
    assert (DRUG.vial_strength_mg, DRUG.concentration_mg_per_ml) == (vial_mg, 10)
    milli_mg = weight_hundredths * level_tenths
    volume_tenths = (milli_mg + 500) // 1000  # round half up to 0.1 mL (all values positive)
    dose_mg = volume_tenths  # 0.1 mL x 10 mg/mL = 1 mg
    vials = -(-dose_mg // vial_mg)
    return Decimal(dose_mg), vials, Decimal(volume_tenths) / 10


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
    assert dose.drug_volume_ml == volume_ml
    assert dose.drug_volume_ml.as_tuple().exponent == -1  # to the syringe's 0.1 mL
    assert (dose.weight_kg, dose.dose_level_mg_per_kg) == (weight_kg, level_mg_per_kg)
    # Enough vials, and not one too many.
    assert (vials - 1) * 100 < dose.dose_mg <= vials * 100


drugs = st.sampled_from(
    [
        DRUG,
        Drug(
            vial_strength_mg=Decimal("50"),
            vial_volume_ml=Decimal("2"),
            concentration_mg_per_ml=Decimal("25"),
        ),
        Drug(
            vial_strength_mg=Decimal("125"),
            vial_volume_ml=Decimal("10"),
            concentration_mg_per_ml=Decimal("12.5"),
        ),
    ]
)


@settings(max_examples=300, deadline=None)
@given(weight=weights, level=levels, drug=drugs)
def test_vials_volume_and_dose_agree(weight: int, level: int, drug: Drug) -> None:
    """The vials hold the volume drawn up, and the volume is the dose: one rounded quantity."""
    dose = calculate_dose(
        Decimal(weight).scaleb(-2),
        dose_level_mg_per_kg=Decimal(level).scaleb(-1),
        drug=drug,
        accepted=WEIGHT,
    )
    assert dose.vials * drug.vial_volume_ml >= dose.drug_volume_ml
    assert (dose.vials - 1) * drug.vial_volume_ml < dose.drug_volume_ml
    assert dose.drug_volume_ml == dose.dose_mg / drug.concentration_mg_per_ml
    assert dose.dose_mg == dose.drug_volume_ml * drug.concentration_mg_per_ml
    # never more than half a graduation (0.05 mL) away from the prescribed weight x level
    prescribed = dose.weight_kg * dose.dose_level_mg_per_kg
    assert abs(dose.dose_mg - prescribed) <= Decimal("0.05") * drug.concentration_mg_per_ml


@settings(max_examples=300, deadline=None)
@given(lighter=weights, heavier=weights, level=levels, drug=drugs)
def test_monotone_in_weight(lighter: int, heavier: int, level: int, drug: Drug) -> None:
    lighter, heavier = sorted((lighter, heavier))
    one, two = (
        calculate_dose(
            Decimal(w).scaleb(-2),
            dose_level_mg_per_kg=Decimal(level).scaleb(-1),
            drug=drug,
            accepted=WEIGHT,
        )
        for w in (lighter, heavier)
    )
    assert one.dose_mg <= two.dose_mg
    assert one.drug_volume_ml <= two.drug_volume_ml
    assert one.vials <= two.vials


@pytest.mark.parametrize(
    ("weight", "level", "dose_mg", "vials", "volume_ml"),
    [
        ("125", "0.8", "100.0", 1, "10.0"),  # exactly one vial
        ("125.1", "0.8", "100.0", 1, "10.0"),  # 10.008 mL -> 10.0 mL: one vial holds it
        ("125.6", "0.8", "100.0", 1, "10.0"),  # 10.048 mL -> 10.0 mL
        ("125.625", "0.8", "101.0", 2, "10.1"),  # 10.05 mL -> 10.1 (half up): a second vial
        ("100.25", "0.2", "20.0", 1, "2.0"),  # 2.005 mL -> 2.0
        ("100.5", "1.0", "101.0", 2, "10.1"),  # 10.05 mL -> 10.1 (half up, not half even)
        ("30", "0.8", "24.0", 1, "2.4"),
        ("200", "1.6", "320.0", 4, "32.0"),
        ("187.5", "1.6", "300.0", 3, "30.0"),  # exact multiple of the vial strength
        ("187.6", "1.6", "300.0", 3, "30.0"),  # 30.016 mL -> 30.0 mL: three vials hold it
        ("187.85", "1.6", "301.0", 4, "30.1"),  # 30.056 mL -> 30.1 mL: a fourth vial
    ],
)
def test_dose_edge_cases(weight: str, level: str, dose_mg: str, vials: int, volume_ml: str) -> None:
    dose = calculate_dose(
        Decimal(weight), dose_level_mg_per_kg=Decimal(level), drug=DRUG, accepted=WEIGHT
    )
    assert dose.dose_mg == Decimal(dose_mg)
    assert str(dose.dose_mg) == dose_mg
    assert dose.vials == vials
    assert str(dose.drug_volume_ml) == volume_ml


def test_vial_strength_and_concentration_come_from_the_drug() -> None:
    small = Drug(
        vial_strength_mg=Decimal("50"),
        vial_volume_ml=Decimal("2"),
        concentration_mg_per_ml=Decimal("25"),
    )
    dose = calculate_dose(
        Decimal("125.1"), dose_level_mg_per_kg=Decimal("0.8"), drug=small, accepted=WEIGHT
    )
    assert dose.drug_volume_ml == Decimal("4.0")  # 100.08 mg / 25 mg/mL = 4.0032 mL
    assert dose.dose_mg == Decimal("100.0")
    assert dose.vials == 2


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
