"""Weight-based dose: identical for both arms, so the dose never reveals the arm."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from app.domain.study import Drug, WeightRange

ML_QUANTUM = Decimal("0.1")
"""The graduation of the syringe the drug is drawn up with: the one quantity that is rounded."""


class WeightOutOfRange(ValueError):
    """A weight outside the study's accepted range."""


@dataclass(frozen=True)
class Dose:
    dose_level_mg_per_kg: Decimal
    weight_kg: Decimal
    dose_mg: Decimal
    vials: int
    drug_volume_ml: Decimal


def check_weight(weight_kg: Decimal, accepted: WeightRange) -> None:
    if not accepted.min_kg <= weight_kg <= accepted.max_kg:
        raise WeightOutOfRange(
            f"weight {weight_kg} kg is outside the accepted {accepted.min_kg} to "
            f"{accepted.max_kg} kg"
        )


def calculate_dose(
    weight_kg: Decimal, *, dose_level_mg_per_kg: Decimal, drug: Drug, accepted: WeightRange
) -> Dose:
    """One rounding, on the volume the pharmacist draws up: weight x level is divided by the
    concentration and rounded half up to the syringe's 0.1 mL; the dose is that volume times the
    concentration, and the vials are ceil(dose / vial strength). Volume, dose and vials then
    agree (docs/domain.md, "Dose"). Exact decimal arithmetic."""
    check_weight(weight_kg, accepted)
    prescribed_mg = weight_kg * dose_level_mg_per_kg
    volume = (prescribed_mg / drug.concentration_mg_per_ml).quantize(ML_QUANTUM, ROUND_HALF_UP)
    dose_mg = volume * drug.concentration_mg_per_ml
    vials = int((dose_mg / drug.vial_strength_mg).to_integral_value(ROUND_CEILING))
    return Dose(dose_level_mg_per_kg, weight_kg, dose_mg, vials, volume)


WEIGHT_CHANGE_THRESHOLD = Decimal("0.10")


def weight_for_dose(measured_kg: Decimal, last_used_kg: Decimal | None) -> Decimal:
    """The weight the dose uses: the last one used, unless the new weight differs from it by
    10 % or more (then the new one). The first dose uses the measured weight."""
    if last_used_kg is None:
        return measured_kg
    change = abs(measured_kg - last_used_kg) / last_used_kg
    return measured_kg if change >= WEIGHT_CHANGE_THRESHOLD else last_used_kg


def heaviest_visit_vials(dose_level_mg_per_kg: Decimal, drug: Drug, accepted: WeightRange) -> int:
    """Vials of one visit at the heaviest accepted weight: what a site must hold of every content
    before it randomizes, so that a refusal never depends on the arm of the next slot."""
    return calculate_dose(
        accepted.max_kg, dose_level_mg_per_kg=dose_level_mg_per_kg, drug=drug, accepted=accepted
    ).vials
