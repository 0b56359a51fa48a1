"""Visit windows over the API: an out-of-window dose refused, then given with an investigator's
override; a missed visit that keeps the next target; a dispensing entered in error; the visit
report of a site. Every refusal is checked to change nothing but the audit trail."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Dispensing
from tests.support.api import assert_problem, leaks
from tests.support.databases import assert_attempt_recorded, snapshot
from tests.support.helpers import login, today
from tests.support.supply import API, Users, days_ago, dispense, monitor_kits, ok, randomize_on

REASON = "patient was in hospital for an infection, dosing agreed with the investigator"


def _schedule(client: TestClient, headers: dict[str, str], subject_id: int) -> dict[str, Any]:
    body: dict[str, Any] = ok(client.get(f"{API}/subjects/{subject_id}/visits", headers=headers))
    return body


def _by_visit(schedule: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {line["visit"]: line for line in schedule["visits"]}


def _audit(client: TestClient, action: str) -> list[dict[str, Any]]:
    entries = ok(
        client.get(
            f"{API}/admin/audit", params={"action": action}, headers=login(client, "monitor")
        )
    )
    return [{**e, "after": json.loads(e["after"])} for e in entries]


def test_week_8_outside_its_window_is_refused_then_dosed_with_an_investigators_override(
    client: TestClient, demo_db: Database
) -> None:
    users = Users(client)
    coordinator, pharmacist = users["coordinator"], users["pharmacist"]
    investigator = users["investigator"]
    day_one = days_ago(62)  # week 8's target was 6 days ago: its window closed 3 days ago
    subject_id, _ = randomize_on(client, coordinator, "DE01", day_one)
    ok(dispense(client, pharmacist, subject_id, "W4", day_one + timedelta(days=28)), 201)
    w8 = _by_visit(_schedule(client, pharmacist, subject_id))["W8"]
    assert w8["target_date"] == (day_one + timedelta(days=56)).isoformat()
    assert w8["window_closes"] == days_ago(3).isoformat() and w8["state"] == "overdue"

    before = snapshot(demo_db)
    refused = dispense(client, pharmacist, subject_id, "W8", today())
    problem = assert_problem(refused, 409, "visit_out_of_window")
    shown = [
        date.fromisoformat(w8[k]).strftime("%d-%b-%Y") for k in ("window_opens", "window_closes")
    ]
    assert all(d in problem["detail"] for d in shown), problem["detail"]  # as the pages show dates
    assert (problem["window_opens"], problem["window_closes"]) == (
        w8["window_opens"],
        w8["window_closes"],
    )
    assert_attempt_recorded(
        demo_db,
        before,
        action="subject.dispense_refused",
        username="pharmacist",
        code="visit_out_of_window",
    )

    body = {"visit": "W8", "visit_date": today().isoformat(), "weight_kg": 70.0}
    override = {**body, "window_override_reason": REASON}
    before = snapshot(demo_db)
    by_coordinator = client.post(
        f"{API}/subjects/{subject_id}/dispense",
        json=override,
        headers={**coordinator, "Idempotency-Key": "w8-coordinator"},
    )
    assert_problem(by_coordinator, 403, "window_override_not_permitted")
    assert_attempt_recorded(
        demo_db,
        before,
        action="subject.dispense_refused",
        username="coordinator",
        code="window_override_not_permitted",
    )

    response = client.post(
        f"{API}/subjects/{subject_id}/dispense",
        json=override,
        headers={**investigator, "Idempotency-Key": "w8-investigator"},
    )
    dosed = ok(response, 201)
    assert dosed["visit"] == "W8" and len(dosed["kits"]) == dosed["dose"]["vials"]
    assert not leaks(response)
    with demo_db.read() as session:
        row = session.scalars(
            select(Dispensing).where(Dispensing.subject_id == subject_id, Dispensing.visit == "W8")
        ).one()
        assert (row.window_override_by, row.window_override_reason) == ("investigator", REASON)
    (entry,) = [e for e in _audit(client, "subject.dispense") if e["after"]["visit"] == "W8"]
    assert entry["after"]["window_override"] is True and entry["reason"] == REASON
    line = _by_visit(_schedule(client, coordinator, subject_id))["W8"]
    assert line["state"] == "dispensed" and line["window_override_reason"] == REASON


def test_a_missed_visit_keeps_the_next_target_and_is_never_dosed(
    client: TestClient, demo_db: Database
) -> None:
    users = Users(client)
    coordinator, pharmacist = users["coordinator"], users["pharmacist"]
    day_one = days_ago(33)  # week 4's window closed 2 days ago
    subject_id, _ = randomize_on(client, coordinator, "DE01", day_one)
    planned = _by_visit(_schedule(client, coordinator, subject_id))
    url = f"{API}/subjects/{subject_id}/visits/W4/missed"
    missed = ok(client.post(url, json={"reason": REASON}, headers=coordinator), 201)
    assert missed["visit"] == "W4" and missed["recorded_by"] == "coordinator"
    schedule = _schedule(client, coordinator, subject_id)
    after = _by_visit(schedule)
    assert after["W4"]["state"] == "missed" and after["W4"]["missed_reason"] == REASON
    assert schedule["next_due"] == "W8"
    assert after["W8"]["target_date"] == (day_one + timedelta(days=56)).isoformat()
    for code in ("W8", "W12", "W48"):
        assert after[code]["target_date"] == planned[code]["target_date"]
        assert after[code]["window_opens"] == planned[code]["window_opens"]

    before = snapshot(demo_db)
    assert_problem(dispense(client, pharmacist, subject_id, "W4", days_ago(3)), 409, "visit_missed")
    assert_attempt_recorded(
        demo_db, before, action="subject.dispense_refused", username="pharmacist"
    )
    again = client.post(url, json={"reason": REASON}, headers=coordinator)
    assert_problem(again, 409, "visit_already_missed")
    too_early = client.post(
        f"{API}/subjects/{subject_id}/visits/W12/missed",
        json={"reason": REASON},
        headers=coordinator,
    )
    assert_problem(too_early, 409, "visit_not_yet_due")
    (entry,) = _audit(client, "subject.visit_missed")
    assert entry["reason"] == REASON and entry["after"]["visit"] == "W4"


def test_a_dispensing_entered_in_error_makes_the_visit_due_again_and_keeps_its_kits(
    client: TestClient, demo_db: Database
) -> None:
    users = Users(client)
    coordinator, pharmacist = users["coordinator"], users["pharmacist"]
    subject_id, _ = randomize_on(client, coordinator, "DE01", days_ago(28))
    first = ok(dispense(client, pharmacist, subject_id, "W4", today()), 201)
    url = f"{API}/subjects/{subject_id}/visits/W4/entered-in-error"
    reason = "recorded for the wrong subject, the infusion did not take place"
    corrected = ok(client.post(url, json={"reason": reason}, headers=pharmacist))
    assert corrected["kits"] == first["kits"] and corrected["entered_in_error_by"] == "pharmacist"
    schedule = _schedule(client, pharmacist, subject_id)
    assert _by_visit(schedule)["W4"]["state"] == "due" and schedule["next_due"] == "W4"
    kits = monitor_kits(client, site_id="DE01")
    assert all(kits[k]["status"] == "dispensed" for k in first["kits"])  # still accounted for
    assert_problem(
        client.post(url, json={"reason": reason}, headers=pharmacist), 409, "not_dispensed"
    )

    again = ok(dispense(client, pharmacist, subject_id, "W4", today()), 201)
    assert set(again["kits"]).isdisjoint(first["kits"])
    detail = ok(client.get(f"{API}/subjects/{subject_id}", headers=pharmacist))
    assert [v["visit"] for v in detail["visits"]] == ["D1", "W4"]
    verify = ok(client.get(f"{API}/admin/audit/verify", headers=login(client, "monitor")))
    assert verify["ok"], verify
    d1 = f"{API}/subjects/{subject_id}/visits/D1/entered-in-error"
    assert_problem(
        client.post(d1, json={"reason": reason}, headers=pharmacist), 422, "validation_error"
    )


def test_the_visit_report_lists_due_overdue_and_missed_visits_blinded(
    client: TestClient, demo_db: Database
) -> None:
    users = Users(client)
    coordinator = users["coordinator"]
    due, _ = randomize_on(client, coordinator, "DE01", days_ago(28))
    overdue, _ = randomize_on(client, coordinator, "DE01", days_ago(40))
    missed, _ = randomize_on(client, coordinator, "DE01", days_ago(34))
    ok(
        client.post(
            f"{API}/subjects/{missed}/visits/W4/missed",
            json={"reason": REASON},
            headers=coordinator,
        ),
        201,
    )
    response = client.get(f"{API}/reports/visits", params={"site_id": "DE01"}, headers=coordinator)
    report = ok(response)
    assert [(v["subject_id"], v["visit"]) for v in report["due"]] == [(due, "W4")]
    assert [(v["subject_id"], v["visit"]) for v in report["overdue"]] == [(overdue, "W4")]
    assert [(v["subject_id"], v["visit"], v["missed_reason"]) for v in report["missed"]] == [
        (missed, "W4", REASON)
    ]
    assert not leaks(response)
    csv = client.get(f"{API}/reports/visits.csv", params={"site_id": "DE01"}, headers=coordinator)
    assert csv.status_code == 200 and csv.text.splitlines()[0].startswith("site_id,subject_id")
    assert {line.split(",")[4] for line in csv.text.splitlines()[1:]} == {
        "due",
        "overdue",
        "missed",
    }
    other = client.get(
        f"{API}/reports/visits", params={"site_id": "DE01"}, headers=login(client, "coordinator2")
    )
    assert_problem(other, 404, "not_found")


def test_an_override_never_brings_two_doses_closer_than_the_windows_do(
    client: TestClient, demo_db: Database
) -> None:
    """An override moves a visit out of its window, but a dose the day after the last one is
    refused whoever asks: the shortest gap is the interval less both windows (22 days)."""
    users = Users(client)
    coordinator, investigator = users["coordinator"], users["investigator"]
    day_one = days_ago(60)  # week 4 is overdue: the form offers it, not week 8
    subject_id, _ = randomize_on(client, coordinator, "DE01", day_one)
    assert _schedule(client, investigator, subject_id)["next_due"] == "W4"
    ok(_override(client, investigator, subject_id, "W4", days_ago(10)), 201)
    assert _schedule(client, investigator, subject_id)["next_due"] == "W8"
    before = snapshot(demo_db)
    too_soon = _override(client, investigator, subject_id, "W8", days_ago(9))
    problem = assert_problem(too_soon, 409, "dose_too_soon")
    assert problem["earliest_date"] == (days_ago(10) + timedelta(days=22)).isoformat()
    assert_attempt_recorded(
        demo_db,
        before,
        action="subject.dispense_refused",
        username="investigator",
        code="dose_too_soon",
    )


def _override(
    client: TestClient, headers: dict[str, str], subject_id: int, visit: str, when: date
) -> Any:
    body = {"visit": visit, "visit_date": when.isoformat(), "weight_kg": 70.0}
    return client.post(
        f"{API}/subjects/{subject_id}/dispense",
        json={**body, "window_override_reason": REASON},
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
    )
