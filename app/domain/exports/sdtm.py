"""The SDTM subject datasets (DM, DS, EX) of the IRT's data, unblinded or blinded; the trial
design datasets are in `sdtm_trial`, the files (CSV, XPT, define) in `sdtm_files`. SDTMIG 3.4
conventions; choices and the variables left null: docs/exports.md."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import pycountry

from app.domain.dates import local_date, local_iso
from app.domain.exports.records import (
    DispositionRecord,
    ExportData,
    PlannedArm,
    SubjectRecord,
    arm_table,
    iso_date,
    plain,
    usubjid,
)
from app.domain.exports.sdtm_trial import (
    BLINDED_ARM,
    SCREENING,
    TREATMENT,
    visit_numbers,
)
from app.domain.exports.sdtm_variables import Dataset, Row

BLINDED_TREATMENT = "BLINDED"
DOSE_FORM = "INJECTION, SOLUTION"
ROUTE = "INTRAVENOUS"
DSTERM_MAX = 200
"""SAS XPT v5 holds at most 200 characters a value; a longer reason is cut (docs/exports.md)."""

# ARMNRS (codelist ARMNULRS)
NOT_ASSIGNED = "NOT ASSIGNED"
SCREEN_FAILURE = "SCREEN FAILURE"
NOT_TREATED = "ASSIGNED, NOT TREATED"
UNPLANNED = "UNPLANNED TREATMENT"

DISPOSITION_TERMS = {
    "adverse_event": "ADVERSE EVENT",
    "lack_of_efficacy": "LACK OF EFFICACY",
    "pregnancy": "PREGNANCY",
    "protocol_deviation": "PROTOCOL DEVIATION",
    "physician_decision": "PHYSICIAN DECISION",
    "withdrawal_by_subject": "WITHDRAWAL BY SUBJECT",
    "lost_to_follow_up": "LOST TO FOLLOW-UP",
    "death": "DEATH",
    "sponsor_decision": "STUDY TERMINATED BY SPONSOR",
    "eligibility_not_met": "SCREEN FAILURE",
    "completed": "COMPLETED",
    "other": "OTHER",
}
"""The lifecycle's reason categories (app/domain/lifecycle.py) as CDISC NCOMPLT terms."""
ACT_SUBCATEGORY = {
    "screen_fail": "STUDY PARTICIPATION",
    "withdraw": "STUDY PARTICIPATION",
    "discontinue": "STUDY TREATMENT",
    "complete": "STUDY TREATMENT",
}


@dataclass(frozen=True)
class Arms:
    """A subject's DM arm variables; a code and its description are null together."""

    armcd: str = ""
    arm: str = ""
    actarmcd: str = ""
    actarm: str = ""
    armnrs: str = ""
    actarmud: str = ""


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


def _standing(subject: SubjectRecord, act: str) -> DispositionRecord | None:
    return next((d for d in subject.dispositions if d.act == act), None)


def arms_of(data: ExportData, subject: SubjectRecord) -> Arms:
    """The arm variables (SDTMIG 3.4 DM assumption 4): the planned and the actual arm from TA,
    or null with the reason in ARMNRS; ACTARMUD describes an off-plan treatment."""
    if subject.randomization is None:
        failed = _standing(subject, "screen_fail") is not None
        return Arms(armnrs=SCREEN_FAILURE if failed else NOT_ASSIGNED)
    contents = _contents(subject)
    if data.blinded:
        code, name = BLINDED_ARM
        if not contents:
            return Arms(code, name, armnrs=NOT_TREATED)
        return Arms(code, name, code, name)
    planned = planned_arm(data, subject)
    assert planned is not None, "an unblinded export carries every subject's arm"
    if not contents:
        return Arms(planned.armcd, planned.arm, armnrs=NOT_TREATED)
    if len(contents) == 1:
        armcd = f"{planned.scope}{next(iter(contents))}"
        table = arm_table(data.study, data.phase2_dose_mg_per_kg)
        actual = next((a for a in table if a.armcd == armcd), None)
        if actual is not None:
            return Arms(planned.armcd, planned.arm, actual.armcd, actual.arm)
    names = sorted(_treatment(data, c) for c in contents)
    return Arms(planned.armcd, planned.arm, armnrs=UNPLANNED, actarmud=" AND ".join(names))


def _treatment(data: ExportData, content: str | None) -> str:
    if data.blinded or content is None:
        return BLINDED_TREATMENT
    return data.study.arm(content).name.upper()


def _treatment_dates(subject: SubjectRecord) -> list[str]:
    return sorted(iso_date(v.visit_date) for v in subject.visits if v.kits)


def _timezone(data: ExportData, subject: SubjectRecord) -> str:
    return data.site(subject.site_id).timezone


def randomization_start(data: ExportData, subject: SubjectRecord) -> str:
    """DSSTDTC of the randomization: the site's local date and time of the IRT's allocation;
    the day 1 visit date alone when the site's local date is after it (a randomization entered
    after the visit: the IRT's own time is DSDTC)."""
    r = subject.randomization
    assert r is not None
    zone = _timezone(data, subject)
    if local_date(r.randomized_at, zone) > r.visit_date:
        return iso_date(r.visit_date)
    return local_iso(r.randomized_at, zone)


def _known_dates(data: ExportData, subject: SubjectRecord) -> list[date]:
    """Every date the IRT recorded for the subject, in the site's calendar."""
    zone = _timezone(data, subject)
    moments: list[datetime] = [m for m in (subject.registered_at, subject.unblinded_at) if m]
    days = [local_date(m, zone) for m in moments]
    days += [v.visit_date for v in subject.visits]
    days += [d.effective_date for d in subject.dispositions if d.effective_date]
    if subject.randomization is not None:
        days.append(subject.randomization.visit_date)
    return days


def _age_range(subject: SubjectRecord, reference: date | None) -> str:
    """The two ages a subject born in `year_of_birth` may have on `reference`."""
    if reference is None:
        return ""
    oldest = reference.year - subject.year_of_birth
    return f"{max(oldest - 1, 0)}-{oldest}"


def _reference_day(data: ExportData, subject: SubjectRecord, first_dose: str) -> date | None:
    if first_dose:
        return date.fromisoformat(first_dose)
    if subject.randomization is not None:
        return subject.randomization.visit_date
    if subject.registered_at is not None:
        return local_date(subject.registered_at, _timezone(data, subject))
    return None


def dm(data: ExportData) -> Dataset:
    rows = []
    for s in data.subjects:
        arms = arms_of(data, s)
        dates = _treatment_dates(s)
        first = dates[0] if dates else ""
        death = next((d for d in s.dispositions if d.reason_category == "death"), None)
        ends = [*dates, *(iso_date(d.effective_date) for d in s.dispositions if d.effective_date)]
        known = _known_dates(data, s)
        rows.append(
            {
                "STUDYID": data.study.code,
                "DOMAIN": "DM",
                "USUBJID": usubjid(data.study, s),
                "SUBJID": s.screening_number,
                "RFSTDTC": first,
                "RFENDTC": max(ends) if ends and s.randomization else "",
                "RFXSTDTC": first,
                "RFXENDTC": dates[-1] if dates else "",
                "RFICDTC": "",
                "RFPENDTC": iso_date(max(known)) if known else "",
                "DTHDTC": iso_date(death.effective_date) if death and death.effective_date else "",
                "DTHFL": "Y" if death else "",
                "SITEID": s.site_id,
                "BRTHDTC": f"{s.year_of_birth:04d}",
                "AGE": "",
                "AGETXT": _age_range(s, _reference_day(data, s, first)),
                "AGEU": "YEARS",
                "SEX": s.sex,
                "RACE": "",
                "ARMCD": arms.armcd,
                "ARM": arms.arm,
                "ACTARMCD": arms.actarmcd,
                "ACTARM": arms.actarm,
                "ARMNRS": arms.armnrs,
                "ACTARMUD": arms.actarmud,
                "COUNTRY": country_alpha3(data.site(s.site_id).country),
            }
        )
    return Dataset("dm", sorted(rows, key=lambda r: r["USUBJID"]))


def _epoch_at(day: str, first_dose: str) -> str:
    return TREATMENT if first_dose and day[:10] >= first_dose else SCREENING


def _disposition_rows(data: ExportData, subject: SubjectRecord, first_dose: str) -> list[Row]:
    zone = _timezone(data, subject)
    rows = []
    for d in subject.dispositions:
        decod = DISPOSITION_TERMS.get(d.reason_category or "", "OTHER")
        if d.act == "screen_fail":
            decod = "SCREEN FAILURE"
        elif d.act == "complete":
            decod = "COMPLETED"
        start = iso_date(d.effective_date) if d.effective_date else ""
        term = " ".join(d.reason.split()).upper()[:DSTERM_MAX] or decod
        rows.append(
            {
                "DSREFID": "",
                "DSTERM": term,
                "DSDECOD": decod,
                "DSCAT": "DISPOSITION EVENT",
                "DSSCAT": ACT_SUBCATEGORY.get(d.act, ""),
                "EPOCH": _epoch_at(start, first_dose) if start else "",
                "DSDTC": local_iso(d.recorded_at, zone),
                "DSSTDTC": start,
            }
        )
    return rows


def _subject_ds(data: ExportData, subject: SubjectRecord) -> list[Row]:
    """The subject's disposition records in time order: randomization (a protocol milestone),
    the disposition events that stand, and an emergency unblinding (another event)."""
    dates = _treatment_dates(subject)
    first = dates[0] if dates else ""
    zone = _timezone(data, subject)
    rows: list[Row] = []
    r = subject.randomization
    if r is not None:
        start = randomization_start(data, subject)
        rows.append(
            {
                "DSREFID": r.number,
                "DSTERM": "RANDOMIZED",
                "DSDECOD": "RANDOMIZED",
                "DSCAT": "PROTOCOL MILESTONE",
                "DSSCAT": "",
                "EPOCH": SCREENING,
                "DSDTC": local_iso(r.randomized_at, zone),
                "DSSTDTC": start,
            }
        )
    rows += _disposition_rows(data, subject, first)
    if subject.unblinded_at is not None:
        start = local_iso(subject.unblinded_at, zone)
        rows.append(
            {
                "DSREFID": "",
                "DSTERM": "EMERGENCY UNBLINDING BY THE INVESTIGATOR",
                "DSDECOD": "TREATMENT UNBLINDED",
                "DSCAT": "OTHER EVENT",
                "DSSCAT": "",
                "EPOCH": _epoch_at(start, first),
                "DSDTC": start,
                "DSSTDTC": start,
            }
        )
    rows.sort(key=lambda row: row["DSSTDTC"])
    subject_id = usubjid(data.study, subject)
    return [
        {"STUDYID": data.study.code, "DOMAIN": "DS", "USUBJID": subject_id, "DSSEQ": str(i), **row}
        for i, row in enumerate(rows, start=1)
    ]


def ds(data: ExportData) -> Dataset:
    subjects = sorted(data.subjects, key=lambda s: usubjid(data.study, s))
    return Dataset("ds", [row for s in subjects for row in _subject_ds(data, s)])


def ex(data: ExportData) -> Dataset:
    rows = []
    strength = data.study.drug.vial_strength_mg
    numbers = visit_numbers(data.study)
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
                        "VISITNUM": str(numbers.get(visit.visit, "")),
                        "VISIT": visit.visit,
                        "EPOCH": TREATMENT,
                        "EXSTDTC": iso_date(visit.visit_date),
                        "EXENDTC": iso_date(visit.visit_date),
                    }
                )
    return Dataset("ex", rows)
