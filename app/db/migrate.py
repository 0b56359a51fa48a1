"""Run alembic migrations and check that a database is at the head revision."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine

from app.db.engine import normalize_url

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class NotMigratedError(RuntimeError):
    """The database is not at the schema this code needs."""


def alembic_config(url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None: not migrated at all)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(url: str) -> tuple[str | None, str | None]:
    """Migrate to the head revision; the revisions before and after, for the operator."""
    engine = create_engine(normalize_url(url))
    try:
        before = current_revision(engine)
        command.upgrade(alembic_config(url), "head")
        return before, current_revision(engine)
    finally:
        engine.dispose()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def ensure_migrated(engine: Engine) -> None:
    """Raise NotMigratedError with the command that fixes it."""
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        where = engine.url.render_as_string(hide_password=True)
        raise NotMigratedError(
            f"The database {where} is at schema revision {current or 'none (empty)'}, "
            f"this version needs {head}. Run `irt db upgrade` first."
        )
