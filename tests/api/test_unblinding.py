"""Emergency unblinding: who may, what it writes (atomically), what it tells whom."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from app.db.engine import Database
from app.services import outbox as outbox_service
from tests.support.api import assert_blinded, assert_problem
from tests.support.databases import assert_unchanged, snapshot
from tests.support.helpers import SIGNED, login, randomize, register

REASON = {
    "reason_category": "adverse_event",
    "reason": "Anaphylaxis after infusion, ICU admission",
    **SIGNED,
}


def _randomized(client: TestClient, site: str = "DE01", user: str = "coordinator") -> int:
    headers = login(client, user)
    subject = register(client, headers, site_id=site)
    assert randomize(client, headers, subject).status_code == 201
    return subject


def _unblind(
    client: TestClient, subject: int, user: str = "investigator", body: dict[str, str] | None = None
):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/subjects/{subject}/unblind", json=body or REASON, headers=login(client, user)
    )


def test_refusals_change_nothing(client: TestClient, demo_db: Database) -> None:
    subject = _randomized(client)
    other_site = _randomized(client, "US01", "coordinator2")
    unrandomized = register(client, login(client, "coordinator"))
    before = snapshot(demo_db)
    for role in ("coordinator", "pharmacist", "supply", "sponsor", "monitor"):
        assert_problem(_unblind(client, subject, role), 403, "forbidden")
    assert_problem(_unblind(client, other_site), 404, "not_found")
    assert_problem(_unblind(client, 999_999), 404, "not_found")
    short = {"reason_category": "other", "reason": "too short"}
    assert_problem(_unblind(client, subject, body=short), 422, "validation_error")
    bad_category = {"reason_category": "curiosity", "reason": "I would like to know the arm"}
    assert_problem(_unblind(client, subject, body=bad_category), 422, "validation_error")
    assert_problem(_unblind(client, unrandomized), 409, "not_randomized")
    assert_unchanged(demo_db, before)


def test_unblinding_reveals_one_subject_and_notifies_without_treatment(
    client: TestClient, demo_db: Database
) -> None:
    subject, other = _randomized(client), _randomized(client)
    response = _unblind(client, subject)
    assert response.status_code == 200, response.text
    body = response.json()
    monitor = login(client, "monitor")
    allocations = {
        a["subject_id"]: a for a in client.get("/api/v1/admin/allocations", headers=monitor).json()
    }
    expected = "IMC-002 0.8 mg/kg" if allocations[subject]["arm"] == "IMC002" else "Placebo"
    assert body["subject_id"] == subject and body["treatment"] == expected

    investigator = login(client, "investigator")
    view = client.get(f"/api/v1/subjects/{subject}", headers=investigator)
    assert view.json()["unblinded"] is True
    assert_blinded(view, "the unblinded subject's view keeps the treatment out")
    other_view = client.get(f"/api/v1/subjects/{other}", headers=investigator)
    assert other_view.json()["unblinded"] is False
    assert_blinded(other_view, "another subject stays blinded for the investigator")
    assert_problem(_unblind(client, subject), 409, "already_unblinded")

    log = client.get("/api/v1/admin/unblindings", headers=monitor).json()
    assert [
        (e["subject_id"], e["unblinded_by"], e["reason_category"], e["treatment"]) for e in log
    ] == [(subject, "investigator", "adverse_event", expected)]

    outbox = client.get("/api/v1/admin/outbox", headers=monitor).json()
    # the randomization's and the unblinding's confirmations are tested in tests/web
    messages = [m for m in outbox if not m["kind"].startswith("confirmation.")]
    assert len(messages) == 1
    message = messages[0]
    assert message["kind"] == "emergency_unblinding" and message["sent_at"] is None
    assert "sponsor" in message["recipients"]
    assert {"coordinator", "investigator", "pharmacist"} <= set(message["recipients"])
    assert "coordinator2" not in message["recipients"]
    assert message["body"]["subject_id"] == subject
    assert message["body"]["unblinded_by"] == "investigator"
    text = json.dumps(message).lower()
    assert "placebo" not in text and "imc002" not in text and "mg/kg" not in text

    audit = client.get("/api/v1/admin/audit", params={"limit": 1000}, headers=monitor).json()
    entry = next(e for e in audit if e["action"] == "subject.unblind")
    assert entry["entity_id"] == str(subject) and entry["reason"] == REASON["reason"]
    assert entry["username"] == "investigator" and entry["role"] == "investigator"


def test_a_failure_midway_leaves_no_flag_no_outbox_no_audit(
    client: TestClient, demo_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    subject = _randomized(client)
    before = snapshot(demo_db)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("mail queue is on fire")

    monkeypatch.setattr(outbox_service, "enqueue", broken)
    response = _unblind(client, subject)
    assert_problem(response, 500, "internal_error")
    assert "fire" not in response.text and "Traceback" not in response.text
    assert_unchanged(demo_db, before)
    monkeypatch.undo()
    assert _unblind(client, subject).status_code == 200
