"""Concurrent dispensing from two server processes over real HTTP, on both engines."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest

from app.db.engine import Database
from tests.concurrency.test_randomize_concurrency import open_phase_ii
from tests.support.helpers import login, randomize_body, register, today
from tests.support.server import running_server

pytestmark = pytest.mark.slow


def _randomize_four_weeks_ago(client: httpx.Client, headers: dict[str, str], site: str) -> int:
    subject = register(client, headers, site_id=site)
    body = randomize_body()
    day_one = today() - timedelta(days=28)
    body["visit_date"] = day_one.isoformat()
    body["eligibility"]["screening_date"] = (day_one - timedelta(days=7)).isoformat()
    response = client.post(
        f"/api/v1/subjects/{subject}/randomize",
        json=body,
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 201, response.text
    return subject


async def _dispense_all(
    base: str, headers: dict[str, str], subjects: list[int]
) -> list[httpx.Response]:
    body = {"visit": "W4", "visit_date": today().isoformat(), "weight_kg": 70}
    async with httpx.AsyncClient(
        base_url=base, timeout=120, limits=httpx.Limits(max_connections=100)
    ) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"/api/v1/subjects/{s}/dispense",
                    json=body,
                    headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                )
                for s in subjects
            )
        )


def _arms(client: httpx.Client) -> dict[int, str]:
    monitor = login(client, "monitor")
    rows = client.get("/api/v1/admin/allocations", headers=monitor).json()
    return {row["subject_id"]: row["arm"] for row in rows}


def _available(client: httpx.Client, site: str, content: str) -> list[dict[str, Any]]:
    monitor = login(client, "monitor")
    kits = client.get(
        "/api/v1/admin/kits", params={"site_id": site, "status": "available"}, headers=monitor
    ).json()
    return [k for k in kits if k["content"] == content]


def test_two_pharmacists_one_kit_left_exactly_one_gets_it(demo_db: Database, db_url: str) -> None:
    with (
        running_server(db_url, workers=2) as (base, _),
        httpx.Client(base_url=base, timeout=60) as client,
    ):
        coordinator = login(client, "coordinator")
        subjects: list[int] = []
        arms: dict[int, str] = {}
        while True:  # two subjects of one arm at DE01 (C1 is 3:1, so this ends fast)
            subjects.append(_randomize_four_weeks_ago(client, coordinator, "DE01"))
            arms = _arms(client)
            counts = Counter(arms[s] for s in subjects)
            content, seen = counts.most_common(1)[0]
            if seen >= 2:
                break
        pair = [s for s in subjects if arms[s] == content][:2]
        pharmacist = login(client, "pharmacist")
        for kit in _available(client, "DE01", content)[1:]:
            response = client.post(
                f"/api/v1/kits/{kit['kit_number']}/status",
                json={"status": "quarantined", "reason": "fridge alarm"},
                headers=pharmacist,
            )
            assert response.status_code == 200, response.text
        assert len(_available(client, "DE01", content)) == 1

        second = login(client, "investigator")
        responses = asyncio.run(_race(base, pharmacist, second, pair))
        assert sorted(r.status_code for r in responses) == [201, 409]
        loser = next(r for r in responses if r.status_code == 409)
        assert loser.json()["code"] == "no_kits_available"
        winner = next(r for r in responses if r.status_code == 201)
        assert len(winner.json()["kits"]) == 1
        assert _available(client, "DE01", content) == []
        supply = login(client, "supply")
        kinds = [
            s["kind"]
            for s in client.get(
                "/api/v1/shipments", params={"site_id": "DE01"}, headers=supply
            ).json()
        ]
        assert "urgent" in kinds or "resupply" in kinds


async def _race(
    base: str, first: dict[str, str], second: dict[str, str], pair: list[int]
) -> list[httpx.Response]:
    body = {"visit": "W4", "visit_date": today().isoformat(), "weight_kg": 70}
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        return list(
            await asyncio.gather(
                *(
                    client.post(
                        f"/api/v1/subjects/{subject}/dispense",
                        json=body,
                        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                    )
                    for subject, headers in zip(pair, (first, second), strict=True)
                )
            )
        )


def test_50_concurrent_dispensings_never_share_a_kit(demo_db: Database, db_url: str) -> None:
    open_phase_ii(demo_db)
    with (
        running_server(db_url, workers=2) as (base, _),
        httpx.Client(base_url=base, timeout=60) as client,
    ):
        coordinator = login(client, "coordinator")
        subjects = [
            _randomize_four_weeks_ago(client, coordinator, ("DE01", "DE02")[i % 2])
            for i in range(50)
        ]
        responses = asyncio.run(_dispense_all(base, login(client, "pharmacist"), subjects))
        assert Counter(r.status_code for r in responses) == {201: 50}, responses[0].text
        kits = [k for r in responses for k in r.json()["kits"]]
        assert len(kits) == len(set(kits)) >= 50
        monitor = login(client, "monitor")
        dispensed = client.get(
            "/api/v1/admin/kits", params={"status": "dispensed"}, headers=monitor
        ).json()
        numbers = [k["kit_number"] for k in dispensed]
        assert len(numbers) == len(set(numbers))
        assert set(kits) <= set(numbers)
        arms = _arms(client)
        content = {k["kit_number"]: k["content"] for k in dispensed}
        for subject, response in zip(subjects, responses, strict=True):
            assert {content[k] for k in response.json()["kits"]} == {arms[subject]}
