"""The sponsor's journey over HTTP, on both engines: cohort C3 closes with unused places, the
sponsor moves them to phase II (reason and signature), and 218 subjects can be randomized in
all, the 219th is refused. Most subjects are randomized through the service layer in bulk (as
the API would, one command each); the boundary ones over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.db.engine import Database
from app.domain.study import load_study
from app.main import create_app
from app.services.demo import set_up_demo
from app.settings import Settings
from tests.support.api import assert_problem
from tests.support.caps import randomize_many, stage
from tests.support.demo import DEMO_PASSWORD, DEMO_SEED
from tests.support.helpers import SIGNED, login, randomize, register
from tests.support.pools import stock_stage_pools

pytestmark = pytest.mark.slow


@pytest.fixture
def journey(db: Database, db_url: str) -> Iterator[tuple[TestClient, Database]]:
    """The demo study with stock for the whole study at every site (each stage's subjects draw
    on kits shipped for that stage: the depot holds enough for both)."""
    set_up_demo(
        db,
        study=load_study(),
        password=DEMO_PASSWORD,
        seed=DEMO_SEED,
        kits_per_content=1000,
        site_levels=(70, 100),
        in_transit_site=None,
    )
    app = create_app(Settings(database_url=db_url))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, db
    app.state.db.dispose()


def test_unused_places_of_c3_move_to_phase_ii_and_218_are_randomized(
    journey: tuple[TestClient, Database],
) -> None:
    client, db = journey
    sponsor = login(client, "sponsor")
    coordinator = login(client, "coordinator")
    randomize_many(db, 8, prefix="C1")
    stage(db, ("C1", "close"), ("C2", "open"))
    randomize_many(db, 8, prefix="C2")
    stage(db, ("C2", "close"), ("C3", "open"))
    randomize_many(db, 5, prefix="C3")  # the DSMB stops C3 after 5 of 8
    closed = client.post(
        "/api/v1/admin/cohorts/C3/close",
        json={"reason": "DSMB: C3 stopped after 5 subjects", **SIGNED},
        headers=sponsor,
    )
    assert closed.status_code == 200, closed.text
    move = {"caps": {"C3": 5, "P2": 197}, "reason": "DSMB: unused C3 places to phase II"}
    unsigned = client.post(
        "/api/v1/admin/caps",
        json={**move, "signature": {"password": "not-my-password"}},
        headers={**sponsor, "Idempotency-Key": "move-c3-unsigned"},
    )
    assert_problem(unsigned, 422, "signature_invalid")
    moved = client.post(
        "/api/v1/admin/caps", json={**move, **SIGNED}, headers={**sponsor, "Idempotency-Key": "m"}
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["total"], moved.json()["target"]) == (218, 218)
    replay = client.post(
        "/api/v1/admin/caps", json={**move, **SIGNED}, headers={**sponsor, "Idempotency-Key": "m"}
    )
    assert replay.json() == moved.json() and replay.headers["Idempotent-Replayed"] == "true"
    dose = client.post(
        "/api/v1/admin/phase2-dose",
        json={"dose_mg_per_kg": 1.2, "reason": "dose selection meeting", **SIGNED},
        headers=sponsor,
    )
    assert dose.status_code == 200, dose.text
    stock_stage_pools(db)  # the review's shipments for phase II (stage pools)
    randomize_many(db, 98, prefix="P2")
    stock_stage_pools(db)  # the resupply the randomizations asked for, received
    randomize_many(db, 98, prefix="P2b")  # 21 + 196 = 217
    last = randomize(client, coordinator, register(client, coordinator, "DE01", "DE01-LAST"))
    assert last.status_code == 201, last.text
    assert (last.json()["randomization_number"], last.json()["stage"]) == ("IMC-0218", "phase_ii")
    over = randomize(client, coordinator, register(client, coordinator, "DE01", "DE01-OVER"))
    assert_problem(over, 409, "stage_full")
    caps = {
        s["scope"]: s for s in client.get("/api/v1/admin/caps", headers=sponsor).json()["scopes"]
    }
    assert {k: (v["cap"], v["randomized"]) for k, v in caps.items()} == {
        "C1": (8, 8),
        "C2": (8, 8),
        "C3": (5, 5),
        "P2": (197, 197),
    }
