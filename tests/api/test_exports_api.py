"""The data exports through the API and the CLI, on both engines, with a randomized and dosed
subject (one kit replaced) and a subject only registered."""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from fastapi.testclient import TestClient
from fhir.resources.bundle import Bundle
from fhir.resources.researchsubject import ResearchSubject
from odmlib.schema_manager import get_schema_path
from typer.testing import CliRunner

from app.cli import app
from app.db.engine import Database
from app.domain.study import load_study
from tests.domain.test_fhir_export import BLINDED_PRODUCT, check_transaction, first_id, of_type
from tests.support.api import assert_problem, leaks
from tests.support.cli import as_demo_user
from tests.support.helpers import login, register, today
from tests.support.supply import dispense, randomize_on, replace

EXPORTS = "/api/v1/admin/exports"
STUDY = load_study()
ODM_SCHEMA = xmlschema.XMLSchema(get_schema_path("odm", "1.3.2"))
BLINDED_USERS = ("coordinator", "investigator", "pharmacist", "supply", "sponsor")
SDTM = ("dm", "ds", "ex", "ta", "te", "tv")


@dataclass
class Trial:
    subject_id: int
    randomization_number: str
    armcd: str
    treatment: str
    kits: dict[str, dict[str, Any]]  # kit number -> the monitor's kit row, for kits in use
    replaced: str
    registered_only: int


@pytest.fixture
def trial(client: TestClient) -> Trial:
    coordinator, pharmacist = login(client, "coordinator"), login(client, "pharmacist")
    day_one = today() - timedelta(days=28)
    subject_id, randomized = randomize_on(client, coordinator, "DE01", day_one)
    replaced = randomized["kits"][0]
    new_kit = replace(client, pharmacist, subject_id, replaced).json()["kit"]
    week4 = dispense(client, pharmacist, subject_id, "W4", today())
    assert week4.status_code == 201, week4.text
    registered_only = register(client, coordinator, site_id="DE02")
    monitor = login(client, "monitor")
    (allocation,) = client.get("/api/v1/admin/allocations", headers=monitor).json()
    in_use = {new_kit, *week4.json()["kits"]}
    kits = {
        k["kit_number"]: k
        for k in client.get("/api/v1/admin/kits", headers=monitor).json()
        if k["kit_number"] in in_use
    }
    assert len(kits) == 2
    return Trial(
        subject_id,
        randomized["randomization_number"],
        f"C1{allocation['arm']}",
        allocation["treatment"],
        kits,
        replaced,
        registered_only,
    )


def _get(client: TestClient, user: str, path: str) -> Any:
    response = client.get(f"{EXPORTS}/{path}", headers=login(client, user))
    assert response.status_code == 200, response.text
    return response


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _unzip(content: bytes) -> dict[str, str]:
    archive = zipfile.ZipFile(io.BytesIO(content))
    return {name: archive.read(name).decode("utf-8") for name in archive.namelist()}


def _blind_leaks(text: str, trial: Trial) -> list[str]:
    lots = {k["lot"].lower() for k in trial.kits.values()}
    words = {"placebo", "imc002", trial.armcd.lower(), *lots}
    text = text.lower().replace(BLINDED_PRODUCT.lower(), "")  # the same for every subject
    return sorted(w for w in words if w in text)


def test_sdtm_export_for_the_monitor(client: TestClient, trial: Trial) -> None:
    response = _get(client, "monitor", "sdtm.zip")
    assert response.headers["content-type"] == "application/zip"
    assert "IMC-002-sdtm.zip" in response.headers["content-disposition"]
    files = _unzip(response.content)
    assert list(files) == [*(f"{n}.csv" for n in SDTM), "define.csv"]
    assert "body contains 'placebo'" in leaks(response)  # the walk's detector reads zips
    for name in (*SDTM, "define"):
        assert _get(client, "monitor", f"sdtm/{name}.csv").text == files[f"{name}.csv"]
    dm = {r["SITEID"]: r for r in _csv(files["dm.csv"])}
    assert dm["DE01"]["ARMCD"] == dm["DE01"]["ACTARMCD"] == trial.armcd
    assert dm["DE01"]["ARM"].startswith("Phase Ib C1: ") and dm["DE01"]["COUNTRY"] == "DEU"
    assert dm["DE01"]["RFXSTDTC"] == (today() - timedelta(days=28)).isoformat()
    assert dm["DE01"]["RFXENDTC"] == today().isoformat() and dm["DE01"]["BRTHDTC"] == "1980"
    assert (dm["DE02"]["ARMCD"], dm["DE02"]["ARMNRS"]) == ("", "NOT ASSIGNED")
    assert dm["DE01"]["USUBJID"] == f"IMC-002-DE01-{dm['DE01']['SUBJID']}"
    (ds,) = _csv(files["ds.csv"])
    assert (ds["DSREFID"], ds["DSDECOD"], ds["DSCAT"]) == (
        trial.randomization_number, "RANDOMIZED", "PROTOCOL MILESTONE",
    )  # fmt: skip
    ex = _csv(files["ex.csv"])
    assert {r["EXREFID"] for r in ex} == set(trial.kits)  # the replaced kit is not exposure
    assert [r["VISIT"] for r in ex] == ["D1", "W4"] and [r["EXSEQ"] for r in ex] == ["1", "2"]
    assert [r["VISITNUM"] for r in ex] == ["1", "2"]
    for row in ex:
        assert row["EXTRT"] == trial.treatment.upper()
        assert row["EXLOT"] == trial.kits[row["EXREFID"]]["lot"]
        assert (row["EXDOSE"], row["EXDOSU"], row["EXROUTE"]) == ("56", "mg", "INTRAVENOUS")
    assert trial.armcd in {r["ARMCD"] for r in _csv(files["ta.csv"])}


def test_odm_and_fhir_for_the_monitor(client: TestClient, trial: Trial) -> None:
    response = _get(client, "monitor", "odm.xml")
    assert response.headers["content-type"].startswith("application/xml")
    ODM_SCHEMA.validate(response.text)
    subjects = ODM_SCHEMA.to_dict(response.text)["ClinicalData"][0]["SubjectData"]
    assert len(subjects) == 2
    randomized = next(s for s in subjects if "StudyEventData" in s)
    assert randomized["SiteRef"]["@LocationOID"] == "LOC.DE01"
    items = randomized["StudyEventData"][0]["FormData"][0]["ItemGroupData"][0]["ItemData"]
    values = {i["@ItemOID"]: i["@Value"] for i in items}
    assert values["IT.RANDNO"] == trial.randomization_number
    assert values["IT.ARMCD"] == trial.armcd and values["IT.COHORT"] == "C1"

    response = _get(client, "monitor", "fhir.json")
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate_json(response.text)
    subject = next(
        e.resource
        for e in bundle.entry or []
        if isinstance(e.resource, ResearchSubject) and e.resource.progress
    )
    assert subject.assignedComparisonGroup == subject.actualComparisonGroup == trial.armcd
    assert "body contains 'placebo'" in leaks(response)  # the detector's control
    by_url = check_transaction(response.text)  # a transaction whose references all resolve
    dispenses = of_type(by_url, "MedicationDispense")
    assert {first_id(d) for d in dispenses} == set(trial.kits)  # not the replaced kit
    for handed in dispenses:
        medication = by_url[handed["medication"]["reference"]["reference"]]
        assert medication["batch"]["lotNumber"] == trial.kits[first_id(handed)]["lot"]
        assert medication["code"]["text"] == trial.treatment
    administrations = of_type(by_url, "MedicationAdministration")
    assert sorted(a["occurenceDateTime"] for a in administrations) == [
        (today() - timedelta(days=28)).isoformat(), today().isoformat(),
    ]  # fmt: skip
    assert {a["dosage"]["dose"]["value"] for a in administrations} == {56}
    assert {a["dosage"]["route"]["coding"][0]["code"] for a in administrations} == {"47625008"}


def test_blinded_exports_for_the_sponsor(client: TestClient, trial: Trial) -> None:
    files = _unzip(_get(client, "sponsor", "blinded/sdtm.zip").content)
    assert list(files) == [*(f"{n}.csv" for n in SDTM), "define.csv"]
    for name, text in files.items():
        assert _blind_leaks(text, trial) == [], name
    dm = {r["SITEID"]: r for r in _csv(files["dm.csv"])}
    assert (dm["DE01"]["ARMCD"], dm["DE01"]["ACTARMCD"]) == ("BLINDED", "BLINDED")
    assert {r["ARMCD"] for r in _csv(files["ta.csv"])} == {"BLINDED"}
    xpt = _get(client, "sponsor", "blinded/sdtm.zip?format=xpt")
    assert "IMC-002-blinded-sdtm-xpt.zip" in xpt.headers["content-disposition"]
    members = zipfile.ZipFile(io.BytesIO(xpt.content)).namelist()
    assert members == [*(f"{n}.xpt" for n in SDTM), "define.xml"] and leaks(xpt) == []
    ex = _csv(files["ex.csv"])
    assert {r["EXREFID"] for r in ex} == set(trial.kits)
    assert {(r["EXTRT"], r["EXLOT"], r["EXDOSE"]) for r in ex} == {("BLINDED", "", "56")}
    odm_text = _get(client, "sponsor", "blinded/odm.xml").text
    ODM_SCHEMA.validate(odm_text)
    assert _blind_leaks(odm_text, trial) == [] and trial.randomization_number in odm_text
    # the monitor may fetch the blinded variant too, to hand it on
    assert _get(client, "monitor", "blinded/odm.xml").text.count("SubjectData ") == 2


def test_blinded_fhir_for_the_sponsor(client: TestClient, trial: Trial) -> None:
    response = _get(client, "sponsor", "blinded/fhir.json")
    assert leaks(response) == []  # the blinding walk's detector
    fhir_text = response.text
    by_url = check_transaction(fhir_text)  # a transaction whose references all resolve
    kinds = sorted(r["resourceType"] for r in by_url.values())
    assert kinds == sorted(
        ["ResearchStudy", "Medication", *["Organization"] * 3, *["Patient", "ResearchSubject"] * 2]
        + ["MedicationAdministration", "MedicationDispense"] * 2
    )
    (medication,) = of_type(by_url, "Medication")  # one product for every kit of every subject
    assert medication["code"]["text"] == BLINDED_PRODUCT and "batch" not in medication
    assert {first_id(d) for d in of_type(by_url, "MedicationDispense")} == set(trial.kits)
    assert _blind_leaks(fhir_text, trial) == [] and trial.randomization_number in fhir_text
    assert "ComparisonGroup" not in fhir_text and "comparisonGroup" not in fhir_text
    assert _get(client, "monitor", "blinded/fhir.json").status_code == 200


def test_roles_and_bad_dataset_names(client: TestClient, trial: Trial) -> None:
    for user in BLINDED_USERS:
        headers = login(client, user)
        for path in ("sdtm.zip", "sdtm/dm.csv", "odm.xml", "fhir.json"):
            assert_problem(client.get(f"{EXPORTS}/{path}", headers=headers), 403, "forbidden")
            blinded = client.get(f"{EXPORTS}/blinded/{path}", headers=headers)
            if user != "sponsor":
                assert_problem(blinded, 403, "forbidden")
    sponsor, monitor = login(client, "sponsor"), login(client, "monitor")
    refused = client.get(f"{EXPORTS}/blinded/sdtm.zip?format=sas", headers=sponsor)
    assert_problem(refused, 422, "validation_error")
    assert_problem(client.get(f"{EXPORTS}/sdtm/ae.csv", headers=monitor), 422, "validation_error")


def test_cli_exports(
    demo_db: Database, db_url: str, client: TestClient, trial: Trial, tmp_path: Path
) -> None:
    runner = CliRunner()
    outputs = {}
    for command, name, extra in (
        ("allocations", "allocations.csv", []),
        ("list", "list.csv", ["--format", "redcap", "--scope", "C1"]),
        ("sdtm", "sdtm.zip", []),
        ("sdtm", "blinded.zip", ["--blinded"]),
        ("sdtm", "sdtm-xpt.zip", ["--format", "xpt"]),
        ("odm", "odm.xml", []),
        ("fhir", "fhir.json", ["--blinded"]),
    ):
        path = tmp_path / name
        args = ["export", command, "--output", str(path), *extra, "--database-url", db_url]
        result = runner.invoke(app, as_demo_user(args))
        assert result.exit_code == 0, result.output
        assert f"Wrote {path}." in result.output
        outputs[name] = path
    allocations = _csv(outputs["allocations.csv"].read_text())
    assert [a["randomization_number"] for a in allocations] == [trial.randomization_number]
    assert outputs["list.csv"].read_text().startswith("redcap_randomization_number,")
    assert "ta.csv" in _unzip(outputs["sdtm.zip"].read_bytes())
    blinded = _unzip(outputs["blinded.zip"].read_bytes())
    assert "BLINDED" in blinded["ta.csv"] and _blind_leaks("".join(blinded.values()), trial) == []
    xpt = zipfile.ZipFile(io.BytesIO(outputs["sdtm-xpt.zip"].read_bytes()))
    assert xpt.namelist() == [*(f"{n}.xpt" for n in SDTM), "define.xml"]
    ODM_SCHEMA.validate(outputs["odm.xml"].read_text())
    fhir_text = outputs["fhir.json"].read_text()
    Bundle.model_validate_json(fhir_text)
    assert _blind_leaks(fhir_text, trial) == []
    args = ["export", "list", "--output", str(tmp_path / "x"), "--scope", "P9"]
    result = runner.invoke(app, as_demo_user([*args, "--database-url", db_url]))
    assert result.exit_code == 1 and "unknown scope" in result.output
