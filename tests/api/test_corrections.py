"""Data corrections and protocol eligibility over HTTP, on both engines: a corrected
stratification factor keeps the allocation and shows in the mis-stratification report (strata
only for blinded roles, the arm for the monitor, whose read is recorded); a corrected weight
never changes a dose given; an under-age subject and a stale screening are refused by name."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.support.api import assert_blinded, assert_problem, audit_entries
from tests.support.helpers import (
    SIGNED,
    login,
    open_phase2,
    randomize,
    randomize_body,
    register,
    today,
)

API = "/api/v1"


def _correct(client: TestClient, headers: dict[str, str], subject_id: int, **body: Any) -> Any:
    return client.post(
        f"{API}/subjects/{subject_id}/corrections",
        json={"reason": "source document verification", **SIGNED, **body},
        headers=headers,
    )


def _allocation(client: TestClient, subject_id: int) -> dict[str, Any]:
    rows = client.get(f"{API}/admin/allocations", headers=login(client, "monitor")).json()
    return next(r for r in rows if r["subject_id"] == subject_id)


def test_sledai_correction_keeps_the_allocation_and_is_reported(client: TestClient) -> None:
    open_phase2(client)
    coordinator = login(client, "coordinator")
    subject_id = register(client, coordinator, "DE01")
    assert randomize(client, coordinator, subject_id).status_code == 201
    before = _allocation(client, subject_id)
    assert before["stratum"] == "SLEDAI<10/PRED<10"

    response = _correct(
        client, coordinator, subject_id, field="eligibility.sledai_2k_score", new_value="12"
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["old_value"], body["new_value"]) == ("8", "12")
    assert body["stratum_randomized"] == "SLEDAI<10/PRED<10"
    assert body["stratum_actual"] == "SLEDAI>=10/PRED<10"
    assert body["signature"]["meaning"] == (
        'I approve the correction of "SLEDAI-2K total score at screening" of subject '
        f"{body['screening_number']} to 12"
    )
    assert_blinded(response, "correction")

    after = _allocation(client, subject_id)
    assert {k: after[k] for k in ("arm", "slot_sequence", "stratum", "randomization_number")} == {
        k: before[k] for k in ("arm", "slot_sequence", "stratum", "randomization_number")
    }
    subject = client.get(f"{API}/subjects/{subject_id}", headers=coordinator).json()
    assert subject["randomization"]["stratum"] == "SLEDAI<10/PRED<10"

    for user in ("coordinator", "sponsor"):
        headers = login(client, user)
        report = client.get(f"{API}/reports/misstratified", headers=headers)
        assert report.status_code == 200, report.text
        assert_blinded(report, user)
        (line,) = report.json()
        assert line["subject_id"] == subject_id and "arm" not in line
        assert line["stratum_actual"] == "SLEDAI>=10/PRED<10"
        text = client.get(f"{API}/reports/misstratified.csv", headers=headers)
        assert_blinded(text, user)
        assert "arm" not in next(csv.reader(io.StringIO(text.text)))

    monitor = login(client, "monitor")
    reads = len([e for e in audit_entries(client, monitor) if e["action"] == "unblinded.read"])
    (line,) = client.get(f"{API}/reports/misstratified", headers=monitor).json()
    assert line["arm"] == before["arm"] and line["treatment"].startswith(before["treatment"])
    rows = list(
        csv.DictReader(
            io.StringIO(client.get(f"{API}/reports/misstratified.csv", headers=monitor).text)
        )
    )
    assert rows[0]["arm"] == before["arm"]
    recorded = [
        e
        for e in audit_entries(client, monitor)
        if e["action"] == "unblinded.read" and e["entity"] == "misstratified"
    ]
    assert len(recorded) == 2 and reads + 2 <= len(
        [e for e in audit_entries(client, monitor) if e["action"] == "unblinded.read"]
    )
    corrected = [e for e in audit_entries(client, monitor) if e["action"] == "subject.correct"]
    assert len(corrected) == 1
    assert json.loads(corrected[0]["after"])["actual_stratum"] == "SLEDAI>=10/PRED<10"
    assert corrected[0]["reason"] == "source document verification"
    verify = client.get(f"{API}/admin/audit/verify", headers=monitor).json()
    assert verify["ok"], verify


def test_a_weight_correction_never_changes_a_dose_given(client: TestClient) -> None:
    coordinator = login(client, "coordinator")
    subject_id = register(client, coordinator, "DE01")
    given = randomize(client, coordinator, subject_id, randomize_body(weight_kg=70.0))
    assert given.status_code == 201, given.text
    dose = given.json()["dose"]

    response = _correct(client, coordinator, subject_id, field="weight_kg", new_value="80")
    assert response.status_code == 201, response.text
    assert (response.json()["old_value"], response.json()["new_value"]) == ("70", "80")
    assert response.json()["visit"] == "D1"
    subject = client.get(f"{API}/subjects/{subject_id}", headers=coordinator).json()
    assert subject["randomization"]["dose"] == dose
    assert subject["visits"][0]["dose"] == dose
    again = _correct(client, coordinator, subject_id, field="weight_kg", new_value="80")
    assert_problem(again, 409, "no_change")
    listed = client.get(f"{API}/subjects/{subject_id}/corrections", headers=coordinator)
    assert [c["new_value"] for c in listed.json()] == ["80"]


def test_a_wrong_signature_or_value_corrects_nothing(client: TestClient) -> None:
    coordinator = login(client, "coordinator")
    subject_id = register(client, coordinator, "DE01")
    wrong = client.post(
        f"{API}/subjects/{subject_id}/corrections",
        json={
            "field": "sex",
            "new_value": "M",
            "reason": "source document verification",
            "signature": {"password": "not-the-password"},
        },
        headers=coordinator,
    )
    assert_problem(wrong, 422, "signature_invalid")
    bad = _correct(client, coordinator, subject_id, field="year_of_birth", new_value="1850")
    assert_problem(bad, 422, "validation_error")
    pharmacist = _correct(
        client, login(client, "pharmacist"), subject_id, field="sex", new_value="M"
    )
    assert pharmacist.status_code == 403
    subject = client.get(f"{API}/subjects/{subject_id}", headers=coordinator).json()
    assert subject["sex"] == "F" and subject["year_of_birth"] == 1980
    ok = _correct(client, coordinator, subject_id, field="sex", new_value="m")
    assert ok.status_code == 201, ok.text
    assert client.get(f"{API}/subjects/{subject_id}", headers=coordinator).json()["sex"] == "M"


def test_under_age_and_stale_screening_are_refused_by_criterion(client: TestClient) -> None:
    coordinator = login(client, "coordinator")
    monitor = login(client, "monitor")
    screening = today() - timedelta(days=14)
    young = client.post(
        f"{API}/subjects",
        json={
            "site_id": "DE01",
            "screening_number": "AGE-17",
            "sex": "F",
            "year_of_birth": screening.year - 17,
        },
        headers=coordinator,
    ).json()["subject_id"]
    body = assert_problem(randomize(client, coordinator, young), 422, "ineligible")
    assert [c["criterion"] for c in body["failed_criteria"]] == ["age_at_screening"]
    assert "18 to 75 years" in body["detail"]

    stale = register(client, coordinator, "DE01")
    late = randomize_body(screening_date=(today() - timedelta(days=60)).isoformat())
    body = assert_problem(randomize(client, coordinator, stale, late), 422, "ineligible")
    assert [c["criterion"] for c in body["failed_criteria"]] == ["screening_window"]
    assert "within 28 days of screening" in body["detail"]

    refused = [
        json.loads(e["after"])
        for e in audit_entries(client, monitor)
        if e["action"] == "subject.randomize_refused"
    ]
    assert [r["fields"] for r in refused] == [["age_at_screening"], ["screening_window"]]
    assert all(r["code"] == "ineligible" for r in refused)
