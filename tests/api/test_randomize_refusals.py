"""Every refused randomization (or registration) answers with the right status and problem+json
code, and leaves the database exactly as it was: not a row, not an audit entry, not a key."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.db.engine import Database
from tests.api.support import assert_problem, error_fields
from tests.conftest import snapshot
from tests.helpers import login, randomize, randomize_body, register, today

RANDOMIZE = "/api/v1/subjects/{}/randomize"


@pytest.fixture
def coordinator(client: TestClient) -> dict[str, str]:
    return login(client, "coordinator")


def test_ineligible_subject_lists_every_failed_criterion(
    client: TestClient, demo_db: Database, coordinator: dict[str, str]
) -> None:
    subject_id = register(client, coordinator)
    body = randomize_body(
        sledai_2k_score=4,
        on_soc_medication=False,
        exclusions={"active_lupus_nephritis": True},
    )
    before = snapshot(demo_db)
    response = randomize(client, coordinator, subject_id, body)
    problem = assert_problem(response, 422, "ineligible")
    criteria = [f["criterion"] for f in problem["failed_criteria"]]
    assert sorted(criteria) == sorted(
        ["sledai_2k_score", "on_soc_medication", "exclusion.active_lupus_nephritis"]
    )
    assert all(f["message"] for f in problem["failed_criteria"])
    assert snapshot(demo_db) == before


@pytest.mark.parametrize(
    ("overrides", "criterion"),
    [
        ({"sledai_2k_score": 5}, "sledai_2k_score"),
        ({"bilag_a_count": 0, "bilag_b_count": 1}, "bilag_2004"),
        ({"on_soc_medication": False}, "on_soc_medication"),
        (
            {"sle_diagnosis_date": (today() - timedelta(days=14 + 7 * 12 - 1)).isoformat()},
            "sle_diagnosis_duration",
        ),
        (
            {"exclusions": {"malignancy_within_5_years": True}},
            "exclusion.malignancy_within_5_years",
        ),
    ],
)
def test_each_single_miss_is_refused(
    client: TestClient,
    demo_db: Database,
    coordinator: dict[str, str],
    overrides: dict[str, Any],
    criterion: str,
) -> None:
    subject_id = register(client, coordinator)
    before = snapshot(demo_db)
    response = randomize(client, coordinator, subject_id, randomize_body(**overrides))
    problem = assert_problem(response, 422, "ineligible")
    assert [f["criterion"] for f in problem["failed_criteria"]] == [criterion]
    assert snapshot(demo_db) == before


def test_subject_at_another_site_is_indistinguishable_from_a_missing_one(
    client: TestClient, demo_db: Database, coordinator: dict[str, str]
) -> None:
    subject_id = register(client, coordinator, site_id="DE01")
    missing_id = subject_id + 1000
    outsider = login(client, "coordinator2")
    before = snapshot(demo_db)
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
    assert dict(foreign.headers).keys() == dict(absent.headers).keys()
    # the subject's own view is hidden the same way
    view = client.get(f"/api/v1/subjects/{subject_id}", headers=outsider)
    assert_problem(view, 404, "not_found")
    assert snapshot(demo_db) == before


def test_register_at_a_site_not_assigned_is_forbidden(
    client: TestClient, demo_db: Database, coordinator: dict[str, str]
) -> None:
    before = snapshot(demo_db)
    response = client.post(
        "/api/v1/subjects",
        json={"site_id": "US01", "screening_number": "S-001", "sex": "F", "year_of_birth": 1980},
        headers=coordinator,
    )
    assert_problem(response, 403, "not_your_site")
    assert snapshot(demo_db) == before


def test_closed_cohort_refuses_randomization(
    client: TestClient, demo_db: Database, coordinator: dict[str, str]
) -> None:
    subject_id = register(client, coordinator)
    closed = client.post(
        "/api/v1/admin/cohorts/C1/close",
        json={"reason": "safety review pending"},
        headers=login(client, "sponsor"),
    )
    assert closed.status_code == 200, closed.text
    before = snapshot(demo_db)
    assert_problem(randomize(client, coordinator, subject_id), 409, "stage_closed")
    assert snapshot(demo_db) == before


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
    assert snapshot(demo_db) == before


def test_already_randomized_with_a_new_key(
    client: TestClient, demo_db: Database, coordinator: dict[str, str]
) -> None:
    subject_id = register(client, coordinator)
    assert randomize(client, coordinator, subject_id, key="first").status_code == 201
    before = snapshot(demo_db)
    again = randomize(client, coordinator, subject_id, key="second")
    assert_problem(again, 409, "already_randomized")
    # another user of the same site, with its own keys, is refused the same way
    by_investigator = randomize(client, login(client, "investigator"), subject_id, key="third")
    assert_problem(by_investigator, 409, "already_randomized")
    assert snapshot(demo_db) == before


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


FUTURE = (today() + timedelta(days=2)).isoformat()
VALID = randomize_body()

MALFORMED = {
    "missing weight": (_without(VALID, "weight_kg"), "weight_kg"),
    "missing exclusion": (
        _without(VALID, "eligibility", "exclusions", "active_lupus_nephritis"),
        "eligibility.exclusions.active_lupus_nephritis",
    ),
    "weight 0": (_with(VALID, 0, "weight_kg"), "weight_kg"),
    "weight 250": (_with(VALID, 250, "weight_kg"), "weight_kg"),
    "weight 29.9": (_with(VALID, 29.9, "weight_kg"), "weight_kg"),
    "negative sledai": (
        _with(VALID, -1, "eligibility", "sledai_2k_score"),
        "eligibility.sledai_2k_score",
    ),
    "future visit": (_with(VALID, FUTURE, "visit_date"), "visit_date"),
    "future diagnosis": (
        _with(VALID, FUTURE, "eligibility", "sle_diagnosis_date"),
        "eligibility.sle_diagnosis_date",
    ),
    "unknown field": (_with(VALID, "IMC002", "arm"), "arm"),
    "unknown nested field": (_with(VALID, 1, "eligibility", "stratum"), "eligibility.stratum"),
}


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_malformed_body_is_a_validation_error(
    client: TestClient, demo_db: Database, coordinator: dict[str, str], case: str
) -> None:
    body, field = MALFORMED[case]
    subject_id = register(client, coordinator)
    before = snapshot(demo_db)
    problem = assert_problem(
        randomize(client, coordinator, subject_id, body), 422, "validation_error"
    )
    assert field in error_fields(problem), problem
    assert snapshot(demo_db) == before


def test_invalid_json_is_a_validation_error(
    client: TestClient, demo_db: Database, coordinator: dict[str, str]
) -> None:
    subject_id = register(client, coordinator)
    before = snapshot(demo_db)
    response = client.post(
        RANDOMIZE.format(subject_id),
        content=b'{"visit_date": "2024-01-01", "weight_kg": 70,',
        headers={**coordinator, "Idempotency-Key": "k", "Content-Type": "application/json"},
    )
    problem = assert_problem(response, 422, "validation_error")
    assert error_fields(problem) == ["body"], problem
    assert "not valid JSON" in problem["errors"][0]["message"], problem
    assert snapshot(demo_db) == before


def test_missing_idempotency_key(
    client: TestClient, demo_db: Database, coordinator: dict[str, str]
) -> None:
    subject_id = register(client, coordinator)
    before = snapshot(demo_db)
    response = client.post(RANDOMIZE.format(subject_id), json=VALID, headers=coordinator)
    assert_problem(response, 400, "idempotency_key_required")
    assert snapshot(demo_db) == before


def test_idempotency_key_reuse(
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
    assert snapshot(demo_db) == after_first

    changed = randomize(client, coordinator, subject_id, _with(VALID, 71.0, "weight_kg"), key=key)
    assert_problem(changed, 422, "idempotency_conflict")
    elsewhere = randomize(client, coordinator, other_subject, VALID, key=key)
    assert_problem(elsewhere, 422, "idempotency_conflict")
    assert snapshot(demo_db) == after_first
    # the other subject is still unrandomized: the conflict did not replay onto it
    view = client.get(f"/api/v1/subjects/{other_subject}", headers=coordinator).json()
    assert view["status"] == "registered" and view["randomization"] is None


def test_keys_belong_to_their_user(
    client: TestClient, demo_db: Database, coordinator: dict[str, str]
) -> None:
    """Another user's identical key is a new request, not a replay of someone else's."""
    first_subject = register(client, coordinator)
    second_subject = register(client, coordinator)
    assert randomize(client, coordinator, first_subject, key="shared").status_code == 201
    investigator = login(client, "investigator")
    response = randomize(client, investigator, second_subject, key="shared")
    assert response.status_code == 201, response.text
    assert "idempotent-replayed" not in response.headers
    assert response.json()["subject_id"] == second_subject
