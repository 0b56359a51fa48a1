"""The FHIR R5 bundle on any generated study data: it parses with fhir.resources (R5), it is a
transaction a server loads as it is (a conditional update per entry, every reference resolving
inside the bundle), it carries a Patient, dispensing and administration for every kit and
dosing visit, and the blinded variant names one product for everyone."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from fhir.resources.bundle import Bundle
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.exports import fhir
from app.domain.exports.records import (
    ExportData,
    KitRecord,
    RandomizationRecord,
    SubjectRecord,
    VisitRecord,
    arm_table,
    usubjid,
)
from app.domain.study import PHASE_IB
from tests.domain.test_exports import NOW, SITES, STUDY, blind, export_data

URN_UUID = re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
BLINDED_PRODUCT = fhir.blinded_medication_name(STUDY)


def references(value: Any) -> Iterator[dict[str, Any]]:
    """Every Reference in a JSON tree (an object with a `reference` string)."""
    if isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            yield value
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def parse_conditional(url: str) -> tuple[str, str, str]:
    """`Type?identifier=system|value` back to (type, system, value), as a server reads it."""
    kind, _, query = url.partition("?identifier=")
    token = unquote(query)
    match = re.fullmatch(r"([^|]*)\|(.*)", token, re.DOTALL)
    assert match, url
    value = re.sub(r"\\(.)", r"\1", match.group(2))
    return kind, match.group(1), value


def leaks(text: str) -> list[str]:
    """Arm-dependent words in a blinded file, once the product every subject gets is set aside."""
    text = text.lower().replace(BLINDED_PRODUCT.lower(), "")
    words = ["placebo", "imc002", "lot-", *(a.armcd.lower() for a in arm_table(STUDY, None))]
    return [w for w in words if w in text]


def check_transaction(text: str) -> dict[str, dict[str, Any]]:
    """What a server checks before it loads a transaction; returns the resources by fullUrl."""
    bundle = Bundle.model_validate_json(text)  # every resource against its R5 model
    assert bundle.type == "transaction"
    raw = json.loads(text)["entry"]
    by_url = {e["fullUrl"]: e["resource"] for e in raw}
    assert len(by_url) == len(raw)  # bdl-7: fullUrl unique
    updates = [e["request"]["url"] for e in raw]
    assert len(set(updates)) == len(updates)  # no resource matched twice
    for entry in raw:
        resource = entry["resource"]
        assert URN_UUID.fullmatch(entry["fullUrl"]) and "id" not in resource
        assert entry["request"]["method"] == "PUT"  # a transaction entry has a request
        kind, system, value = parse_conditional(entry["request"]["url"])
        assert kind == resource["resourceType"]
        assert resource["identifier"][0] == {"system": system, "value": value}
        for ref in references(resource):
            target = by_url.get(ref["reference"])
            assert target is not None, f"{ref} does not resolve inside the bundle"
            assert ref["type"] == target["resourceType"], ref
    return by_url


def of_type(by_url: dict[str, dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in by_url.values() if r["resourceType"] == kind]


def first_id(resource: dict[str, Any]) -> str:
    value: str = resource["identifier"][0]["value"]
    return value


@settings(max_examples=25, deadline=None)
@given(export_data(), st.booleans())
def test_bundle_is_a_transaction_whose_references_resolve(data: ExportData, blinded: bool) -> None:
    data = blind(data) if blinded else data
    text = fhir.fhir_json(data)
    by_url = check_transaction(text)
    counts = Counter(r["resourceType"] for r in by_url.values())
    assert counts["ResearchStudy"] == 1 and counts["Organization"] == len(SITES)
    assert counts["Patient"] == counts["ResearchSubject"] == len(data.subjects)
    kits = [k for s in data.subjects for v in s.visits for k in v.kits]
    dispenses = of_type(by_url, "MedicationDispense")
    assert sorted(first_id(d) for d in dispenses) == sorted(k.kit_number for k in kits)
    for resource in of_type(by_url, "ResearchSubject"):
        patient = by_url[resource["subject"]["reference"]]
        assert patient["resourceType"] == "Patient"
        assert first_id(patient) == first_id(resource) == resource["subject"]["display"]
    if blinded:
        assert leaks(text) == []
        medications = of_type(by_url, "Medication")  # one product for everyone, no lot
        assert len(medications) == (1 if kits else 0)
        for medication in medications:
            assert medication["code"]["text"] == BLINDED_PRODUCT and "batch" not in medication
        assert "comparisonGroup" not in of_type(by_url, "ResearchStudy")[0]


@settings(max_examples=25, deadline=None)
@given(export_data(), st.booleans())
def test_every_dosing_visit_is_dispensed_and_administered(data: ExportData, blinded: bool) -> None:
    data = blind(data) if blinded else data
    by_url = check_transaction(fhir.fhir_json(data))
    administrations = {first_id(a): a for a in of_type(by_url, "MedicationAdministration")}
    dispenses = {first_id(d): d for d in of_type(by_url, "MedicationDispense")}
    for subject in data.subjects:
        key = usubjid(STUDY, subject)
        for visit in subject.visits:
            name = f"{key}/{visit.visit}"
            done = [a for k, a in administrations.items() if k == name or k.startswith(f"{name}/")]
            assert len(done) == (1 if blinded else len({k.content for k in visit.kits}))
            assert sum(Decimal(str(a["dosage"]["dose"]["value"])) for a in done) == visit.dose_mg
            for a in done:
                assert a["occurenceDateTime"] == visit.visit_date.isoformat()
                assert a["dosage"]["route"]["coding"][0]["code"] == "47625008"
                assert a["dosage"]["dose"]["code"] == "mg"
                assert first_id(by_url[a["subject"]["reference"]]) == key
            for kit in visit.kits:
                dispense = dispenses[kit.kit_number]
                assert dispense["whenHandedOver"] == visit.visit_date.isoformat()
                assert by_url[dispense["partOf"][0]["reference"]] in done
                medication = by_url[dispense["medication"]["reference"]["reference"]]
                if blinded:
                    assert medication["code"]["text"] == BLINDED_PRODUCT
                else:
                    assert kit.content is not None
                    assert medication["code"]["text"] == STUDY.arm(kit.content).name
                    assert medication["batch"]["lotNumber"] == kit.lot


@settings(max_examples=25, deadline=None)
@given(export_data())
def test_unblinded_groups_follow_the_arm_table(data: ExportData) -> None:
    by_url = check_transaction(fhir.fhir_json(data))
    (study,) = of_type(by_url, "ResearchStudy")
    assert [i["value"] for i in study["identifier"]] == ["NCT06535412"]
    groups = {g["linkId"] for g in study["comparisonGroup"]}
    by_key = {usubjid(STUDY, s): s for s in data.subjects}
    for resource in of_type(by_url, "ResearchSubject"):
        record = by_key[first_id(resource)]
        if record.randomization is None:
            assert "progress" not in resource and "assignedComparisonGroup" not in resource
            continue
        assert resource["identifier"][1]["value"] == record.randomization.number
        assert resource["progress"][0]["milestone"]["coding"][0]["code"] == "Randomized"
        assert resource["assignedComparisonGroup"] in groups
        assert resource.get("actualComparisonGroup") in groups | {None}


@given(st.text(min_size=1, max_size=30))
def test_conditional_url_reads_back_as_the_identifier(value: str) -> None:
    url = fhir.conditional_url("Patient", fhir.SUBJECT_SYSTEM, value)
    assert parse_conditional(url) == ("Patient", fhir.SUBJECT_SYSTEM, value)
    assert " " not in url and "?" not in url.partition("?")[2]


def test_two_lots_at_one_visit_make_one_administration() -> None:
    """An infusion of 140 mg from vials of two lots: one administration, two dispenses."""
    r = RandomizationRecord("IMC-0001", PHASE_IB, "C1", "ALL", NOW, NOW.date(), "IMC002")
    kits = (KitRecord("K1", "IMC002", "L1"), KitRecord("K2", "IMC002", "L2"))
    visit = VisitRecord("D1", date(2025, 1, 1), Decimal("140"), kits)
    subject = SubjectRecord(1, "DE01", "S1", "F", 1980, r, (visit,))
    by_url = check_transaction(
        fhir.fhir_json(ExportData(STUDY, None, SITES, (subject,), NOW, False))
    )
    (administration,) = of_type(by_url, "MedicationAdministration")
    assert administration["dosage"]["dose"]["value"] == 140
    assert administration["medication"]["concept"]["text"] == "IMC-002"
    lots = {m["batch"]["lotNumber"] for m in of_type(by_url, "Medication")}
    assert lots == {"L1", "L2"} and len(of_type(by_url, "MedicationDispense")) == 2
    (patient,) = of_type(by_url, "Patient")
    assert (patient["gender"], patient["birthDate"]) == ("female", "1980")
