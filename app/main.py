"""The app factory: `uvicorn app.main:create_app --factory`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.api import contract, docs_ui, problems, security, training_marks
from app.api.routers import API_PREFIX, API_ROUTERS
from app.db.engine import Database
from app.db.migrate import ensure_migrated
from app.observability import health, logs, metrics
from app.observability.requests import RequestObservation
from app.services import checkpoints, environment, follow_ups
from app.services.study_state import load_definition
from app.settings import Settings
from app.web import install as install_web


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; refuse to start on a database that is not migrated or has no study."""
    settings = settings or Settings()
    logs.configure()
    # as the CLI: unless configured, a SQLite file's own checkpoints beside it (`irt demo`'s)
    db = checkpoints.attach(
        Database(settings.database_url),
        checkpoints.log_for(settings, database_url=settings.database_url),
    )
    ensure_migrated(db.engine)
    runner = follow_ups.Background() if settings.follow_ups == "background" else None
    follow_ups.attach(db, runner)
    with db.read() as session:
        study = load_definition(session)
        training = environment.is_training(session)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Each request runs in a worker thread. Bounding them keeps the few requests that hold
        # a lock from sharing the interpreter with dozens of others (the benchmark showed lock
        # holders starved that way); the rest wait, cheaply, in the event loop.
        to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        yield
        if runner is not None:  # the resupply checks still queued run before the process ends
            await to_thread.run_sync(runner.close)

    app = FastAPI(
        lifespan=lifespan,
        title="IMC-002 IRT",
        version="1.0.0",
        description="Randomization and trial supply management for IMC-002 (NCT06535412).",
        docs_url=None,  # served from the package instead of a CDN: app/api/docs_ui.py
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.db = db
    app.state.follow_ups = runner
    app.state.settings = settings
    app.state.study = study
    app.state.training = training  # the database says so itself (docs/deployment.md)
    problems.install(app)
    security.install(app, settings)
    if training:
        training_marks.install(app)
    for router in API_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    install_web(app)
    docs_ui.install(app)
    health.install(app)
    metrics.install(app, token=settings.metrics_token)
    contract.install(app)
    # outside the security layer, so that its 413s are logged and timed too
    templates = {id(route): path for path, route in contract.api_routes(app)}
    app.add_middleware(RequestObservation, templates=templates)
    if settings.forwarded_allow_ips:
        # Added last, so it runs first: every layer sees the client's scheme (the Secure
        # cookie) and address, taken from the headers of the listed proxies only.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)

    return app
