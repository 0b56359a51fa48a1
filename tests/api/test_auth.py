"""Authentication: the token endpoint, /me, expired and forged tokens, and that every route but
the token endpoint and /health refuses a request without a valid token."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from fastapi.testclient import TestClient

from app.db.engine import Database
from tests.support.api import assert_problem, fill_path, openapi_operations
from tests.support.databases import assert_unchanged, snapshot
from tests.support.demo import DEMO_PASSWORD
from tests.support.helpers import login

TOKEN_URL = "/api/v1/auth/token"
PUBLIC = {("POST", TOKEN_URL), ("GET", "/health"), ("GET", "/ready")}
SECRET = os.environ["IRT_SECRET_KEY"]  # set by tests/conftest.py before the app reads it


def _token(username: str, role: str, expires_in: timedelta, secret: str = SECRET) -> str:
    now = datetime.now(UTC)
    claims = {"sub": username, "role": role, "sid": "s1", "iat": now, "exp": now + expires_in}
    return jwt.encode(claims, secret, algorithm="HS256")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ME = {
    "coordinator": ("site_coordinator", ["DE01", "DE02"]),
    "investigator": ("investigator", ["DE01", "DE02"]),
    "pharmacist": ("pharmacist", ["DE01", "DE02"]),
    "coordinator2": ("site_coordinator", ["US01"]),
    "supply": ("supply_manager", []),
    "sponsor": ("sponsor_admin", []),
    "monitor": ("unblinded_monitor", []),
}


def test_token_endpoint_and_me(client: TestClient, subtests: Any) -> None:
    response = client.post(TOKEN_URL, data={"username": "coordinator", "password": DEMO_PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    claims = jwt.decode(body["access_token"], SECRET, algorithms=["HS256"])
    assert claims["sub"] == "coordinator" and claims["role"] == "site_coordinator"
    assert len(claims["sid"]) == 32  # the session a logout ends
    # the device proof is no bearer token (signed with a key of its own)
    assert_problem(
        client.get("/api/v1/me", headers=_bearer(body["device_token"])), 401, "unauthorized"
    )
    assert claims["exp"] - claims["iat"] == body["expires_in"]

    reference = client.post(TOKEN_URL, data={"username": "nobody", "password": "x"})
    reference_body = assert_problem(reference, 401, "unauthorized")
    assert reference.headers["www-authenticate"] == "Bearer"
    for username, password in [
        ("coordinator", "wrong-password"),
        ("coordinator", DEMO_PASSWORD.upper()),
        ("nobody", DEMO_PASSWORD),
        ("Coordinator", DEMO_PASSWORD),
    ]:
        with subtests.test(msg="wrong credentials", username=username):
            response = client.post(TOKEN_URL, data={"username": username, "password": password})
            # the same answer whether the user exists or not
            assert assert_problem(response, 401, "unauthorized") == reference_body
            assert response.headers["www-authenticate"] == "Bearer"
    with subtests.test(msg="empty password"):
        response = client.post(TOKEN_URL, data={"username": "coordinator", "password": ""})
        assert_problem(response, 422, "validation_error")

    for username, (role, site_ids) in ME.items():
        with subtests.test(msg="/me", username=username):
            response = client.get("/api/v1/me", headers=login(client, username))
            assert response.status_code == 200, response.text
            assert response.json() == {"username": username, "role": role, "site_ids": site_ids}


def _forged() -> dict[str, str]:
    in_5_min = datetime.now(UTC) + timedelta(minutes=5)
    return {
        "garbage": "garbage",
        "wrong secret": _token(
            "coordinator",
            "site_coordinator",
            timedelta(minutes=5),
            "another-secret-at-least-32-bytes-long",
        ),
        "role escalated": _token("coordinator", "unblinded_monitor", timedelta(minutes=5)),
        "unknown user": _token("ghost", "sponsor_admin", timedelta(minutes=5)),
        "no expiry": jwt.encode(
            {"sub": "sponsor", "role": "sponsor_admin", "sid": "s1"}, SECRET, "HS256"
        ),
        "no session id": jwt.encode(
            {"sub": "sponsor", "role": "sponsor_admin", "exp": in_5_min}, SECRET, "HS256"
        ),
        "alg none": jwt.encode(
            {"sub": "monitor", "role": "unblinded_monitor", "exp": in_5_min}, None, "none"
        ),
    }


def test_expired_and_forged_tokens_are_refused(client: TestClient, subtests: Any) -> None:
    valid = _token("coordinator", "site_coordinator", timedelta(minutes=5))
    assert client.get("/api/v1/me", headers=_bearer(valid)).status_code == 200  # the control
    expired = _token("coordinator", "site_coordinator", timedelta(seconds=-30))
    response = client.get("/api/v1/me", headers=_bearer(expired))
    problem = assert_problem(response, 401, "unauthorized")
    assert "expired" in problem["detail"]
    assert response.headers["www-authenticate"] == "Bearer"
    for case, token in _forged().items():
        with subtests.test(msg=case):
            for path in ("/api/v1/me", "/api/v1/admin/allocations"):
                assert_problem(client.get(path, headers=_bearer(token)), 401, "unauthorized")


PATH_VALUES = {
    "subject_id": 1,
    "code": "C2",
    "site_id": "DE01",
    "depot_id": "DEPOT-EU",
    "shipment_id": 1,
    "kit_number": "ABCDEFGH",
    "confirmation_id": 1,
    "change_id": 1,
    "visit": "W4",
    "dataset": "dm",
}


def test_every_route_but_token_and_health_needs_a_token(
    client: TestClient, demo_db: Database, subtests: Any
) -> None:
    operations = [op for op in openapi_operations(client.app) if op not in PUBLIC]
    assert len(operations) >= 15, operations  # the walk is not empty
    expired = _token("sponsor", "sponsor_admin", timedelta(seconds=-1))
    before = snapshot(demo_db)
    for method, template in operations:
        url = fill_path(template, **PATH_VALUES)
        with subtests.test(msg=f"{method} {template}"):
            # no body at all: the token is checked before the request is validated
            for headers in ({}, _bearer("garbage"), _bearer(expired)):
                response = client.request(method, url, headers=headers)
                assert_problem(response, 401, "unauthorized")
                assert response.headers["www-authenticate"] == "Bearer"
    assert_unchanged(demo_db, before)

    with subtests.test(msg="public routes"):
        health = client.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert client.get("/ready").json()["status"] == "ready"
        token = client.post(TOKEN_URL, data={"username": "supply", "password": DEMO_PASSWORD})
        assert token.status_code == 200


def test_logout_ends_the_token_on_the_server(client: TestClient, demo_db: Database) -> None:
    token = client.post(TOKEN_URL, data={"username": "pharmacist", "password": DEMO_PASSWORD})
    headers = _bearer(token.json()["access_token"])
    other = login(client, "pharmacist")  # another session of the same user
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    for path in ("/api/v1/me", "/api/v1/shipments"):
        problem = assert_problem(client.get(path, headers=headers), 401, "unauthorized")
        assert "logged out" in problem["detail"]
    assert_problem(client.post("/api/v1/auth/logout", headers=headers), 401, "unauthorized")
    assert client.get("/api/v1/me", headers=other).status_code == 200  # only that session
