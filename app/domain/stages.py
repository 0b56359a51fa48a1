"""Which stage a randomization goes to, and the rules for opening and closing stages."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from app.domain.study import PHASE_IB, PHASE_II, PHASE_II_SCOPE, StudyDefinition


class CohortStatus(StrEnum):
    PLANNED = "planned"
    OPEN = "open"
    CLOSED = "closed"


class StageRuleError(ValueError):
    """A stage change or randomization the stage rules forbid; `code` is the API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Target:
    scope: str
    stage: str
    cohort: str | None
    dose_level_mg_per_kg: Decimal
    cap: int


def route(
    study: StudyDefinition, statuses: dict[str, CohortStatus], phase2_dose: Decimal | None
) -> Target:
    """The open phase Ib cohort, else phase II once its dose is recorded, else stage_closed."""
    for cohort in study.phase_ib.cohorts:
        if statuses.get(cohort.code) == CohortStatus.OPEN:
            return Target(cohort.code, PHASE_IB, cohort.code, cohort.dose_mg_per_kg, cohort.cap)
    if phase2_dose is not None:
        return Target(PHASE_II_SCOPE, PHASE_II, None, phase2_dose, study.phase_ii.cap)
    raise StageClosed()


class StageClosed(StageRuleError):
    def __init__(self) -> None:
        super().__init__(
            "stage_closed",
            "Randomization is closed: no phase Ib cohort is open and the phase II dose has not "
            "been selected yet. Contact the sponsor.",
        )


def check_caps(
    study: StudyDefinition, *, target: Target, in_scope: int, in_stage: int, in_total: int
) -> None:
    """Refuse with stage_full when the cohort, the stage or the study is at its cap."""
    stage_cap = (
        sum(c.cap for c in study.phase_ib.cohorts) if target.stage == PHASE_IB else target.cap
    )
    limits = (
        (in_scope, target.cap, f"cohort {target.cohort}" if target.cohort else "phase II"),
        (in_stage, stage_cap, "phase Ib" if target.stage == PHASE_IB else "phase II"),
        (in_total, study.total_cap, "the study"),
    )
    for count, cap, what in limits:
        if count >= cap:
            raise StageRuleError(
                "stage_full",
                f"Randomization is full for {what}: {count} of {cap} subjects are randomized.",
            )


def check_open(
    study: StudyDefinition,
    *,
    code: str,
    statuses: dict[str, CohortStatus],
    phase2_dose: Decimal | None,
) -> None:
    """A cohort opens only if planned, none is open, every earlier one is closed, no phase II."""
    codes = [c.code for c in study.phase_ib.cohorts]
    if code not in codes:
        raise StageRuleError("not_found", f"There is no phase Ib cohort {code}.")
    if phase2_dose is not None:
        raise StageRuleError("invalid_stage_change", "Phase II has started; cohorts stay closed.")
    if statuses[code] != CohortStatus.PLANNED:
        raise StageRuleError("invalid_stage_change", f"Cohort {code} is {statuses[code]}.")
    for earlier in codes[: codes.index(code)]:
        if statuses[earlier] != CohortStatus.CLOSED:
            raise StageRuleError(
                "invalid_stage_change",
                f"Cohort {code} can open only after cohort {earlier} is closed "
                f"(it is {statuses[earlier]}).",
            )
    already_open = [c for c in codes if statuses.get(c) == CohortStatus.OPEN]
    if already_open:
        raise StageRuleError(
            "invalid_stage_change",
            f"Cohort {already_open[0]} is open; only one cohort is open at a time.",
        )


def check_close(code: str, statuses: dict[str, CohortStatus]) -> None:
    if code not in statuses:
        raise StageRuleError("not_found", f"There is no phase Ib cohort {code}.")
    if statuses[code] != CohortStatus.OPEN:
        raise StageRuleError(
            "invalid_stage_change", f"Cohort {code} is {statuses[code]}, not open."
        )


def check_phase2_dose(
    study: StudyDefinition,
    *,
    dose: Decimal,
    statuses: dict[str, CohortStatus],
    current: Decimal | None,
) -> None:
    """Recorded once; one of the tested (closed) phase Ib levels; no cohort open."""
    if current is not None:
        raise StageRuleError(
            "invalid_stage_change", f"The phase II dose is already recorded ({current} mg/kg)."
        )
    if any(s == CohortStatus.OPEN for s in statuses.values()):
        raise StageRuleError("invalid_stage_change", "Close the open phase Ib cohort first.")
    tested = [
        c.dose_mg_per_kg for c in study.phase_ib.cohorts if statuses[c.code] == CohortStatus.CLOSED
    ]
    if dose not in tested:
        raise StageRuleError(
            "invalid_stage_change",
            f"The phase II dose must be the level of a closed phase Ib cohort: "
            f"{', '.join(str(t) for t in tested) or 'none is closed yet'}.",
        )
