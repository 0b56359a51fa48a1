"""POST /shipments/{id}/receive with `received_on` (the day the kits arrived) and GET
/depots/{id}/stock (totals by status and expiry, never per content), on both engines."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Kit, Shipment, ShipmentKit
from app.services.transaction import utcnow, writing
from tests.support.api import (
    assert_blinded,
    assert_problem,
    audit_entries,
    error_fields,
)
from tests.support.databases import assert_unchanged, snapshot
from tests.support.helpers import today
from tests.support.supply import API, DEPOT, Users, ok, receive


def _shipped(client: TestClient, users: Users, db: Database, days_ago: int = 0) -> int:
    body = {"site_id": "DE01", "kits_per_content": 2, "reason": "top up before screening"}
    shipment_id = int(
        ok(client.post(f"{API}/shipments", json=body, headers=users["supply"]), 201)["shipment_id"]
    )
    ok(client.post(f"{API}/shipments/{shipment_id}/ship", headers=users["supply"]))
    if days_ago:
        with writing(db) as session:
            shipment = session.get(Shipment, shipment_id)
            assert shipment is not None
            shipment.shipped_at = utcnow() - timedelta(days=days_ago)
    return shipment_id


def _receive_on(client: TestClient, users: Users, shipment_id: int, day: str) -> httpx.Response:
    return client.post(
        f"{API}/shipments/{shipment_id}/receive",
        json={"received_on": day},
        headers=users["pharmacist"],
    )


def test_receipt_dated_earlier_is_stored_and_audited(client: TestClient, demo_db: Database) -> None:
    users = Users(client)
    shipment_id = _shipped(client, users, demo_db, days_ago=4)
    arrived = (today() - timedelta(days=2)).isoformat()
    body = ok(_receive_on(client, users, shipment_id, arrived))
    assert body["received_on"] == arrived
    assert body["received_at"].startswith(today().isoformat())  # when it was recorded
    entry = next(
        e
        for e in audit_entries(client, users["monitor"])
        if e["action"] == "shipment.receive" and e["entity_id"] == str(shipment_id)
    )
    assert json.loads(entry["after"])["received_on"] == arrived
    view = ok(client.get(f"{API}/shipments/{shipment_id}", headers=users["pharmacist"]))
    assert view["received_on"] == arrived


def test_receipt_without_a_date_is_dated_today(client: TestClient, demo_db: Database) -> None:
    users = Users(client)
    shipment_id = _shipped(client, users, demo_db)
    assert (
        ok(receive(client, users["pharmacist"], shipment_id))["received_on"] == today().isoformat()
    )
    with demo_db.read() as session:
        shipment = session.get(Shipment, shipment_id)
        assert shipment is not None and shipment.received_on == today()


def test_bad_receipt_dates_are_refused_and_change_nothing(
    client: TestClient, demo_db: Database
) -> None:
    users = Users(client)
    shipment_id = _shipped(client, users, demo_db, days_ago=1)
    with demo_db.read() as session:
        shipment = session.get(Shipment, shipment_id)
        assert shipment is not None and shipment.shipped_at is not None
        shipped_on = shipment.shipped_at.date()
    before = snapshot(demo_db)
    cases = {
        (today() + timedelta(days=2)).isoformat(): "in the future",
        (shipped_on - timedelta(days=1)).isoformat(): "before the shipment was shipped",
        "2026-02-30": "date",
        "yesterday": "date",
    }
    for day, message in cases.items():
        response = _receive_on(client, users, shipment_id, day)
        problem = assert_problem(response, 422, "validation_error")
        assert error_fields(problem) == ["received_on"], (day, problem)
        assert message in problem["detail"] + problem["errors"][0]["message"], (day, problem)
    assert_unchanged(demo_db, before)
    # the shipping day itself is a valid receipt date
    assert (
        ok(_receive_on(client, users, shipment_id, shipped_on.isoformat()))["status"] == "received"
    )


def _depot_counts(db: Database) -> tuple[Counter[str], Counter[str]]:
    """(kits at the depot per status, per expiry date), counted here from the kit rows."""
    with db.read() as session:
        rows = session.execute(
            select(Kit.status, Kit.expiry_date).where(Kit.depot_id == DEPOT, Kit.site_id.is_(None))
        ).all()
    return Counter(s for s, _ in rows), Counter(e.isoformat() for _, e in rows)


def test_depot_stock_totals_by_status_and_expiry(client: TestClient, demo_db: Database) -> None:
    users = Users(client)
    stock = ok(client.get(f"{API}/depots/{DEPOT}/stock", headers=users["supply"]))
    assert_blinded(client.get(f"{API}/depots/{DEPOT}/stock", headers=users["supply"]), "stock")
    by_status, by_expiry = _depot_counts(demo_db)
    assert stock["depot_id"] == DEPOT and stock["as_of"] == today().isoformat()
    assert stock["by_status"] == dict(by_status) and stock["total"] == by_status.total()
    assert {r["expiry_date"]: r["total"] for r in stock["by_expiry"]} == dict(by_expiry)
    assert [r["expiry_date"] for r in stock["by_expiry"]] == sorted(by_expiry)
    for row in stock["by_expiry"]:
        assert sum(row["by_status"].values()) == row["total"]
    assert stock["reserved"] == 0 and stock["shippable"] <= by_status["at_depot"]

    # a requested shipment's kits stay at the depot, picked: reserved, no longer shippable
    body = {"site_id": "DE02", "kits_per_content": 3, "reason": "top up before screening"}
    shipment = ok(client.post(f"{API}/shipments", json=body, headers=users["supply"]), 201)
    after = ok(client.get(f"{API}/depots/{DEPOT}/stock", headers=users["monitor"]))
    assert after["reserved"] == shipment["kit_count"] == 6
    assert after["shippable"] == stock["shippable"] - 6 and after["total"] == stock["total"]
    with demo_db.read() as session:
        picked = session.execute(
            select(Kit.expiry_date)
            .join(ShipmentKit, ShipmentKit.kit_number == Kit.kit_number)
            .where(ShipmentKit.shipment_id == shipment["shipment_id"])
        ).scalars()
        per_expiry = Counter(e.isoformat() for e in picked)
    assert {r["expiry_date"]: r["reserved"] for r in after["by_expiry"] if r["reserved"]} == dict(
        per_expiry
    )
    # once shipped, the kits have left the depot
    ok(client.post(f"{API}/shipments/{shipment['shipment_id']}/ship", headers=users["supply"]))
    shipped = ok(client.get(f"{API}/depots/{DEPOT}/stock", headers=users["supply"]))
    assert shipped["total"] == stock["total"] - 6 and shipped["reserved"] == 0


def test_depot_stock_roles_and_unknown_depot(client: TestClient) -> None:
    users = Users(client)
    for user in ("coordinator", "investigator", "pharmacist", "sponsor"):
        response = client.get(f"{API}/depots/{DEPOT}/stock", headers=users[user])
        assert_problem(response, 403, "forbidden")
    assert_problem(
        client.get(f"{API}/depots/NOPE/stock", headers=users["supply"]), 404, "not_found"
    )
