"""Migration 0007 on both engines: plain seeds stored before it become their SHA-256, the column
is renamed, and the plain text is left nowhere in the table's storage."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url

from app.db.engine import make_engine
from app.db.migrate import alembic_config
from tests.support.databases import ENGINES, pg_admin, pg_url

LEGACY_SEED = "legacy-plain-seed-42"
HEX_SEED = "4f1c" * 16
LISTS = [("C1", "generated", LEGACY_SEED), ("P2", "generated", HEX_SEED), ("C2", "imported", None)]


@pytest.fixture(params=ENGINES)
def empty_url(
    request: pytest.FixtureRequest, tmp_path: Path, pg_template: str | None
) -> Iterator[str]:
    """An empty database (no revision yet) on each engine."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    if pg_template is None:
        pytest.skip("PostgreSQL unreachable (allowed outside CI)")
    name = f"irt_m_{uuid.uuid4().hex[:12]}"
    with pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield pg_url(name)
    with pg_admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _store_plain_seeds(url: str) -> None:
    """Lists as revision 0006 kept them: generated ones with their seed in plain text."""
    engine = make_engine(url)
    with engine.begin() as conn:
        for scope, source, seed in LISTS:
            conn.execute(
                text(
                    "INSERT INTO randomization_lists (scope, source, seed, sha256, "
                    "definition_sha256, slot_count, created_at, created_by) VALUES (:scope, "
                    ":source, :seed, :digest, :digest, 4, '2026-11-30 09:00:00', 'system')"
                ),
                {"scope": scope, "source": source, "seed": seed, "digest": "ab" * 32},
            )
    engine.dispose()


def _pg_heap_bytes(engine: Engine) -> bytes:
    """Every tuple version in the table's pages, live or dead (pageinspect)."""
    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pageinspect"))
        size = "pg_relation_size('randomization_lists')"
        pages = conn.execute(
            text(f"SELECT {size} / current_setting('block_size')::int")
        ).scalar_one()
        chunks = [
            conn.execute(
                text(
                    "SELECT string_agg(t_data, ''::bytea) FROM "
                    "heap_page_items(get_raw_page('randomization_lists', :page))"
                ),
                {"page": page},
            ).scalar_one()
            or b""
            for page in range(pages)
        ]
    return b"".join(bytes(chunk) for chunk in chunks)


def test_plain_seeds_become_their_sha256(empty_url: str) -> None:
    config = alembic_config(empty_url)
    command.upgrade(config, "0006")
    _store_plain_seeds(empty_url)
    postgresql = make_url(empty_url).get_backend_name() == "postgresql"
    if postgresql:
        engine = make_engine(empty_url)
        with engine.begin() as conn:  # an update leaves dead versions of the old row behind
            conn.execute(text("UPDATE randomization_lists SET created_by = 'sys' WHERE id > 0"))
        assert LEGACY_SEED.encode() in _pg_heap_bytes(engine)
        engine.dispose()

    command.upgrade(config, "head")

    engine = make_engine(empty_url)
    columns = {c["name"]: c for c in inspect(engine).get_columns("randomization_lists")}
    assert "seed" not in columns and "seed_sha256" in columns
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT scope, seed_sha256 FROM randomization_lists")).all()
    stored: dict[str, str | None] = {scope: digest for scope, digest in rows}
    assert stored == {
        "C1": hashlib.sha256(LEGACY_SEED.encode()).hexdigest(),
        "P2": hashlib.sha256(HEX_SEED.encode()).hexdigest(),
        "C2": None,
    }
    if postgresql:
        assert getattr(columns["seed_sha256"]["type"], "length", None) == 64
        heap = _pg_heap_bytes(engine)
        assert heap and LEGACY_SEED.encode() not in heap and HEX_SEED.encode() not in heap
    engine.dispose()
    if not postgresql:
        path = Path(str(make_url(empty_url).database))
        files = [f for f in path.parent.iterdir() if f.name.startswith(path.name)]
        for file in files:
            data = file.read_bytes()
            assert LEGACY_SEED.encode() not in data and HEX_SEED.encode() not in data, file.name
