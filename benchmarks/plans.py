"""Query plans: the statements each request kind issues, EXPLAINed on a (large) database.

The app runs in process (Starlette's TestClient); a `before_cursor_execute` listener on every
SQLAlchemy engine records each statement with its parameters while one request of a kind is
served, and until the resupply check it queued has run on the server's follow-up thread. Each
distinct statement is then EXPLAINed (no ANALYZE: nothing is executed) with its parameters,
and its plan is reduced to the scans it makes: a Seq Scan of a table with more than
`LARGE` rows is the finding."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from benchmarks.costs import _plain, insert_subjects
from benchmarks.load import randomize_body
from benchmarks.server import SECRET
from benchmarks.setup import PASSWORD, BenchDatabase

LARGE = 10_000
SKIP = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "SET ", "SHOW ", "SELECT pg_")


@contextmanager
def _captured() -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def listen(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    event.listen(Engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", listen)


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _walk(child)


def _scans(plan: dict[str, Any], sizes: dict[str, float]) -> list[str]:
    out = []
    for node in _walk(plan):
        table = node.get("Relation Name")
        if table is None:
            continue
        kind = node["Node Type"]
        rows = int(sizes.get(table, 0))
        index = node.get("Index Name")
        label = f"{kind} {table}" + (f" ({index})" if index else "") + f" [{rows:,} rows]"
        if kind == "Seq Scan" and rows > LARGE:
            label = "**" + label + "**"
        out.append(label)
    return out


def capture(bench: BenchDatabase) -> dict[str, list[tuple[str, Any]]]:
    """{kind: [(statement, parameters)]} of one request of each kind, served in process."""
    os.environ.update(
        IRT_DATABASE_URL=bench.url,
        IRT_SECRET_KEY=SECRET,
        IRT_PASSWORD_HASH_PROFILE="fast",
    )
    from app.main import create_app

    site = bench.sites[0]
    ((subject, _),) = insert_subjects(bench, [site], "PLAN")
    body = randomize_body(random.Random("plans"), datetime.now(UTC).date() - timedelta(days=28))
    out: dict[str, list[tuple[str, Any]]] = {}
    run = uuid.uuid4().hex[:6]
    app = create_app()
    with TestClient(app) as http:

        def token(user: str) -> dict[str, str]:
            answer = http.post("/api/v1/auth/token", data={"username": user, "password": PASSWORD})
            return {"Authorization": f"Bearer {answer.json()['access_token']}"}

        coordinator = token(bench.coordinator(site))
        pharmacist = token(bench.pharmacist(site))
        sponsor = token("sponsor")
        supply = token("supply")
        requests: dict[str, Callable[[], Any]] = {
            "randomize": lambda: http.post(
                f"/api/v1/subjects/{subject}/randomize",
                json=body,
                headers={**coordinator, "Idempotency-Key": f"{run}-r"},
            ),
            "dispense": lambda: http.post(
                f"/api/v1/subjects/{subject}/dispense",
                json={
                    "visit": "W4",
                    "visit_date": datetime.now(UTC).date().isoformat(),
                    "weight_kg": body["weight_kg"],
                },
                headers={**pharmacist, "Idempotency-Key": f"{run}-d"},
            ),
            "inventory": lambda: http.get(f"/api/v1/sites/{site}/inventory", headers=pharmacist),
            "report": lambda: http.get("/api/v1/reports/enrolment", headers=sponsor),
            "stock report": lambda: http.get("/api/v1/reports/inventory", headers=supply),
        }
        for kind, call in requests.items():
            with _captured() as seen:
                response = call()
                if app.state.follow_ups is not None:  # the resupply check after the answer
                    app.state.follow_ups.drain(60)
            if response.status_code >= 300:
                raise RuntimeError(f"{kind}: {response.status_code} {response.text[:300]}")
            out[kind] = [(s, p) for s, p in seen if not s.lstrip().upper().startswith(SKIP)]
    return out


def explain(bench: BenchDatabase, captured: dict[str, list[tuple[str, Any]]]) -> dict[str, Any]:
    """{kind: [{statement, scans}]}; statements that cannot be EXPLAINed say why."""
    out: dict[str, Any] = {}
    with psycopg.connect(_plain(bench.url), autocommit=True) as conn:
        sizes = {
            str(name): float(n)
            for name, n in conn.execute(
                "SELECT relname, reltuples FROM pg_class WHERE relkind = 'r' "
                "AND relnamespace = 'public'::regnamespace"
            )
        }
        for kind, statements in captured.items():
            rows = []
            for statement, params in statements:
                text = " ".join(statement.split())
                if isinstance(params, list | tuple) and params and isinstance(params[0], dict):
                    params = params[0]  # an executemany (the audit entries): its first row
                try:
                    plan = conn.execute(
                        "EXPLAIN (FORMAT JSON) " + statement, params or None
                    ).fetchone()[0][0]["Plan"]  # type: ignore[index]
                    scans = _scans(plan, sizes)
                except psycopg.Error as exc:
                    scans = [f"not explained: {type(exc).__name__}"]
                rows.append({"statement": text, "scans": scans})
            out[kind] = rows
    return out
