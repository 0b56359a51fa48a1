"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL comes from IRT_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test).
When it cannot be reached the PostgreSQL half is skipped, except under CI=true, where that is a
failure. Each test gets a fresh, migrated database (a copied file, or CREATE DATABASE ... TEMPLATE).
"""

from __future__ import annotations

import os

os.environ.setdefault("IRT_PASSWORD_HASH_PROFILE", "fast")
os.environ.setdefault("IRT_SECRET_KEY", "test-secret-key-not-for-production-use-0123456789")
# Tests read the resupply check's shipments right after the answer: the check runs before it.
# The server's default, a thread of its own, is tested in tests/services/test_follow_ups.py.
os.environ.setdefault("IRT_FOLLOW_UPS", "inline")

import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from app.db.engine import Database
from app.db.migrate import upgrade
from app.domain.study import load_study
from app.main import create_app
from app.services.demo import set_up_demo
from app.settings import Settings, get_settings
from tests.support.databases import ENGINES, PG_URL, pg_admin, pg_url
from tests.support.demo import DEMO_KITS, DEMO_LEVELS, DEMO_PASSWORD, DEMO_SEED


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """Every test starts and ends with the same IRT_* environment: `irt demo` run in-process
    (CliRunner) sets its checkpoint file and key there for the server it starts, and a later
    test in the same worker would otherwise sign and verify against another database's file."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("IRT_")}
    yield
    for key in [k for k in os.environ if k.startswith("IRT_") and k not in saved]:
        del os.environ[key]
    os.environ.update(saved)
    get_settings.cache_clear()  # the CLI reads its settings once per process, cached


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str | None]:
    """A migrated PostgreSQL template database, or None when PostgreSQL is unreachable."""
    try:
        admin = pg_admin()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true but unreachable at {PG_URL}: {exc}")
        yield None
        return
    name = f"irt_tpl_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    upgrade(pg_url(name))
    yield name
    # a new connection: tests/faults restarts PostgreSQL, which ends every open one
    with pg_admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


def _set_up_demo(database: Database) -> None:
    set_up_demo(
        database,
        study=load_study(),
        password=DEMO_PASSWORD,
        seed=DEMO_SEED,
        kits_per_content=DEMO_KITS,
        site_levels=DEMO_LEVELS,
        in_transit_site=None,
    )


@pytest.fixture(scope="session")
def sqlite_demo_template(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo study set up once per test process, copied for every test that asks for it."""
    path = tmp_path_factory.mktemp("demo-template") / "demo.db"
    shutil.copy(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    try:
        _set_up_demo(database)
    finally:
        database.dispose()
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # all of it in the one file we copy
    return path


@pytest.fixture(scope="session")
def pg_demo_template(pg_template: str | None) -> Iterator[str]:
    assert pg_template is not None
    name = f"irt_demo_{uuid.uuid4().hex[:12]}"
    with pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    database = Database(pg_url(name))
    try:
        _set_up_demo(database)
    finally:
        database.dispose()  # a template takes no connections
    yield name
    with pg_admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=ENGINES)
def db_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    pg_template: str | None,
) -> Iterator[str]:
    """A fresh migrated database URL on each engine: empty (no study loaded), or, for a test
    that uses `demo_db`, a copy of the demo study set up once per process (set_up_demo takes
    a second or more; a copy takes milliseconds)."""
    demo = "demo_db" in request.fixturenames
    if request.param == "sqlite":
        path = tmp_path / "irt.db"
        source = request.getfixturevalue("sqlite_demo_template") if demo else sqlite_template
        shutil.copy(source, path)
        yield f"sqlite:///{path}"
        return
    if pg_template is None:
        pytest.skip("PostgreSQL unreachable (allowed outside CI)")
    template = request.getfixturevalue("pg_demo_template") if demo else pg_template
    name = f"irt_t_{uuid.uuid4().hex[:12]}"
    with pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield pg_url(name)
    with pg_admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def demo_db(db: Database) -> Database:
    """The IMC-002 demo study with a fixed seed: cohort C1 open, every site active with its
    initial shipment received (40 kits of each content); `db_url` copies it from the
    process's demo template."""
    return db


@pytest.fixture
def client(demo_db: Database, db_url: str) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=db_url))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
    app.state.db.dispose()
