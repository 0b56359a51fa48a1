"""Helpers for the drug-supply API suites: dispensing, shipments, the unblinded monitor's views
of kits and allocations, and a stricter blinding detector for supply responses."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import User, UserSite
from app.services import study_setup
from app.services.actor import SYSTEM
from app.services.transaction import writing
from tests.support.api import leaks
from tests.support.helpers import login, randomize, randomize_body, register, today

API = "/api/v1"
ADMIN = f"{API}/admin"
DEPOT = "DEPOT-EU"
CONTENTS = ("IMC002", "PLACEBO")
DO_NOT_DISPENSE_DAYS = 30
VISITS = ("D1", *(f"W{week}" for week in range(4, 49, 4)))
"""The 13 dosing visits of the IMC-002 schedule: day 1, then every 4 weeks through week 48."""
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
KIT_VIEW_KEYS = {"kit_number", "status", "expiry_date", "site_id", "depot_id"}
INVENTORY_KEYS = {"site_id", "total", "dispensable", "by_status", "listed_statuses", "kits"}
KIT_STATUSES = {
    "at_depot",
    "in_transit",
    "available",
    "dispensed",
    "damaged",
    "lost",
    "quarantined",
    "expired",
    "returned",
    "destroyed",
}


class Users:
    """Bearer headers per user, each logged in once."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self._headers: dict[str, dict[str, str]] = {}

    def __getitem__(self, username: str) -> dict[str, str]:
        if username not in self._headers:
            self._headers[username] = login(self.client, username)
        return self._headers[username]


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.url}: {response.text}"
    return response.json()


# --- set-up ---------------------------------------------------------------------------------


def add_inactive_site(
    db: Database, site_id: str, country: str, usernames: tuple[str, ...], depot: str = DEPOT
) -> None:
    """A new, inactive site (created as the command line would) and access for some users."""
    with writing(db) as session:
        study_setup.add_site(
            session,
            actor=SYSTEM,
            site_id=site_id,
            name=f"Site {site_id}",
            country=country,
            depot_id=depot,
        )
        session.flush()
        for user_id in session.execute(
            select(User.id).where(User.username.in_(usernames))
        ).scalars():
            session.add(UserSite(user_id=user_id, site_id=site_id))


def randomize_on(
    client: TestClient,
    headers: dict[str, str],
    site_id: str,
    day_one: date,
    weight_kg: float = 70.0,
) -> tuple[int, dict[str, Any]]:
    """Register and randomize a subject whose day 1 visit was on `day_one`."""
    subject_id = register(client, headers, site_id=site_id)
    body = randomize_body(
        weight_kg=weight_kg,
        sle_diagnosis_date=(day_one - timedelta(days=730)).isoformat(),
        screening_date=(day_one - timedelta(days=14)).isoformat(),
    )
    body["visit_date"] = day_one.isoformat()
    return subject_id, ok(randomize(client, headers, subject_id, body), 201)


def dispense(
    client: TestClient,
    headers: dict[str, str],
    subject_id: int,
    visit: str,
    visit_date: date,
    weight_kg: float = 70.0,
    idempotency_key: str | None = None,
) -> httpx.Response:
    return client.post(
        f"{API}/subjects/{subject_id}/dispense",
        json={"visit": visit, "visit_date": visit_date.isoformat(), "weight_kg": weight_kg},
        headers={**headers, "Idempotency-Key": idempotency_key or uuid.uuid4().hex},
    )


def replace(
    client: TestClient, headers: dict[str, str], subject_id: int, kit_number: str
) -> httpx.Response:
    return client.post(
        f"{API}/subjects/{subject_id}/kits/{kit_number}/replace",
        json={"reason": "vial dropped and broken at preparation", "status": "damaged"},
        headers={**headers, **key()},
    )


def set_kit_status(
    client: TestClient, headers: dict[str, str], kit_number: str, status: str
) -> httpx.Response:
    return client.post(
        f"{API}/kits/{kit_number}/status",
        json={"status": status, "reason": f"set to {status} by the test"},
        headers=headers,
    )


def visit_day(day_one: date, visit: str) -> date:
    return day_one + timedelta(weeks=VISITS.index(visit) * 4)


# --- unblinded views (the monitor) ------------------------------------------------------------


def monitor_kits(
    client: TestClient, site_id: str | None = None, status: str | None = None
) -> dict[str, dict[str, Any]]:
    params = {k: v for k, v in {"site_id": site_id, "status": status}.items() if v}
    rows = ok(client.get(f"{ADMIN}/kits", params=params, headers=login(client, "monitor")))
    return {row["kit_number"]: row for row in rows}


def allocations(client: TestClient) -> dict[int, dict[str, Any]]:
    rows = ok(client.get(f"{ADMIN}/allocations", headers=login(client, "monitor")))
    return {row["subject_id"]: row for row in rows}


def reconciliation(client: TestClient) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = ok(
        client.get(f"{ADMIN}/reconciliation", headers=login(client, "monitor"))
    )
    return rows


def contents_of(kits: dict[str, dict[str, Any]], numbers: list[str]) -> Counter[str]:
    return Counter(kits[n]["content"] for n in numbers)


# --- shipments --------------------------------------------------------------------------------


def shipments(
    client: TestClient, headers: dict[str, str], site_id: str | None = None
) -> list[dict[str, Any]]:
    params = {"site_id": site_id} if site_id else {}
    rows: list[dict[str, Any]] = ok(client.get(f"{API}/shipments", params=params, headers=headers))
    return rows


def ship(client: TestClient, supply: dict[str, str], shipment_id: int) -> dict[str, Any]:
    body: dict[str, Any] = ok(client.post(f"{API}/shipments/{shipment_id}/ship", headers=supply))
    assert body["status"] == "shipped" and body["shipped_at"], body
    assert {k["status"] for k in body["kits"]} == {"in_transit"}, body
    return body


def receive(
    client: TestClient,
    headers: dict[str, str],
    shipment_id: int,
    damaged: list[str] | None = None,
    missing: list[str] | None = None,
    temperature_excursion: bool = False,
) -> httpx.Response:
    return client.post(
        f"{API}/shipments/{shipment_id}/receive",
        json={
            "damaged": damaged or [],
            "missing": missing or [],
            "temperature_excursion": temperature_excursion,
        },
        headers=headers,
    )


# --- blinding ---------------------------------------------------------------------------------

SUPPLY_LEAK_KEY_WORDS = frozenset({"lot", "lots", "content", "contents", "arm", "treatment"})


def supply_leaks(response: httpx.Response) -> list[str]:
    """The shared detector (placebo, imc002, arm, treatment, content, block, slot, seed) plus
    any JSON key naming a lot, in the body or a header."""
    found = leaks(response)
    try:
        body = response.json()
    except ValueError:
        return found
    for name in _keys(body):
        if set(name.lower().split("_")) & SUPPLY_LEAK_KEY_WORDS:
            found.append(f"JSON key {name!r}")
    found += [f"header {name}" for name in response.headers if "lot" in name.lower().split("-")]
    return found


def _keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [str(k) for k in value] + [k for v in value.values() for k in _keys(v)]
    if isinstance(value, list):
        return [k for v in value for k in _keys(v)]
    return []


def assert_supply_blinded(response: httpx.Response, context: str) -> None:
    found = supply_leaks(response)
    assert not found, f"{context}: {found}\n{response.text}"


# --- the site ledger --------------------------------------------------------------------------


@dataclass
class Ledger:
    """What the test itself did at one site, to check the service's reconciliation against."""

    shipped: set[str] = field(default_factory=set)
    dispensed: set[str] = field(default_factory=set)
    damaged: set[str] = field(default_factory=set)
    lost: set[str] = field(default_factory=set)

    def expected_by_status(self, kits: dict[str, dict[str, Any]]) -> dict[str, Counter[str]]:
        """content -> status -> count; every shipped kit not otherwise accounted is available."""
        result: dict[str, Counter[str]] = {c: Counter() for c in CONTENTS}
        placed = self.dispensed | self.damaged | self.lost
        assert not (self.dispensed & self.damaged or self.dispensed & self.lost), self
        assert not self.damaged & self.lost, self
        for number in self.shipped:
            status = (
                "dispensed"
                if number in self.dispensed
                else "damaged"
                if number in self.damaged
                else "lost"
                if number in self.lost
                else "available"
            )
            result[kits[number]["content"]][status] += 1
        assert placed <= self.shipped
        return result


def days_ago(days: int) -> date:
    return today() - timedelta(days=days)
