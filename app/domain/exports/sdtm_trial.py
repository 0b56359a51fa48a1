"""The SDTM trial design datasets: arms (TA), elements (TE) and visits (TV), from the study
definition and the phase II dose. The blinded variant has one arm, BLINDED, whose treatment
element names no treatment, so that the blinded DM's ARMCD is in its TA (docs/exports.md)."""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.exports.records import ExportData, PlannedArm, arm_table
from app.domain.exports.sdtm_variables import Dataset, Row
from app.domain.study import StudyDefinition

SCREENING = "SCREENING"
TREATMENT = "TREATMENT"
BLINDED_ARM = ("BLINDED", "Blinded")
SCREEN_ELEMENT = ("SCRN", "Screening")
BLINDED_ELEMENT = ("BLINDTRT", "Blinded study treatment + SOC")


@dataclass(frozen=True)
class Element:
    etcd: str
    element: str
    start_rule: str
    end_rule: str
    duration: str


def visit_numbers(study: StudyDefinition) -> dict[str, int]:
    """VISITNUM of each scheduled visit: its place in the schedule, day 1 = 1."""
    return {v.code: v.index + 1 for v in study.schedule.visits()}


def _treatment_weeks(study: StudyDefinition) -> int:
    return study.schedule.last_week + study.schedule.visit_interval_weeks


def _screening(study: StudyDefinition) -> Element:
    return Element(
        *SCREEN_ELEMENT,
        "Registration of the subject in the IRT",
        "Randomization at the day 1 visit",
        "",
    )


def _treatment_element(study: StudyDefinition, etcd: str, element: str) -> Element:
    weeks = _treatment_weeks(study)
    return Element(
        etcd,
        element,
        "First dose at the day 1 visit",
        f"{study.schedule.visit_interval_weeks} weeks after the week "
        f"{study.schedule.last_week} dose, or discontinuation of treatment",
        f"P{weeks}W",
    )


def _treatment_code(arm: PlannedArm) -> str:
    return f"{arm.scope}{'ACT' if arm.active else 'PBO'}"


def elements(data: ExportData) -> list[Element]:
    """Screening, then one treatment element per arm (its description is the arm's, unique)."""
    study = data.study
    if data.blinded:
        return [_screening(study), _treatment_element(study, *BLINDED_ELEMENT)]
    table = arm_table(study, data.phase2_dose_mg_per_kg)
    return [
        _screening(study),
        *(_treatment_element(study, _treatment_code(a), a.arm) for a in table),
    ]


def arms(data: ExportData) -> list[tuple[str, str, Element]]:
    """(ARMCD, ARM, treatment element) of each planned arm."""
    if data.blinded:
        return [(*BLINDED_ARM, _treatment_element(data.study, *BLINDED_ELEMENT))]
    by_code = {e.etcd: e for e in elements(data)}
    return [
        (a.armcd, a.arm, by_code[_treatment_code(a)])
        for a in arm_table(data.study, data.phase2_dose_mg_per_kg)
    ]


def ta(data: ExportData) -> Dataset:
    """Each arm: screening (branching at randomization), then its treatment element."""
    screening = _screening(data.study)
    rows: list[Row] = []
    for armcd, arm, treatment in arms(data):
        common = {"STUDYID": data.study.code, "DOMAIN": "TA", "ARMCD": armcd, "ARM": arm}
        rows.append(
            {
                **common,
                "TAETORD": "1",
                "ETCD": screening.etcd,
                "ELEMENT": screening.element,
                "TABRANCH": f"Randomized to {arm}",
                "TATRANS": "",
                "EPOCH": SCREENING,
            }
        )
        rows.append(
            {
                **common,
                "TAETORD": "2",
                "ETCD": treatment.etcd,
                "ELEMENT": treatment.element,
                "TABRANCH": "",
                "TATRANS": "",
                "EPOCH": TREATMENT,
            }
        )
    return Dataset("ta", rows)


def te(data: ExportData) -> Dataset:
    rows = [
        {
            "STUDYID": data.study.code,
            "DOMAIN": "TE",
            "ETCD": e.etcd,
            "ELEMENT": e.element,
            "TESTRL": e.start_rule,
            "TEENRL": e.end_rule,
            "TEDUR": e.duration,
        }
        for e in elements(data)
    ]
    return Dataset("te", rows)


def tv(data: ExportData) -> Dataset:
    """The dosing visits, the same in every arm (ARMCD null)."""
    rows = []
    for visit in data.study.schedule.visits():
        rule = (
            "Randomization and first dose"
            if visit.day_offset == 0
            else f"Dosing visit {visit.day_offset // 7} weeks after day 1"
        )
        rows.append(
            {
                "STUDYID": data.study.code,
                "DOMAIN": "TV",
                "VISITNUM": str(visit.index + 1),
                "VISIT": visit.code,
                "VISITDY": str(visit.day_offset + 1),
                "ARMCD": "",
                "TVSTRL": rule,
            }
        )
    return Dataset("tv", rows)
