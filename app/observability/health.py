"""GET /health (liveness: the process answers; it reads no database, so an orchestrator does not
restart healthy processes during a database outage) and GET /ready (readiness: the database
answers, is migrated to this code's head and holds a study; 503 problem+json otherwise). Neither
needs a token."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.api.contract import problem_response
from app.api.problems import problem
from app.api.schemas import Health
from app.db.migrate import head_revision
from app.services.readiness import readiness


class Ready(BaseModel):
    status: str
    database: str
    revision: str | None
    study: str


def install(app: FastAPI) -> None:
    head = head_revision()

    @app.get("/health", response_model=Health, tags=["health"])
    def health(request: Request) -> Any:
        db, study = request.app.state.db, request.app.state.study
        return Health(status="ok", database=db.engine.dialect.name, study=study.code)

    @app.get(
        "/ready",
        response_model=Ready,
        tags=["health"],
        responses={503: problem_response("Not ready: the reason is in `detail`.")},
    )
    def ready(request: Request) -> Any:
        db, study = request.app.state.db, request.app.state.study
        state = readiness(db, head=head)
        if not state.ready:
            response: JSONResponse = problem(
                503, "not_ready", f"Not ready: {state.reason}.", request.url.path
            )
            return response
        return Ready(
            status="ready",
            database=db.engine.dialect.name,
            revision=state.revision,
            study=study.code,
        )
