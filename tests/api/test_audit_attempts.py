"""Every attempt is in the audit trail: refused commands (with what was sent), forbidden requests
and reads of unblinded data, each found by user and action in GET /api/v1/admin/audit."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from app.db.engine import Database
from tests.support.api import assert_problem
from tests.support.databases import assert_attempt_recorded, assert_unchanged, snapshot
from tests.support.helpers import login, randomize, randomize_body, register, today
from tests.support.supply import dispense, randomize_on
from tests.web.support import web_login

AUDIT = "/api/v1/admin/audit"


def found(client: TestClient, *, username: str, action: str) -> list[dict[str, Any]]:
    """The entries of one user and one action, as the unblinded monitor finds them."""
    response = client.get(
        AUDIT, params={"username": username, "action": action}, headers=login(client, "monitor")
    )
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()
    assert all(e["username"] == username and e["action"] == action for e in entries), entries
    return [{**e, "after": json.loads(e["after"])} for e in entries]


def test_a_refused_sledai_5_then_randomized_with_6_leaves_both_in_the_trail(
    client: TestClient, demo_db: Database
) -> None:
    coordinator = login(client, "coordinator")
    subject_id = register(client, coordinator)
    before = snapshot(demo_db)
    refused = randomize(client, coordinator, subject_id, randomize_body(sledai_2k_score=5))
    assert_problem(refused, 422, "ineligible")
    entry = assert_attempt_recorded(
        demo_db, before, action="subject.randomize_refused", username="coordinator"
    )
    assert entry["entity"] == "subject" and entry["entity_id"] == str(subject_id)
    assert entry["after"]["status"] == "invalid_input"
    assert entry["after"]["fields"] == ["sledai_2k_score"]

    ok = randomize(client, coordinator, subject_id, randomize_body(sledai_2k_score=6))
    assert ok.status_code == 201, ok.text
    (recorded,) = found(client, username="coordinator", action="subject.randomize_refused")
    assert recorded["after"]["code"] == "ineligible"
    assert recorded["after"]["sent"]["eligibility"]["sledai_2k_score"] == 5
    assert recorded["entity_id"] == str(subject_id) and recorded["role"] == "site_coordinator"
    # nothing of an arm; the id of the HTTP request that was refused (docs/deployment.md)
    assert recorded["after"].keys() == {"code", "status", "fields", "sent", "request_id"}
    (success,) = found(client, username="coordinator", action="subject.randomize")
    assert success["seq"] > recorded["seq"]
    assert found(client, username="investigator", action="subject.randomize_refused") == []


def test_a_refused_weight_is_recorded_with_the_weight_sent(
    client: TestClient, demo_db: Database
) -> None:
    coordinator, pharmacist = login(client, "coordinator"), login(client, "pharmacist")
    subject_id, _ = randomize_on(client, coordinator, "DE01", today() - timedelta(days=28))
    before = snapshot(demo_db)
    response = dispense(client, pharmacist, subject_id, "W4", today(), weight_kg=250.0)
    assert_problem(response, 422, "validation_error")
    assert_attempt_recorded(
        demo_db,
        before,
        action="subject.dispense_refused",
        username="pharmacist",
        code="validation_error",
    )
    (entry,) = found(client, username="pharmacist", action="subject.dispense_refused")
    assert entry["after"]["fields"] == ["weight_kg"]
    assert entry["after"]["sent"] == {
        "visit": "W4",
        "visit_date": today().isoformat(),
        "weight_kg": "250.0",
    }


def test_unblinded_exports_are_recorded_and_blinded_ones_are_not(
    client: TestClient, demo_db: Database
) -> None:
    monitor, sponsor = login(client, "monitor"), login(client, "sponsor")
    before = snapshot(demo_db)
    for path in ("/api/v1/admin/exports/allocations.csv", "/api/v1/admin/exports/odm.xml"):
        assert client.get(path, headers=monitor).status_code == 200, path
    blinded = client.get("/api/v1/admin/exports/blinded/odm.xml", headers=sponsor)
    assert blinded.status_code == 200
    entries = assert_unchanged(demo_db, before)
    assert [(e["username"], e["action"], e["entity"]) for e in entries] == [
        ("monitor", "unblinded.read", "allocations_csv"),
        ("monitor", "unblinded.read", "odm_export"),
    ]
    reads = found(client, username="monitor", action="unblinded.read")
    assert [e["entity"] for e in reads] == ["allocations_csv", "odm_export"]
    assert found(client, username="sponsor", action="unblinded.read") == []


def test_a_blinded_role_on_an_unblinded_endpoint_is_recorded_but_no_token_is_not(
    client: TestClient, demo_db: Database
) -> None:
    coordinator = login(client, "coordinator")
    before = snapshot(demo_db)
    assert_problem(client.get("/api/v1/admin/allocations"), 401, "unauthorized")
    assert assert_unchanged(demo_db, before) == []  # unauthenticated noise is not recorded
    response = client.get("/api/v1/admin/allocations", headers=coordinator)
    assert_problem(response, 403, "forbidden")
    entry = assert_attempt_recorded(
        demo_db, before, action="request.forbidden", username="coordinator", code="forbidden"
    )
    assert entry["after"]["sent"] == {"method": "GET", "path": "/api/v1/admin/allocations"}
    (listed,) = found(client, username="coordinator", action="request.forbidden")
    assert listed["role"] == "site_coordinator" and listed["entity_id"] == entry["entity_id"]


def test_the_audit_filters_are_validated(client: TestClient) -> None:
    monitor = login(client, "monitor")
    response = client.get(AUDIT, params={"action": "x" * 65}, headers=monitor)
    assert_problem(response, 422, "validation_error")


def test_a_refused_supply_command_is_recorded(client: TestClient, demo_db: Database) -> None:
    supply = login(client, "supply")
    before = snapshot(demo_db)
    response = client.post(
        "/api/v1/shipments/999/cancel",
        json={"reason": "not needed after all, site closed"},
        headers=supply,
    )
    assert_problem(response, 404, "not_found")
    entry = assert_attempt_recorded(
        demo_db, before, action="shipment.cancel_refused", username="supply", code="not_found"
    )
    assert entry["entity_id"] == "999" and entry["after"]["status"] == "not_found"


def test_a_page_refused_to_a_blinded_role_is_recorded(
    client: TestClient, demo_db: Database
) -> None:
    web_login(client, "coordinator")
    before = snapshot(demo_db)
    assert client.get("/monitor/allocations").status_code == 403
    entry = assert_attempt_recorded(
        demo_db, before, action="request.forbidden", username="coordinator"
    )
    assert entry["after"]["sent"] == {"method": "GET", "path": "/monitor/allocations"}


def test_a_command_refused_for_its_shape_is_recorded_as_its_user_without_secrets(
    client: TestClient, demo_db: Database
) -> None:
    """A weight of -3 never reaches the use case (the request's schema refuses it); the refusal
    is recorded all the same, as the user the token names, with what was sent minus any
    password; the same request without a token names nobody and records nothing."""
    pharmacist = login(client, "pharmacist")
    subject_id, _ = randomize_on(client, login(client, "coordinator"), "DE01", today(), 70.0)
    path = f"/api/v1/subjects/{subject_id}/dispense"
    body = {"visit": "W4", "visit_date": today().isoformat(), "weight_kg": -3}
    before = snapshot(demo_db)
    refused = client.post(
        path, json={**body, "signature": {"password": "not-kept"}}, headers=pharmacist
    )
    assert_problem(refused, 422, "validation_error")
    entry = assert_attempt_recorded(
        demo_db, before, action="request.invalid_refused", username="pharmacist"
    )
    assert entry["entity_id"] == path and "weight_kg" in entry["after"]["fields"]
    assert entry["after"]["sent"]["weight_kg"] == -3
    assert "not-kept" not in json.dumps(entry)
    before = snapshot(demo_db)
    assert client.post(path, json=body).status_code in (401, 422)
    assert_unchanged(demo_db, before)
    assert snapshot(demo_db) == before
