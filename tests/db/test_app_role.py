"""PostgreSQL: the service runs as a role granted as docs/deployment.md says (`irt db
grant-app-role`): it randomizes, but cannot change or delete audit entries, drop the
append-only trigger or create a table."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError
from typer.testing import CliRunner

from app.cli import app as cli
from app.db.engine import Database
from app.services.study_state import load_definition
from tests.services.test_use_cases import _randomize, _register
from tests.support.databases import pg_admin


@pytest.fixture
def app_role_url(demo_db: Database, db_url: str) -> Iterator[str]:
    """The demo, set up by the owner, then the service role granted by the CLI."""
    if not db_url.startswith("postgresql"):
        pytest.skip("roles and grants are PostgreSQL's (SQLite: file permissions)")
    role = f"irt_app_{uuid.uuid4().hex[:8]}"
    result = CliRunner().invoke(
        cli, ["db", "grant-app-role", "--role", role, "--database-url", db_url]
    )
    assert result.exit_code == 0, result.output
    yield make_url(db_url).set(username=role).render_as_string(hide_password=False)
    dbname = make_url(db_url).database
    with pg_admin() as admin:  # roles belong to the server, not to the test database
        admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        admin.execute(f"DROP ROLE IF EXISTS {role}")


def test_the_service_role_randomizes_but_cannot_touch_the_trail_or_the_schema(
    app_role_url: str,
) -> None:
    db = Database(app_role_url)
    try:
        with db.read() as session:
            assert load_definition(session).code
        subject = _register(db, "ROLE-001")
        assert _randomize(db, subject.subject_id, "role-key").result.kits
        for statement in (
            "UPDATE audit_log SET reason = 'covered up' WHERE seq = 1",
            "DELETE FROM audit_log WHERE seq = 1",
            "DROP TRIGGER audit_log_no_update_delete ON audit_log",
            "CREATE TABLE shadow (id integer)",
            "DELETE FROM audit_head",
        ):
            with pytest.raises(ProgrammingError) as refused, db.engine.begin() as conn:
                conn.execute(text(statement))
            assert type(refused.value.orig).__name__ == "InsufficientPrivilege", statement
    finally:
        db.dispose()
