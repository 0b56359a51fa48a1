"""Schemathesis against the OpenAPI schema, as every demo user: no 5xx, 2xx bodies conform to
the documented schema, every 4xx is RFC 9457 problem+json, and a refused request (or any GET)
leaves the database unchanged.

Sizes are small so that `make test` stays fast on both engines; `IRT_FUZZ_SCALE=10` (an integer
multiplier) runs a deeper search locally. Generation is derandomized and never shrinks, so a run
is reproducible and a failure names the request that caused it.

Exclusions from "a refused request changes nothing", exactly these two (both by design, see
docs/decisions.md):
- a refused login (401 / 429 on POST /auth/token) records one `login_failures` row and one
  `auth.login_failed` / `auth.login_throttled` audit entry (throttling needs both);
- a refused allocation answering 409 `no_kits_available` (randomize, dispense, replace)
  requests an urgent shipment in its own transaction: new `urgent` shipment rows, their
  `shipment_kits`, and the `shipment.request` / `site.resupply` / `depot.short` audit entries.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.api import admin, auth, subjects, supply
from app.db.engine import Database
from app.domain.roles import Role
from tests.api.support import PROBLEM_KEYS, PROBLEM_MEDIA_TYPE
from tests.conftest import snapshot
from tests.helpers import login, randomize, randomize_body, register

Snapshot = dict[str, list[tuple[Any, ...]]]

USERS = (
    "coordinator",
    "investigator",
    "pharmacist",
    "supply",
    "sponsor",
    "monitor",
    "coordinator2",
)
SCALE = max(1, int(os.environ.get("IRT_FUZZ_SCALE", "1")))
ALLOWED_EXAMPLES = {GenerationMode.POSITIVE: 4 * SCALE, GenerationMode.NEGATIVE: 3 * SCALE}
"""Per operation and user allowed to call it, with generated path parameters."""
KNOWN_PATH_EXAMPLES = {GenerationMode.POSITIVE: 4 * SCALE, GenerationMode.NEGATIVE: 2 * SCALE}
"""Per operation and allowed user, with path parameters naming objects that exist."""
REFUSED_EXAMPLES = {GenerationMode.POSITIVE: 1 * SCALE, GenerationMode.NEGATIVE: 1 * SCALE}
"""Per operation and user whose role is refused (403 every time)."""
PUBLIC_EXAMPLES = {GenerationMode.POSITIVE: 8 * SCALE, GenerationMode.NEGATIVE: 6 * SCALE}
PUBLIC = {("POST", "/api/v1/auth/token"), ("GET", "/health")}

API_PREFIX = "/api/v1"
ROUTERS = (auth.router, subjects.router, supply.router, admin.router)
LOGIN = ("POST", "/api/v1/auth/token")
ALLOCATING = re.compile(r"^/api/v1/subjects/\{subject_id\}/(randomize|dispense|kits/.*/replace)$")
LOGIN_REFUSAL_ACTIONS = {"auth.login_failed", "auth.login_throttled"}
URGENT_SHIPMENT_ACTIONS = {"shipment.request", "site.resupply", "depot.short"}


# --- the database diff --------------------------------------------------------------------------


def changes(before: Snapshot, after: Snapshot) -> dict[str, tuple[list[Any], list[Any]]]:
    """Per changed table: (rows removed, rows added), as multisets."""
    found = {}
    for table in sorted(before.keys() | after.keys()):
        old, new = Counter(before.get(table, [])), Counter(after.get(table, []))
        removed, added = list((old - new).elements()), list((new - old).elements())
        if removed or added:
            found[table] = (removed, added)
    return found


def _only_added(diff: dict[str, tuple[list[Any], list[Any]]], table: str) -> list[Any]:
    removed, added = diff.pop(table, ([], []))
    assert not removed, f"{table}: rows removed {removed}"
    return added


def _audit_actions(diff: dict[str, tuple[list[Any], list[Any]]]) -> set[str]:
    """The actions of the new audit entries ("<other>" for any not excused); the chain head
    moves along (its one row replaced)."""
    entries = _only_added(diff, "audit_log")
    head_removed, head_added = diff.pop("audit_head", ([], []))
    assert len(head_removed) == len(head_added) == (1 if entries else 0), (head_removed, head_added)
    excused = LOGIN_REFUSAL_ACTIONS | URGENT_SHIPMENT_ACTIONS
    return {next((v for v in row if v in excused), "<other>") for row in entries}


def assert_unchanged(
    method: str, path: str, status: int, code: str | None, before: Snapshot, after: Snapshot
) -> None:
    """Nothing changed, apart from the two documented side effects of a refusal."""
    diff = changes(before, after)
    if not diff:
        return
    if (method, path) == LOGIN and status in (401, 429):
        failures = _only_added(diff, "login_failures")
        actions = _audit_actions(diff)
        assert len(failures) == 1 and actions <= LOGIN_REFUSAL_ACTIONS and actions, (
            failures,
            actions,
        )
    elif method == "POST" and ALLOCATING.match(path) and code == "no_kits_available":
        shipments = _only_added(diff, "shipments")
        _only_added(diff, "shipment_kits")
        actions = _audit_actions(diff)
        assert actions <= URGENT_SHIPMENT_ACTIONS, actions
        assert all("urgent" in row and "requested" in row for row in shipments), shipments
    assert not diff, f"{method} {path} answered {status} {code} but changed the database: {diff}"


# --- the fuzzer ---------------------------------------------------------------------------------


def allowed_roles() -> dict[tuple[str, str], frozenset[Role] | None]:
    """(METHOD, path) -> the roles of the route's `require(...)`, None when any user may call."""
    result: dict[tuple[str, str], frozenset[Role] | None] = {}
    for route in (r for router in ROUTERS for r in router.routes):
        assert isinstance(route, APIRoute)
        roles = None
        pending = list(route.dependant.dependencies)
        while pending:
            dependant = pending.pop()
            allowed = getattr(dependant.call, "allowed_roles", None)
            if allowed is not None:
                roles = frozenset(allowed)
                break
            pending.extend(dependant.dependencies)
        for method in route.methods:
            result[(method, API_PREFIX + route.path)] = roles
    return result


@dataclass
class Fuzzer:
    db: Database
    known_paths: dict[str, str]
    state: Snapshot = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.state = snapshot(self.db)

    def check(self, case: Any, user: str | None, headers: dict[str, str]) -> None:
        method, path = case.method.upper(), case.operation.path
        where = f"{method} {path} as {user or 'anyone'}"
        response = case.call(headers=headers)
        status = response.status_code
        self.calls[f"{status // 100}xx"] += 1
        self.calls[f"{method} {path} {status}"] += 1
        assert status < 500, f"{where}: {status}\n{case.as_curl_command()}\n{response.text}"
        code = None
        if 400 <= status < 500:
            content_type = response.headers.get("content-type", [""])[0]
            assert content_type.startswith(PROBLEM_MEDIA_TYPE), (where, status, content_type)
            body = response.json()
            assert isinstance(body, dict) and body.keys() >= PROBLEM_KEYS, (where, body)
            assert body["status"] == status and body["type"].endswith(body["code"]), (where, body)
            code = body["code"]
        else:
            case.validate_response(
                response,
                checks=[
                    status_code_conformance,
                    content_type_conformance,
                    response_schema_conformance,
                ],
            )
        after = snapshot(self.db)
        if status >= 400 or method == "GET":
            assert_unchanged(method, path, status, code, self.state, after)
        self.state = after

    def run(
        self,
        operation: Any,
        mode: GenerationMode,
        examples: int,
        user: str | None,
        headers: dict[str, str],
        path_parameters: dict[str, str] | None = None,
    ) -> None:
        if examples <= 0:
            return
        strategy = operation.as_strategy(mode, path_parameters=path_parameters)

        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
        )
        @given(case=strategy)
        def fuzz(case: Any) -> None:
            self.check(case, user, headers)

        try:
            fuzz()
        except Unsatisfiable:  # nothing to negate (no parameters, no body)
            assert mode is GenerationMode.NEGATIVE


def seed_objects(client: TestClient) -> dict[str, str]:
    """Subjects in every state (randomized and dosed, registered, at another site) so that
    generated ids and the known path values reach deep into the services."""
    coordinator = login(client, "coordinator")
    dosed = register(client, coordinator, "DE01", "FUZZ-001")
    assert randomize(client, coordinator, dosed, randomize_body(72.5)).status_code == 201
    other = register(client, coordinator, "DE01", "FUZZ-002")
    assert randomize(client, coordinator, other, randomize_body(95)).status_code == 201
    register(client, coordinator, "DE02", "FUZZ-003")
    us = register(client, login(client, "coordinator2"), "US01", "FUZZ-004")
    assert randomize(client, login(client, "coordinator2"), us).status_code == 201
    kit = client.get(f"/api/v1/subjects/{dosed}", headers=coordinator).json()["visits"][0]["kits"]
    return {"subject_id": str(dosed), "kit_number": kit[0], "shipment_id": "1"}


def known_path_values(operation: Any, seeded: dict[str, str]) -> dict[str, str] | None:
    names = re.findall(r"\{(\w+)\}", operation.path)
    if not names:
        return None
    values = {**seeded, "site_id": "DE01", "code": "C2"}
    return {name: values[name] for name in names}


@pytest.mark.timeout(600)
def test_fuzz_every_operation_as_every_role(client: TestClient, demo_db: Database) -> None:
    seeded = seed_objects(client)
    tokens = {user: login(client, user) for user in USERS}
    roles = {user: Role(client.get("/api/v1/me", headers=tokens[user]).json()["role"]) for user in USERS}
    app = client.app
    assert isinstance(app, FastAPI)
    permitted = allowed_roles()
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {(o.method.upper(), o.path) for o in operations} == permitted.keys() | PUBLIC
    fuzzer = Fuzzer(demo_db, seeded)
    run = fuzzer.run
    for operation in operations:
        key = (operation.method.upper(), operation.path)
        if key in PUBLIC:
            for mode, examples in PUBLIC_EXAMPLES.items():
                run(operation, mode, examples, None, {})
            continue
        allowed = permitted[key]
        for user in USERS:
            headers = tokens[user]
            may = allowed is None or roles[user] in allowed
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                if not may:
                    run(operation, mode, REFUSED_EXAMPLES[mode], user, headers)
                    continue
                run(operation, mode, ALLOWED_EXAMPLES[mode], user, headers)
                known = known_path_values(operation, seeded)
                if known is not None:
                    run(operation, mode, KNOWN_PATH_EXAMPLES[mode], user, headers, known)
    print("\n".join(f"{n:5} {what}" for what, n in sorted(fuzzer.calls.items())))
    assert fuzzer.calls["2xx"] > 0 and fuzzer.calls["4xx"] > 0, fuzzer.calls
