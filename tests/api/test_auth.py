"""Authentication: the token endpoint, /me, expired and forged tokens, and that every route but
the token endpoint and /health refuses a request without a token."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from app.db.engine import Database
from tests.api.support import assert_problem, fill_path, openapi_operations
from tests.conftest import DEMO_PASSWORD, snapshot
from tests.helpers import login, randomize_body

TOKEN_URL = "/api/v1/auth/token"
PUBLIC = {("POST", TOKEN_URL), ("GET", "/health")}


def _token(username: str, role: str, expires_in: timedelta, **extra: Any) -> str:
    now = datetime.now(UTC)
    claims = {"sub": username, "role": role, "iat": now, "exp": now + expires_in, **extra}
    return jwt.encode(claims, os.environ["IRT_SECRET_KEY"], algorithm="HS256")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_token_endpoint_issues_a_bearer_token(client: TestClient) -> None:
    response = client.post(TOKEN_URL, data={"username": "coordinator", "password": DEMO_PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    claims = jwt.decode(body["access_token"], os.environ["IRT_SECRET_KEY"], algorithms=["HS256"])
    assert claims["sub"] == "coordinator" and claims["role"] == "site_coordinator"
    assert claims["exp"] - claims["iat"] == body["expires_in"]


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("coordinator", "wrong-password"),
        ("coordinator", ""),
        ("nobody", DEMO_PASSWORD),
        ("Coordinator", DEMO_PASSWORD),
    ],
)
def test_wrong_credentials_are_refused_alike(
    client: TestClient, username: str, password: str
) -> None:
    response = client.post(TOKEN_URL, data={"username": username, "password": password})
    if password == "":
        # an empty form field is a validation error of the OAuth2 form, not a login attempt
        assert_problem(response, 422, "validation_error")
        return
    problem = assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    assert "access_token" not in problem
    # the same answer whether the user exists or not
    reference = client.post(TOKEN_URL, data={"username": "nobody", "password": "x"}).json()
    assert problem == reference


@pytest.mark.parametrize(
    ("username", "role", "site_ids"),
    [
        ("coordinator", "site_coordinator", ["DE01", "DE02"]),
        ("investigator", "investigator", ["DE01", "DE02"]),
        ("pharmacist", "pharmacist", ["DE01", "DE02"]),
        ("coordinator2", "site_coordinator", ["US01"]),
        ("supply", "supply_manager", []),
        ("sponsor", "sponsor_admin", []),
        ("monitor", "unblinded_monitor", []),
    ],
)
def test_me(client: TestClient, username: str, role: str, site_ids: list[str]) -> None:
    response = client.get("/api/v1/me", headers=login(client, username))
    assert response.status_code == 200, response.text
    assert response.json() == {"username": username, "role": role, "site_ids": site_ids}


def test_a_hand_built_token_is_accepted_until_it_expires(client: TestClient) -> None:
    valid = _token("coordinator", "site_coordinator", timedelta(minutes=5))
    assert client.get("/api/v1/me", headers=_bearer(valid)).status_code == 200
    expired = _token("coordinator", "site_coordinator", timedelta(seconds=-30))
    response = client.get("/api/v1/me", headers=_bearer(expired))
    problem = assert_problem(response, 401, "unauthorized")
    assert "expired" in problem["detail"]
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: "garbage", id="garbage"),
        pytest.param(lambda: "", id="empty"),
        pytest.param(
            lambda: jwt.encode(
                {
                    "sub": "coordinator",
                    "role": "site_coordinator",
                    "exp": datetime.now(UTC) + timedelta(minutes=5),
                },
                "some-other-secret-of-at-least-32-bytes!",
                algorithm="HS256",
            ),
            id="wrong-secret",
        ),
        pytest.param(
            lambda: _token("coordinator", "unblinded_monitor", timedelta(minutes=5)),
            id="role-escalated",
        ),
        pytest.param(lambda: _token("ghost", "sponsor_admin", timedelta(minutes=5)), id="no-user"),
        pytest.param(
            lambda: jwt.encode(
                {"sub": "sponsor", "role": "sponsor_admin"},
                os.environ["IRT_SECRET_KEY"],
                algorithm="HS256",
            ),
            id="no-expiry",
        ),
        pytest.param(
            lambda: jwt.encode(
                {
                    "sub": "monitor",
                    "role": "unblinded_monitor",
                    "exp": datetime.now(UTC) + timedelta(minutes=5),
                },
                None,
                algorithm="none",
            ),
            id="alg-none",
        ),
    ],
)
def test_forged_tokens_are_refused(client: TestClient, token: Any) -> None:
    response = client.get("/api/v1/me", headers=_bearer(token()))
    assert_problem(response, 401, "unauthorized")
    monitor_route = client.get("/api/v1/admin/allocations", headers=_bearer(token()))
    assert_problem(monitor_route, 401, "unauthorized")


def _request_for(operation: tuple[str, str]) -> tuple[str, str, dict[str, Any]]:
    method, template = operation
    url = fill_path(template, subject_id=1, code="C2")
    kwargs: dict[str, Any] = {}
    if method == "POST":
        body: dict[str, Any] = {"reason": "review"}
        if template.endswith("/randomize"):
            body = randomize_body()
            kwargs["headers"] = {"Idempotency-Key": "no-token"}
        elif template == "/api/v1/subjects":
            body = {"site_id": "DE01", "screening_number": "S1", "sex": "F", "year_of_birth": 1980}
        elif template.endswith("/phase2-dose"):
            body = {"dose_mg_per_kg": 0.8, "reason": "review"}
        kwargs["json"] = body
    return method, url, kwargs


def test_every_route_but_token_and_health_needs_a_token(
    client: TestClient, demo_db: Database
) -> None:
    operations = [op for op in openapi_operations(client.app) if op not in PUBLIC]  # type: ignore[arg-type]
    assert len(operations) >= 10  # the walk is not empty
    expired = _token("sponsor", "sponsor_admin", timedelta(seconds=-1))
    before = snapshot(demo_db)
    for operation in operations:
        method, url, kwargs = _request_for(operation)
        for headers in ({}, _bearer("garbage"), _bearer(expired)):
            extra = {**kwargs.get("headers", {}), **headers}
            response = client.request(method, url, **{**kwargs, "headers": extra})
            assert response.status_code == 401, (operation, headers, response.text)
            assert_problem(response, 401, "unauthorized")
    assert snapshot(demo_db) == before


def test_public_routes_need_no_token(client: TestClient) -> None:
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    token = client.post(TOKEN_URL, data={"username": "supply", "password": DEMO_PASSWORD})
    assert token.status_code == 200
