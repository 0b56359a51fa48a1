"""The OpenAPI document is honest: Schemathesis with every check finds nothing, as every demo user
on the operations its role may call and anonymously on the public ones (a small budget here;
`make benchmark` runs benchmarks/contract.py with a large one against a live server)."""

from __future__ import annotations

from typing import Any

import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.domain.roles import Role
from benchmarks.contract import run_all, run_role
from tests.support.helpers import login

EXAMPLES = 1
PHASES = ["examples", "fuzzing"]


def test_every_check_passes_as_every_role(client: TestClient) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)

    def token(user: str) -> str:
        return login(client, user)["Authorization"].removeprefix("Bearer ")

    def role_of(user: str) -> Role:
        me = client.get("/api/v1/me", headers=login(client, user))
        return Role(me.json()["role"])

    runs = run_all(schema, app, login=token, role_of=role_of, max_examples=EXAMPLES, phases=PHASES)
    report = "\n".join(
        f"{r.user}: {r.operations} operations, {r.seconds:.1f} s, {len(r.failures)} failures"
        for r in runs
    )
    print(report)
    assert all(r.operations for r in runs), report
    failures = [f"{r.user}: {failure}" for r in runs for failure in r.failures]
    assert failures == [], "\n".join(failures)


def test_the_harness_reports_an_undocumented_answer() -> None:
    """The same runner on an app that answers a status its document does not list fails."""
    app = FastAPI()

    @app.get("/thing", responses={200: {"description": "ok"}})
    def thing() -> Any:
        from fastapi.responses import JSONResponse

        return JSONResponse({"detail": "nope"}, status_code=418)

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    run = run_role(
        schema,
        user="anyone",
        token=None,
        operations={("GET", "/thing")},
        max_examples=EXAMPLES,
        phases=PHASES,
    )
    assert run.failures, run
