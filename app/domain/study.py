"""The study definition: typed, validated, loaded from one TOML file shipped with the package."""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PHASE_IB: Literal["phase_ib"] = "phase_ib"
PHASE_II: Literal["phase_ii"] = "phase_ii"
PHASE_II_SCOPE = "P2"
"""List scope (and cohort code in the database) of phase II."""

NO_STRATUM = "ALL"
"""The single stratum of a list that is not stratified (phase Ib cohorts)."""

STRATIFIABLE_FIELDS = frozenset({"sledai_2k_score", "prednisone_equivalent_mg_per_day"})
EXCLUSION_FIELDS = frozenset(
    {
        "active_or_unstable_neuropsychiatric_sle",
        "active_or_unstable_lupus_nephritis",
        "other_autoimmune_disease",
        "uncontrolled_medical_condition",
        "active_severe_infection",
        "malignancy_within_5_years",
    }
)


class StudyDefinitionError(ValueError):
    """A study definition that cannot be used; the message names every bad field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Arm(_Model):
    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,19}$")
    name: str
    active: bool


class Drug(_Model):
    vial_strength_mg: Decimal = Field(gt=0)
    vial_volume_ml: Decimal = Field(gt=0)
    concentration_mg_per_ml: Decimal = Field(gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> Drug:
        if self.vial_strength_mg != self.vial_volume_ml * self.concentration_mg_per_ml:
            raise ValueError("vial_strength_mg must equal vial_volume_ml x concentration_mg_per_ml")
        return self


class WeightRange(_Model):
    min_kg: Decimal = Field(gt=0)
    max_kg: Decimal = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> WeightRange:
        if self.min_kg >= self.max_kg:
            raise ValueError("min_kg must be below max_kg")
        return self


class EligibilityRules(_Model):
    min_age_years: int = Field(default=18, ge=0, le=120)
    """Youngest age at screening, in completed years (docs/decisions.md, "Eligibility")."""
    max_age_years: int = Field(default=75, ge=0, le=120)
    """Oldest age at screening, in completed years."""
    screening_window_days: int = Field(default=28, ge=0, le=365)
    """Randomization at most this many days after the screening visit."""
    min_weeks_since_diagnosis: int = Field(ge=0)
    min_sledai_2k: int = Field(ge=0, le=105)
    min_bilag_a: int = Field(ge=0, le=9)
    min_bilag_b: int = Field(ge=0, le=9)
    exclusions: tuple[str, ...]

    @model_validator(mode="after")
    def _ages_ordered(self) -> EligibilityRules:
        if self.min_age_years > self.max_age_years:
            raise ValueError("min_age_years must not be above max_age_years")
        return self

    @field_validator("exclusions")
    @classmethod
    def _known_exclusions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - EXCLUSION_FIELDS)
        if unknown:
            raise ValueError(f"unknown exclusion(s) {unknown}; known: {sorted(EXCLUSION_FIELDS)}")
        return value


class Cohort(_Model):
    code: str = Field(pattern=r"^C[0-9]{1,2}$")
    dose_mg_per_kg: Decimal = Field(gt=0)
    cap: int = Field(ge=0)


class StrataFactor(_Model):
    """A factor split at a cutoff into two levels: `<cutoff` and `>=cutoff`."""

    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,15}$")
    field: str
    cutoff: Decimal

    @field_validator("field")
    @classmethod
    def _known_field(cls, value: str) -> str:
        if value not in STRATIFIABLE_FIELDS:
            raise ValueError(
                f"unknown stratification factor {value!r}; known: {sorted(STRATIFIABLE_FIELDS)}"
            )
        return value

    def levels(self) -> tuple[str, str]:
        cut = _plain(self.cutoff)
        return (f"{self.code}<{cut}", f"{self.code}>={cut}")

    def level_of(self, value: Decimal) -> str:
        low, high = self.levels()
        return low if value < self.cutoff else high


class Allocation(_Model):
    """Ratio and block sizes shared by a stage's lists."""

    ratio: dict[str, int]
    block_sizes: tuple[int, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _blocks_fit_ratio(self) -> Allocation:
        if not self.ratio or any(v < 1 for v in self.ratio.values()):
            raise ValueError("ratio: every arm needs a positive whole number")
        unit = sum(self.ratio.values())
        for size in self.block_sizes:
            if size <= 0 or size % unit:
                raise ValueError(
                    f"block_sizes: {size} is not a positive multiple of the ratio total {unit}"
                )
        if len(set(self.block_sizes)) != len(self.block_sizes):
            raise ValueError("block_sizes: each size once")
        return self


class PhaseIb(Allocation):
    cohorts: tuple[Cohort, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct_cohorts(self) -> PhaseIb:
        codes = [c.code for c in self.cohorts]
        if len(set(codes)) != len(codes):
            raise ValueError(f"cohorts: duplicate cohort code in {codes}")
        levels = [c.dose_mg_per_kg for c in self.cohorts]
        if len(set(levels)) != len(levels):
            raise ValueError("cohorts: two cohorts overlap on the same dose level")
        if levels != sorted(levels):
            raise ValueError("cohorts: dose levels must rise from one cohort to the next")
        return self


class PhaseII(Allocation):
    cap: int = Field(ge=0)
    strata_factors: tuple[StrataFactor, ...] = ()

    @model_validator(mode="after")
    def _distinct_factors(self) -> PhaseII:
        fields = [f.field for f in self.strata_factors]
        codes = [f.code for f in self.strata_factors]
        if len(set(fields)) != len(fields) or len(set(codes)) != len(codes):
            raise ValueError("strata_factors: each factor once")
        return self

    def strata(self) -> tuple[str, ...]:
        """Every stratum code, in a fixed order (first factor varies slowest)."""
        combos: list[str] = [""]
        for factor in self.strata_factors:
            combos = [f"{c}/{lvl}" if c else lvl for c in combos for lvl in factor.levels()]
        return tuple(combos) if self.strata_factors else (NO_STRATUM,)


class Schedule(_Model):
    """Dosing visits: day 1 at randomization, then every `visit_interval_weeks` weeks."""

    visit_interval_weeks: int = Field(ge=1, le=52)
    last_week: int = Field(ge=0, le=520)
    window_days_before: int = Field(ge=0, le=90)
    """Days a visit after day 1 may take place before its target date (docs/visits.md)."""
    window_days_after: int = Field(ge=0, le=90)
    """Days it may take place after its target date."""

    @model_validator(mode="after")
    def _whole_intervals(self) -> Schedule:
        if self.last_week % self.visit_interval_weeks:
            raise ValueError("last_week must be a multiple of visit_interval_weeks")
        if self.window_days_before + self.window_days_after >= self.visit_interval_weeks * 7:
            raise ValueError(
                "window_days_before + window_days_after must be shorter than the visit "
                "interval, so that two visits' windows never overlap"
            )
        return self

    def visits(self) -> tuple[Visit, ...]:
        weeks = range(self.visit_interval_weeks, self.last_week + 1, self.visit_interval_weeks)
        return (Visit("D1", 0, 0), *(Visit(f"W{w}", i, w * 7) for i, w in enumerate(weeks, 1)))

    def visit(self, code: str) -> Visit:
        for visit in self.visits():
            if visit.code == code:
                return visit
        raise KeyError(code)


@dataclass(frozen=True)
class Visit:
    code: str
    index: int
    day_offset: int
    """Days after day 1 (the randomization visit)."""


class Supply(_Model):
    """Supply windows and the default levels of every site (a site may have its own)."""

    do_not_dispense_days: int = Field(ge=0)
    do_not_ship_days: int = Field(ge=0)
    resupply_trigger: int = Field(ge=0)
    """Safety kits per content beyond the need within the lead time."""
    resupply_target: int = Field(ge=1)
    """Kits per content beyond the cover need that a shipment brings the stock up to."""
    shipping_lead_days: int = Field(ge=0, le=120)
    cover_weeks: int = Field(default=6, ge=0, le=52)
    """Weeks of forecast need a shipment covers beyond the lead time."""
    subjects_per_site_per_week: Decimal = Field(default=Decimal("0.5"), ge=0, le=50)
    """Expected recruitment of a site, for the forecast of subjects still to come."""
    forecast_weight_kg: Decimal = Field(default=Decimal("90"), gt=0)
    """The weight whose vials the forecast assumes for a subject still to come."""

    @model_validator(mode="after")
    def _levels(self) -> Supply:
        if self.resupply_target <= self.resupply_trigger:
            raise ValueError("resupply_target must be above resupply_trigger")
        if self.do_not_ship_days < self.do_not_dispense_days:
            raise ValueError("do_not_ship_days must be at least do_not_dispense_days")
        return self


class DemoDepot(_Model):
    code: str = Field(pattern=r"^[A-Z0-9-]{2,12}$")
    name: str
    country: str = Field(pattern=r"^[A-Z]{2}$")


class DemoSite(_Model):
    code: str = Field(pattern=r"^[A-Z0-9]{2,12}$")
    name: str
    country: str = Field(pattern=r"^[A-Z]{2}$")


class StudyDefinition(_Model):
    code: str
    name: str
    registry_id: str
    total_cap: int = Field(ge=0)
    randomization_number_prefix: str = Field(pattern=r"^[A-Z0-9]{1,8}$")
    arms: tuple[Arm, ...] = Field(min_length=2)
    drug: Drug
    weight: WeightRange
    eligibility: EligibilityRules
    phase_ib: PhaseIb
    phase_ii: PhaseII
    schedule: Schedule
    supply: Supply
    demo_depots: tuple[DemoDepot, ...] = ()
    demo_sites: tuple[DemoSite, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> StudyDefinition:
        arm_codes = {a.code for a in self.arms}
        if len(arm_codes) != len(self.arms):
            raise ValueError("arms: duplicate arm code")
        if sum(a.active for a in self.arms) != 1:
            raise ValueError("arms: exactly one arm must be the active treatment")
        for stage, alloc in ((PHASE_IB, self.phase_ib), (PHASE_II, self.phase_ii)):
            if set(alloc.ratio) != arm_codes:
                raise ValueError(
                    f"{stage}.ratio: arms {sorted(alloc.ratio)} differ from the study arms "
                    f"{sorted(arm_codes)}"
                )
        stage_caps = sum(c.cap for c in self.phase_ib.cohorts) + self.phase_ii.cap
        if stage_caps != self.total_cap:
            raise ValueError(
                f"total_cap: {self.total_cap} differs from the sum of cohort and phase II caps "
                f"{stage_caps}"
            )
        return self

    @property
    def contents(self) -> tuple[str, ...]:
        """Kit contents: one per arm, the arm's code (a kit holds that arm's vial)."""
        return tuple(sorted(a.code for a in self.arms))

    @property
    def active_arm(self) -> Arm:
        return next(a for a in self.arms if a.active)

    def arm(self, code: str) -> Arm:
        return next(a for a in self.arms if a.code == code)

    def treatment_label(self, arm: str, dose_level: object) -> str:
        """ "IMC-002 1.2 mg/kg" for the active arm, the arm's name (e.g. "Placebo") otherwise."""
        chosen = self.arm(arm)
        return f"{chosen.name} {dose_level} mg/kg" if chosen.active else chosen.name

    def cohort(self, code: str) -> Cohort:
        for cohort in self.phase_ib.cohorts:
            if cohort.code == code:
                return cohort
        raise KeyError(code)

    def scopes(self) -> list[ListScope]:
        """Every randomization list the study needs: one per phase Ib cohort, one for phase II."""
        scopes = [
            ListScope(c.code, PHASE_IB, (NO_STRATUM,), c.cap, self.phase_ib)
            for c in self.phase_ib.cohorts
        ]
        scopes.append(
            ListScope(
                PHASE_II_SCOPE,
                PHASE_II,
                self.phase_ii.strata(),
                self.phase_ii.cap,
                self.phase_ii,
                # places of closed cohorts may move to phase II (app/domain/caps.py): its list
                # holds the study's whole target in every stratum
                length=self.total_cap,
            )
        )
        return scopes

    def scope(self, code: str) -> ListScope:
        for scope in self.scopes():
            if scope.code == code:
                return scope
        raise KeyError(code)

    def fingerprint(self) -> str:
        """SHA-256 of the canonical JSON: ties a list to the definition it came from."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class ListScope:
    """What one randomization list covers: a phase Ib cohort or phase II, with its strata."""

    code: str
    stage: Literal["phase_ib", "phase_ii"]
    strata: tuple[str, ...]
    cap: int
    allocation: Allocation
    length: int = 0
    """Slots a generated list holds in every stratum, at least (0: the cap)."""

    @property
    def slots_per_stratum(self) -> int:
        return max(self.length, self.cap)


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def parse_study(data: dict[str, object]) -> StudyDefinition:
    """Validate raw definition data; raise StudyDefinitionError naming every bad field."""
    try:
        return StudyDefinition.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(definition)"
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}")
        raise StudyDefinitionError("invalid study definition: " + "; ".join(problems)) from None


def load_study(path: Path | None = None) -> StudyDefinition:
    """Load a study definition TOML file (default: the IMC-002 definition shipped with the app)."""
    if path is None:
        text = resources.files("app.studies").joinpath("imc002.toml").read_text("utf-8")
    else:
        text = path.read_text("utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyDefinitionError(f"invalid study definition: not valid TOML ({exc})") from None
    return parse_study(data)
