"""Stage pools over the API, on both engines: a phase Ib subject gets only kits shipped for phase
Ib and a phase II subject only kits shipped for phase II, while the site holds both."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Kit
from app.domain.kits import KitStatus
from app.domain.study import PHASE_IB, PHASE_II, load_study
from app.services.actor import job
from app.services.locks import lock_site
from app.services.resupply import check_site
from app.services.transaction import writing
from tests.support.helpers import open_phase2, today
from tests.support.supply import (
    Users,
    dispense,
    ok,
    randomize_on,
    receive,
    ship,
    shipments,
    visit_day,
)


def _pools(db: Database, numbers: list[str]) -> set[str | None]:
    with db.read() as session:
        return set(session.execute(select(Kit.pool).where(Kit.kit_number.in_(numbers))).scalars())


def _available_pools(db: Database, site_id: str) -> set[str | None]:
    with db.read() as session:
        return set(
            session.execute(
                select(Kit.pool).where(
                    Kit.site_id == site_id, Kit.status == KitStatus.AVAILABLE.value
                )
            ).scalars()
        )


def test_each_stage_draws_only_on_the_kits_shipped_for_it(
    client: TestClient, demo_db: Database
) -> None:
    users = Users(client)
    coordinator, pharmacist, supply = users["coordinator"], users["pharmacist"], users["supply"]
    day_one = today() - timedelta(weeks=4)
    ib_subject, ib = randomize_on(client, coordinator, "DE01", day_one)
    assert ib["cohort"] == "C1"
    assert _pools(demo_db, ib["kits"]) == {PHASE_IB}
    assert _available_pools(demo_db, "DE01") == {PHASE_IB}

    # phase II opens; the resupply check stocks the phase II pool of the site
    open_phase2(client)
    with writing(demo_db) as session:
        check_site(
            session,
            study=load_study(),
            actor=job("resupply"),
            site=lock_site(session, "DE01"),
            today=today(),
        )
    for shipment in shipments(client, supply, "DE01"):
        if shipment["status"] == "requested":
            ship(client, supply, shipment["shipment_id"])
            ok(receive(client, pharmacist, shipment["shipment_id"]))
    assert _available_pools(demo_db, "DE01") == {PHASE_IB, PHASE_II}

    _, phase_ii = randomize_on(client, coordinator, "DE01", today())
    assert phase_ii["randomization_number"] != ib["randomization_number"]
    assert _pools(demo_db, phase_ii["kits"]) == {PHASE_II}

    # the phase Ib subject's next visit, while phase II kits are on the same shelf
    visit = ok(dispense(client, coordinator, ib_subject, "W4", visit_day(day_one, "W4")), 201)
    assert _pools(demo_db, visit["kits"]) == {PHASE_IB}
