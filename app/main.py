"""The app factory: `uvicorn app.main:create_app --factory`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from app.api import admin, auth, problems, security, subjects, supply
from app.api.deps import DB
from app.api.schemas import Health
from app.db.engine import Database
from app.db.migrate import ensure_migrated
from app.services.study_state import load_definition
from app.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; refuse to start on a database that is not migrated or has no study."""
    settings = settings or Settings()
    db = Database(settings.database_url)
    ensure_migrated(db.engine)
    with db.read() as session:
        study = load_definition(session)
    app = FastAPI(
        title="IMC-002 IRT",
        version="1.0.0",
        description="Randomization and trial supply management for IMC-002 (NCT06535412).",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.db = db
    app.state.settings = settings
    app.state.study = study
    problems.install(app)
    security.install(app, settings)
    for router in (auth.router, subjects.router, supply.router, admin.router):
        app.include_router(router, prefix="/api/v1")

    @app.get("/health", response_model=Health, tags=["health"])
    def health(database: DB) -> Any:
        with database.read() as session:
            load_definition(session)
        return Health(status="ok", database=database.engine.dialect.name, study=study.code)

    return app
