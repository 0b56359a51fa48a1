"""A simulation scenario: sites, recruitment, weights, depots and lots, supply levels (TOML).

Every key is checked: an unknown key, a negative rate, a lead time longer than the forecast
horizon or levels that cannot be met are refused with a message naming the key, before any
trial runs.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.domain.study import StudyDefinition


class ScenarioError(ValueError):
    """A scenario that cannot be simulated; the message names every bad key."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteScenario(_Model):
    code: str = Field(pattern=r"^[A-Z0-9]{2,12}$")
    depot: str
    activation_day: int = Field(default=0, ge=0)
    subjects_per_week: float = Field(ge=0, le=50)
    """Screened subjects per week (Poisson arrivals) while a stage is open."""
    lead_days: int = Field(ge=0, le=120)


class Lot(_Model):
    """Kits of every content that share one expiry date (one lot per content, packaged together)."""

    expiry_day: int = Field(gt=0)
    """Expiry, in days from the start of the trial."""
    kits_per_content: int = Field(gt=0)
    release_day: int = Field(default=0, ge=0)
    """The day the lot reaches the depot."""


class DepotScenario(_Model):
    code: str = Field(pattern=r"^[A-Z0-9-]{2,12}$")
    lots: tuple[Lot, ...] = Field(min_length=1)


class WeightDistribution(_Model):
    """Normal, truncated to the study's accepted range."""

    mean_kg: float = Field(gt=0)
    sd_kg: float = Field(ge=0)
    change_sd: float = Field(default=0.0, ge=0, le=0.5)
    """Relative change of weight from one visit to the next (0: weight stays)."""


class SupplyLevels(_Model):
    """The levels every site uses (else the study definition's)."""

    trigger: int = Field(ge=0)
    target: int = Field(ge=0)
    cover_weeks: int = Field(ge=0, le=52)

    @model_validator(mode="after")
    def _ordered(self) -> SupplyLevels:
        if self.target < self.trigger:
            raise ValueError("target must not be below trigger")
        return self


class Scenario(_Model):
    name: str
    days: int = Field(gt=0, le=3650)
    """The longest a trial may run; a trial ends earlier once every subject has finished."""
    screen_fail_rate: float = Field(ge=0, lt=1)
    discontinuation_per_year: float = Field(ge=0, le=10)
    """Rate at which subjects stop treatment (per subject-year, constant hazard)."""
    weight: WeightDistribution
    cohort_review_days: int = Field(default=28, ge=0, le=365)
    """Days from a full phase Ib cohort to the next stage opening (safety review)."""
    phase2_dose_mg_per_kg: Decimal = Field(gt=0)
    grace_days: int = Field(default=3, ge=0, le=14)
    """A patient refused at randomization for want of kits is tried again daily this long
    before being lost. A refused dosing visit is tried until its window closes: the study
    definition's `window_days_after`, not a scenario setting (docs/visits.md)."""
    policy: Literal["blind", "per_content"] = "blind"
    """`per_content` is the naive policy (first expiry first per content, refusals per content,
    shipments of equal numbers); it exists only to show what the adversary finds in it."""
    sites: tuple[SiteScenario, ...] = Field(min_length=1)
    depots: tuple[DepotScenario, ...] = Field(min_length=1)
    levels: SupplyLevels | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        codes = [s.code for s in self.sites]
        if len(set(codes)) != len(codes):
            raise ValueError("sites: each site code once")
        depots = {d.code for d in self.depots}
        for site in self.sites:
            if site.depot not in depots:
                raise ValueError(f"sites: {site.code} names unknown depot {site.depot!r}")
        return self


def check_against_study(scenario: Scenario, study: StudyDefinition) -> list[str]:
    """What the scenario asks that the study cannot do; empty when it can be simulated."""
    problems = []
    doses = [c.dose_mg_per_kg for c in study.phase_ib.cohorts]
    if scenario.phase2_dose_mg_per_kg not in doses:
        problems.append(
            f"phase2_dose_mg_per_kg: {scenario.phase2_dose_mg_per_kg} is not one of the phase Ib "
            f"dose levels ({', '.join(str(d) for d in doses)})"
        )
    levels = scenario.levels
    cover = (levels.cover_weeks if levels else study.supply.cover_weeks) * 7
    for site in scenario.sites:
        if site.lead_days > cover + 7 * 4:
            problems.append(
                f"sites.{site.code}.lead_days: {site.lead_days} days is longer than the forecast "
                f"horizon ({cover} days of cover + 28): a shipment could never arrive in time"
            )
    dnd = study.supply.do_not_dispense_days
    dns = study.supply.do_not_ship_days
    for depot in scenario.depots:
        for i, lot in enumerate(depot.lots):
            if lot.expiry_day - dns <= lot.release_day:
                problems.append(
                    f"depots.{depot.code}.lots.{i}: expires before it could ever be shipped "
                    f"(do-not-ship window {dns} days)"
                )
    target = levels.target if levels else study.supply.resupply_target
    for depot in scenario.depots:
        served = [s for s in scenario.sites if s.depot == depot.code]
        at_start = sum(lot.kits_per_content for lot in depot.lots if lot.release_day == 0)
        if at_start < target * len(served):
            problems.append(
                f"levels.target: {target} kits per content at each of {len(served)} sites need "
                f"{target * len(served)} kits per content at depot {depot.code} on day 0, which "
                f"holds {at_start}: the levels cannot be met"
            )
    del dnd
    return problems


def parse_scenario(data: dict[str, object]) -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(scenario)"
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}")
        raise ScenarioError("invalid scenario: " + "; ".join(problems)) from None


def load_scenario(path: Path, study: StudyDefinition) -> Scenario:
    """Read and check a scenario file against the study; ScenarioError names every problem."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc}") from None
    return scenario_from_text(text, study)


def scenario_from_text(text: str, study: StudyDefinition) -> Scenario:
    """A scenario from TOML text (an upload), checked as a file is."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"invalid scenario: not valid TOML ({exc})") from None
    scenario = parse_scenario(data)
    problems = check_against_study(scenario, study)
    if problems:
        raise ScenarioError("invalid scenario: " + "; ".join(problems))
    return scenario
