"""Concurrent randomizations from two server processes over real HTTP, on both engines."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from app.db.engine import Database
from app.domain.study import load_study
from app.services import stages
from app.services.actor import SYSTEM
from app.services.transaction import writing
from tests.support.helpers import login, randomize_body, register
from tests.support.pools import stock_stage_pools
from tests.support.server import running_server, worker_pids

pytestmark = pytest.mark.slow
N = 64
STRATUM = "SLEDAI<10/PRED<10"


def open_phase_ii(db: Database) -> None:
    study = load_study()
    with writing(db) as session:
        for code, action in (("C1", "close"), ("C2", "open"), ("C2", "close")):
            stages.change_cohort(
                session, study=study, actor=SYSTEM, code=code, action=action, reason="test set-up"
            )
    with writing(db) as session:
        stages.select_phase2_dose(
            session,
            study=study,
            actor=SYSTEM,
            dose=load_study().cohort("C2").dose_mg_per_kg,
            reason="test set-up",
        )
    stock_stage_pools(db)


async def _post_all(
    base: str, headers: dict[str, str], requests: list[tuple[int, str]]
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=N * 2)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"/api/v1/subjects/{subject}/randomize",
                    json=randomize_body(),
                    headers={**headers, "Idempotency-Key": key},
                )
                for subject, key in requests
            )
        )


def _allocations(client: httpx.Client) -> list[dict[str, Any]]:
    response = client.get("/api/v1/admin/allocations", headers=login(client, "monitor"))
    assert response.status_code == 200
    return list(response.json())


def _assert_consecutive(allocations: list[dict[str, Any]], subjects: list[int]) -> None:
    assert sorted(a["subject_id"] for a in allocations) == sorted(subjects)
    in_stratum = [a for a in allocations if a["stratum"] == STRATUM]
    assert sorted(a["slot_sequence"] for a in in_stratum) == list(range(1, len(subjects) + 1))
    numbers = [a["randomization_number"] for a in allocations]
    assert len(set(numbers)) == len(numbers)


def test_64_concurrent_randomizations_take_distinct_consecutive_slots(
    demo_db: Database, db_url: str
) -> None:
    open_phase_ii(demo_db)
    with running_server(db_url, workers=2) as (base, pid):
        assert len(worker_pids(pid)) >= 2
        with httpx.Client(base_url=base, timeout=60) as client:
            coordinator = login(client, "coordinator")
            subjects = [
                register(client, coordinator, site_id=("DE01", "DE02")[i % 2]) for i in range(N)
            ]
            keys = [uuid.uuid4().hex for _ in subjects]
            first = asyncio.run(
                _post_all(base, coordinator, list(zip(subjects, keys, strict=True)))
            )
            assert Counter(r.status_code for r in first) == {201: N}, [r.text for r in first[:3]]
            allocations = _allocations(client)
            _assert_consecutive(allocations, subjects)

            retried = asyncio.run(
                _post_all(base, coordinator, list(zip(subjects, keys, strict=True)))
            )
            assert [r.status_code for r in retried] == [201] * N
            assert all(r.headers.get("Idempotent-Replayed") == "true" for r in retried)
            assert [r.json() for r in retried] == [r.json() for r in first]
            assert _allocations(client) == allocations


def test_simultaneous_retries_with_one_key_randomize_once(demo_db: Database, db_url: str) -> None:
    """Each request is sent twice at the same instant with the same key (a client retrying
    before the first answer), and once more with a new key: every subject is randomized once."""
    open_phase_ii(demo_db)
    with (
        running_server(db_url, workers=2) as (base, _),
        httpx.Client(base_url=base, timeout=60) as client,
    ):
        coordinator = login(client, "coordinator")
        subjects = [register(client, coordinator) for _ in range(N // 2)]
        keys = [uuid.uuid4().hex for _ in subjects]
        burst = [(s, k) for s, k in zip(subjects, keys, strict=True) for _ in range(2)]
        burst += [(s, uuid.uuid4().hex) for s in subjects]
        responses = asyncio.run(_post_all(base, coordinator, burst))
        by_subject: dict[int, list[httpx.Response]] = {}
        for (subject, _), response in zip(burst, responses, strict=True):
            by_subject.setdefault(subject, []).append(response)
        for subject, answers in by_subject.items():
            created = [r for r in answers if r.status_code == 201]
            refused = [r.json()["code"] for r in answers if r.status_code != 201]
            assert created, f"subject {subject} was never randomized"
            assert len({r.json()["randomization_number"] for r in created}) == 1
            assert set(refused) <= {"idempotency_in_flight", "already_randomized"}
        allocations = _allocations(client)
        _assert_consecutive(allocations, subjects)
        final = asyncio.run(_post_all(base, coordinator, list(zip(subjects, keys, strict=True))))
        numbers = {a["subject_id"]: a["randomization_number"] for a in allocations}
        for subject, response in zip(subjects, final, strict=True):
            # the first key replays if it won; if the other key won, it was released
            if response.status_code == 201:
                assert response.json()["randomization_number"] == numbers[subject]
            else:
                assert response.json()["code"] == "already_randomized"
            view = client.get(f"/api/v1/subjects/{subject}", headers=coordinator).json()
            assert view["randomization"]["randomization_number"] == numbers[subject]
        assert _allocations(client) == allocations
