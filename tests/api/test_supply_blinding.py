"""Blinding of the drug-supply routes: with kits of both contents dispensed, replaced and shipped,
every blinded role calls every supply route (its successes and its refusals), and no body or
header names a content, a lot, an arm or a treatment; the site inventory holds totals only; and
what a blinded user sees of an active and of a placebo subject, kit or dispensing is the same but
for the numbers."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.domain.roles import BLINDED_ROLES, Role
from tests.support.api import assert_problem
from tests.support.helpers import login, today
from tests.support.supply import (
    API,
    CONTENTS,
    INVENTORY_KEYS,
    ISO_DATE,
    KIT_STATUSES,
    KIT_VIEW_KEYS,
    Users,
    allocations,
    assert_supply_blinded,
    dispense,
    monitor_kits,
    ok,
    randomize_on,
    receive,
    replace,
    set_kit_status,
    ship,
    shipments,
    supply_leaks,
)

SITES = ("DE01", "DE02", "US01")
USERS = {
    "coordinator": Role.SITE_COORDINATOR,
    "coordinator2": Role.SITE_COORDINATOR,
    "investigator": Role.INVESTIGATOR,
    "pharmacist": Role.PHARMACIST,
    "supply": Role.SUPPLY_MANAGER,
    "sponsor": Role.SPONSOR_ADMIN,
}
OWN_VISIT = {"coordinator": "W8", "investigator": "W12", "pharmacist": "W16"}
"""The visit each dispensing role doses in the walk (day 1 was 16 weeks ago)."""
PHARMACY = frozenset({Role.PHARMACIST, Role.SUPPLY_MANAGER})
SITE_ROLES = frozenset({Role.SITE_COORDINATOR, Role.INVESTIGATOR, Role.PHARMACIST})


@dataclass
class World:
    day_one: date
    subject: dict[str, int]  # content -> a DE01 subject on it
    kit: dict[str, str]  # label -> kit number
    to_receive: dict[str, int]  # user -> a shipped DE01 shipment for them to receive
    shipment_ids: list[int]
    responses: list[tuple[str, httpx.Response]] = field(default_factory=list)


def _record(world: World, label: str, response: httpx.Response, status: int) -> Any:
    world.responses.append((label, response))
    return ok(response, status)


def _manual_shipment(client: TestClient, world: World, site_id: str) -> dict[str, Any]:
    supply = login(client, "supply")
    response = client.post(
        f"{API}/shipments",
        json={"site_id": site_id, "kits_per_content": 2, "reason": "extra stock for a visit"},
        headers=supply,
    )
    shipment = _record(world, f"request to {site_id}", response, 201)
    assert shipment["kind"] == "manual" and shipment["kit_count"] == 2 * len(CONTENTS)
    world.shipment_ids.append(shipment["shipment_id"])
    sent = ship(client, supply, shipment["shipment_id"])
    return sent


@pytest.fixture
def world(client: TestClient) -> World:
    users = Users(client)
    day_one = today() - timedelta(weeks=16)
    built = World(day_one, {}, {}, {}, [])
    subjects = []
    for _ in range(4):  # the first block of C1 (3:1) holds both arms
        subject_id, _ = randomize_on(client, users["coordinator"], "DE01", day_one)
        subjects.append(subject_id)
    arms = allocations(client)
    built.subject = {c: next(s for s in subjects if arms[s]["arm"] == c) for c in CONTENTS}
    for content, subject_id in built.subject.items():
        response = dispense(
            client, users["pharmacist"], subject_id, "W4", day_one + timedelta(weeks=4)
        )
        given = _record(built, f"dispense W4 {content}", response, 201)["kits"][0]
        response = replace(client, users["pharmacist"], subject_id, given)
        replacement = _record(built, f"replace {content}", response, 201)["kit"]
        built.kit[f"replaced {content}"] = given
        built.kit[f"dispensed {content}"] = replacement
    # a manual shipment received, two more on their way to DE01, one to DE02
    received = _manual_shipment(client, built, "DE01")
    response = receive(client, users["pharmacist"], received["shipment_id"])
    _record(built, "receive", response, 200)
    for user in ("pharmacist", "supply"):
        built.to_receive[user] = _manual_shipment(client, built, "DE01")["shipment_id"]
    in_transit = _manual_shipment(client, built, "DE02")
    built.kit["in transit"] = in_transit["kits"][0]["kit_number"]

    kits = monitor_kits(client)
    for content in CONTENTS:
        # the latest expiry at DE01 (from the manual shipment): first expiry first keeps it
        # on the shelf while the walk dispenses
        built.kit[f"available {content}"] = max(
            (k["expiry_date"], n)
            for n, k in kits.items()
            if (k["site_id"], k["status"], k["content"]) == ("DE01", "available", content)
        )[1]
        built.kit[f"at depot {content}"] = next(
            n
            for n, k in sorted(kits.items())
            if (k["status"], k["content"]) == ("at_depot", content)
        )
        for label in ("dispensed", "replaced"):
            assert kits[built.kit[f"{label} {content}"]]["content"] == content
    built.kit["US01"] = next(n for n, k in sorted(kits.items()) if k["site_id"] == "US01")
    built.shipment_ids = sorted({*built.shipment_ids, *range(1, max(built.shipment_ids) + 1)})
    return built


Request = tuple[str, str, str, dict[str, Any]]  # label, method, url, keyword arguments


def _walk(world: World, user: str) -> list[Request]:
    """Every supply route, with the values this user would try."""
    reason = {"reason": "walk of the blinded roles"}
    requests: list[Request] = [
        *[(f"inventory {s}", "GET", f"{API}/sites/{s}/inventory", {}) for s in SITES],
        ("shipments", "GET", f"{API}/shipments", {}),
        ("shipments DE01", "GET", f"{API}/shipments", {"params": {"site_id": "DE01"}}),
        *[(f"shipment {i}", "GET", f"{API}/shipments/{i}", {}) for i in world.shipment_ids],
        *[(f"kit {label}", "GET", f"{API}/kits/{n}", {}) for label, n in world.kit.items()],
        ("subjects", "GET", f"{API}/subjects", {}),
    ]
    visit = OWN_VISIT.get(user, "W8")
    visit_date = world.day_one + timedelta(weeks=int(visit[1:]))
    for content, subject_id in world.subject.items():
        body = {"visit": visit, "visit_date": visit_date.isoformat(), "weight_kg": 70.0}
        requests += [
            (f"subject {content}", "GET", f"{API}/subjects/{subject_id}", {}),
            (
                f"dispense {content}",
                "POST",
                f"{API}/subjects/{subject_id}/dispense",
                {"json": body, "headers": {"Idempotency-Key": f"{user}-{content}"}},
            ),
            (
                f"dispense again {content}",
                "POST",
                f"{API}/subjects/{subject_id}/dispense",
                {
                    "json": {**body, "visit": "W4"},
                    "headers": {"Idempotency-Key": f"{user}-again-{content}"},
                },
            ),
            (
                f"replace a replaced kit {content}",
                "POST",
                f"{API}/subjects/{subject_id}/kits/{world.kit[f'replaced {content}']}/replace",
                {"json": reason, "headers": {"Idempotency-Key": f"{user}-r-{content}"}},
            ),
            (
                f"destroy {content}",
                "POST",
                f"{API}/kits/{world.kit[f'dispensed {content}']}/status",
                {"json": {**reason, "status": "destroyed"}},
            ),
            (  # the pharmacist quarantines a kit, the supply manager releases it
                f"quarantine or release {content}",
                "POST",
                f"{API}/kits/{world.kit[f'available {content}']}/status",
                {"json": {**reason, "status": "available" if user == "supply" else "quarantined"}},
            ),
        ]
    shipment_id = world.to_receive.get(user, world.to_receive["pharmacist"])
    requests += [
        ("receive", "POST", f"{API}/shipments/{shipment_id}/receive", {"json": {}}),
        ("receive again", "POST", f"{API}/shipments/{shipment_id}/receive", {"json": {}}),
        ("ship a received one", "POST", f"{API}/shipments/{shipment_id}/ship", {}),
        (
            "release a received one",
            "POST",
            f"{API}/shipments/{shipment_id}/release",
            {"json": reason},
        ),
        (
            "request",
            "POST",
            f"{API}/shipments",
            {"json": {"site_id": "US01", "kits_per_content": 1, **reason}},
        ),
        (
            "levels",
            "PUT",
            f"{API}/sites/DE02/supply-levels",
            {"json": {"trigger": 10, "target": 40}},
        ),
    ]
    return requests


def _may(user: str, label: str) -> bool:
    """Whether the roles and API contract let the user's role make this request at all."""
    rules: list[tuple[tuple[str, ...], frozenset[Role]]] = [
        (("inventory", "shipment", "kit ", "receive", "destroy", "quarantine"), PHARMACY),
        (("subject", "dispense"), SITE_ROLES),
        (("replace",), frozenset({Role.PHARMACIST})),
        (("ship a", "release a", "request", "levels"), frozenset({Role.SUPPLY_MANAGER})),
    ]
    for prefixes, roles in rules:
        if label.startswith(prefixes):
            return USERS[user] in roles
    raise AssertionError(f"no rule for {label}")


KIT_NUMBER = re.compile(r"\b[ACDEFGHJKLMNPQRTUVWXY3479]{8}\b")
PER_SUBJECT = {
    "subject_id",
    "screening_number",
    "randomization_number",
    "randomized_at",
    "confirmation_id",
}


def _masked(response: httpx.Response) -> str:
    """The body with what differs between two subjects or two kits masked: kit numbers, subject
    ids and numbers, randomization times, confirmation ids (a study-wide sequence)."""

    def mask(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: "<x>" if k in PER_SUBJECT else mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(v) for v in value]
        return value

    text = json.dumps(mask(response.json()), sort_keys=True)
    text = re.sub(r"/subjects/\d+/", "/subjects/<id>/", text)
    return KIT_NUMBER.sub("<kit>", text)


def _alike_kits(pair: list[httpx.Response]) -> None:
    """Two kits of different content: the same answer, the same keys, the same date format."""
    assert pair[0].status_code == pair[1].status_code, [r.text for r in pair]
    if pair[0].status_code != 200:
        assert _masked(pair[0]) == _masked(pair[1])
        return
    views = [r.json() for r in pair]
    assert views[0].keys() == views[1].keys() == KIT_VIEW_KEYS, views
    assert all(ISO_DATE.match(v["expiry_date"]) for v in views), views
    assert len({(v["status"], v["site_id"], v["depot_id"]) for v in views}) == 1, views


def test_every_supply_route_is_blinded_for_every_blinded_role(
    client: TestClient, world: World
) -> None:
    for label, response in world.responses:
        assert_supply_blinded(response, f"set-up {label}")
    for user, role in USERS.items():
        assert role in BLINDED_ROLES
        headers = login(client, user)
        seen: dict[str, httpx.Response] = {}
        for label, method, url, kwargs in _walk(world, user):
            extra = {**kwargs.get("headers", {}), **headers}
            response = client.request(method, url, **{**kwargs, "headers": extra})
            context = f"{user} {label} -> {response.status_code}"
            assert_supply_blinded(response, context)
            assert response.status_code < 500, context
            if not _may(user, label):
                assert_problem(response, 403, "forbidden")
            seen[label] = response
        _check_what_was_seen(world, user, seen)


def _check_what_was_seen(world: World, user: str, seen: dict[str, httpx.Response]) -> None:
    """The walk reached what the role may see (so the blinding checks were not vacuous), and
    an active and a placebo subject, kit or refusal read the same but for their numbers."""
    role = USERS[user]
    if role in PHARMACY:
        mine = {"DE01", "DE02"} if role is Role.PHARMACIST else set(SITES)
        for site in SITES:
            response = seen[f"inventory {site}"]
            if site not in mine:
                assert_problem(response, 404, "not_found")
                continue
            inventory = ok(response)
            assert inventory.keys() == INVENTORY_KEYS, inventory
            assert set(inventory["by_status"]) <= KIT_STATUSES, inventory
            assert sum(inventory["by_status"].values()) == inventory["total"]
            listed = set(inventory["listed_statuses"])
            assert listed == KIT_STATUSES - {"dispensed"}, inventory
            on_hand = inventory["total"] - inventory["by_status"].get("dispensed", 0)
            assert on_hand == len(inventory["kits"]) > 0
            assert all(k["status"] in listed for k in inventory["kits"])
            assert all(k.keys() == KIT_VIEW_KEYS for k in inventory["kits"])
            assert inventory["dispensable"] <= inventory["by_status"].get("available", 0)
        assert {s["site_id"] for s in ok(seen["shipments"])} == mine
        for label in ("dispensed", "replaced", "available", "at depot"):
            _alike_kits([seen[f"kit {label} {c}"] for c in CONTENTS])
        assert ok(seen["kit dispensed IMC002"])["status"] == "dispensed"
        assert ok(seen["kit replaced PLACEBO"])["status"] == "damaged"
        assert ok(seen["receive"])["status"] == "received"
        assert_problem(seen["receive again"], 409, "invalid_shipment_state")
        expected = "available" if role is Role.SUPPLY_MANAGER else "quarantined"
        for content in CONTENTS:
            assert ok(seen[f"quarantine or release {content}"])["status"] == expected
            assert_problem(seen[f"destroy {content}"], 409, "invalid_kit_transition")
    if user in OWN_VISIT:
        pair = [seen[f"dispense {c}"] for c in CONTENTS]
        assert [r.status_code for r in pair] == [201, 201], [r.text for r in pair]
        assert _masked(pair[0]) == _masked(pair[1])
        refusals = [seen[f"dispense again {c}"] for c in CONTENTS]
        for refusal in refusals:
            assert_problem(refusal, 409, "already_dispensed")
        assert _masked(refusals[0]) == _masked(refusals[1])
        subjects = [ok(seen[f"subject {c}"]) for c in CONTENTS]
        # read before this user's own dispensing: D1, W4 and one visit per staff user before
        visits = 2 + list(OWN_VISIT).index(user)
        assert [len(s["visits"]) for s in subjects] == [visits, visits]
        assert _masked(seen["subject IMC002"]) == _masked(seen["subject PLACEBO"])
    if role is Role.PHARMACIST:
        for content in CONTENTS:
            assert_problem(seen[f"replace a replaced kit {content}"], 409, "already_replaced")
    if role is Role.SUPPLY_MANAGER:
        assert ok(seen["request"], 201)["kit_count"] == len(CONTENTS)
        assert ok(seen["levels"]) == {"site_id": "DE02", "trigger": 10, "target": 40}
        assert_problem(seen["ship a received one"], 409, "invalid_shipment_state")
        assert_problem(seen["release a received one"], 409, "invalid_shipment_state")
    if user == "coordinator2":
        for content in CONTENTS:
            assert_problem(seen[f"subject {content}"], 404, "not_found")
            assert_problem(seen[f"dispense {content}"], 404, "not_found")


def test_the_detector_sees_contents_and_lots_in_the_monitors_kit_view(
    client: TestClient, world: World
) -> None:
    """The control: the same detector flags the unblinded monitor's kit list."""
    response = client.get("/api/v1/admin/kits", headers=login(client, "monitor"))
    found = supply_leaks(response)
    assert "JSON key 'content'" in found and "JSON key 'lot'" in found, found
    assert "body contains 'placebo'" in found and "body contains 'imc002'" in found, found


def test_a_resupply_shipment_does_not_sort_kits_by_content(client: TestClient) -> None:
    """A blinded pharmacist sees which kit numbers arrive together and which kit numbers each
    subject gets. A shipment of a single content would tell them that every subject given one of
    its kits is on the same treatment (and with 3:1 phase Ib cohorts, which one)."""
    users = Users(client)
    stock = monitor_kits(client, site_id="DE01", status="available")
    active = sorted(n for n, k in stock.items() if k["content"] == "IMC002")
    for number in active[:-2]:  # 2 left: below any safety level
        ok(set_kit_status(client, users["pharmacist"], number, "quarantined"))
    requested = [
        s for s in shipments(client, users["pharmacist"], "DE01") if s["status"] == "requested"
    ]
    if not requested:  # the control, outside the expected failure
        pytest.fail("no resupply was requested")
    kits = monitor_kits(client)
    for shipment in requested:
        held = {kits[k["kit_number"]]["content"] for k in shipment["kits"]}
        assert held == set(CONTENTS), (shipment["shipment_id"], held)
