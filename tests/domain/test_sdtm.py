"""The SDTM builders on any generated study data (the strategies of test_exports.py), unblinded
and blinded: the CSV and XPT packages hold every dataset, the XPT package passes the SDTMIG
3.4 conformance check with its define.xml, a blinded package names no arm, content or lot; the
site's local time, the arm rules and the USUBJID rules; and a defect fails the check."""

from __future__ import annotations

import csv
import io
import math
import zipfile
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache

import pytest
import xmlschema
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from app.domain import dates
from app.domain.exports import sdtm, sdtm_files, sdtm_trial
from app.domain.exports.records import (
    DispositionRecord,
    ExportData,
    KitRecord,
    RandomizationRecord,
    SiteRecord,
    SubjectRecord,
    VisitRecord,
    arm_table,
    site_subject,
    subject_spellings,
    usubjid,
)
from app.domain.study import PHASE_IB, load_study
from tests.domain.test_exports import blind, export_data
from tests.support.sdtm_conformance import check_package, define_schema, read_package

STUDY = load_study()
NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
ZONES = {"DE01": "Europe/Berlin", "DE02": "Pacific/Kiritimati", "US01": "America/Los_Angeles"}
STRENGTH = STUDY.drug.vial_strength_mg
NAMES = ["dm", "ds", "ex", "ta", "te", "tv"]


@cache
def _schema() -> xmlschema.XMLSchema:
    return define_schema()


def _zoned(data: ExportData) -> ExportData:
    """The sites in time zones far apart (UTC+14, UTC-8), registration a week before, the
    visits named as the schedule names them."""
    sites = tuple(replace(s, timezone=ZONES[s.site_id]) for s in data.sites)
    codes = [v.code for v in STUDY.schedule.visits()]
    subjects = tuple(
        replace(
            s,
            registered_at=(s.randomization.randomized_at if s.randomization else NOW)
            - timedelta(days=7),
            visits=tuple(replace(v, visit=codes[i]) for i, v in enumerate(s.visits)),
        )
        for s in data.subjects
    )
    return replace(data, sites=sites, subjects=subjects)


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _leaks(text: str) -> list[str]:
    words = ["placebo", "imc002", "lot-", *(a.armcd.lower() for a in arm_table(STUDY, None))]
    return [w for w in words if w in text.lower()]


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # no slow explain
)
@given(export_data(), st.booleans())
def test_the_xpt_package_conforms_for_any_trial(data: ExportData, blinded: bool) -> None:
    data = _zoned(blind(data) if blinded else data)
    content = sdtm_files.sdtm_zip(data, "xpt")
    assert zipfile.ZipFile(io.BytesIO(content)).namelist() == [
        *(f"{n}.xpt" for n in NAMES),
        "define.xml",
    ]
    package = read_package(content)
    assert check_package(package, _schema()) == []
    assert len(package.rows["DM"]) == len(data.subjects)
    if blinded:
        archive = zipfile.ZipFile(io.BytesIO(content))
        texts = [archive.read(n).decode("latin-1") for n in archive.namelist()]
        assert all(_leaks(t) == [] for t in texts)
        assert {r["ARMCD"] for r in package.rows["TA"]} == {"BLINDED"}


@settings(max_examples=30, deadline=None)
@given(export_data(), st.booleans())
def test_the_csv_package(data: ExportData, blinded: bool) -> None:
    data = blind(data) if blinded else data
    archive = zipfile.ZipFile(io.BytesIO(sdtm_files.sdtm_zip(data)))
    names = [*(f"{n}.csv" for n in NAMES), "define.csv"]
    assert archive.namelist() == names
    files = {n: archive.read(n).decode() for n in names}
    ds, ex = (_rows(files[f"{n}.csv"]) for n in ("ds", "ex"))
    randomized = [s for s in data.subjects if s.randomization]
    numbers = {r["DSREFID"] for r in ds if r["DSDECOD"] == "RANDOMIZED"}
    assert numbers == {s.randomization.number for s in randomized}  # type: ignore[union-attr]
    kits = [k for s in data.subjects for v in s.visits for k in v.kits]
    assert sorted(r["EXREFID"] for r in ex) == sorted(k.kit_number for k in kits)
    for s in data.subjects:
        for v in s.visits:
            rows = [r for r in ex if r["EXREFID"] in {k.kit_number for k in v.kits}]
            if rows:
                assert sum(Decimal(r["EXDOSE"]) for r in rows) == v.dose_mg
    define = _rows(files["define.csv"])
    for name in names[:-1]:
        header = files[name].splitlines()[0].split(",")
        assert header == [d["variable"] for d in define if d["dataset"] == name[:2].upper()]
    if blinded:
        assert all(_leaks(text) == [] for text in files.values()), files
        assert {r["EXTRT"] for r in ex} <= {"BLINDED"} and {r["EXLOT"] for r in ex} <= {""}


@given(
    st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC)),
    st.sampled_from(sorted(ZONES.values())),
    st.integers(-1, 3),
)
def test_randomization_is_never_after_the_day_1_visit(
    moment: datetime, zone: str, days_entered_late: int
) -> None:
    """DSSTDTC is the site's local time, or the day 1 date when entered after the visit."""
    visit = dates.local_date(moment, zone) - timedelta(days=days_entered_late)
    r = RandomizationRecord("IMC-0001", PHASE_IB, "C1", "ALL", moment, visit, "IMC002")
    subject = SubjectRecord(1, "DE01", "001", "F", 1980, r)
    data = ExportData(STUDY, None, (SiteRecord("DE01", "x", "DE", zone),), (), NOW, False)
    start = sdtm.randomization_start(data, subject)
    assert start[:10] <= visit.isoformat()
    if days_entered_late <= 0:
        assert start == dates.local_iso(moment, zone)
        exact = datetime.fromisoformat(dates.local_iso(moment, zone, offset=True))
        assert exact == moment.replace(microsecond=0) and start == exact.isoformat()[:19]


@given(
    st.sampled_from(["DE01", "US01"]),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,11}", fullmatch=True),
)
def test_usubjid_names_the_site_once(site: str, number: str) -> None:
    """Registration refuses every spelling of a number already there, so the site-qualified
    numbers, and with them the USUBJIDs, are unique."""
    qualified = site_subject(site, number)
    assert qualified.startswith(f"{site}-") and qualified.endswith(number)
    spellings = subject_spellings(site, number)
    assert number in spellings and {site_subject(site, n) for n in spellings} == {qualified}
    prefixed = f"{site}-{number}"
    assert (prefixed in spellings) is (site_subject(site, prefixed) == qualified)
    assert usubjid(STUDY, SubjectRecord(1, site, number, "F", 1980)) == f"{STUDY.code}-{qualified}"


def test_usubjid_without_the_repeated_site() -> None:
    subject = SubjectRecord(1, "DE01", "DE01-001", "F", 1980)
    assert usubjid(STUDY, subject) == "IMC-002-DE01-001"
    assert usubjid(STUDY, replace(subject, screening_number="001")) == "IMC-002-DE01-001"
    assert subject_spellings("DE01", "001") == ("001", "DE01-001")


def _subject(**changes: object) -> SubjectRecord:
    at = datetime(2025, 1, 1, 9, tzinfo=UTC)
    r = RandomizationRecord("IMC-0001", PHASE_IB, "C1", "ALL", at, at.date(), "IMC002")
    visit = VisitRecord("D1", date(2025, 1, 1), Decimal("56"), (KitRecord("K1", "IMC002", "L1"),))
    base = SubjectRecord(1, "DE01", "001", "F", 1980, r, (visit,), registered_at=at)
    return replace(base, **changes)  # type: ignore[arg-type]


SITES = (SiteRecord("DE01", "Berlin", "DE", "Europe/Berlin"),)


def test_arms_follow_the_kits_and_say_why_they_are_null() -> None:
    data = ExportData(STUDY, None, SITES, (), NOW, blinded=False)
    treated = _subject()
    wrong = VisitRecord("W4", date(2025, 1, 29), Decimal("56"), (KitRecord("K2", "PLACEBO", "L"),))
    c1 = "Phase Ib C1: IMC-002 0.8 mg/kg + SOC"
    assert sdtm.arms_of(data, treated) == sdtm.Arms("C1IMC002", c1, "C1IMC002", c1)
    assert sdtm.arms_of(data, replace(treated, visits=())) == sdtm.Arms(
        "C1IMC002", c1, armnrs="ASSIGNED, NOT TREATED"
    )
    mixed = sdtm.arms_of(data, replace(treated, visits=(*treated.visits, wrong)))
    assert (mixed.actarmcd, mixed.armnrs, mixed.actarmud) == (
        "",
        "UNPLANNED TREATMENT",
        "IMC-002 AND PLACEBO",
    )
    only_placebo = replace(treated, visits=(replace(wrong, visit="D1"),))
    assert sdtm.arms_of(data, only_placebo).actarmcd == "C1PLACEBO"
    failed = DispositionRecord("screen_fail", "eligibility_not_met", "low", date(2025, 1, 1), NOW)
    assert sdtm.arms_of(data, _subject(randomization=None, dispositions=(failed,))) == sdtm.Arms(
        armnrs="SCREEN FAILURE"
    )
    assert sdtm.arms_of(data, _subject(randomization=None, visits=())).armnrs == "NOT ASSIGNED"


def test_disposition_death_and_unblinding() -> None:
    death = DispositionRecord("withdraw", "death", "died at home", date(2025, 2, 1), NOW)
    subject = _subject(dispositions=(death,), unblinded_at=datetime(2025, 1, 20, 23, tzinfo=UTC))
    data = ExportData(STUDY, None, SITES, (subject,), NOW, blinded=False)
    (dm,) = sdtm.dm(data).rows
    assert (dm["DTHFL"], dm["DTHDTC"], dm["RFENDTC"], dm["RFPENDTC"]) == (
        "Y",
        "2025-02-01",
        "2025-02-01",
        "2025-02-01",
    )
    assert (dm["AGE"], dm["AGETXT"], dm["AGEU"]) == ("", "44-45", "YEARS")
    ds = sdtm.ds(data).rows
    assert [(r["DSSEQ"], r["DSDECOD"], r["DSSTDTC"]) for r in ds] == [
        ("1", "RANDOMIZED", "2025-01-01T10:00:00"),
        ("2", "TREATMENT UNBLINDED", "2025-01-21T00:00:00"),  # Berlin's date, not UTC's
        ("3", "DEATH", "2025-02-01"),
    ]
    assert ds[2]["DSSCAT"] == "STUDY PARTICIPATION" and ds[2]["DSTERM"] == "DIED AT HOME"


def test_trial_design_is_consistent() -> None:
    data = ExportData(STUDY, Decimal("1.2"), SITES, (), NOW, blinded=False)
    ta, te, tv = sdtm_trial.ta(data).rows, sdtm_trial.te(data).rows, sdtm_trial.tv(data).rows
    arms = {r["ARMCD"]: r["ARM"] for r in ta}
    assert arms["P2IMC002"] == "Phase II: IMC-002 1.2 mg/kg + SOC"
    assert len(arms) == 2 * (len(STUDY.phase_ib.cohorts) + 1) and len(ta) == 2 * len(arms)
    assert {r["ETCD"] for r in ta} == {r["ETCD"] for r in te}
    assert [r["VISITNUM"] for r in tv] == [str(i) for i in range(1, 14)]
    assert (tv[0]["VISIT"], tv[1]["VISIT"], tv[1]["VISITDY"]) == ("D1", "W4", "29")
    assert sdtm_trial.visit_numbers(STUDY)["W48"] == 13


@given(st.decimals(Decimal("0.1"), Decimal("2000"), places=2))
def test_split_dose_draws_full_vials_first(dose: Decimal) -> None:
    vials = math.ceil(dose / STRENGTH)
    parts = sdtm.split_dose(dose, vials, STRENGTH)
    assert sum(parts) == dose and len(parts) == vials
    assert all(p == STRENGTH for p in parts[:-1]) and 0 < parts[-1] <= STRENGTH


def test_country_is_alpha_3() -> None:
    assert [sdtm.country_alpha3(c) for c in ("DE", "US", "XX")] == ["DEU", "USA", "XX"]


def _two_subjects() -> ExportData:
    second = _subject(subject_id=2, screening_number="002", sex="M")
    return ExportData(STUDY, None, SITES, (_subject(), second), NOW, blinded=False)


def _off_by_one(study: object) -> dict[str, int]:
    return {k: v - 1 for k, v in sdtm_trial.visit_numbers(STUDY).items()}


@pytest.mark.parametrize(
    ("target", "name", "value", "rule"),
    [
        (sdtm, "ROUTE", "IV", "controlled-terms"),
        (sdtm, "visit_numbers", _off_by_one, "visit-in-tv"),
        (sdtm, "randomization_start", lambda data, s: "2025-01-02T08:00:00", "randomized-"),
        (sdtm, "usubjid", lambda study, s: f"{study.code}-{s.site_id}-{s.site_id}", "unique-keys"),
    ],
)
def test_a_defect_fails_the_check(
    monkeypatch: pytest.MonkeyPatch, target: object, name: str, value: object, rule: str
) -> None:
    """Each defect put into the builders is found by its rule; an unchanged export is clean."""
    assert check_package(read_package(sdtm_files.sdtm_zip(_two_subjects(), "xpt")), _schema()) == []
    monkeypatch.setattr(target, name, value)
    findings = check_package(read_package(sdtm_files.sdtm_zip(_two_subjects(), "xpt")), _schema())
    assert findings and all(f.startswith(rule) for f in findings), findings
