"""Electronic signatures: a wrong password refuses the signed action and changes nothing but
the trail; a right one is recorded with the action (audit entry, confirmation) under the meaning
the service words; the pages show that meaning next to the password field."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from app.db.engine import Database
from app.services.signatures import MAX_FAILURES
from tests.support.api import assert_problem
from tests.support.databases import snapshot
from tests.support.demo import DEMO_PASSWORD
from tests.support.helpers import SIGNED, login, randomize, register
from tests.web.support import web_login

API = "/api/v1"
UNBLIND = {"reason_category": "adverse_event", "reason": "Anaphylaxis after the infusion"}


def _audit(client: TestClient, action: str) -> list[dict[str, Any]]:
    monitor = login(client, "monitor")
    entries = client.get(f"{API}/admin/audit", params={"limit": 1000}, headers=monitor).json()
    found = [e for e in entries if e["action"] == action]
    for entry in found:
        if isinstance(entry["after"], str):
            entry["after"] = json.loads(entry["after"])
    return found


def _randomized(client: TestClient) -> tuple[int, str]:
    coordinator = login(client, "coordinator")
    subject = register(client, coordinator, site_id="DE01", screening_number="DE01-S01")
    assert randomize(client, coordinator, subject).status_code == 201
    return subject, "DE01-S01"


def _tables(db: Database) -> dict[str, Any]:
    """What a refused signature must leave as it was: everything but the trail and the
    login bookkeeping."""
    return {
        k: v
        for k, v in snapshot(db).items()
        if k not in ("audit_log", "audit_head", "login_throttle")
    }


def test_a_wrong_password_refuses_the_unblinding_and_changes_nothing(
    client: TestClient, demo_db: Database
) -> None:
    subject, screening = _randomized(client)
    investigator = login(client, "investigator")
    before = _tables(demo_db)
    wrong = {**UNBLIND, "signature": {"password": "not-my-password"}}
    response = client.post(f"{API}/subjects/{subject}/unblind", json=wrong, headers=investigator)
    assert_problem(response, 422, "signature_invalid")
    assert _tables(demo_db) == before
    assert _audit(client, "subject.unblind") == []
    [refused] = _audit(client, "signature.refused")
    assert refused["username"] == "investigator" and refused["role"] == "investigator"
    assert refused["after"]["meaning"] == (
        f"I authorise the emergency unblinding of subject {screening} at site DE01"
    )
    changed = {**UNBLIND, "signature": {"password": DEMO_PASSWORD, "meaning": "I agree"}}
    response = client.post(f"{API}/subjects/{subject}/unblind", json=changed, headers=investigator)
    assert_problem(response, 422, "signature_meaning_changed")
    assert _tables(demo_db) == before


def test_the_signature_is_in_the_audit_entry_and_on_the_confirmation(client: TestClient) -> None:
    subject, screening = _randomized(client)
    investigator = login(client, "investigator")
    meaning = f"I authorise the emergency unblinding of subject {screening} at site DE01."
    body = {**UNBLIND, "signature": {"password": DEMO_PASSWORD, "meaning": meaning}}
    response = client.post(f"{API}/subjects/{subject}/unblind", json=body, headers=investigator)
    assert response.status_code == 200, response.text
    signature = response.json()["signature"]
    assert signature["username"] == "investigator" and signature["printed_name"]
    assert signature["meaning"] == meaning.rstrip(".") and signature["signed_at"].endswith("Z")
    [entry] = _audit(client, "subject.unblind")
    assert entry["after"]["signature"] == signature
    confirmation = client.get(
        f"{API}/confirmations/{response.json()['confirmation_id']}", headers=investigator
    )
    assert confirmation.json()["signature"] == signature
    token = web_login(client, "investigator")
    assert token
    page = client.get(f"/confirmations/{response.json()['confirmation_id']}")
    assert signature["meaning"] in page.text and 'data-field="signature"' in page.text


def test_stage_decisions_are_signed_and_wrong_passwords_are_paused(
    client: TestClient, demo_db: Database
) -> None:
    sponsor = login(client, "sponsor")
    close = f"{API}/admin/cohorts/C1/close"
    reason = {"reason": "safety review done"}
    before = _tables(demo_db)
    for _ in range(MAX_FAILURES):
        wrong = {**reason, "signature": {"password": "guess"}}
        assert_problem(client.post(close, json=wrong, headers=sponsor), 422, "signature_invalid")
    right = {**reason, **SIGNED}
    paused = client.post(close, json=right, headers=sponsor)
    assert_problem(paused, 429, "too_many_attempts")
    # when to try again: by then every refusal counted has left the window
    assert paused.headers["Retry-After"] == str(paused.json()["retry_after"]) == "900"
    assert _tables(demo_db) == before
    assert len(_audit(client, "signature.refused")) == MAX_FAILURES + 1


def test_a_signed_cohort_close_records_its_meaning(client: TestClient) -> None:
    sponsor = login(client, "sponsor")
    body = {"reason": "safety review done", **SIGNED}
    response = client.post(f"{API}/admin/cohorts/C1/close", json=body, headers=sponsor)
    assert response.status_code == 200, response.text
    [entry] = _audit(client, "cohort.close")
    assert entry["after"]["signature"]["meaning"] == "I approve closing cohort C1"
    assert entry["after"]["signature"]["username"] == "sponsor"


def test_the_pages_show_the_meaning_next_to_the_password(client: TestClient) -> None:
    subject, screening = _randomized(client)
    web_login(client, "investigator")
    page = client.get(f"/subjects/{subject}/unblind").text
    assert f"I authorise the emergency unblinding of subject {screening} at site DE01" in page
    assert 'name="signature.password"' in page and 'type="password"' in page
    token = web_login(client, "sponsor")
    reason = {"C1.close.reason": "safety review done", "csrf_token": token}
    page = client.post("/admin/cohorts/C1/close/review", data=reason).text  # signed on review
    assert "I approve closing cohort C1" in page and 'name="C1.close.signature.password"' in page
    assert "I approve 1.2 mg/kg as the phase II dose" in client.get("/admin/phase2-dose").text
