"""The subject lifecycle over HTTP, on both engines: a subject randomized twelve weeks ago is
dosed to week 12, discontinued, then refused its week 16 kits with `subject_not_on_treatment`
(only the refusal is written), and leaves the site's supply forecast and kits due; the undo is a
signed correction kept beside the change; the enrolment report counts every state."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.support.api import assert_blinded, assert_problem, audit_entries
from tests.support.helpers import SIGNED, login, randomize, randomize_body, register, today

API = "/api/v1"
WEIGHT = 70.0
REASON = "Adverse event: persistent rash after infusion"


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def _randomized_weeks_ago(client: TestClient, headers: dict[str, str], days: int) -> int:
    subject_id = register(client, headers, "DE01")
    body = randomize_body(weight_kg=WEIGHT)
    body["visit_date"] = (today() - timedelta(days=days)).isoformat()
    body["eligibility"]["screening_date"] = (today() - timedelta(days=days + 7)).isoformat()
    response = randomize(client, headers, subject_id, body)
    assert response.status_code == 201, response.text
    return subject_id


def _dispense(client: TestClient, headers: dict[str, str], subject_id: int, visit: str, day: Any):
    body = {"visit": visit, "visit_date": day.isoformat(), "weight_kg": WEIGHT}
    return client.post(
        f"{API}/subjects/{subject_id}/dispense", json=body, headers={**headers, **_key()}
    )


def _site_need(client: TestClient, headers: dict[str, str]) -> int:
    response = client.get(f"{API}/supply/forecast", params={"site_id": "DE01"}, headers=headers)
    assert response.status_code == 200, response.text
    (site,) = response.json()["sites"]
    return int(site["need_horizon"])


def _due_subjects(client: TestClient, headers: dict[str, str], days: int) -> set[int]:
    response = client.get(
        f"{API}/reports/kits-due", params={"site_id": "DE01", "days": days}, headers=headers
    )
    assert response.status_code == 200, response.text
    return {v["subject_id"] for v in response.json()["visits"]}


def _act(client: TestClient, headers: dict[str, str], subject_id: int, path: str, **body: Any):
    sent = {"effective_date": today().isoformat(), "reason": REASON, **body}
    return client.post(
        f"{API}/subjects/{subject_id}/{path}", json=sent, headers={**headers, **_key()}
    )


def test_discontinued_subject_gets_no_kits_and_leaves_the_forecast(client: TestClient) -> None:
    coordinator = login(client, "coordinator")
    pharmacist = login(client, "pharmacist")
    supply = login(client, "supply")
    day_one = today() - timedelta(weeks=16)  # week 16 is due today
    subject_id = _randomized_weeks_ago(client, coordinator, 16 * 7)
    for weeks in (4, 8, 12):
        response = _dispense(
            client, pharmacist, subject_id, f"W{weeks}", day_one + timedelta(weeks=weeks)
        )
        assert response.status_code == 201, response.text
    need_before = _site_need(client, supply)
    assert subject_id in _due_subjects(client, pharmacist, 7)

    # a pharmacist may not discontinue; a coordinator may, once (idempotent with its key)
    refused = _act(client, pharmacist, subject_id, "discontinue", reason_category="adverse_event")
    assert_problem(refused, 403, "forbidden")
    body = {
        "effective_date": today().isoformat(),
        "reason_category": "adverse_event",
        "reason": REASON,
    }
    key = _key()
    url = f"{API}/subjects/{subject_id}/discontinue"
    first = client.post(url, json=body, headers={**coordinator, **key})
    replay = client.post(url, json=body, headers={**coordinator, **key})
    assert first.status_code == 201, first.text
    assert replay.headers["idempotent-replayed"] == "true" and replay.json() == first.json()
    change = first.json()
    assert (change["from_status"], change["status"], change["act"]) == (
        "randomized",
        "discontinued",
        "discontinue",
    )
    assert_blinded(first, "discontinue")
    again = client.post(url, json=body, headers={**coordinator, **_key()})
    assert_problem(again, 409, "status_change_not_allowed")

    subject = client.get(f"{API}/subjects/{subject_id}", headers=pharmacist).json()
    assert subject["status"] == "discontinued"
    confirmation = client.get(
        f"{API}/confirmations/{change['confirmation_id']}", headers=pharmacist
    ).json()
    assert (confirmation["kind"], confirmation["status"]) == ("status_change", "discontinued")

    # week 16: refused with the state named; only the refusal is written
    monitor = login(client, "monitor")
    entries_before = len(audit_entries(client, monitor))
    refused = _dispense(client, pharmacist, subject_id, "W16", today())
    problem = assert_problem(refused, 409, "subject_not_on_treatment")
    assert "stopped dosing" in problem["detail"] and problem["subject_status"] == "discontinued"
    entries = audit_entries(client, monitor)
    new = entries[entries_before:]
    assert [e["action"] for e in new if e["action"] != "unblinded.read"] == [
        "subject.dispense_refused"
    ]
    visits = client.get(f"{API}/subjects/{subject_id}", headers=pharmacist).json()["visits"]
    assert [v["visit"] for v in visits] == ["D1", "W4", "W8", "W12"]

    # the forecast and the kits due no longer count the subject
    need_after = _site_need(client, supply)
    vials = visits[-1]["dose"]["vials"]
    assert need_after < need_before and (need_before - need_after) % vials == 0
    assert subject_id not in _due_subjects(client, pharmacist, 7)

    # the undo: signed, a correction beside the change; the subject is due again
    undo_url = f"{API}/subjects/{subject_id}/status-changes/{change['change_id']}/undo"
    unsigned = client.post(
        undo_url,
        json={"reason": "Discontinued the wrong subject", "signature": {"password": "wrong-one"}},
        headers=coordinator,
    )
    assert_problem(unsigned, 422, "signature_invalid")
    undone = client.post(
        undo_url, json={"reason": "Discontinued the wrong subject", **SIGNED}, headers=coordinator
    )
    assert undone.status_code == 201, undone.text
    correction = undone.json()
    assert correction["corrects"] == change["change_id"] and correction["status"] == "randomized"
    assert correction["signature"]["username"] == "coordinator"
    history = client.get(f"{API}/subjects/{subject_id}/status-history", headers=pharmacist).json()
    assert [(c["change_id"], c["undone_by"]) for c in history["changes"]] == [
        (change["change_id"], correction["change_id"]),
        (correction["change_id"], None),
    ]
    assert history["status"] == "randomized" and history["undoable_change_id"] is None
    assert _site_need(client, supply) == need_before
    assert subject_id in _due_subjects(client, pharmacist, 7)
    again = client.post(
        undo_url, json={"reason": "Discontinued the wrong subject", **SIGNED}, headers=coordinator
    )
    assert_problem(again, 409, "nothing_to_undo")
    actions = [e["action"] for e in audit_entries(client, monitor)]
    assert actions.count("subject.status_change") == 1
    assert actions.count("subject.status_correction") == 1
    assert "subject.status_undo_refused" in actions


def test_every_act_and_the_enrolment_report_counts_each_state(client: TestClient) -> None:
    coordinator = login(client, "coordinator")
    investigator = login(client, "investigator")
    screen_failed = register(client, coordinator, "DE01")
    withdrawn_early = register(client, coordinator, "DE01")
    registered = register(client, coordinator, "DE01")
    on_treatment = _randomized_weeks_ago(client, coordinator, 0)
    withdrawn = _randomized_weeks_ago(client, coordinator, 0)

    bad_category = _act(client, coordinator, screen_failed, "screen-fail", reason_category="death")
    assert_problem(bad_category, 422, "validation_error")
    done = _act(
        client, coordinator, screen_failed, "screen-fail", reason_category="eligibility_not_met"
    )
    assert done.status_code == 201, done.text
    confirmation = client.get(
        f"{API}/confirmations/{done.json()['confirmation_id']}", headers=coordinator
    ).json()
    assert confirmation["randomization_number"] is None and confirmation["stage"] is None
    refused = randomize(client, coordinator, screen_failed)
    assert_problem(refused, 409, "subject_not_randomizable")
    assert (
        _act(
            client,
            investigator,
            withdrawn_early,
            "withdraw",
            reason_category="withdrawal_by_subject",
        ).status_code
        == 201
    )
    assert (
        _act(
            client, coordinator, withdrawn, "withdraw", reason_category="lost_to_follow_up"
        ).status_code
        == 201
    )
    not_finished = _act(client, coordinator, on_treatment, "complete")
    assert_problem(not_finished, 409, "treatment_not_finished")
    wrong = _act(client, coordinator, registered, "discontinue", reason_category="other")
    problem = assert_problem(wrong, 409, "status_change_not_allowed")
    assert "registered" in problem["detail"]
    future = _act(
        client,
        coordinator,
        on_treatment,
        "discontinue",
        reason_category="other",
        effective_date=(today() + timedelta(days=3)).isoformat(),
    )
    assert_problem(future, 422, "validation_error")

    report = client.get(f"{API}/reports/enrolment", headers=coordinator).json()
    de01 = next(s for s in report["sites"] if s["site_id"] == "DE01")
    assert de01["by_status"] == {
        "registered": 1,
        "screen_failed": 1,
        "randomized": 1,
        "discontinued": 0,
        "withdrawn": 2,
        "completed": 0,
    }
    assert report["by_status"]["withdrawn"] == 2 and report["randomized"] == 2
    text = client.get(f"{API}/reports/enrolment.csv", headers=coordinator).text
    rows = list(csv.DictReader(io.StringIO(text)))
    site_row = next(r for r in rows if r["level"] == "site" and r["site_id"] == "DE01")
    assert (site_row["status_withdrawn"], site_row["status_screen_failed"]) == ("2", "1")
