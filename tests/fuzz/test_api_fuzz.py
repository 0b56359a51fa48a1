"""Schemathesis against the OpenAPI schema, as every demo user: no 5xx, 2xx bodies conform to
the documented schema, every 4xx is RFC 9457 problem+json, and a refused request (or any GET)
leaves the database unchanged.

Sizes are small so that `make test` stays fast on both engines; `IRT_FUZZ_SCALE=10` (an integer
multiplier) runs a deeper search locally. Generation is derandomized and never shrinks, so a run
is reproducible and a failure names the request that caused it.

Exclusions from "a refused request changes nothing", exactly these two (both by design, see
docs/decisions.md):
- a refused login (401 / 429 on POST /auth/token) changes the rows of its keys in
  `login_throttle` (and may forget stale ones) and writes at most three
  `auth.login_failed` / `auth.login_throttled` audit entries (the throttle needs the rows; the
  trail gets the first failure of a key in its window, a failure that starts a delay, and the
  first refusal of each delay, per key);
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

from app.api.routers import API_PREFIX, API_ROUTERS
from app.db.engine import Database
from app.domain.roles import Role
from tests.support.api import PROBLEM_KEYS, PROBLEM_MEDIA_TYPE
from tests.support.databases import is_attempt, snapshot
from tests.support.helpers import (
    SIGNATURE_HEADERS,
    SIGNED,
    login,
    randomize,
    randomize_body,
    register,
)

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
REFUSED_EXAMPLES = {GenerationMode.POSITIVE: 1 * SCALE, GenerationMode.NEGATIVE: SCALE - 1}
"""Per operation and user whose role is refused (403 every time, malformed or not: the role is
checked first, so the malformed case joins only the deeper runs; the allowed users' malformed
cases and tests/api/test_route_matrix.py cover the rest)."""
PUBLIC_EXAMPLES = {GenerationMode.POSITIVE: 8 * SCALE, GenerationMode.NEGATIVE: 6 * SCALE}
PUBLIC = {("POST", "/api/v1/auth/token"), ("GET", "/health"), ("GET", "/ready")}

LOGIN = ("POST", "/api/v1/auth/token")
LOGOUT = ("POST", "/api/v1/auth/logout")
ALLOCATING = re.compile(r"^/api/v1/subjects/\{subject_id\}/(randomize|dispense|kits/.*/replace)$")
LOGIN_REFUSAL_ACTIONS = {"auth.login_failed", "auth.login_throttled"}
URGENT_SHIPMENT_ACTIONS = {"shipment.request", "site.resupply", "depot.short"}


# --- the database diff --------------------------------------------------------------------------


def changes(before: Snapshot, after: Snapshot) -> dict[str, tuple[list[Any], list[Any]]]:
    """Per changed table: (rows removed, rows added), as multisets."""
    found = {}
    for table in sorted(before.keys() | after.keys()):
        rows_before, rows_after = before.get(table, []), after.get(table, [])
        if rows_before == rows_after:  # the same rows read in the same order
            continue
        if rows_after[: len(rows_before)] == rows_before:  # appended to (the audit trail)
            found[table] = ([], rows_after[len(rows_before) :])
            continue
        old, new = Counter(rows_before), Counter(rows_after)
        removed, added = list((old - new).elements()), list((new - old).elements())
        if removed or added:
            found[table] = (removed, added)
    return found


def _only_added(diff: dict[str, tuple[list[Any], list[Any]]], table: str) -> list[Any]:
    removed, added = diff.pop(table, ([], []))
    assert not removed, f"{table}: rows removed {removed}"
    return added


def _audit_actions(diff: dict[str, tuple[list[Any], list[Any]]]) -> list[str]:
    """The actions of the new audit entries ("<other>" for any not excused); the chain head
    moves along (its one row replaced)."""
    entries = _only_added(diff, "audit_log")
    head_removed, head_added = diff.pop("audit_head", ([], []))
    assert len(head_removed) == len(head_added) == (1 if entries else 0), (head_removed, head_added)
    excused = LOGIN_REFUSAL_ACTIONS | URGENT_SHIPMENT_ACTIONS
    return [next((v for v in row if v in excused), "<other>") for row in entries]


def _drop_attempt_entries(diff: dict[str, tuple[list[Any], list[Any]]]) -> None:
    """Forget the new audit entries of attempts; the chain head moves along when only they were
    added."""
    if "audit_log" not in diff:
        return
    removed, added = diff["audit_log"]
    assert not removed, f"audit_log: rows removed {removed}"
    others = [row for row in added if not any(isinstance(v, str) and is_attempt(v) for v in row)]
    if others:
        diff["audit_log"] = ([], others)
        return
    del diff["audit_log"]
    head_removed, head_added = diff.pop("audit_head", ([], []))
    assert len(head_removed) == len(head_added) == 1, (head_removed, head_added)


def assert_unchanged(
    method: str, path: str, status: int, code: str | None, before: Snapshot, after: Snapshot
) -> None:
    """Nothing changed, apart from the audit entries of attempts (refusals, forbidden requests,
    unblinded reads) and the two documented side effects of a refusal."""
    diff = changes(before, after)
    _drop_attempt_entries(diff)
    if not diff:
        return
    if (method, path) == LOGIN and status in (401, 429):
        throttle = diff.pop("login_throttle", ([], []))
        actions = _audit_actions(diff)
        assert any(throttle), "a refused login is counted"
        assert len(actions) <= 3 and set(actions) <= LOGIN_REFUSAL_ACTIONS, actions
    elif method == "POST" and ALLOCATING.match(path) and code == "no_kits_available":
        shipments = _only_added(diff, "shipments")
        _only_added(diff, "shipment_kits")
        actions = _audit_actions(diff)
        assert set(actions) <= URGENT_SHIPMENT_ACTIONS, actions
        assert all("urgent" in row and "requested" in row for row in shipments), shipments
    assert not diff, f"{method} {path} answered {status} {code} but changed the database: {diff}"


# --- the fuzzer ---------------------------------------------------------------------------------


def allowed_roles() -> dict[tuple[str, str], frozenset[Role] | None]:
    """(METHOD, path) -> the roles of the route's `require(...)`, None when any user may call."""
    result: dict[tuple[str, str], frozenset[Role] | None] = {}
    for route in (r for router in API_ROUTERS for r in router.routes):
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
    unsatisfiable: set[tuple[str, str, bool]] = field(default_factory=set)
    """Operations with nothing to negate (the same for every user: generation is derandomized),
    found once and not generated again: each try burns a few hundred rejected draws."""

    def __post_init__(self) -> None:
        self.state = snapshot(self.db, ordered=False)

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
        after = snapshot(self.db, ordered=False)
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
        nothing_to_negate = (operation.method, operation.path, path_parameters is None)
        if mode is GenerationMode.NEGATIVE and nothing_to_negate in self.unsatisfiable:
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
            self.unsatisfiable.add(nothing_to_negate)


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
    values = {
        **seeded,
        "site_id": "DE01",
        "depot_id": "DEPOT-EU",
        "code": "C2",
        "dataset": "dm",
        "confirmation_id": "1",
        "visit": "W4",
        "change_id": "1",
    }
    return {name: values[name] for name in names}


@pytest.mark.timeout(600)
def test_fuzz_every_operation_as_every_role(client: TestClient, demo_db: Database) -> None:
    seeded = seed_objects(client)
    tokens = {user: login(client, user) for user in USERS}
    roles = {
        user: Role(client.get("/api/v1/me", headers=tokens[user]).json()["role"]) for user in USERS
    }
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
            # a logout ends its token: it gets one of its own, so the user's stays valid
            headers = login(client, user) if key == LOGOUT else tokens[user]
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


# --- the exclusions are exactly these -----------------------------------------------------------


def _state(**tables: list[tuple[Any, ...]]) -> Snapshot:
    base: Snapshot = {"audit_head": [(1, 1, "h1")], "audit_log": [], "login_throttle": []}
    base.update({"subjects": [], "shipments": [], "shipment_kits": []})
    return {**base, **tables}


def test_the_refusal_exclusions_are_exact() -> None:
    before = _state()
    login_refused = _state(
        audit_head=[(1, 2, "h2")],
        audit_log=[(1, "t", "x", "anonymous", "auth.login_failed")],
        login_throttle=[("source_user:testclient|x", 1, "t", None, 0)],
    )
    assert_unchanged(*LOGIN, 401, "unauthorized", before, login_refused)
    with pytest.raises(AssertionError):  # the same change from any other answer or route
        assert_unchanged(*LOGIN, 422, "validation_error", before, login_refused)
    with pytest.raises(AssertionError):
        assert_unchanged("POST", "/api/v1/subjects", 401, "unauthorized", before, login_refused)
    with pytest.raises(AssertionError):  # a refused login that also writes elsewhere
        assert_unchanged(
            *LOGIN, 401, "unauthorized", before, {**login_refused, "subjects": [(1, "DE01")]}
        )
    urgent = _state(
        audit_head=[(1, 3, "h3")],
        audit_log=[(1, "shipment.request"), (2, "site.resupply")],
        shipments=[(9, "DEPOT-EU", "DE01", "urgent", "requested")],
        shipment_kits=[(9, "K1"), (9, "K2")],
    )
    dispense = "/api/v1/subjects/{subject_id}/dispense"
    assert_unchanged("POST", dispense, 409, "no_kits_available", before, urgent)
    with pytest.raises(AssertionError):
        assert_unchanged("POST", dispense, 409, "already_dispensed", before, urgent)
    with pytest.raises(AssertionError):  # an allocation kept despite the refusal
        assert_unchanged(
            "POST",
            dispense,
            409,
            "no_kits_available",
            before,
            {**urgent, "audit_log": [*urgent["audit_log"], (3, "subject.dispense")]},
        )


# --- what the fuzzer found, pinned ---------------------------------------------------------------


@pytest.mark.parametrize("number", [0, 2**31, 2**63, 2**70])
def test_ids_outside_the_id_column_are_refused_as_invalid(client: TestClient, number: int) -> None:
    """Found by the fuzzer: ids past the 32-bit id column answered 500 on PostgreSQL (past 64
    bits on SQLite); now a 422 validation_error on every engine, before any query."""
    investigator, supply = login(client, "investigator"), login(client, "supply")
    for method, path, headers, body in (
        ("GET", f"/api/v1/subjects/{number}", investigator, None),
        ("POST", f"/api/v1/subjects/{number}/unblind", investigator, {"reason": "x" * 12}),
        ("GET", f"/api/v1/shipments/{number}", supply, None),
        ("POST", f"/api/v1/shipments/{number}/ship", supply, None),
    ):
        response = client.request(method, path, headers=headers, json=body)
        assert response.status_code == 422, (method, path, response.text)
        assert response.json()["code"] == "validation_error"
    monitor = login(client, "monitor")
    response = client.get("/api/v1/admin/audit", params={"after_seq": 2**31}, headers=monitor)
    assert response.status_code == 422, response.text


def test_text_with_nul_is_refused_and_changes_nothing(
    client: TestClient, demo_db: Database
) -> None:
    """Found by the fuzzer: U+0000 in a path, query, form or body text answered 500 on
    PostgreSQL (which cannot store it); now a 422 validation_error on both engines."""
    supply, sponsor = login(client, "supply"), login(client, "sponsor")
    coordinator = login(client, "coordinator")
    before = snapshot(demo_db)
    for method, path, headers, kwargs in (
        ("GET", "/api/v1/kits/A%00B", supply, {}),
        ("GET", "/api/v1/sites/DE%0001/inventory", supply, {}),
        ("GET", "/api/v1/subjects", coordinator, {"params": {"site_id": "D\x00"}}),
        ("GET", "/api/v1/shipments", supply, {"params": {"site_id": "D\x00"}}),
        (
            "POST",
            "/api/v1/admin/cohorts/C1/close",
            sponsor,
            {"json": {"reason": "ab\x00c: a reason with a NUL", **SIGNED}},
        ),
        ("POST", "/api/v1/auth/token", {}, {"data": {"username": "a\x00b", "password": "x"}}),
    ):
        response = client.request(method, path, headers=headers, **kwargs)
        assert response.status_code == 422, (method, path, response.text)
        assert response.json()["code"] == "validation_error"
    diff = changes(before, snapshot(demo_db))
    _drop_attempt_entries(diff)
    assert diff == {}


@pytest.mark.parametrize("text", ["\x1a\xf3Y\\\rÈ\x12ö", "kit_number," + "A" * 200_000])
def test_an_unreadable_kit_list_is_refused(
    client: TestClient, demo_db: Database, text: str
) -> None:
    """Found by the fuzzer: a bare carriage return in a field, or a field past the csv module's
    limit, answered 500 (csv.Error); now 422 invalid_kit_list, nothing imported."""
    monitor = login(client, "monitor")  # a login counts in the throttle's rows
    before = snapshot(demo_db)
    response = client.post(
        "/api/v1/admin/kits/import",
        content=text.encode(),
        headers={**monitor, "Content-Type": "text/csv", **SIGNATURE_HEADERS},
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_kit_list"
    diff = changes(before, snapshot(demo_db))
    _drop_attempt_entries(diff)
    assert diff == {}
