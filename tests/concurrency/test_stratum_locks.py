"""Randomizations lock their stratum, not the study: strata go on in parallel, yet the caps,
the randomization numbers and the stage changes stay exact. Real servers, both engines."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import AuditEntry
from app.domain.study import load_study
from app.services.demo import set_up_demo
from tests.concurrency.test_randomize_concurrency import open_phase_ii
from tests.support.demo import DEMO_LEVELS, DEMO_PASSWORD, DEMO_SEED
from tests.support.helpers import SIGNED, login, randomize_body, register
from tests.support.server import running_server

pytestmark = pytest.mark.slow
PHASE_II_CAP = 12
STRATA = [(8, 5), (8, 15), (12, 5), (12, 15)]
"""(SLEDAI-2K, prednisone mg/day): one subject set in each of the four phase II strata."""


def _small_study_db(db: Database) -> None:
    """The demo study with a phase II cap of 12, so that a burst crosses it."""
    study = load_study()
    phase_ii = study.phase_ii.model_copy(update={"cap": PHASE_II_CAP})
    cohorts_cap = sum(c.cap for c in study.phase_ib.cohorts)
    small = study.model_copy(update={"phase_ii": phase_ii, "total_cap": cohorts_cap + PHASE_II_CAP})
    set_up_demo(
        db,
        study=small,
        password=DEMO_PASSWORD,
        seed=DEMO_SEED,
        kits_per_content=300,
        site_levels=DEMO_LEVELS,
        in_transit_site=None,
    )


async def _randomize_all(
    base: str, headers: dict[str, str], bodies: list[tuple[int, dict[str, Any]]]
) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"/api/v1/subjects/{subject}/randomize",
                    json=body,
                    headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                )
                for subject, body in bodies
            )
        )


def test_a_burst_across_all_strata_stops_exactly_at_the_cap(db: Database, db_url: str) -> None:
    _small_study_db(db)
    open_phase_ii(db)
    with (
        running_server(db_url, workers=2) as (base, _),
        httpx.Client(base_url=base, timeout=60) as client,
    ):
        coordinator = login(client, "coordinator")
        bodies = []
        for n in range(20):
            sledai, prednisone = STRATA[n % len(STRATA)]
            subject = register(client, coordinator, site_id=("DE01", "DE02")[n % 2])
            body = randomize_body(
                sledai_2k_score=sledai, prednisone_equivalent_mg_per_day=prednisone
            )
            bodies.append((subject, body))
        responses = asyncio.run(_randomize_all(base, coordinator, bodies))
        assert Counter(r.status_code for r in responses) == {201: 12, 409: 8}
        assert {r.json()["code"] for r in responses if r.status_code == 409} == {"stage_full"}
        allocations = client.get("/api/v1/admin/allocations", headers=login(client, "monitor"))
    numbers = sorted(a["randomization_number"] for a in allocations.json())
    prefix = load_study().randomization_number_prefix
    assert numbers == [f"{prefix}-{n:04d}" for n in range(1, PHASE_II_CAP + 1)]
    by_stratum: dict[str, list[int]] = {}
    for allocation in allocations.json():
        by_stratum.setdefault(allocation["stratum"], []).append(allocation["slot_sequence"])
    assert len(by_stratum) > 1
    for sequences in by_stratum.values():
        assert sorted(sequences) == list(range(1, len(sequences) + 1))


def test_closing_a_cohort_during_a_burst_admits_only_what_came_before(
    demo_db: Database, db_url: str
) -> None:
    """Every randomization the server acknowledged is in the audit chain before the cohort's
    close; every one after it was refused as stage_closed."""
    with (
        running_server(db_url, workers=2) as (base, _),
        httpx.Client(base_url=base, timeout=60) as client,
    ):
        coordinator = login(client, "coordinator")
        sponsor = login(client, "sponsor")
        subjects = [
            register(client, coordinator, site_id=("DE01", "DE02")[n % 2]) for n in range(6)
        ]

        async def burst() -> tuple[list[httpx.Response], httpx.Response]:
            async with httpx.AsyncClient(base_url=base, timeout=120) as http:
                close = http.post(
                    "/api/v1/admin/cohorts/C1/close",
                    json={"reason": "safety review", **SIGNED},
                    headers=sponsor,
                )
                posts = [
                    http.post(
                        f"/api/v1/subjects/{subject}/randomize",
                        json=randomize_body(),
                        headers={**coordinator, "Idempotency-Key": uuid.uuid4().hex},
                    )
                    for subject in subjects
                ]
                closed, *answers = await asyncio.gather(close, *posts)
                return answers, closed

        responses, closed = asyncio.run(burst())
    assert closed.status_code == 200, closed.text
    assert {r.status_code for r in responses} <= {201, 409}
    refused = {r.json()["code"] for r in responses if r.status_code == 409}
    assert refused <= {"stage_closed"}
    with demo_db.read() as session:
        entries = session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars().all()
    close_seq = next(e.seq for e in entries if e.action == "cohort.close" and e.entity_id == "C1")
    randomized = {int(e.entity_id): e.seq for e in entries if e.action == "subject.randomize"}
    acknowledged = [subjects[i] for i, r in enumerate(responses) if r.status_code == 201]
    assert sorted(randomized) == sorted(acknowledged)
    assert all(seq < close_seq for seq in randomized.values())
