"""Drug supply over the API: a randomization refused for lack of kits, the dispensing rules, the
kit state machine and the kit list import. Every refusal is checked to change nothing."""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from app.db.engine import Database
from app.db.models import Kit
from tests.support.api import assert_problem, error_fields
from tests.support.databases import assert_unchanged, snapshot
from tests.support.helpers import SIGNATURE_HEADERS, login, randomize, register, today
from tests.support.supply import (
    ADMIN,
    API,
    CONTENTS,
    DEPOT,
    DO_NOT_DISPENSE_DAYS,
    ISO_DATE,
    KIT_VIEW_KEYS,
    Users,
    allocations,
    assert_supply_blinded,
    days_ago,
    dispense,
    monitor_kits,
    ok,
    randomize_on,
    set_kit_status,
    shipments,
)

LIST_TABLES = ("randomizations", "randomization_slots", "dispensings", "dispensed_kits")

# --- 2. no kits, no randomization --------------------------------------------------------------


def test_a_randomization_without_kits_is_refused_and_later_takes_the_same_slot(
    client: TestClient, demo_db: Database
) -> None:
    users = Users(client)
    coordinator, pharmacist, supply = users["coordinator"], users["pharmacist"], users["supply"]
    stock = monitor_kits(client, site_id="DE01", status="available")
    assert set(Counter(k["content"] for k in stock.values())) == set(CONTENTS)
    for number in stock:
        assert ok(set_kit_status(client, pharmacist, number, "quarantined"))["status"] == (
            "quarantined"
        )
    inventory = ok(client.get(f"{API}/sites/DE01/inventory", headers=pharmacist))
    assert inventory["dispensable"] == 0 and inventory["by_status"] == {"quarantined": len(stock)}
    # falling below the trigger requested resupplies; the supply manager cancels them, so that
    # nothing is on its way when the subject comes
    pending = [s for s in shipments(client, supply, "DE01") if s["status"] == "requested"]
    assert pending and {s["kind"] for s in pending} == {"resupply"}, pending
    for shipment in pending:
        cancelled = client.post(
            f"{API}/shipments/{shipment['shipment_id']}/cancel",
            json={"reason": "stock is only on hold"},
            headers=supply,
        )
        assert ok(cancelled)["status"] == "cancelled"

    subject_id = register(client, coordinator, site_id="DE01")
    before = snapshot(demo_db)
    idempotency_key = uuid.uuid4().hex
    refused = randomize(client, coordinator, subject_id, key=idempotency_key)
    assert_problem(refused, 409, "no_kits_available")
    assert_supply_blinded(refused, "refusal")
    after = snapshot(demo_db)
    for table in (*LIST_TABLES, "subjects", "kits", "idempotency_keys"):
        assert after[table] == before[table], table
    view = ok(client.get(f"{API}/subjects/{subject_id}", headers=coordinator))
    assert view["status"] == "registered" and view["randomization"] is None
    # the refusal asked the depot for an urgent shipment, in its own transaction
    urgent = [s for s in shipments(client, supply, "DE01") if s["kind"] == "urgent"]
    assert len(urgent) == 1 and urgent[0]["status"] == "requested", urgent
    assert urgent[0]["kit_count"] > 0
    assert {k["status"] for k in urgent[0]["kits"]} == {"at_depot"}

    # the supply manager releases the stock; the same request now randomizes the subject into
    # the first slot of C1, the one it would have taken
    for number in stock:
        assert ok(set_kit_status(client, supply, number, "available"))["status"] == "available"
    response = randomize(client, coordinator, subject_id, key=idempotency_key)
    body = ok(response, 201)
    assert "idempotent-replayed" not in response.headers
    assert body["randomization_number"] == "IMC-0001" and body["cohort"] == "C1"
    allocation = allocations(client)[subject_id]
    assert (allocation["list_scope"], allocation["slot_sequence"]) == ("C1", 1)
    assert set(body["kits"]) <= set(stock)
    kits = monitor_kits(client, site_id="DE01")
    assert {kits[n]["content"] for n in body["kits"]} == {allocation["arm"]}


# --- 3. dispensing rules ----------------------------------------------------------------------


def test_dispensing_rules(client: TestClient, demo_db: Database) -> None:
    users = Users(client)
    coordinator, pharmacist = users["coordinator"], users["pharmacist"]
    day_one = days_ago(56)  # W4 four weeks ago, W8 today
    w4, w8 = day_one + timedelta(weeks=4), day_one + timedelta(weeks=8)
    subjects = [randomize_on(client, coordinator, "DE01", day_one)[0] for _ in range(4)]
    first, second = subjects[0], subjects[1]
    registered = register(client, coordinator, site_id="DE01")  # and never randomized
    given: dict[int, dict[str, list[str]]] = {s: {} for s in subjects}
    for view in (ok(client.get(f"{API}/subjects/{s}", headers=pharmacist)) for s in subjects):
        given[view["subject_id"]]["D1"] = view["visits"][0]["kits"]

    # W4 once; the same key replays the same kits; a new key is a second dispensing: refused
    idempotency_key = uuid.uuid4().hex
    response = dispense(client, pharmacist, first, "W4", w4, idempotency_key=idempotency_key)
    body = ok(response, 201)
    assert "idempotent-replayed" not in response.headers
    assert body["visit"] == "W4" and len(body["kits"]) == body["dose"]["vials"] == 1
    given[first]["W4"] = body["kits"]
    after_w4 = snapshot(demo_db)
    replay = dispense(client, pharmacist, first, "W4", w4, idempotency_key=idempotency_key)
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == body
    again = dispense(client, pharmacist, first, "W4", w4)
    assert_problem(again, 409, "already_dispensed")
    by_coordinator = dispense(client, coordinator, first, "W4", w4 + timedelta(days=1))
    assert_problem(by_coordinator, 409, "already_dispensed")
    changed = dispense(client, pharmacist, first, "W4", w4, 71.0, idempotency_key)
    assert_problem(changed, 422, "idempotency_conflict")
    assert_problem(dispense(client, pharmacist, first, "D1", day_one), 409, "already_dispensed")
    assert_unchanged(demo_db, after_w4)

    # W8 then W4: out of order
    body = ok(dispense(client, coordinator, second, "W8", w8), 201)
    given[second]["W8"] = body["kits"]
    after_w8 = snapshot(demo_db)
    late = dispense(client, coordinator, second, "W4", w4)
    assert_problem(late, 409, "visit_out_of_order")

    # malformed visits, weights and dates: 422, nothing written
    third = subjects[2]
    for visit in ("W5", "W52", "D2", "w4"):
        problem = assert_problem(
            dispense(client, pharmacist, third, visit, w4), 422, "validation_error"
        )
        assert error_fields(problem) == ["visit"], problem
    for weight in (25.0, 29.9, 200.1):
        problem = assert_problem(
            dispense(client, pharmacist, third, "W4", w4, weight), 422, "validation_error"
        )
        assert error_fields(problem) == ["weight_kg"], problem
    for visit_date in (today() + timedelta(days=2), day_one - timedelta(days=1)):
        problem = assert_problem(
            dispense(client, pharmacist, third, "W4", visit_date), 422, "validation_error"
        )
        assert error_fields(problem) == ["visit_date"], problem
    no_key = client.post(
        f"{API}/subjects/{third}/dispense",
        json={"visit": "W4", "visit_date": w4.isoformat(), "weight_kg": 70},
        headers=pharmacist,
    )
    assert_problem(no_key, 400, "idempotency_key_required")

    # a subject not randomized, another site's subject, a role that may not dispense
    assert_problem(dispense(client, pharmacist, registered, "W4", w4), 409, "not_randomized")
    outsider = users["coordinator2"]
    foreign = dispense(client, outsider, third, "W4", w4)
    absent = dispense(client, outsider, 999_999, "W4", w4)
    assert_problem(foreign, 404, "not_found")
    assert foreign.json()["detail"].replace(str(third), "?") == absent.json()["detail"].replace(
        "999999", "?"
    )
    for role in ("supply", "sponsor", "monitor"):
        assert_problem(dispense(client, users[role], third, "W4", w4), 403, "forbidden")
    assert_unchanged(demo_db, after_w8)

    # the do-not-dispense window: kits expiring exactly visit date + 30 days stay on the shelf,
    # one day later they are the first to go (first expiry first)
    stock = monitor_kits(client, site_id="DE01", status="available")
    by_content: dict[str, list[str]] = {c: [] for c in CONTENTS}
    for number, kit in sorted(stock.items()):
        by_content[kit["content"]].append(number)
    edge = [n for c in CONTENTS for n in by_content[c][:3]]
    usable = [n for c in CONTENTS for n in by_content[c][3:5]]
    limit = today() + timedelta(days=DO_NOT_DISPENSE_DAYS)
    with demo_db.write() as session:
        session.execute(update(Kit).where(Kit.kit_number.in_(edge)).values(expiry_date=limit))
        session.execute(
            update(Kit)
            .where(Kit.kit_number.in_(usable))
            .values(expiry_date=limit + timedelta(days=1))
        )
    body = ok(dispense(client, pharmacist, first, "W8", today()), 201)
    given[first]["W8"] = body["kits"]
    assert set(body["kits"]) <= set(usable), body
    kits = monitor_kits(client, site_id="DE01")
    # the kits inside the window left the stock (expired) once the dispensing was done
    assert {kits[n]["status"] for n in edge} == {"expired"}
    for subject in subjects[2:]:
        body = ok(dispense(client, pharmacist, subject, "W4", w4), 201)
        given[subject]["W4"] = body["kits"]
        body = ok(dispense(client, coordinator, subject, "W8", w8), 201)
        given[subject]["W8"] = body["kits"]

    # every kit given is of the subject's arm and outside the window on its visit date
    kits = monitor_kits(client, site_id="DE01")
    arms = allocations(client)
    assert {arms[s]["arm"] for s in subjects} == set(CONTENTS)
    dates = {"D1": day_one, "W4": w4, "W8": w8}
    for subject, visits in given.items():
        for visit, numbers in visits.items():
            visit_date = today() if (subject, visit) == (first, "W8") else dates[visit]
            for number in numbers:
                kit = kits[number]
                assert kit["content"] == arms[subject]["arm"], (subject, visit, kit)
                assert kit["status"] == "dispensed", kit
                expiry = kit["expiry_date"]
                assert expiry > (visit_date + timedelta(days=DO_NOT_DISPENSE_DAYS)).isoformat()
    detail = ok(client.get(f"{API}/subjects/{first}", headers=pharmacist))
    assert [v["visit"] for v in detail["visits"]] == ["D1", "W4", "W8"]
    assert [v["kits"] for v in detail["visits"]] == [given[first][v] for v in ("D1", "W4", "W8")]


# --- 4. the kit state machine -----------------------------------------------------------------


def _refused_transition(response: Any, from_status: str, to_status: str) -> dict[str, Any]:
    problem = assert_problem(response, 409, "invalid_kit_transition")
    assert (problem["from_status"], problem["to_status"]) == (from_status, to_status), problem
    return problem


def test_kit_status_changes_follow_the_state_machine(client: TestClient, demo_db: Database) -> None:
    users = Users(client)
    pharmacist, supply = users["pharmacist"], users["supply"]
    _, randomized = randomize_on(client, users["coordinator"], "DE01", today())
    given = randomized["kits"][0]
    stock = sorted(monitor_kits(client, site_id="DE01", status="available"))
    elsewhere = sorted(monitor_kits(client, site_id="US01", status="available"))[0]
    at_depot = sorted(monitor_kits(client, status="at_depot"))[0]
    kit = stock[0]

    before = snapshot(demo_db)
    for headers in (pharmacist, supply):
        _refused_transition(
            set_kit_status(client, headers, given, "available"), "dispensed", "available"
        )
        _refused_transition(
            set_kit_status(client, headers, kit, "destroyed"), "available", "destroyed"
        )
        _refused_transition(
            set_kit_status(client, headers, kit, "at_depot"), "available", "at_depot"
        )
    _refused_transition(
        set_kit_status(client, supply, at_depot, "available"), "at_depot", "available"
    )
    assert_unchanged(demo_db, before)

    # the pharmacist quarantines a kit of their site, may not release it; the supply manager may
    quarantined = ok(set_kit_status(client, pharmacist, kit, "quarantined"))
    assert quarantined == {
        "kit_number": kit,
        "status": "quarantined",
        "expiry_date": quarantined["expiry_date"],
        "site_id": "DE01",
        "depot_id": None,
    }
    assert ok(client.get(f"{API}/kits/{kit}", headers=pharmacist))["status"] == "quarantined"
    after_quarantine = snapshot(demo_db)
    problem = _refused_transition(
        set_kit_status(client, pharmacist, kit, "available"), "quarantined", "available"
    )
    assert "pharmacist" in problem["detail"], problem
    assert_unchanged(demo_db, after_quarantine)
    assert ok(set_kit_status(client, supply, kit, "available"))["status"] == "available"
    assert ok(client.get(f"{API}/kits/{kit}", headers=pharmacist))["status"] == "available"

    # kits the pharmacist cannot see: another site's, the depot's, an unknown one
    before = snapshot(demo_db)
    for number in (elsewhere, at_depot, "NOSUCHKIT"):
        assert_problem(client.get(f"{API}/kits/{number}", headers=pharmacist), 404, "not_found")
        refused = set_kit_status(client, pharmacist, number, "quarantined")
        assert_problem(refused, 404, "not_found")
    for role in ("coordinator", "investigator", "sponsor", "monitor"):
        assert_problem(client.get(f"{API}/kits/{kit}", headers=users[role]), 403, "forbidden")
        refused = set_kit_status(client, users[role], kit, "quarantined")
        assert_problem(refused, 403, "forbidden")
    assert_unchanged(demo_db, before)
    # the supply manager sees every kit, blinded
    depot_view = ok(client.get(f"{API}/kits/{at_depot}", headers=supply))
    assert (depot_view["status"], depot_view["depot_id"], depot_view["site_id"]) == (
        "at_depot",
        DEPOT,
        None,
    )
    assert ok(client.get(f"{API}/kits/{elsewhere}", headers=supply))["site_id"] == "US01"
    assert_problem(client.get(f"{API}/kits/NOSUCHKIT", headers=supply), 404, "not_found")


# --- 5. kit list import -----------------------------------------------------------------------

HEADER = "kit_number,content,lot,expiry_date,depot\n"


def _kit_numbers(count: int) -> list[str]:
    return [f"T{uuid.uuid4().hex[:11].upper()}" for _ in range(count)]


def _import(client: TestClient, headers: dict[str, str], text: str) -> Any:
    return client.post(
        f"{ADMIN}/kits/import",
        content=text.encode(),
        headers={**headers, "Content-Type": "text/csv", **SIGNATURE_HEADERS},
    )


def test_kit_list_import(client: TestClient, demo_db: Database) -> None:
    users = Users(client)
    expiry = (today() + timedelta(days=400)).isoformat()
    numbers = _kit_numbers(4)
    rows = [
        (numbers[0], "IMC002", "L90A"),
        (numbers[1], "PLACEBO", "L90B"),
        (numbers[2], "IMC002", "L90A"),
        (numbers[3], "PLACEBO", "L90B"),
    ]
    text = HEADER + "".join(f"{n},{c},{lot},{expiry},{DEPOT}\n" for n, c, lot in rows)

    before = snapshot(demo_db)
    # the file names each kit's content: no blinded role may upload it (the supply manager,
    # pooled with the sponsor's EX export of kit numbers per subject, would unblind)
    for role in ("pharmacist", "coordinator", "sponsor", "supply"):
        assert_problem(_import(client, users[role], text), 403, "forbidden")
    assert_unchanged(demo_db, before)

    response = _import(client, users["monitor"], text)
    body = ok(response, 201)
    assert body.keys() == {"import_id", "sha256", "kits", "already_imported"}, body
    assert body["kits"] == 4 and body["already_imported"] is False
    assert body["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert_supply_blinded(response, "import")
    stored = monitor_kits(client, status="at_depot")
    assert {(n, stored[n]["content"], stored[n]["lot"]) for n, _, _ in rows} == set(rows)
    assert {(stored[n]["expiry_date"], stored[n]["depot_id"]) for n in numbers} == {(expiry, DEPOT)}

    # the same file again changes nothing
    after_import = snapshot(demo_db)
    response = _import(client, users["monitor"], text)
    assert response.status_code in (200, 201), response.text
    assert response.json() == {**body, "already_imported": True}
    assert_unchanged(demo_db, after_import)

    # a bad file names every bad row and imports nothing, not even its good rows
    fresh = _kit_numbers(6)
    bad = HEADER + "".join(
        [
            f"{fresh[0]},IMC002,L91A,{expiry},{DEPOT}\n",  # row 2: fine
            f"{fresh[0]},PLACEBO,L91B,{expiry},{DEPOT}\n",  # row 3: repeats row 2
            f"{fresh[1]},VERUM,L91C,{expiry},{DEPOT}\n",  # row 4: unknown content
            f"{fresh[2]},PLACEBO,L91B,{days_ago(1).isoformat()},{DEPOT}\n",  # row 5: past
            f"{fresh[3]},IMC002,L91A,31/12/2030,{DEPOT}\n",  # row 6: not a date
            f"{fresh[4]},PLACEBO,L91B,{expiry},{DEPOT}\n",  # row 7: fine
        ]
    )
    problem = assert_problem(_import(client, users["monitor"], bad), 422, "invalid_kit_list")
    problems = problem["problems"]
    assert [p.split(":")[0] for p in problems] == ["row 3", "row 4", "row 5", "row 6"]
    assert "repeats row 2" in problems[0] and fresh[0] in problems[0]
    assert "VERUM" in problems[1]
    assert "not in the future" in problems[2]
    assert "31/12/2030" in problems[3] and "not a date" in problems[3]
    # a blinded user is refused before the file is read: not even its problems are shown
    assert_problem(_import(client, users["supply"], bad), 403, "forbidden")
    # kit numbers that exist already
    clash = HEADER + f"{numbers[0]},IMC002,L92A,{expiry},{DEPOT}\n"
    clash += f"{fresh[5]},PLACEBO,L92B,{expiry},{DEPOT}\n"
    problem = assert_problem(_import(client, users["monitor"], clash), 422, "invalid_kit_list")
    assert problem["problems"] == [f"kit number {numbers[0]} exists already"]
    assert_unchanged(demo_db, after_import)
    assert not set(fresh) & set(monitor_kits(client))


# --- blinded kit views ------------------------------------------------------------------------


def test_blinded_kit_views_of_both_contents_look_alike(client: TestClient) -> None:
    users = Users(client)
    kits = monitor_kits(client, site_id="DE01", status="available")
    one = {c: next(n for n, k in sorted(kits.items()) if k["content"] == c) for c in CONTENTS}
    for user in ("pharmacist", "supply"):
        views = [ok(client.get(f"{API}/kits/{one[c]}", headers=users[user])) for c in CONTENTS]
        assert views[0].keys() == views[1].keys() == KIT_VIEW_KEYS
        for view in views:
            assert ISO_DATE.match(view["expiry_date"]), view
            assert (view["status"], view["site_id"], view["depot_id"]) == (
                "available",
                "DE01",
                None,
            )


def test_a_kit_list_that_is_not_utf8_is_refused_whole(
    client: TestClient, demo_db: Database
) -> None:
    before = snapshot(demo_db)
    body = (
        b"kit_number,content,lot,expiry_date,depot\nABCD2345,PLACEBO,L\xe901,2031-01-01,DEPOT-EU\n"
    )
    response = client.post(
        "/api/v1/admin/kits/import",
        content=body,
        headers={**login(client, "monitor"), "Content-Type": "text/csv", **SIGNATURE_HEADERS},
    )
    assert response.status_code == 422 and response.json()["code"] == "invalid_kit_list"
    assert "not UTF-8" in response.json()["problems"][0]
    assert_unchanged(demo_db, before)


def test_the_inventory_lists_the_kits_on_hand_and_the_dispensed_ones_when_asked(
    client: TestClient,
) -> None:
    """The totals count every kit the site holds or held; the list holds the kits not yet
    dispensed unless other statuses are asked for; a status that does not exist is refused."""
    users = Users(client)
    coordinator, pharmacist = users["coordinator"], users["pharmacist"]
    randomize_on(client, coordinator, "DE01", today())
    url = f"{API}/sites/DE01/inventory"
    on_hand = ok(client.get(url, headers=pharmacist))
    dispensed = on_hand["by_status"]["dispensed"]
    assert dispensed > 0
    assert "dispensed" not in on_hand["listed_statuses"]
    assert len(on_hand["kits"]) == on_hand["total"] - dispensed
    assert all(k["status"] != "dispensed" for k in on_hand["kits"])
    history = ok(client.get(url, params={"status": "dispensed"}, headers=pharmacist))
    assert history["listed_statuses"] == ["dispensed"]
    assert {k["status"] for k in history["kits"]} == {"dispensed"}
    assert len(history["kits"]) == dispensed
    assert {key: history[key] for key in ("total", "dispensable", "by_status")} == {
        key: on_hand[key] for key in ("total", "dispensable", "by_status")
    }
    both = ok(
        client.get(
            url, params=[("status", "dispensed"), ("status", "available")], headers=pharmacist
        )
    )
    assert len(both["kits"]) == dispensed + on_hand["by_status"]["available"]
    refused = assert_problem(
        client.get(url, params=[("status", "dispensed"), ("status", "sold")], headers=pharmacist),
        422,
        "validation_error",
    )
    # the parameter is named as the user wrote it, with the value that was refused
    assert [e["field"] for e in refused["errors"]] == ["status"]
    assert "(got 'sold')" in refused["errors"][0]["message"]
