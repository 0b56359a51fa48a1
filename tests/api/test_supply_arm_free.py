"""The supply chain behaves the same whatever a subject's arm: who is refused, with which message,
which tiers (expiry date and shipment) a visit gets; and the demo's burst of a whole cohort at
one site is dosed at week 4 once the requested shipment is shipped and received."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from app.db.engine import Database
from app.domain.study import load_study
from app.main import create_app
from app.services.demo import set_up_demo
from app.settings import Settings
from tests.support.api import assert_problem
from tests.support.databases import snapshot
from tests.support.demo import DEMO_PASSWORD, DEMO_SEED
from tests.support.helpers import randomize, randomize_body, register, today
from tests.support.supply import (
    API,
    Users,
    allocations,
    dispense,
    monitor_kits,
    ok,
    randomize_on,
    receive,
    set_kit_status,
    ship,
    shipments,
)

SITE = "DE01"


def _cohort_at_week_4(client: TestClient, users: Users, count: int) -> dict[int, str]:
    """`count` subjects randomized at DE01 four weeks ago; subject id -> arm (the monitor's)."""
    day_one = today() - timedelta(weeks=4)
    ids = [randomize_on(client, users["coordinator"], SITE, day_one)[0] for _ in range(count)]
    arms = allocations(client)
    return {subject_id: arms[subject_id]["arm"] for subject_id in ids}


def _shipment_of(client: TestClient, users: Users) -> dict[str, int]:
    """Kit number -> the shipment that brought it to DE01."""
    return {
        kit["kit_number"]: s["shipment_id"]
        for s in shipments(client, users["supply"], SITE)
        for kit in s["kits"]
    }


def test_a_dosing_refusal_does_not_follow_the_arm(client: TestClient, demo_db: Database) -> None:
    """With every IMC-002 kit at the site quarantined, a placebo subject is refused exactly as an
    IMC-002 subject is, although placebo kits are on the shelf: same status, code and message."""
    users = Users(client)
    arms = _cohort_at_week_4(client, users, 4)
    assert set(arms.values()) == {"IMC002", "PLACEBO"}, arms
    stock = monitor_kits(client, site_id=SITE, status="available")
    for number, kit in stock.items():
        if kit["content"] == "IMC002":
            ok(set_kit_status(client, users["pharmacist"], number, "quarantined"))
    shown = ok(client.get(f"{API}/sites/{SITE}/inventory", headers=users["pharmacist"]))
    assert shown["dispensable"] > 0, "placebo kits are still shown as dispensable"

    answers = {}
    for subject_id, arm in arms.items():
        before = snapshot(demo_db)
        refused = dispense(client, users["pharmacist"], subject_id, "W4", today())
        body = assert_problem(refused, 409, "no_kits_available")
        answers[arm] = body["detail"]
        after = snapshot(demo_db)
        assert after["dispensings"] == before["dispensings"]
        assert after["dispensed_kits"] == before["dispensed_kits"]
    assert len(set(answers.values())) == 1, answers

    # a new subject is refused at randomization too, whatever the next slot holds
    subject_id = register(client, users["coordinator"], site_id=SITE)
    refused = randomize(client, users["coordinator"], subject_id, randomize_body())
    assert assert_problem(refused, 409, "no_kits_available")["detail"] == next(
        iter(answers.values())
    )

    # the urgent resupply that followed brings every content
    kits = monitor_kits(client)
    requested = [s for s in shipments(client, users["supply"], SITE) if s["status"] == "requested"]
    assert requested, "the refusals requested kits"
    for shipment in requested:
        assert {kits[k["kit_number"]]["content"] for k in shipment["kits"]} == {
            "IMC002",
            "PLACEBO",
        }

    # released, every subject is dosed: the refusal was the stock's, never the arm's
    for number, kit in stock.items():
        if kit["content"] == "IMC002":
            ok(set_kit_status(client, users["supply"], number, "available"))
    for subject_id in arms:
        ok(dispense(client, users["pharmacist"], subject_id, "W4", today()), 201)


def test_the_tiers_a_visit_gets_do_not_follow_the_arm(client: TestClient) -> None:
    """Two shipments at the site. Every IMC-002 kit of the first is quarantined: placebo
    subjects could still be given kits of the first shipment, but every subject, on either arm,
    gets kits of the second, so what a pharmacist sees on the labels and receipts is the same."""
    users = Users(client)
    arms = _cohort_at_week_4(client, users, 4)
    first = set(monitor_kits(client, site_id=SITE, status="available"))
    manual = ok(
        client.post(
            f"{API}/shipments",
            json={"site_id": SITE, "kits_per_content": 6, "reason": "second tier for the test"},
            headers=users["supply"],
        ),
        201,
    )
    ship(client, users["supply"], manual["shipment_id"])
    ok(receive(client, users["pharmacist"], manual["shipment_id"]))
    kits = monitor_kits(client, site_id=SITE, status="available")
    for number in first:
        if kits.get(number, {}).get("content") == "IMC002":
            ok(set_kit_status(client, users["pharmacist"], number, "quarantined"))
    assert any(kits[n]["content"] == "PLACEBO" for n in first if n in kits)

    brought = _shipment_of(client, users)
    tiers: dict[str, set[tuple[str, int]]] = {}
    for subject_id, arm in arms.items():
        given = ok(dispense(client, users["pharmacist"], subject_id, "W4", today()), 201)
        for number in given["kits"]:
            tiers.setdefault(arm, set()).add((kits[number]["expiry_date"], brought[number]))
    assert set(tiers) == {"IMC002", "PLACEBO"}
    assert (
        tiers["IMC002"]
        == tiers["PLACEBO"]
        == {(next(iter(tiers["PLACEBO"]))[0], manual["shipment_id"])}
    ), tiers


@pytest.fixture
def study_levels_client(db: Database, db_url: str) -> Iterator[TestClient]:
    """The demo exactly as `irt demo` sets it up: the study's own supply levels."""
    set_up_demo(
        db,
        study=load_study(),
        password=DEMO_PASSWORD,
        seed=DEMO_SEED,
        kits_per_content=300,
        in_transit_site=None,
    )
    app = create_app(Settings(database_url=db_url))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
    app.state.db.dispose()


def test_the_demo_doses_a_whole_cohort_at_week_4(study_levels_client: TestClient) -> None:
    """Eight C1 subjects randomized at DE01 in one go; the supply manager ships what the system
    requested, the pharmacist receives it; then every one of the eight is dosed at week 4."""
    client = study_levels_client
    users = Users(client)
    arms = _cohort_at_week_4(client, users, 8)
    assert sorted(arms.values()).count("IMC002") == 6
    for shipment in shipments(client, users["supply"], SITE):
        if shipment["status"] == "requested":
            ship(client, users["supply"], shipment["shipment_id"])
            ok(receive(client, users["pharmacist"], shipment["shipment_id"]))
    for subject_id in arms:
        given = ok(dispense(client, users["pharmacist"], subject_id, "W4", today()), 201)
        assert len(given["kits"]) == given["dose"]["vials"]
