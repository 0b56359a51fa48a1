"""The first journey of the README: token, register, randomize, and the monitor's view."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support.helpers import login, randomize, register


def test_coordinator_randomizes_and_monitor_sees_allocation(client: TestClient) -> None:
    coordinator = login(client, "coordinator")
    subject_id = register(client, coordinator)
    response = randomize(client, coordinator, subject_id)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["stage"] == "phase_ib" and body["cohort"] == "C1" and body["stratum"] == "ALL"
    assert body["dose"] == {
        "dose_level_mg_per_kg": 0.8,
        "weight_kg": 70.0,
        "dose_mg": 56.0,
        "vials": 1,
        "drug_volume_ml": 5.6,
    }
    assert body["randomization_number"] == "IMC-0001"
    monitor = login(client, "monitor")
    allocations = client.get("/api/v1/admin/allocations", headers=monitor).json()
    assert [a["subject_id"] for a in allocations] == [subject_id]
    assert allocations[0]["arm"] in {"IMC002", "PLACEBO"}
    verify = client.get("/api/v1/admin/audit/verify", headers=monitor).json()
    assert verify["ok"] is True and verify["first_bad_seq"] is None
