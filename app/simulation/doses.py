"""What a simulated trial derives from the study once and asks for often: the list slots per
stratum, the dose level of a stage, the vials of a weight (cached: the same few weights recur),
and the enrolment the forecast expects at a site for the open stage."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from app.domain.dosing import calculate_dose, heaviest_visit_vials
from app.domain.forecast import Enrolment, places_shares
from app.domain.randomization_list import generate_list
from app.domain.study import PHASE_IB, ListScope, StudyDefinition
from app.simulation.scenario import Scenario


def slots_by_stratum(seed: str, scope: ListScope) -> dict[str, list[str]]:
    """The scope's list as the arms of each stratum, in sequence."""
    by_stratum: dict[str, list[str]] = {}
    for slot in generate_list(seed, scope):
        by_stratum.setdefault(slot.stratum, []).append(slot.arm)
    return by_stratum


class Doses:
    def __init__(self, study: StudyDefinition, scenario: Scenario) -> None:
        self.study, self.scenario = study, scenario
        self._vials: dict[tuple[str, Decimal], int] = {}
        self._floors: dict[Decimal, int] = {}

    def level(self, scope: ListScope) -> Decimal:
        if scope.stage == PHASE_IB:
            return self.study.cohort(scope.code).dose_mg_per_kg
        return self.scenario.phase2_dose_mg_per_kg

    def vials(self, weight: float, level: Decimal) -> int:
        key = (f"{weight:.1f}", level)
        if key not in self._vials:
            dose = calculate_dose(
                Decimal(key[0]),
                dose_level_mg_per_kg=level,
                drug=self.study.drug,
                accepted=self.study.weight,
            )
            self._vials[key] = dose.vials
        return self._vials[key]

    def floor(self, level: Decimal) -> int:
        """`heaviest_visit_vials` at the level (kept: a stage has one level)."""
        found = self._floors.get(level)
        if found is None:
            study = self.study
            found = self._floors[level] = heaviest_visit_vials(level, study.drug, study.weight)
        return found

    def enrolment(
        self,
        subjects_per_week: float,
        *,
        scope: ListScope | None,
        in_scope: int,
        later: Sequence[ListScope],
    ) -> tuple[Enrolment, int]:
        """The subjects to come at a site while `scope` is open (none when no stage is), and
        the randomization gate's floor: one heaviest visit at the stage's level (the highest
        level when none is open)."""
        study = self.study
        if scope is None:
            levels = [c.dose_mg_per_kg for c in study.phase_ib.cohorts]
            highest = max([*levels, self.scenario.phase2_dose_mg_per_kg])
            return Enrolment(0.0, 0, {}, 0), self.floor(highest)
        level = self.level(scope)
        typical = self.vials(float(study.supply.forecast_weight_kg), level)
        places = scope.cap - in_scope
        shares = places_shares(
            [(places, scope.allocation.ratio), *((s.cap, s.allocation.ratio) for s in later)]
        )
        return Enrolment(subjects_per_week, places, shares, typical), self.floor(level)
