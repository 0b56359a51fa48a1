"""Every refused randomization (or registration) answers with the right status and problem+json
code, and leaves the database exactly as it was: not a row, not an audit entry, not a key.

The cases of one kind share a test (and one demo database) as subtests, to keep the suite fast."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.db.engine import Database
from tests.support.api import assert_problem, error_fields
from tests.support.databases import assert_unchanged, snapshot
from tests.support.helpers import SIGNED, login, randomize, randomize_body, register, today

RANDOMIZE = "/api/v1/subjects/{}/randomize"
FUTURE = (today() + timedelta(days=2)).isoformat()
VALID = randomize_body()


def _without(body: dict[str, Any], *path: str) -> dict[str, Any]:
    body = copy.deepcopy(body)
    target = body
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return body


def _with(body: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    body = copy.deepcopy(body)
    target = body
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return body


@pytest.fixture
def coordinator(client: TestClient) -> dict[str, str]:
    return login(client, "coordinator")


INELIGIBLE: dict[str, tuple[dict[str, Any], list[str]]] = {
    "several misses at once": (
        {
            "sledai_2k_score": 4,
            "on_soc_medication": False,
            "exclusions": {"active_or_unstable_lupus_nephritis": True},
        },
        [
            "sledai_2k_score",
            "on_soc_medication",
            "soc_consistency",  # 5 mg/day of prednisone is standard of care
            "exclusion.active_or_unstable_lupus_nephritis",
        ],
    ),
    "every miss at once": (
        {
            "sle_diagnosis_date": (today() - timedelta(days=20)).isoformat(),
            "sledai_2k_score": 0,
            "bilag_a_count": 0,
            "bilag_b_count": 1,
            "on_soc_medication": False,
            "exclusions": {
                "active_or_unstable_neuropsychiatric_sle": True,
                "active_or_unstable_lupus_nephritis": True,
                "other_autoimmune_disease": True,
                "uncontrolled_medical_condition": True,
                "active_severe_infection": True,
                "malignancy_within_5_years": True,
            },
        },
        [
            "sle_diagnosis_duration",
            "sledai_2k_score",
            "bilag_2004",
            "on_soc_medication",
            "soc_consistency",
            "exclusion.active_or_unstable_neuropsychiatric_sle",
            "exclusion.active_or_unstable_lupus_nephritis",
            "exclusion.other_autoimmune_disease",
            "exclusion.uncontrolled_medical_condition",
            "exclusion.active_severe_infection",
            "exclusion.malignancy_within_5_years",
        ],
    ),
    "SLEDAI 5": ({"sledai_2k_score": 5}, ["sledai_2k_score"]),
    "BILAG 0 A 1 B": ({"bilag_a_count": 0, "bilag_b_count": 1}, ["bilag_2004"]),
    "not on SOC": (
        {"on_soc_medication": False, "prednisone_equivalent_mg_per_day": 0},
        ["on_soc_medication"],
    ),
    "on no SOC beside 7.5 mg/day prednisone": (
        {"on_soc_medication": False, "prednisone_equivalent_mg_per_day": 7.5},
        ["on_soc_medication", "soc_consistency"],
    ),
    "randomized 29 days after screening": (
        {"screening_date": (today() - timedelta(days=29)).isoformat()},
        ["screening_window"],
    ),
    "diagnosed 12 weeks less a day before screening": (
        {"sle_diagnosis_date": (today() - timedelta(days=14 + 7 * 12 - 1)).isoformat()},
        ["sle_diagnosis_duration"],
    ),
    "malignancy": (
        {"exclusions": {"malignancy_within_5_years": True}},
        ["exclusion.malignancy_within_5_years"],
    ),
}


def test_ineligible_subjects_are_refused_with_every_failed_criterion(
    client: TestClient, demo_db: Database, coordinator: dict[str, str], subtests: Any
) -> None:
    subject_id = register(client, coordinator)
    for case, (overrides, criteria) in INELIGIBLE.items():
        with subtests.test(msg=case):
            before = snapshot(demo_db)
            response = randomize(client, coordinator, subject_id, randomize_body(**overrides))
            problem = assert_problem(response, 422, "ineligible")
            assert [f["criterion"] for f in problem["failed_criteria"]] == criteria
            assert all(f["message"] for f in problem["failed_criteria"])
            assert_unchanged(demo_db, before)
    # the control: the same subject, eligible, is randomized
    assert randomize(client, coordinator, subject_id).status_code == 201


def test_site_scoping(client: TestClient, demo_db: Database, coordinator: dict[str, str]) -> None:
    subject_id = register(client, coordinator, site_id="DE01")
    missing_id = subject_id + 1000
    outsider = login(client, "coordinator2")
    before = snapshot(demo_db)

    # another site's subject is answered exactly like one that does not exist
    foreign = randomize(client, outsider, subject_id, key="k-foreign")
    absent = randomize(client, outsider, missing_id, key="k-absent")
    foreign_body = assert_problem(foreign, 404, "not_found")
    absent_body = assert_problem(absent, 404, "not_found")

    def normalized(body: dict[str, Any], sid: int) -> dict[str, Any]:
        text = json.dumps(body, sort_keys=True)
        for shown in (f"Subject {sid} ", f"/subjects/{sid}/"):
            text = text.replace(shown, shown.replace(str(sid), "<id>"))
        return dict(json.loads(text))

    assert normalized(foreign_body, subject_id) == normalized(absent_body, missing_id)
    assert foreign.headers.keys() == absent.headers.keys()
    assert_problem(client.get(f"/api/v1/subjects/{subject_id}", headers=outsider), 404, "not_found")

    # registering at a site one is not assigned to
    response = client.post(
        "/api/v1/subjects",
        json={"site_id": "DE01", "screening_number": "S-001", "sex": "F", "year_of_birth": 1980},
        headers=outsider,
    )
    assert_problem(response, 403, "not_your_site")
    assert_unchanged(demo_db, before)


def test_closed_cohort_refuses_randomization(
    client: TestClient, demo_db: Database, coordinator: dict[str, str]
) -> None:
    subject_id = register(client, coordinator)
    closed = client.post(
        "/api/v1/admin/cohorts/C1/close",
        json={"reason": "safety review pending", **SIGNED},
        headers=login(client, "sponsor"),
    )
    assert closed.status_code == 200, closed.text
    before = snapshot(demo_db)
    assert_problem(randomize(client, coordinator, subject_id), 409, "stage_closed")
    assert_unchanged(demo_db, before)


def test_full_cohort_refuses_the_ninth_subject(
    client: TestClient, demo_db: Database, coordinator: dict[str, str]
) -> None:
    for _ in range(8):
        response = randomize(client, coordinator, register(client, coordinator))
        assert response.status_code == 201, response.text
        assert response.json()["cohort"] == "C1"
    ninth = register(client, coordinator)
    before = snapshot(demo_db)
    problem = assert_problem(randomize(client, coordinator, ninth), 409, "stage_full")
    assert "8 of 8" in problem["detail"]
    assert_unchanged(demo_db, before)


MALFORMED: dict[str, tuple[dict[str, Any], str]] = {
    "missing weight": (_without(VALID, "weight_kg"), "weight_kg"),
    "missing eligibility": (_without(VALID, "eligibility"), "eligibility"),
    "missing exclusion": (
        _without(VALID, "eligibility", "exclusions", "active_or_unstable_lupus_nephritis"),
        "eligibility.exclusions.active_or_unstable_lupus_nephritis",
    ),
    "weight 0": (_with(VALID, 0, "weight_kg"), "weight_kg"),
    "weight 250": (_with(VALID, 250, "weight_kg"), "weight_kg"),
    "weight 29.9": (_with(VALID, 29.9, "weight_kg"), "weight_kg"),
    "weight as text": (_with(VALID, "heavy", "weight_kg"), "weight_kg"),
    "negative SLEDAI": (
        _with(VALID, -1, "eligibility", "sledai_2k_score"),
        "eligibility.sledai_2k_score",
    ),
    "visit date in the future": (_with(VALID, FUTURE, "visit_date"), "visit_date"),
    "diagnosis date in the future": (
        _with(VALID, FUTURE, "eligibility", "sle_diagnosis_date"),
        "eligibility.sle_diagnosis_date",
    ),
    "screening after the visit": (
        _with(VALID, (today() - timedelta(days=400)).isoformat(), "visit_date"),
        "eligibility.screening_date",
    ),
    "unknown field": (_with(VALID, "IMC002", "arm"), "arm"),
    "unknown nested field": (_with(VALID, "ALL", "eligibility", "stratum"), "eligibility.stratum"),
}


def test_malformed_requests_are_validation_errors(
    client: TestClient, demo_db: Database, coordinator: dict[str, str], subtests: Any
) -> None:
    subject_id = register(client, coordinator)
    url = RANDOMIZE.format(subject_id)
    for case, (body, field) in MALFORMED.items():
        with subtests.test(msg=case):
            before = snapshot(demo_db)
            response = randomize(client, coordinator, subject_id, body)
            problem = assert_problem(response, 422, "validation_error")
            assert field in error_fields(problem), problem
            assert_unchanged(demo_db, before)

    with subtests.test(msg="invalid JSON"):
        before = snapshot(demo_db)
        response = client.post(
            url,
            content=b'{"visit_date": "2024-01-01", "weight_kg": 70,',
            headers={**coordinator, "Idempotency-Key": "k", "Content-Type": "application/json"},
        )
        problem = assert_problem(response, 422, "validation_error")
        assert error_fields(problem) == ["body"], problem
        assert "not valid JSON" in problem["errors"][0]["message"], problem
        assert_unchanged(demo_db, before)

    with subtests.test(msg="no Idempotency-Key"):
        before = snapshot(demo_db)
        response = client.post(url, json=VALID, headers=coordinator)
        assert_problem(response, 400, "idempotency_key_required")
        assert_unchanged(demo_db, before)

    # the control: the same subject and body, well formed, are randomized
    assert randomize(client, coordinator, subject_id, VALID).status_code == 201


def test_idempotency_key_replays_and_conflicts(
    client: TestClient, demo_db: Database, coordinator: dict[str, str]
) -> None:
    subject_id = register(client, coordinator)
    other_subject = register(client, coordinator)
    key = f"rand-{uuid.uuid4().hex}"
    first = randomize(client, coordinator, subject_id, VALID, key=key)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    after_first = snapshot(demo_db)

    replay = randomize(client, coordinator, subject_id, VALID, key=key)
    assert replay.status_code == 201, replay.text
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == first.content
    assert_unchanged(demo_db, after_first)

    changed = randomize(client, coordinator, subject_id, _with(VALID, 71.0, "weight_kg"), key=key)
    assert_problem(changed, 422, "idempotency_conflict")
    elsewhere = randomize(client, coordinator, other_subject, VALID, key=key)
    assert_problem(elsewhere, 422, "idempotency_conflict")
    assert_unchanged(demo_db, after_first)
    view = client.get(f"/api/v1/subjects/{other_subject}", headers=coordinator).json()
    assert view["status"] == "registered" and view["randomization"] is None

    # a new key for a randomized subject: already_randomized, for any user of the site
    again = randomize(client, coordinator, subject_id, VALID, key="second")
    assert_problem(again, 409, "already_randomized")
    by_investigator = randomize(client, login(client, "investigator"), subject_id, key="third")
    assert_problem(by_investigator, 409, "already_randomized")
    assert_unchanged(demo_db, after_first)

    # keys belong to their user: the investigator's "rand-..." key is a new request
    investigator = login(client, "investigator")
    own = randomize(client, investigator, other_subject, VALID, key=key)
    assert own.status_code == 201, own.text
    assert "idempotent-replayed" not in own.headers
    assert own.json()["subject_id"] == other_subject
