"""The export builders on any generated study data: ODM validates against the ODM 1.3.2 schema
(as shipped by odmlib), the FHIR bundle parses with fhir.resources (R5), the SDTM datasets
hold what they must, and a blinded export carries no arm, content or lot."""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import xmlschema
from fhir.resources.bundle import Bundle
from fhir.resources.researchstudy import ResearchStudy
from fhir.resources.researchsubject import ResearchSubject
from hypothesis import given, settings
from hypothesis import strategies as st
from odmlib.schema_manager import get_schema_path

from app.domain.exports import fhir, odm, sdtm
from app.domain.exports.records import (
    ExportData,
    KitRecord,
    RandomizationRecord,
    SiteRecord,
    SubjectRecord,
    VisitRecord,
    arm_table,
    usubjid,
)
from app.domain.study import PHASE_IB, PHASE_II, load_study

STUDY = load_study()
ODM_SCHEMA = xmlschema.XMLSchema(get_schema_path("odm", "1.3.2"))
NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
SITES = (
    SiteRecord("DE01", 'Charité & <Universitätsmedizin> "Berlin"', "DE"),
    SiteRecord("DE02", "LMU Klinikum München", "DE"),
    SiteRecord("US01", "Boston Lupus Center", "US"),
)
SCOPES = [s.code for s in STUDY.scopes()]
STRENGTH = STUDY.drug.vial_strength_mg


@st.composite
def subjects(draw: st.DrawFn, subject_id: int) -> SubjectRecord:
    site = draw(st.sampled_from(SITES)).site_id
    number = draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,11}", fullmatch=True))
    randomization, visits = None, ()
    if draw(st.booleans()):
        scope = draw(st.sampled_from(SCOPES))
        arm = draw(st.sampled_from(STUDY.contents))
        stage = PHASE_II if scope == "P2" else PHASE_IB
        stratum = draw(st.sampled_from(STUDY.scope(scope).strata))
        at = NOW - timedelta(seconds=draw(st.integers(0, 10**8)))
        randomization = RandomizationRecord(
            f"IMC-{subject_id:04d}", stage, scope, stratum, at, at.date(), arm
        )
        visit_list = []
        for index in range(draw(st.integers(0, 3))):
            dose = draw(st.decimals(Decimal("24"), Decimal("320"), places=1))
            content = draw(st.sampled_from((arm, arm, arm, *STUDY.contents)))
            kits = tuple(
                KitRecord(f"K{subject_id:04d}{index}{k}", content, f"LOT-{content}-1")
                for k in range(math.ceil(dose / STRENGTH))
            )
            visit_list.append(VisitRecord(f"W{4 * index}", at.date(), dose, kits))
        visits = tuple(visit_list)
    sex = draw(st.sampled_from("FM"))
    year = draw(st.integers(1920, 2007))
    return SubjectRecord(subject_id, site, number, sex, year, randomization, visits)


@st.composite
def export_data(draw: st.DrawFn) -> ExportData:
    count = draw(st.integers(0, 8))
    # screening numbers are unique per site
    found: dict[tuple[str, str], SubjectRecord] = {}
    for i in range(1, count + 1):
        s = draw(subjects(i))
        found.setdefault((s.site_id, s.screening_number), s)
    dose = draw(st.sampled_from([None, Decimal("0.8"), Decimal("1.2")]))
    return ExportData(STUDY, dose, SITES, tuple(found.values()), NOW, blinded=False)


def blind(data: ExportData) -> ExportData:
    """What the service reads for a blinded export: no arm, no content, no lot."""
    return replace(
        data,
        blinded=True,
        subjects=tuple(
            replace(
                s,
                randomization=replace(s.randomization, arm=None) if s.randomization else None,
                visits=tuple(
                    replace(v, kits=tuple(KitRecord(k.kit_number) for k in v.kits))
                    for v in s.visits
                ),
            )
            for s in data.subjects
        ),
    )


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _leaks(text: str) -> list[str]:
    words = ["placebo", "imc002", "lot-", *(a.armcd.lower() for a in arm_table(STUDY, None))]
    return [w for w in words if w in text.lower()]


@settings(max_examples=40, deadline=None)
@given(export_data(), st.booleans())
def test_odm_is_valid_against_the_odm_1_3_2_schema(data: ExportData, blinded: bool) -> None:
    data = blind(data) if blinded else data
    text = odm.odm_xml(data)
    ODM_SCHEMA.validate(text)
    tree = ODM_SCHEMA.to_dict(text)
    subjects = tree["ClinicalData"][0].get("SubjectData", [])
    assert len(subjects) == len(data.subjects)
    locations = {loc["@OID"] for loc in tree["AdminData"][0]["Location"]}
    assert {s["SiteRef"]["@LocationOID"] for s in subjects} <= locations
    if blinded:
        assert _leaks(text) == [] and "IT.ARM" not in text


@settings(max_examples=40, deadline=None)
@given(export_data(), st.booleans())
def test_fhir_bundle_parses_as_r5(data: ExportData, blinded: bool) -> None:
    data = blind(data) if blinded else data
    text = fhir.fhir_json(data)
    bundle = Bundle.model_validate_json(text)
    assert bundle.type == "collection"
    resources = [e.resource for e in bundle.entry or []]
    study, subjects = resources[0], resources[1:]
    assert isinstance(study, ResearchStudy)
    assert [i.value for i in study.identifier or []] == ["NCT06535412"]
    assert len(subjects) == len(data.subjects)
    assert all(isinstance(s, ResearchSubject) for s in subjects)
    groups = {g.linkId for g in study.comparisonGroup or []}
    by_key = {usubjid(STUDY, s): s for s in data.subjects}
    for resource in subjects:
        assert isinstance(resource, ResearchSubject)
        assert resource.study.reference == bundle.entry[0].fullUrl  # type: ignore[index]
        record = by_key[resource.subject.identifier.value]  # type: ignore[union-attr]
        if record.randomization is None:
            assert not resource.progress and not resource.assignedComparisonGroup
            continue
        (progress,) = resource.progress or []
        assert progress.milestone.coding[0].code == "Randomized"  # type: ignore[union-attr,index]
        if blinded:
            assert resource.assignedComparisonGroup is None
        else:
            assert resource.assignedComparisonGroup in groups
            assert resource.actualComparisonGroup in groups | {None}
    if blinded:
        assert _leaks(text) == [] and "comparisonGroup" not in json.loads(text)["entry"][0]


@settings(max_examples=40, deadline=None)
@given(export_data(), st.booleans())
def test_sdtm_datasets(data: ExportData, blinded: bool) -> None:
    data = blind(data) if blinded else data
    archive = zipfile.ZipFile(io.BytesIO(sdtm.sdtm_zip(data)))
    names = ["dm.csv", "ds.csv", "ex.csv", *([] if blinded else ["ta.csv"]), "define.csv"]
    assert archive.namelist() == names
    files = {n: archive.read(n).decode() for n in names}
    dm, ds, ex = (_rows(files[f"{n}.csv"]) for n in ("dm", "ds", "ex"))
    assert len(dm) == len(data.subjects)
    randomized = [s for s in data.subjects if s.randomization]
    assert {r["DSREFID"] for r in ds} == {s.randomization.number for s in randomized}  # type: ignore[union-attr]
    assert {(r["DSDECOD"], r["DSCAT"]) for r in ds} <= {("RANDOMIZED", "PROTOCOL MILESTONE")}
    kits = [k for s in data.subjects for v in s.visits for k in v.kits]
    assert sorted(r["EXREFID"] for r in ex) == sorted(k.kit_number for k in kits)
    for s in data.subjects:
        for v in s.visits:
            numbers = {k.kit_number for k in v.kits}
            rows = [r for r in ex if r["EXREFID"] in numbers]
            if rows:
                assert sum(Decimal(r["EXDOSE"]) for r in rows) == v.dose_mg
    for row in dm:
        if not any(s.randomization and usubjid(STUDY, s) == row["USUBJID"] for s in data.subjects):
            assert (row["ARMCD"], row["ACTARMCD"]) == ("NOTASSGN", "NOTASSGN")
    define = _rows(files["define.csv"])
    for name in names[:-1]:
        header = files[name].splitlines()[0].split(",")
        assert header == [d["variable"] for d in define if d["dataset"] == name[:2].upper()]
    if blinded:
        assert all(_leaks(text) == [] for text in files.values()), files
        assert {r["EXTRT"] for r in ex} <= {"BLINDED"} and {r["EXLOT"] for r in ex} <= {""}
    else:
        armcds = {a.armcd for a in arm_table(STUDY, data.phase2_dose_mg_per_kg)}
        specials = {"NOTASSGN", "NOTTRT", "UNPLAN"}
        assert {r["ARMCD"] for r in dm} <= armcds | {"NOTASSGN"}
        assert {r["ACTARMCD"] for r in dm} <= armcds | specials
        assert {r["EXTRT"] for r in ex} <= {"IMC-002", "PLACEBO"}


def test_actual_arm_follows_the_kits() -> None:
    at = NOW
    r = RandomizationRecord("IMC-0001", PHASE_IB, "C1", "ALL", at, at.date(), "IMC002")
    visit = VisitRecord("D1", date(2025, 1, 1), Decimal("56"), (KitRecord("K1", "IMC002", "L1"),))
    wrong = VisitRecord("W4", date(2025, 1, 29), Decimal("56"), (KitRecord("K2", "PLACEBO", "L2"),))
    base = SubjectRecord(1, "DE01", "S1", "F", 1980, r)
    data = ExportData(STUDY, None, SITES, (), NOW, blinded=False)
    arms = sdtm.arms_of
    assert arms(data, base)[2:] == ("NOTTRT", "Not Treated")
    treated = replace(base, visits=(visit,))
    assert arms(data, treated) == (
        "C1IMC002",
        "Phase Ib C1: IMC-002 0.8 mg/kg + SOC",
        "C1IMC002",
        "Phase Ib C1: IMC-002 0.8 mg/kg + SOC",
    )
    assert arms(data, replace(base, visits=(replace(wrong, visit="D1"),)))[2] == "C1PLACEBO"
    assert arms(data, replace(base, visits=(visit, wrong)))[2:] == ("UNPLAN", "Unplanned Treatment")
    assert arms(data, replace(base, randomization=None)) == (
        "NOTASSGN", "Not Assigned", "NOTASSGN", "Not Assigned",
    )  # fmt: skip


def test_arm_table_names_the_phase_ii_dose_once_selected() -> None:
    arms = {a.armcd: a.arm for a in arm_table(STUDY, None)}
    assert arms["P2IMC002"] == "Phase II: IMC-002 (dose not yet selected) + SOC"
    assert arms["P2PLACEBO"] == "Phase II: Placebo + SOC"
    arms = {a.armcd: a.arm for a in arm_table(STUDY, Decimal("1.20"))}
    assert arms["P2IMC002"] == "Phase II: IMC-002 1.2 mg/kg + SOC"
    assert len(arms) == 2 * (len(STUDY.phase_ib.cohorts) + 1)
    ta = _rows(sdtm.dataset_csv(ExportData(STUDY, None, SITES, (), NOW, False), "ta"))
    assert len(ta) == 2 * len(arms) and {r["EPOCH"] for r in ta} == {"SCREENING", "TREATMENT"}


@given(st.decimals(Decimal("0.1"), Decimal("2000"), places=2))
def test_split_dose_draws_full_vials_first(dose: Decimal) -> None:
    vials = math.ceil(dose / STRENGTH)
    parts = sdtm.split_dose(dose, vials, STRENGTH)
    assert sum(parts) == dose and len(parts) == vials
    assert all(p == STRENGTH for p in parts[:-1]) and 0 < parts[-1] <= STRENGTH


def test_country_is_alpha_3() -> None:
    assert [sdtm.country_alpha3(c) for c in ("DE", "US", "XX")] == ["DEU", "USA", "XX"]
