"""The test databases: which engines, how to reach PostgreSQL, and a snapshot of every row to
prove that a refused request changed nothing."""

from __future__ import annotations

import os
from typing import Any

import psycopg
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from app.db.engine import Database

PG_URL = os.environ.get("IRT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
ENGINES = ["sqlite", "postgresql"]


def pg_admin() -> psycopg.Connection[Any]:
    """An autocommit connection for CREATE/DROP DATABASE, which cannot run in a transaction."""
    return psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)


def pg_url(dbname: str) -> str:
    """The URL of another database on the test PostgreSQL server."""
    return make_url(PG_URL).set(database=dbname).render_as_string(hide_password=False)


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order: compare two to prove nothing changed."""
    with db.engine.connect() as conn:
        tables = sorted(inspect(conn).get_table_names())
        result = {}
        for table in tables:
            rows = conn.execute(text(f'SELECT * FROM "{table}"')).all()
            result[table] = sorted((tuple(r) for r in rows), key=repr)
        return result
