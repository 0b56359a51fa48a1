"""Every API route that takes a reason refuses one with fewer than 10 visible characters: 422
`validation_error` with a field error on `reason` that a site user understands, and nothing
written. An accepted reason is stored without the invisible characters at its ends."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from app.db.engine import Database
from app.domain.reasons import TOO_SHORT
from tests.support.api import assert_problem, audit_entries
from tests.support.databases import assert_unchanged, snapshot
from tests.support.helpers import SIGNED, login, randomize, register

API = "/api/v1"
TOO_FEW = (
    "",
    "x",
    "too short",
    " " * 30,
    "\u200b" * 30,
    "\u200b".join("tooshort!"),
    "\u00ad\u2060\ufeff" * 10,
    "\u3164" * 12,
    "e\u0301" * 9,
    "\t\n   ok   \n\t",
)


def _routes(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    """(user, path, the body without its reason) of every route that takes a reason."""
    coordinator = login(client, "coordinator")
    subject = register(client, coordinator)
    assert randomize(client, coordinator, subject).status_code == 201
    return [
        (
            "investigator",
            f"/subjects/{subject}/unblind",
            {"reason_category": "adverse_event", **SIGNED},
        ),
        ("pharmacist", f"/subjects/{subject}/kits/ACDE3479/replace", {"status": "damaged"}),
        ("sponsor", "/admin/cohorts/C1/close", SIGNED),
        ("sponsor", "/admin/cohorts/C2/open", SIGNED),
        ("sponsor", "/admin/phase2-dose", {"dose_mg_per_kg": 0.8, **SIGNED}),
        ("sponsor", "/admin/sites/DE01/activate", {}),
        ("supply", "/shipments", {"site_id": "DE01", "kits_per_content": 1}),
        ("supply", "/shipments/1/cancel", {}),
        ("supply", "/shipments/1/release", {}),
        ("supply", "/shipments/1/reject", {}),
        ("pharmacist", "/kits/ACDE3479/status", {"status": "quarantined"}),
    ]


def test_every_reason_needs_ten_visible_characters(client: TestClient, demo_db: Database) -> None:
    routes = _routes(client)
    headers = {user: login(client, user) for user in {user for user, _, _ in routes}}
    before = snapshot(demo_db)
    for user, path, body in routes:
        for reason in TOO_FEW:
            response = client.post(
                f"{API}{path}",
                json={**body, "reason": reason},
                headers={**headers[user], "Idempotency-Key": f"reason-{len(reason)}"},
            )
            problem = assert_problem(response, 422, "validation_error")
            assert {"field": "reason", "message": TOO_SHORT} in problem["errors"], (path, reason)
            assert TOO_SHORT in problem["detail"]
    assert_unchanged(demo_db, before)


def test_the_reason_is_stored_without_invisible_ends(client: TestClient) -> None:
    sponsor, monitor = login(client, "sponsor"), login(client, "monitor")
    typed = "\u200b\ufeff  C1 safety review: no DLT\nminutes of 2 Dec  \u00a0\u2060"
    response = client.post(
        f"{API}/admin/cohorts/C1/close", json={"reason": typed, **SIGNED}, headers=sponsor
    )
    assert response.status_code == 200, response.text
    entry = audit_entries(client, monitor)[-1]
    assert entry["action"] == "cohort.close"
    assert entry["reason"] == "C1 safety review: no DLT\nminutes of 2 Dec"
