"""SDTM-style datasets (DM, DS, EX and the TA-style arm table) as CSV, their define-style
variable descriptions, and a zip of them all. Conventions and choices: docs/exports.md."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import pycountry

from app.domain.csv_cells import csv_records
from app.domain.exports.records import (
    ExportData,
    PlannedArm,
    SubjectRecord,
    arm_table,
    iso_date,
    iso_datetime,
    plain,
    usubjid,
)
from app.domain.exports.sdtm_variables import VARIABLES, Variable

Row = dict[str, str]
NOT_ASSIGNED = ("NOTASSGN", "Not Assigned")
NOT_TREATED = ("NOTTRT", "Not Treated")
UNPLANNED = ("UNPLAN", "Unplanned Treatment")
BLINDED = ("BLINDED", "Blinded")
BLINDED_TREATMENT = "BLINDED"
DATASET_NAMES = ("dm", "ds", "ex", "ta")
"""Every dataset of the unblinded export; the blinded one has no TA (its arms name the
treatments) and the same columns otherwise."""


DOSE_FORM = "INJECTION, SOLUTION"
ROUTE = "INTRAVENOUS"


@dataclass(frozen=True)
class Dataset:
    name: str
    rows: list[Row]

    @property
    def variables(self) -> tuple[Variable, ...]:
        return VARIABLES[self.name]


def country_alpha3(alpha2: str) -> str:
    """ISO 3166-1 alpha-3 of an alpha-2 code (the code itself when unknown)."""
    country = pycountry.countries.get(alpha_2=alpha2)
    return str(country.alpha_3) if country is not None else alpha2


def split_dose(dose_mg: Decimal, vials: int, strength_mg: Decimal) -> list[Decimal]:
    """The dose drawn from each of `vials` vials: full vials first, the rest from the last."""
    parts = []
    left = dose_mg
    for _ in range(vials):
        part = min(strength_mg, max(left, Decimal(0)))
        parts.append(part)
        left -= part
    return parts


def planned_arm(data: ExportData, subject: SubjectRecord) -> PlannedArm | None:
    r = subject.randomization
    if r is None or r.arm is None:
        return None
    armcd = f"{r.scope}{r.arm}"
    return next(a for a in arm_table(data.study, data.phase2_dose_mg_per_kg) if a.armcd == armcd)


def _contents(subject: SubjectRecord) -> set[str | None]:
    return {k.content for v in subject.visits for k in v.kits}


def arms_of(data: ExportData, subject: SubjectRecord) -> tuple[str, str, str, str]:
    """ARMCD, ARM, ACTARMCD, ACTARM of a subject (SDTMIG 3.2 conventions, docs/exports.md)."""
    if subject.randomization is None:
        return (*NOT_ASSIGNED, *NOT_ASSIGNED)
    contents = _contents(subject)
    if data.blinded:
        return (*BLINDED, *(BLINDED if contents else NOT_TREATED))
    planned = planned_arm(data, subject)
    assert planned is not None, "an unblinded export carries every subject's arm"
    if not contents:
        return planned.armcd, planned.arm, *NOT_TREATED
    if contents == {planned.arm_code}:
        return planned.armcd, planned.arm, planned.armcd, planned.arm
    if len(contents) == 1:
        armcd = f"{planned.scope}{contents.pop()}"
        table = arm_table(data.study, data.phase2_dose_mg_per_kg)
        actual = next((a for a in table if a.armcd == armcd), None)
        if actual is not None:
            return planned.armcd, planned.arm, actual.armcd, actual.arm
    return planned.armcd, planned.arm, *UNPLANNED


def _treatment_dates(subject: SubjectRecord) -> list[str]:
    return sorted(iso_date(v.visit_date) for v in subject.visits if v.kits)


def dm(data: ExportData) -> Dataset:
    rows = []
    for s in data.subjects:
        armcd, arm, actarmcd, actarm = arms_of(data, s)
        dates = _treatment_dates(s)
        rows.append(
            {
                "STUDYID": data.study.code,
                "DOMAIN": "DM",
                "USUBJID": usubjid(data.study, s),
                "SUBJID": s.screening_number,
                "RFSTDTC": dates[0] if dates else "",
                "RFXSTDTC": dates[0] if dates else "",
                "RFXENDTC": dates[-1] if dates else "",
                "SITEID": s.site_id,
                "BRTHDTC": f"{s.year_of_birth:04d}",
                "SEX": s.sex,
                "ARMCD": armcd,
                "ARM": arm,
                "ACTARMCD": actarmcd,
                "ACTARM": actarm,
                "COUNTRY": country_alpha3(data.site(s.site_id).country),
            }
        )
    return Dataset("dm", sorted(rows, key=lambda r: r["USUBJID"]))


def ds(data: ExportData) -> Dataset:
    rows = [
        {
            "STUDYID": data.study.code,
            "DOMAIN": "DS",
            "USUBJID": usubjid(data.study, s),
            "DSSEQ": "1",
            "DSREFID": s.randomization.number,
            "DSTERM": "RANDOMIZED",
            "DSDECOD": "RANDOMIZED",
            "DSCAT": "PROTOCOL MILESTONE",
            "DSSTDTC": iso_datetime(s.randomization.randomized_at),
        }
        for s in data.subjects
        if s.randomization is not None
    ]
    return Dataset("ds", sorted(rows, key=lambda r: r["USUBJID"]))


def _treatment(data: ExportData, content: str | None) -> str:
    if data.blinded or content is None:
        return BLINDED_TREATMENT
    return data.study.arm(content).name.upper()


def ex(data: ExportData) -> Dataset:
    rows = []
    strength = data.study.drug.vial_strength_mg
    for s in sorted(data.subjects, key=lambda s: usubjid(data.study, s)):
        seq = 0
        for visit in sorted(s.visits, key=lambda v: v.visit_date):
            doses = split_dose(visit.dose_mg, len(visit.kits), strength)
            for kit, dose in zip(visit.kits, doses, strict=True):
                seq += 1
                rows.append(
                    {
                        "STUDYID": data.study.code,
                        "DOMAIN": "EX",
                        "USUBJID": usubjid(data.study, s),
                        "EXSEQ": str(seq),
                        "EXREFID": kit.kit_number,
                        "EXTRT": _treatment(data, kit.content),
                        "EXDOSE": plain(dose),
                        "EXDOSU": "mg",
                        "EXDOSFRM": DOSE_FORM,
                        "EXROUTE": ROUTE,
                        "EXLOT": "" if data.blinded else (kit.lot or ""),
                        "VISIT": visit.visit,
                        "EXSTDTC": iso_date(visit.visit_date),
                        "EXENDTC": iso_date(visit.visit_date),
                    }
                )
    return Dataset("ex", rows)


def ta(data: ExportData) -> Dataset:
    """The arm table: a screening element, then the arm's treatment element."""
    if data.blinded:
        raise ValueError("the arm table names the treatments: no blinded variant")
    rows = []
    for arm in arm_table(data.study, data.phase2_dose_mg_per_kg):
        etcd = f"{arm.scope}{'ACT' if arm.active else 'PBO'}"
        common = {"STUDYID": data.study.code, "DOMAIN": "TA", "ARMCD": arm.armcd, "ARM": arm.arm}
        rows.append(
            {
                **common,
                "TAETORD": "1",
                "ETCD": "SCRN",
                "ELEMENT": "Screening",
                "TABRANCH": f"Randomized to {arm.arm}",
                "EPOCH": "SCREENING",
            }
        )
        rows.append(
            {
                **common,
                "TAETORD": "2",
                "ETCD": etcd,
                "ELEMENT": arm.element,
                "TABRANCH": "",
                "EPOCH": "TREATMENT",
            }
        )
    return Dataset("ta", rows)


BUILDERS = {"dm": dm, "ds": ds, "ex": ex, "ta": ta}


def dataset_names(blinded: bool) -> tuple[str, ...]:
    return tuple(n for n in DATASET_NAMES if not (blinded and n == "ta"))


def datasets(data: ExportData) -> list[Dataset]:
    return [BUILDERS[name](data) for name in dataset_names(data.blinded)]


def to_csv(dataset: Dataset) -> str:
    """The dataset as CSV: a header of the variable names, then one line a row (cells that a
    spreadsheet would take for a formula neutralised, `csv_records`)."""
    return csv_records([v.name for v in dataset.variables], dataset.rows)


DEFINE_COLUMNS = ("dataset", "variable", "label", "type", "length", "role", "origin", "comment")


def define_rows(sets: Iterable[Dataset]) -> list[Row]:
    """Define-style metadata: one row per variable; the length is the longest value (at least
    1) for text, 8 for numbers, as in define.xml."""
    rows = []
    for dataset in sets:
        for var in dataset.variables:
            longest = max((len(r[var.name]) for r in dataset.rows), default=0)
            rows.append(
                {
                    "dataset": dataset.name.upper(),
                    "variable": var.name,
                    "label": var.label,
                    "type": var.type,
                    "length": "8" if var.type == "Num" else str(max(longest, 1)),
                    "role": var.role,
                    "origin": var.origin,
                    "comment": var.comment,
                }
            )
    return rows


def define_csv(sets: Iterable[Dataset]) -> str:
    return csv_records(DEFINE_COLUMNS, define_rows(sets))


def dataset_csv(data: ExportData, name: str) -> str:
    """One dataset (dm, ds, ex, ta) or `define` as CSV."""
    if name == "define":
        return define_csv(datasets(data))
    if name not in dataset_names(data.blinded):
        raise KeyError(name)
    return to_csv(BUILDERS[name](data))


def sdtm_zip(data: ExportData) -> bytes:
    """Every dataset and define.csv in one zip; entries dated at the snapshot time."""
    sets = datasets(data)
    stamp = data.created_at.timetuple()[:6]
    files = [(f"{d.name}.csv", to_csv(d)) for d in sets] + [("define.csv", define_csv(sets))]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("utf-8"))
    return out.getvalue()
