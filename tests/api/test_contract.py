"""The OpenAPI document states what the API answers: problem+json statuses, input constraints,
the Allow header of a 405, enums of query parameters, 413 for a chunked body too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema_rs
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api.contract import api_routes, needs_token
from app.db.engine import Database
from app.main import create_app
from app.settings import Settings
from tests.support.api import assert_problem
from tests.support.databases import assert_unchanged, snapshot
from tests.support.helpers import login

PROBLEM = "application/problem+json"


def _schema(client: TestClient) -> dict[str, Any]:
    app = client.app
    assert isinstance(app, FastAPI)
    return app.openapi()


def _resolved(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    found: Any = document
    for part in ref.removeprefix("#/").split("/"):
        found = found[part]
    return dict(found)


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield method.upper(), path, operation


def test_every_problem_answer_is_documented_as_problem_json(client: TestClient) -> None:
    document = _schema(client)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    problem = document["components"]["schemas"]["ProblemDetails"]
    assert set(problem["required"]) >= {"type", "title", "status", "detail", "code"}
    operations = list(_operations(document))
    assert len(operations) > 40
    for method, path, operation in operations:
        responses = operation["responses"]
        for status in ("413", "503"):
            assert status in responses, (method, path, status)
        assert "Retry-After" in responses["503"]["headers"], (method, path)
        for status, answer in responses.items():
            if status.startswith(("4", "5")):
                assert list(answer["content"]) == [PROBLEM], (method, path, status)
        if path.startswith("/api/v1/") and path != "/api/v1/auth/token":
            assert {"401", "403", "404"} <= responses.keys(), (method, path)


def test_the_route_list_and_the_token_rule_agree(client: TestClient) -> None:
    """The statuses come from what the route is: the token check it depends on."""
    app = client.app
    assert isinstance(app, FastAPI)
    public = {path for path, route in api_routes(app) if not needs_token(route)}
    assert {"/health", "/ready", "/api/v1/auth/token"} <= public
    assert "/api/v1/subjects" not in public


def test_constraints_are_in_the_schema(client: TestClient) -> None:
    document = _schema(client)
    schemas = document["components"]["schemas"]
    for model in ("RandomizeIn", "DispenseIn"):
        weight = jsonschema_rs.validator_for(schemas[model]["properties"]["weight_kg"])
        assert not weight.is_valid(""), model
        assert not weight.is_valid("heavy"), model
        assert not weight.is_valid(0) and not weight.is_valid(1000.5), model
        assert weight.is_valid(72.5) and weight.is_valid("72.5"), model
    year = schemas["SubjectCreate"]["properties"]["year_of_birth"]
    assert year["minimum"] == 1900 and year["maximum"] >= 2026
    paths = document["paths"]
    register = paths["/api/v1/subjects"]["post"]
    (optional,) = [p for p in register["parameters"] if p["name"] == "Idempotency-Key"]
    assert not optional.get("required")  # a register without a key is served (201)
    randomize = paths["/api/v1/subjects/{subject_id}/randomize"]["post"]
    (key,) = [p for p in randomize["parameters"] if p["name"] == "Idempotency-Key"]
    assert key["required"] is True  # refused without (400 idempotency_key_required)
    assert not jsonschema_rs.validator_for(key["schema"]).is_valid(None)
    assert "x-irt-key-required" not in str(document)
    for signed in ("/api/v1/subjects/{subject_id}/unblind", "/api/v1/admin/caps"):
        paused = paths[signed]["post"]["responses"]["429"]  # signing pauses
        assert "Retry-After" in paused["headers"], signed
    assert "429" not in randomize["responses"]
    key_schema = jsonschema_rs.validator_for(key["schema"])
    assert key_schema.is_valid("a-key") and not key_schema.is_valid("k" * 201)
    assert not key_schema.is_valid("tab\tkey")


def test_a_405_names_the_methods_of_the_path(client: TestClient) -> None:
    response = client.delete("/api/v1/subjects")
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, POST"
    one = client.put("/api/v1/subjects/1")
    assert one.status_code == 405 and one.headers["allow"] == "GET"


def test_a_query_parameter_outside_its_enum_is_refused(client: TestClient) -> None:
    monitor = login(client, "monitor")
    refused = client.get("/api/v1/admin/kits", params={"status": "bogus"}, headers=monitor)
    body = assert_problem(refused, 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["status"]
    assert "(got 'bogus')" in body["detail"] and "'available'" in body["detail"]
    available = client.get("/api/v1/admin/kits", params={"status": "available"}, headers=monitor)
    assert available.status_code == 200 and available.json()
    assert {kit["status"] for kit in available.json()} == {"available"}


def test_a_chunked_body_over_the_limit_gets_413(demo_db: Database, db_url: str) -> None:
    app = create_app(Settings(database_url=db_url, max_request_bytes=2048))
    with TestClient(app, raise_server_exceptions=False) as client:
        coordinator = login(client, "coordinator")
        before = snapshot(demo_db)

        def chunks(size: int) -> Iterator[bytes]:
            yield b'{"site_id": "DE01", "screening_number": "'
            yield b"A" * size
            yield b'", "sex": "F", "year_of_birth": 1980}'

        headers = {**coordinator, "Content-Type": "application/json", "Idempotency-Key": "c1"}
        big = client.post("/api/v1/subjects", content=chunks(4096), headers=headers)
        assert_problem(big, 413, "request_too_large")
        assert_unchanged(demo_db, before)
        small = client.post("/api/v1/subjects", content=chunks(8), headers=headers)
        assert small.status_code == 201, small.text  # a chunked body within the limit is read
    app.state.db.dispose()
