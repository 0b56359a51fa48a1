"""Small helpers for API tests: log in, build request bodies."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.support.demo import DEMO_PASSWORD
from tests.support.pools import stock_stage_pools

Client = TestClient | httpx.Client


def login(client: Client, username: str, password: str = DEMO_PASSWORD) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


SIGNED: dict[str, Any] = {"signature": {"password": DEMO_PASSWORD}}
"""An electronic signature in a request body: the demo user's own password, entered again."""
SIGNATURE_HEADERS = {"Signature-Password": DEMO_PASSWORD}
"""The same for the kit list upload, whose body is the file."""


def as_user(username: str) -> list[str]:
    """`irt` options that run a command as a demo user, the password (also for signing) read
    from stdin: invoke with `input=DEMO_PASSWORD`."""
    return ["--user", username, "--password-file", "-"]


def today() -> date:
    return datetime.now(UTC).date()


def eligibility(**overrides: Any) -> dict[str, Any]:
    """Answers of an eligible subject in stratum SLEDAI<10/PRED<10."""
    exclusions = {
        "active_or_unstable_neuropsychiatric_sle": False,
        "active_or_unstable_lupus_nephritis": False,
        "other_autoimmune_disease": False,
        "uncontrolled_medical_condition": False,
        "active_severe_infection": False,
        "malignancy_within_5_years": False,
    }
    exclusions.update(overrides.pop("exclusions", {}))
    answers = {
        "sle_diagnosis_date": (today() - timedelta(days=400)).isoformat(),
        "screening_date": (today() - timedelta(days=14)).isoformat(),
        "sledai_2k_score": 8,
        "bilag_a_count": 1,
        "bilag_b_count": 0,
        "on_soc_medication": True,
        "prednisone_equivalent_mg_per_day": 5,
        "exclusions": exclusions,
    }
    answers.update(overrides)
    return answers


def randomize_body(weight_kg: float = 70.0, **eligibility_overrides: Any) -> dict[str, Any]:
    return {
        "visit_date": today().isoformat(),
        "weight_kg": weight_kg,
        "eligibility": eligibility(**eligibility_overrides),
    }


def register(
    client: Client,
    headers: dict[str, str],
    site_id: str = "DE01",
    screening_number: str | None = None,
) -> int:
    response = client.post(
        "/api/v1/subjects",
        json={
            "site_id": site_id,
            "screening_number": screening_number or uuid.uuid4().hex[:10],
            "sex": "F",
            "year_of_birth": 1980,
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return int(response.json()["subject_id"])


def randomize(
    client: Client,
    headers: dict[str, str],
    subject_id: int,
    body: dict[str, Any] | None = None,
    key: str | None = None,
) -> httpx.Response:
    return client.post(
        f"/api/v1/subjects/{subject_id}/randomize",
        json=body or randomize_body(),
        headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex},
    )


def open_phase2(client: Client, dose: float = 1.2) -> None:
    """Close C1, open and close C2, select the phase II dose (sponsor decisions)."""
    sponsor = login(client, "sponsor")
    for code, action in (("C1", "close"), ("C2", "open"), ("C2", "close")):
        response = client.post(
            f"/api/v1/admin/cohorts/{code}/{action}",
            json={"reason": "safety review done", **SIGNED},
            headers=sponsor,
        )
        assert response.status_code == 200, response.text
    response = client.post(
        "/api/v1/admin/phase2-dose",
        json={"dose_mg_per_kg": dose, "reason": "selected after review", **SIGNED},
        headers=sponsor,
    )
    assert response.status_code == 200, response.text
    if isinstance(client, TestClient):  # a running server's tests lay in their own stock
        stock_stage_pools(client.app.state.db)  # type: ignore[attr-defined]
