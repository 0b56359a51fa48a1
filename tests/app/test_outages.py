"""A database that cannot be reached is answered honestly: 503 with Retry-After and "nothing was
saved" (problem+json for the API, an HTML page for the pages), /ready false, /health still
alive; once the database is back, the next request works."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from app.db.engine import Database
from tests.support.api import assert_problem
from tests.support.databases import pg_admin
from tests.support.helpers import login
from tests.web.support import web_login

NEW_SUBJECT = {"site_id": "DE01", "screening_number": "DOWN-1", "sex": "F", "year_of_birth": 1980}


def unreachable(db_url: str, tmp_path: Path) -> Database:
    """The same kind of database, where nothing answers: a closed port, a missing directory."""
    if make_url(db_url).get_backend_name() == "sqlite":
        return Database(f"sqlite:///{tmp_path / 'no-such-directory' / 'irt.db'}")
    return Database(str(make_url(db_url).set(host="127.0.0.1", port=1)))


def assert_unavailable(response: object) -> None:
    body = assert_problem(response, 503, "database_unavailable")  # type: ignore[arg-type]
    assert response.headers["retry-after"] == "5"  # type: ignore[attr-defined]
    assert "nothing was saved" in body["detail"]


def test_a_lost_database_answers_503_everywhere_and_ready_turns_false(
    client: TestClient, db_url: str, tmp_path: Path
) -> None:
    coordinator = login(client, "coordinator")
    web_login(client, "coordinator")  # the page session cookie stays in the client
    working = client.app.state.db  # type: ignore[attr-defined]
    client.app.state.db = unreachable(db_url, tmp_path)  # type: ignore[attr-defined]
    try:
        assert_unavailable(client.get("/api/v1/subjects", headers=coordinator))
        assert_unavailable(
            client.post(
                "/api/v1/subjects",
                json=NEW_SUBJECT,
                headers={**coordinator, "Idempotency-Key": "k1"},
            )
        )
        page = client.get("/subjects")
        assert page.status_code == 503 and page.headers["retry-after"] == "5"
        assert page.headers["content-type"].startswith("text/html")
        assert "nothing was saved" in page.text and "try again" in page.text
        ready = assert_problem(client.get("/ready"), 503, "not_ready")
        assert "database cannot be read" in ready["detail"]
        assert client.get("/health").status_code == 200  # alive: no restart loop in an outage
    finally:
        client.app.state.db.dispose()  # type: ignore[attr-defined]
        client.app.state.db = working  # type: ignore[attr-defined]
    assert client.get("/ready").status_code == 200
    created = client.post(
        "/api/v1/subjects", json=NEW_SUBJECT, headers={**coordinator, "Idempotency-Key": "k1"}
    )
    assert created.status_code == 201, created.text  # nothing was saved the first time


def test_postgres_backends_terminated_mid_session(client: TestClient, db_url: str) -> None:
    """Pooled connections killed by the server (a failover, an administrator): the request that
    meets a dead connection answers 503, and the next one gets a fresh connection."""
    if make_url(db_url).get_backend_name() != "postgresql":
        pytest.skip("SQLite has no server connection to lose (the unreachable file is above)")
    coordinator = login(client, "coordinator")
    working = client.app.state.db  # type: ignore[attr-defined]
    # without the pool's liveness check, a dead connection is met by the request itself
    fragile = Database(db_url, pool_pre_ping=False)
    client.app.state.db = fragile  # type: ignore[attr-defined]
    try:
        assert client.get("/api/v1/subjects", headers=coordinator).status_code == 200
        name = make_url(db_url).database
        with pg_admin() as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
        assert_unavailable(client.get("/api/v1/subjects", headers=coordinator))
        assert client.get("/api/v1/subjects", headers=coordinator).status_code == 200
        assert client.get("/ready").status_code == 200
    finally:
        fragile.dispose()
        client.app.state.db = working  # type: ignore[attr-defined]
