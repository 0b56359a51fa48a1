"""Reports on both engines: enrolment against caps, inventory and expiry outlook, unblinding log,
as JSON and CSV; scoped to the reader's sites and blinded for every blinded role."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.testclient import TestClient

from app.domain.study import load_study
from tests.support.api import assert_blinded, assert_problem
from tests.support.helpers import SIGNED, login, open_phase2, randomize, randomize_body, register

REPORTS = "/api/v1/reports"
REASON = {
    "reason_category": "adverse_event",
    "reason": "anaphylaxis after the infusion",
    **SIGNED,
}


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _get(client: TestClient, path: str, user: str, **params: Any) -> Any:
    response = client.get(f"{REPORTS}/{path}", headers=login(client, user), params=params)
    assert response.status_code == 200, response.text
    assert_blinded(response, f"{user} {path}") if user != "monitor" else None
    return response.json() if not path.endswith(".csv") else _rows(response.text)


def _enrol(client: TestClient) -> None:
    coordinator, coordinator2 = login(client, "coordinator"), login(client, "coordinator2")
    for _ in range(2):
        assert randomize(client, coordinator, register(client, coordinator)).status_code == 201
    assert (
        randomize(client, coordinator2, register(client, coordinator2, "US01")).status_code == 201
    )
    register(client, coordinator, "DE02")  # registered only
    open_phase2(client)
    body = randomize_body(sledai_2k_score=12, prednisone_equivalent_mg_per_day=15)
    assert randomize(client, coordinator, register(client, coordinator), body).status_code == 201


def test_enrolment_against_caps_by_stratum_and_site(client: TestClient) -> None:
    _enrol(client)
    study = load_study()
    report = _get(client, "enrolment", "sponsor")
    assert report["site_ids"] == ["DE01", "DE02", "US01"]
    assert (report["target"], report["registered"], report["randomized"]) == (218, 5, 4)
    stages = {s["scope"]: s for s in report["stages"]}
    assert stages["C1"] == {
        "stage": "phase_ib",
        "scope": "C1",
        "status": "closed",
        "cap": 8,
        "randomized": 3,
        "remaining": 5,
    }
    assert (stages["C2"]["status"], stages["C2"]["randomized"]) == ("closed", 0)
    assert (stages["C3"]["status"], stages["P2"]["status"]) == ("planned", "open")
    assert (stages["P2"]["cap"], stages["P2"]["randomized"]) == (study.phase_ii.cap, 1)
    strata = {(s["scope"], s["stratum"]): s["randomized"] for s in report["strata"]}
    assert strata[("C1", "ALL")] == 3 and strata[("P2", "SLEDAI>=10/PRED>=10")] == 1
    assert {k for k in strata if k[0] == "P2"} == {("P2", s) for s in study.phase_ii.strata()}
    sites = {s["site_id"]: s for s in report["sites"]}
    assert sites["DE01"]["by_scope"] == {"C1": 2, "C2": 0, "C3": 0, "P2": 1}
    assert (sites["DE02"]["registered"], sites["DE02"]["randomized"]) == (1, 0)

    # a site user: its own sites only, the stages' progress study-wide
    mine = _get(client, "enrolment", "coordinator2")
    assert mine["site_ids"] == ["US01"] and [s["site_id"] for s in mine["sites"]] == ["US01"]
    assert (mine["registered"], mine["randomized"]) == (1, 1)
    assert {s["scope"]: s["randomized"] for s in mine["stages"]}["C1"] == 3
    assert {(s["scope"], s["stratum"]): s["randomized"] for s in mine["strata"]}[("C1", "ALL")] == 1

    rows = _get(client, "enrolment.csv", "supply")
    assert {r["level"] for r in rows} == {"stage", "stratum", "site", "site_scope"}
    c1 = next(r for r in rows if r["level"] == "stage" and r["scope"] == "C1")
    assert (c1["randomized"], c1["cap"], c1["remaining"], c1["status"]) == ("3", "8", "5", "closed")
    site = next(r for r in rows if r["level"] == "site" and r["site_id"] == "DE01")
    assert (site["registered"], site["randomized"]) == ("3", "3")


def test_inventory_outlook_is_blinded_and_scoped(client: TestClient) -> None:
    report = _get(client, "inventory", "pharmacist")
    assert [(loc["location"], loc["kind"]) for loc in report["locations"]] == [
        ("DE01", "site"),
        ("DE02", "site"),
    ]
    assert report["do_not_dispense_days"] == 30 and len(report["windows"]) == 4
    assert report["windows"][0].startswith("<=30 days")
    de01 = report["locations"][0]
    assert de01["in_stock"] == de01["by_status"]["available"] > 0
    assert sum(de01["by_window"].values()) == de01["in_stock"]
    assert de01["total"] == sum(de01["by_status"].values())
    de02 = report["locations"][1]
    assert de02["in_stock"] == de02["by_status"].get("available", 0)

    supply = _get(client, "inventory", "supply")
    kinds = {loc["location"]: loc["kind"] for loc in supply["locations"]}
    assert kinds == {"DE01": "site", "DE02": "site", "US01": "site", "DEPOT-EU": "depot"}
    depot = next(loc for loc in supply["locations"] if loc["kind"] == "depot")
    assert depot["in_stock"] == depot["by_status"]["at_depot"] > 0
    # the demo kits expire after 75 days or later: some inside the 61-90 window at the depot
    assert sum(depot["by_window"].values()) == depot["in_stock"]

    one = _get(client, "inventory", "supply", site_id="US01")
    assert [loc["location"] for loc in one["locations"]] == ["US01"]
    response = client.get(
        f"{REPORTS}/inventory", params={"site_id": "US01"}, headers=login(client, "pharmacist")
    )
    assert_problem(response, 404, "not_found")

    rows = _get(client, "inventory.csv", "pharmacist", site_id="DE01")
    assert len(rows) == 1 and rows[0]["location"] == "DE01"
    assert int(rows[0]["in_stock"]) == de01["in_stock"]
    assert sum(int(rows[0][w]) for w in report["windows"]) == de01["in_stock"]
    for user in ("coordinator", "sponsor", "monitor"):
        response = client.get(f"{REPORTS}/inventory", headers=login(client, user))
        assert_problem(response, 403, "forbidden")


def test_unblinding_log_names_the_treatment_to_the_monitor_only(client: TestClient) -> None:
    investigator = login(client, "investigator")
    subject = register(client, investigator)
    assert randomize(client, investigator, subject).status_code == 201
    response = client.post(f"/api/v1/subjects/{subject}/unblind", json=REASON, headers=investigator)
    assert response.status_code == 200, response.text
    treatment = response.json()["treatment"]

    monitor = _get(client, "unblindings", "monitor")
    assert [(r["subject_id"], r["treatment"]) for r in monitor] == [(subject, treatment)]
    sponsor = _get(client, "unblindings", "sponsor")
    assert [r["subject_id"] for r in sponsor] == [subject]
    assert "treatment" not in sponsor[0] and sponsor[0]["reason"] == REASON["reason"]

    rows = _get(client, "unblindings.csv", "monitor")
    assert rows[0]["treatment"] == treatment and rows[0]["unblinded_by"] == "investigator"
    rows = _get(client, "unblindings.csv", "sponsor")
    assert "treatment" not in rows[0] and rows[0]["subject_id"] == str(subject)
    for user in ("coordinator", "investigator", "pharmacist", "supply"):
        response = client.get(f"{REPORTS}/unblindings.csv", headers=login(client, user))
        assert_problem(response, 403, "forbidden")
