"""The snapshot every export is built from, and the study's arm table (TA-style)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from app.domain.study import PHASE_II_SCOPE, StudyDefinition


@dataclass(frozen=True)
class SiteRecord:
    site_id: str
    name: str
    country: str
    """ISO 3166-1 alpha-2."""
    timezone: str = "UTC"
    """IANA time zone: the site's local dates and times (app/domain/dates.py)."""


@dataclass(frozen=True)
class KitRecord:
    """A kit in use at a visit (a replaced kit is not one). Content and lot: None when blinded."""

    kit_number: str
    content: str | None = None
    lot: str | None = None


@dataclass(frozen=True)
class VisitRecord:
    visit: str
    visit_date: date
    dose_mg: Decimal
    kits: tuple[KitRecord, ...]


@dataclass(frozen=True)
class RandomizationRecord:
    number: str
    stage: str
    scope: str
    """Phase Ib cohort code or the phase II scope (P2)."""
    stratum: str
    randomized_at: datetime
    visit_date: date
    arm: str | None = None
    """Arm code; None when blinded."""


@dataclass(frozen=True)
class DispositionRecord:
    """A status change that stands (not undone by a correction): screen failure,
    discontinuation of treatment, withdrawal from the study or completion."""

    act: str
    """"screen_fail", "discontinue", "withdraw" or "complete" (app/domain/lifecycle.py)."""
    reason_category: str | None
    reason: str
    effective_date: date | None
    recorded_at: datetime


@dataclass(frozen=True)
class SubjectRecord:
    subject_id: int
    site_id: str
    screening_number: str
    sex: str
    year_of_birth: int
    randomization: RandomizationRecord | None = None
    visits: tuple[VisitRecord, ...] = ()
    registered_at: datetime | None = None
    unblinded_at: datetime | None = None
    """When an investigator broke the blind for this subject (an emergency unblinding)."""
    dispositions: tuple[DispositionRecord, ...] = ()


@dataclass(frozen=True)
class ExportData:
    """Everything an export shows, read in one transaction."""

    study: StudyDefinition
    phase2_dose_mg_per_kg: Decimal | None
    sites: tuple[SiteRecord, ...]
    subjects: tuple[SubjectRecord, ...]
    created_at: datetime
    blinded: bool

    def site(self, site_id: str) -> SiteRecord:
        return next(s for s in self.sites if s.site_id == site_id)


@dataclass(frozen=True)
class PlannedArm:
    """One row of the arm table: an arm of one list scope (phase Ib cohort or phase II)."""

    armcd: str
    arm: str
    scope: str
    arm_code: str
    active: bool
    element: str


def plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros: 56.00 -> "56", 0.80 -> "0.8"."""
    text = format(value.normalize(), "f")
    return text


def arm_table(study: StudyDefinition, phase2_dose_mg_per_kg: Decimal | None) -> list[PlannedArm]:
    """The planned arms: each study arm in each scope, since the active dose differs by cohort.

    ARMCD is the scope code followed by the arm code (C1IMC002, P2PLACEBO).
    """
    doses: list[tuple[str, str, Decimal | None]] = [
        (c.code, f"Phase Ib {c.code}", c.dose_mg_per_kg) for c in study.phase_ib.cohorts
    ]
    doses.append((PHASE_II_SCOPE, "Phase II", phase2_dose_mg_per_kg))
    arms = sorted(study.arms, key=lambda a: (not a.active, a.code))
    table = []
    for scope, label, dose in doses:
        for arm in arms:
            if not arm.active:
                element = f"{arm.name} + SOC"
            elif dose is None:
                element = f"{arm.name} (dose not yet selected) + SOC"
            else:
                element = f"{arm.name} {plain(dose)} mg/kg + SOC"
            table.append(
                PlannedArm(
                    f"{scope}{arm.code}",
                    f"{label}: {element}",
                    scope,
                    arm.code,
                    arm.active,
                    element,
                )
            )
    return table


def iso_date(value: date) -> str:
    return value.isoformat()


def iso_datetime(moment: datetime) -> str:
    """ISO 8601 in UTC to the second, without offset (SDTM --DTC style)."""
    return moment.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat()


def site_subject(site_id: str, screening_number: str) -> str:
    """The subject's number qualified by its site, the site written once: "DE01-001" for
    DE01's "001" and for DE01's "DE01-001" alike (sites often number their subjects so)."""
    if screening_number.startswith(f"{site_id}-"):
        return screening_number
    return f"{site_id}-{screening_number}"


def subject_spellings(site_id: str, screening_number: str) -> tuple[str, ...]:
    """Every screening number at the site with the same `site_subject` (the number with and
    without the site's prefix): registering one of them once keeps USUBJID unique."""
    qualified = site_subject(site_id, screening_number)
    bare = qualified.removeprefix(f"{site_id}-")
    spellings = (qualified, bare) if site_subject(site_id, bare) == qualified else (qualified,)
    return tuple(dict.fromkeys((screening_number, *spellings)))


def usubjid(study: StudyDefinition, subject: SubjectRecord) -> str:
    """Unique across the study: STUDYID-SITEID-SUBJID with the site written once
    (`site_subject`); registration refuses a number whose site-qualified form is taken."""
    return f"{study.code}-{site_subject(subject.site_id, subject.screening_number)}"
