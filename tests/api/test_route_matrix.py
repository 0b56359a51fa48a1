"""Every route of the OpenAPI schema x missing token, expired token and every role it refuses."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from app.api.routers import API_PREFIX, API_ROUTERS
from app.domain.roles import Role
from tests.support.api import assert_problem
from tests.support.helpers import login

PUBLIC = {("POST", "/api/v1/auth/token"), ("GET", "/health"), ("GET", "/ready")}
USER_OF_ROLE = {
    Role.SITE_COORDINATOR: "coordinator",
    Role.INVESTIGATOR: "investigator",
    Role.PHARMACIST: "pharmacist",
    Role.SUPPLY_MANAGER: "supply",
    Role.SPONSOR_ADMIN: "sponsor",
    Role.UNBLINDED_MONITOR: "monitor",
}
PATH_VALUES = {
    "subject_id": "1",
    "kit_number": "AAAAAAAA",
    "shipment_id": "1",
    "site_id": "DE01",
    "depot_id": "DEPOT-EU",
    "code": "C2",
    "confirmation_id": "1",
    "dataset": "dm",
    "visit": "W4",
    "change_id": "1",
}


def _allowed_roles(route: APIRoute) -> frozenset[Role] | None:
    """The roles of the route's `require(...)` dependency; None when any user may call it."""
    pending = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop()
        allowed = getattr(dependant.call, "allowed_roles", None)
        if allowed is not None:
            return frozenset(allowed)
        pending.extend(dependant.dependencies)
    return None


def _routes(client: TestClient) -> list[tuple[str, str, frozenset[Role] | None]]:
    documented = {
        (m.upper(), p)
        for p, item in client.app.openapi()["paths"].items()  # type: ignore[attr-defined]
        for m in item
    }
    found = []
    for router in API_ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            path = API_PREFIX + route.path
            for method in route.methods:
                if (method, path) not in PUBLIC:
                    found.append((method, path, _allowed_roles(route)))
    assert {(m, p) for m, p, _ in found} | PUBLIC == documented
    return found


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    url = path.format(**PATH_VALUES)
    kwargs: dict[str, Any] = {"headers": headers}
    if method in ("POST", "PUT"):
        kwargs["json"] = {}
    return client.request(method, url, **kwargs)


def test_every_route_refuses_missing_and_expired_tokens_and_other_roles(
    client: TestClient,
) -> None:
    now = datetime.now(UTC)
    expired = jwt.encode(
        {
            "sub": "monitor",
            "role": "unblinded_monitor",
            "ver": 0,
            "iat": now - timedelta(hours=2),
            "exp": now - timedelta(hours=1),
        },
        os.environ["IRT_SECRET_KEY"],
        algorithm="HS256",
    )
    tokens = {role: login(client, user) for role, user in USER_OF_ROLE.items()}
    routes = _routes(client)
    assert len(routes) >= 35
    for method, path, allowed in routes:
        where = f"{method} {path}"
        body = assert_problem(_call(client, method, path, {}), 401, "unauthorized")
        assert body["detail"], where
        assert_problem(
            _call(client, method, path, {"Authorization": f"Bearer {expired}"}),
            401,
            "unauthorized",
        )
        if allowed is None:
            continue
        for role, headers in tokens.items():
            response = _call(client, method, path, headers)
            if role in allowed:
                assert response.status_code not in (401, 403), (where, role, response.text)
            else:
                assert_problem(response, 403, "forbidden")
