"""The OpenAPI contract against the running app: Schemathesis with every check (`--checks all`),
as every demo user on the operations its role may call, and anonymously on the public ones.

`tests/contract/test_schemathesis.py` runs it with a small budget in the ASGI app (both engines);
`python -m benchmarks.contract` (part of `make benchmark`) with a large one against a live
uvicorn on a demo SQLite database.

One deliberate setting: a schema-valid request may be refused with 422 by a rule of the study
the schema cannot state (a wrong signature password, a signature meaning that is not the text
to sign, a study file that is not valid TOML, an unknown time zone, an ineligible subject), so
`positive_data_acceptance` admits 422 as it admits 404 and 409. Every other check runs as
Schemathesis ships it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from fastapi import FastAPI
from schemathesis.config._checks import PositiveDataAcceptanceConfig
from schemathesis.engine import Status, events, from_schema

from app.api.contract import api_routes, needs_token
from app.db.engine import Database
from app.db.migrate import upgrade
from app.domain.roles import Role
from app.domain.study import load_study
from app.main import create_app
from app.services.demo import set_up_demo
from app.settings import Settings
from benchmarks.server import running_server

USERS = ("coordinator", "investigator", "pharmacist", "supply", "sponsor", "monitor")
ACCEPTED_VALID = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
NO_STATEFUL_LINKS = "All link definitions required for stateful testing are excluded by filters"
"""Not a failure: the role's operations hold no link to follow, so its stateful phase is empty."""
LOGOUT = ("POST", "/api/v1/auth/logout")
"""Left out: it would end the token the run uses (tests/api/test_auth.py covers it)."""
Login = Callable[[str], str]
"""user name -> bearer token"""


@dataclass(frozen=True)
class RoleRun:
    user: str
    operations: int
    seconds: float
    failures: list[str]


Operation = tuple[str, str]
"""(METHOD, path template)"""


def public_operations(app: FastAPI) -> set[Operation]:
    return {
        (method, path)
        for path, route in api_routes(app)
        if not needs_token(route)
        for method in route.methods or ()
    }


def required_roles(app: FastAPI) -> dict[Operation, frozenset[Role] | None]:
    """(METHOD, path template) -> the roles its `require(...)` admits; None: no role check."""
    found: dict[Operation, frozenset[Role] | None] = {}
    for path, route in api_routes(app):
        roles = None
        pending = list(route.dependant.dependencies)
        while pending and roles is None:
            dependant = pending.pop()
            allowed = getattr(dependant.call, "allowed_roles", None)
            roles = frozenset(allowed) if allowed is not None else None
            pending.extend(dependant.dependencies)
        for method in route.methods or ():
            found[(method, path)] = roles
    return found


def _failures(schema: Any) -> list[str]:
    found = []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished) and event.status in (
            Status.FAILURE,
            Status.ERROR,
        ):
            for nodes in event.recorder.checks.values():
                found += [
                    f"{event.label}: {node.name}: {node.failure_info.failure.title}"
                    f" ({_first_line(node.failure_info.failure.message)}; "
                    f"{' '.join(node.failure_info.code_sample.split())[:400]})"
                    for node in nodes
                    if node.failure_info is not None
                ]
            if not found:
                found.append(f"{event.label}: {event.status}")
        elif isinstance(event, events.NonFatalError):
            if NO_STATEFUL_LINKS not in event.info.message:
                found.append(f"{event.label}: error {event.info.message}")
        elif isinstance(event, events.FatalError):
            found.append(f"fatal: {event.exception}")
    return found


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")[:200]


def run_role(
    schema: Any,
    *,
    user: str,
    token: str | None,
    operations: set[Operation],
    max_examples: int,
    phases: list[str],
) -> RoleRun:
    started = time.perf_counter()
    selected = schema.include(
        func=lambda ctx: (ctx.operation.method.upper(), ctx.operation.path) in operations
    )
    config = selected.config
    if token is not None:
        config.update(headers={"Authorization": f"Bearer {token}"})
    config.update(workers=1)
    config.checks.update(included_check_names=["all"])
    config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
        expected_statuses=ACCEPTED_VALID
    )
    config.generation.update(max_examples=max_examples, no_shrink=True, deterministic=True)
    config.phases.update(phases=phases)
    failures = _failures(selected)
    return RoleRun(user, len(operations), time.perf_counter() - started, failures)


def run_all(
    schema: Any,
    app: FastAPI,
    *,
    login: Login,
    role_of: Callable[[str], Role],
    max_examples: int,
    phases: list[str],
    users: tuple[str, ...] = USERS,
) -> list[RoleRun]:
    """Each user on the operations its role may call; nobody (no token) on the public ones."""
    roles = required_roles(app)
    documented = {(o.method.upper(), o.path) for o in _operations(schema)}
    runs = []
    public = public_operations(app) & documented
    runs.append(
        run_role(
            schema,
            user="anonymous",
            token=None,
            operations=public,
            max_examples=max_examples,
            phases=phases,
        )
    )
    for user in users:
        role = role_of(user)
        operations = {
            op
            for op, allowed in roles.items()
            if op in documented and op != LOGOUT and (allowed is None or role in allowed)
        }
        runs.append(
            run_role(
                schema,
                user=user,
                token=login(user),
                operations=operations,
                max_examples=max_examples,
                phases=phases,
            )
        )
    return runs


def _operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=100)
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    parser.add_argument("--users", default=",".join(USERS), help="demo users to run as")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url, password = _demo_database(Path(tmp))
        with running_server(url, 1) as server:
            base = server.base
            schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
            app = create_app(Settings(database_url=url))

            def login(user: str) -> str:
                answer = httpx.post(
                    f"{base}/api/v1/auth/token", data={"username": user, "password": password}
                )
                return str(answer.json()["access_token"])

            def role_of(user: str) -> Role:
                me = httpx.get(
                    f"{base}/api/v1/me", headers={"Authorization": f"Bearer {login(user)}"}
                )
                return Role(me.json()["role"])

            runs = run_all(
                schema,
                app,
                login=login,
                role_of=role_of,
                max_examples=args.max_examples,
                phases=args.phases.split(","),
                users=tuple(u for u in args.users.split(",") if u),
            )
    for run in runs:
        print(
            f"{run.user:13} {run.operations:3} operations {run.seconds:7.1f} s "
            f"{len(run.failures)} failures"
        )
        for failure in run.failures:
            print(f"    {failure}")
    return 1 if any(run.failures for run in runs) else 0


def _demo_database(tmp: Path) -> tuple[str, str]:
    url, password = f"sqlite:///{tmp / 'contract.db'}", "contract-benchmark-login"
    upgrade(url)
    db = Database(url)
    set_up_demo(db, study=load_study(), password=password, seed="contract-benchmark")
    db.dispose()
    return url, password


if __name__ == "__main__":
    sys.exit(main())
