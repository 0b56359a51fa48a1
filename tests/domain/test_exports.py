"""The export builders on any generated study data: ODM validates against the ODM 1.3.2 schema
(as shipped by odmlib), and a blinded export carries no arm, content or lot. The FHIR bundle
and the SDTM datasets have their own files (test_fhir_export.py, test_sdtm.py), which draw
their data from the strategies here."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import xmlschema
from hypothesis import given, settings
from hypothesis import strategies as st
from odmlib.schema_manager import get_schema_path

from app.domain.exports import odm
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
    # one subject per USUBJID, as registration keeps it (screening numbers per site)
    found: dict[str, SubjectRecord] = {}
    for i in range(1, count + 1):
        s = draw(subjects(i))
        found.setdefault(usubjid(STUDY, s), s)
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
