"""Sponsor decisions on stages through the API: cohorts open and close in order only, each change
audited with its reason; the phase II dose recorded once from a tested level; phase II
randomization then stratified from the site's answers and dosed at the selected level."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.db.engine import Database
from tests.support.api import assert_problem, audit_entries
from tests.support.databases import assert_unchanged, is_attempt, snapshot
from tests.support.helpers import SIGNED, login, randomize, randomize_body, register
from tests.support.pools import stock_stage_pools

ADMIN = "/api/v1/admin"


def _change(
    client: TestClient,
    headers: dict[str, str],
    code: str,
    action: str,
    reason: str = "safety review done",
) -> httpx.Response:
    return client.post(
        f"{ADMIN}/cohorts/{code}/{action}", json={"reason": reason, **SIGNED}, headers=headers
    )


def _select_dose(client: TestClient, headers: dict[str, str], dose: float) -> httpx.Response:
    return client.post(
        f"{ADMIN}/phase2-dose",
        json={"dose_mg_per_kg": dose, "reason": "dose selected by the safety committee", **SIGNED},
        headers=headers,
    )


def _statuses(client: TestClient, headers: dict[str, str]) -> dict[str, str]:
    response = client.get(f"{ADMIN}/cohorts", headers=headers)
    assert response.status_code == 200, response.text
    return {c["code"]: c["status"] for c in response.json()}


@pytest.fixture
def sponsor(client: TestClient) -> dict[str, str]:
    return login(client, "sponsor")


def test_cohorts_change_in_order_only_and_every_change_is_audited(
    client: TestClient, demo_db: Database, sponsor: dict[str, str]
) -> None:
    monitor = login(client, "monitor")
    start = len(audit_entries(client, monitor))
    assert _statuses(client, sponsor) == {"C1": "open", "C2": "planned", "C3": "planned"}
    refusals = [
        ("C2", "open", 409, "invalid_stage_change"),  # C1 is still open
        ("C3", "open", 409, "invalid_stage_change"),
        ("C1", "open", 409, "invalid_stage_change"),  # already open
        ("C2", "close", 409, "invalid_stage_change"),  # planned, not open
        ("C9", "open", 404, "not_found"),
        ("C9", "close", 404, "not_found"),
    ]
    before = snapshot(demo_db)
    for code, action, status, error in refusals:
        assert_problem(_change(client, sponsor, code, action), status, error)
    assert_unchanged(demo_db, before)

    changes = [
        ("C1", "close", "C1 safety review passed, 0 DLT"),
        ("C2", "open", "escalating to 1.2 mg/kg per SRC minutes 7"),
    ]
    closed = _change(client, sponsor, *changes[0])
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed" and closed.json()["closed_at"]
    before = snapshot(demo_db)
    for code, action in (("C1", "close"), ("C1", "open"), ("C3", "open")):
        assert_problem(_change(client, sponsor, code, action), 409, "invalid_stage_change")
    assert_unchanged(demo_db, before)
    opened = _change(client, sponsor, *changes[1])
    assert opened.status_code == 200, opened.text
    body = opened.json()
    assert body["code"] == "C2" and body["status"] == "open" and body["dose_mg_per_kg"] == 1.2
    assert body["cap"] == 8 and body["randomized"] == 0 and body["opened_at"]
    assert _statuses(client, sponsor) == {"C1": "closed", "C2": "open", "C3": "planned"}

    entries = audit_entries(client, monitor)[start:]
    refused = [(e["action"], e["entity_id"]) for e in entries if is_attempt(e["action"])]
    assert refused == [
        (f"cohort.{action}_refused", code)
        for code, action in [(c, a) for c, a, _, _ in refusals]
        + [("C1", "close"), ("C1", "open"), ("C3", "open")]
    ]
    new = [e for e in entries if not is_attempt(e["action"])]
    assert [(e["action"], e["entity_id"], e["reason"]) for e in new] == [
        (f"cohort.{action}", code, reason) for code, action, reason in changes
    ]
    for entry in new:
        assert entry["username"] == "sponsor" and entry["role"] == "sponsor_admin"
        assert entry["entity"] == "cohort"
        before_state, after_state = json.loads(entry["before"]), json.loads(entry["after"])
        expected = "closed" if entry["action"] == "cohort.close" else "open"
        assert after_state["status"] == expected and before_state["status"] != expected
    assert client.get(f"{ADMIN}/audit/verify", headers=monitor).json()["ok"] is True


STRATA = [
    (12, 15, "SLEDAI>=10/PRED>=10"),
    (8, 5, "SLEDAI<10/PRED<10"),
    (10, 9.99, "SLEDAI>=10/PRED<10"),
    (9, 10, "SLEDAI<10/PRED>=10"),
]


def test_phase2_dose_then_stratified_randomization(
    client: TestClient, demo_db: Database, sponsor: dict[str, str], subtests: Any
) -> None:
    assert client.get(f"{ADMIN}/phase2-dose", headers=sponsor).json() == {
        "dose_mg_per_kg": None,
        "selected_at": None,
        "randomized": 0,
    }
    before = snapshot(demo_db)
    # while C1 is open nothing may be selected, not even C1's level
    assert_problem(_select_dose(client, sponsor, 0.8), 409, "invalid_stage_change")
    assert_unchanged(demo_db, before)
    for code, action in (("C1", "close"), ("C2", "open"), ("C2", "close")):
        assert _change(client, sponsor, code, action).status_code == 200
    before = snapshot(demo_db)
    assert_problem(_select_dose(client, sponsor, 1.6), 409, "invalid_stage_change")  # C3 not run
    assert_problem(_select_dose(client, sponsor, 1.0), 409, "invalid_stage_change")  # no cohort
    assert_unchanged(demo_db, before)

    monitor = login(client, "monitor")
    start = len(audit_entries(client, monitor))
    selected = _select_dose(client, sponsor, 1.2)
    assert selected.status_code == 200, selected.text
    assert selected.json()["dose_mg_per_kg"] == 1.2 and selected.json()["selected_at"]
    selection, *supply = audit_entries(client, monitor)[start:]
    assert (selection["action"], selection["reason"]) == (
        "phase2.select_dose",
        "dose selected by the safety committee",
    )
    # then every site's resupply check stocks the phase II pool for the subjects to come
    assert {e["action"] for e in supply} == {"shipment.request", "site.resupply"}, supply
    requested = [e for e in supply if e["action"] == "shipment.request"]
    assert {json.loads(e["after"])["site_id"] for e in requested} == {"DE01", "DE02", "US01"}
    before = snapshot(demo_db)
    assert_problem(_select_dose(client, sponsor, 1.2), 409, "invalid_stage_change")  # once only
    assert_problem(_select_dose(client, sponsor, 0.8), 409, "invalid_stage_change")
    assert_problem(_change(client, sponsor, "C3", "open"), 409, "invalid_stage_change")
    assert_unchanged(demo_db, before)
    stock_stage_pools(demo_db)  # the review's shipments for phase II (stage pools)

    coordinator = login(client, "coordinator")
    for count, (sledai, prednisone, stratum) in enumerate(STRATA, start=1):
        with subtests.test(msg=stratum, sledai=sledai, prednisone=prednisone):
            subject_id = register(client, coordinator)
            body = randomize_body(
                weight_kg=70.0, sledai_2k_score=sledai, prednisone_equivalent_mg_per_day=prednisone
            )
            response = randomize(client, coordinator, subject_id, body)
            assert response.status_code == 201, response.text
            out = response.json()
            assert "arm" not in out and "treatment" not in out
            assert out["stage"] == "phase_ii" and out["cohort"] is None
            assert out["stratum"] == stratum
            assert out["dose"] == {
                "dose_level_mg_per_kg": 1.2,
                "weight_kg": 70.0,
                "dose_mg": 84.0,
                "vials": 1,
                "drug_volume_ml": 8.4,
            }
            assert len(out["kits"]) == 1
            view = client.get(f"/api/v1/subjects/{subject_id}", headers=coordinator).json()
            assert view["randomization"] == {k: v for k, v in out.items() if k != "confirmation_id"}
            phase2 = client.get(f"{ADMIN}/phase2-dose", headers=sponsor).json()
            assert phase2["randomized"] == count
            allocations = client.get(f"{ADMIN}/allocations", headers=monitor).json()
            mine = [a for a in allocations if a["subject_id"] == subject_id]
            assert [(a["list_scope"], a["stratum"], a["slot_sequence"]) for a in mine] == [
                ("P2", stratum, 1)
            ]

    with subtests.test(msg="a site cannot type in the stratum"):
        body = randomize_body(sledai_2k_score=8, prednisone_equivalent_mg_per_day=5)
        body["stratum"] = "SLEDAI>=10/PRED>=10"
        subject_id = register(client, coordinator)
        before = snapshot(demo_db)
        response = randomize(client, coordinator, subject_id, body)
        assert_problem(response, 422, "validation_error")
        assert_unchanged(demo_db, before)


ADMIN_ROUTES = [
    ("GET", f"{ADMIN}/cohorts", None),
    ("POST", f"{ADMIN}/cohorts/C1/close", {"reason": "not allowed"}),
    ("POST", f"{ADMIN}/cohorts/C2/open", {"reason": "not allowed"}),
    ("GET", f"{ADMIN}/phase2-dose", None),
    ("POST", f"{ADMIN}/phase2-dose", {"dose_mg_per_kg": 0.8, "reason": "not allowed"}),
]
NON_SPONSORS = ["coordinator", "investigator", "pharmacist", "supply", "monitor", "coordinator2"]
BAD_TOKENS = {
    "missing": {},
    "garbage": {"Authorization": "Bearer not-a-jwt"},
    "bad signature": {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.AAAA"},
    "basic auth": {"Authorization": "Basic c3BvbnNvcjp0ZXN0LXBhc3N3b3Jk"},
}


def test_stage_routes_are_for_the_sponsor_only(
    client: TestClient, demo_db: Database, subtests: Any
) -> None:
    before = snapshot(demo_db)
    for username in NON_SPONSORS:
        with subtests.test(msg=username):
            headers = login(client, username)
            for method, path, body in ADMIN_ROUTES:
                response = client.request(method, path, json=body, headers=headers)
                assert_problem(response, 403, "forbidden")
    for case, headers in BAD_TOKENS.items():
        with subtests.test(msg=f"{case} token"):
            for method, path, body in ADMIN_ROUTES:
                response = client.request(method, path, json=body, headers=headers)
                assert_problem(response, 401, "unauthorized")
                assert response.headers["www-authenticate"] == "Bearer"
    assert_unchanged(demo_db, before)
    # the control: the sponsor's token passes the same routes
    sponsor = login(client, "sponsor")
    assert client.get(f"{ADMIN}/cohorts", headers=sponsor).status_code == 200
