"""`irt` acts as a named, authenticated user with the rights of their role (app/cli/identity.py):
by password (--user, --password-file) or by a personal token (IRT_TOKEN); signed decisions ask
for the password again; the service's own jobs are `system:<job>` in the trail."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sqlalchemy import select, text
from typer.testing import CliRunner

from app.cli import app
from app.db.engine import Database
from app.db.models import AuditEntry
from tests.support.cli import PASSWORD_FILE
from tests.support.databases import snapshot

runner = CliRunner()
CLOSE_C1 = ["cohorts", "close", "C1", "--reason", "SRC 1 review done"]


def irt(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def _entries(db: Database, action: str) -> list[AuditEntry]:
    with db.read() as session:
        return list(
            session.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars()
        )


def test_no_user_a_wrong_role_or_password_changes_nothing(
    demo_db: Database, db_url: str, tmp_path: Path
) -> None:
    before = snapshot(demo_db)
    code, output = irt(*CLOSE_C1, "--database-url", db_url)
    assert code == 1 and "named user" in output
    as_supply = ["--user", "supply", "--password-file", str(PASSWORD_FILE)]
    code, output = irt(*as_supply, *CLOSE_C1, "--database-url", db_url)
    assert code == 1 and "may not do this" in output
    assert snapshot(demo_db) == before
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    code, output = irt(
        "--user", "sponsor", "--password-file", str(wrong), *CLOSE_C1, "--database-url", db_url
    )
    assert code == 1 and "password is wrong" in output
    [failed] = _entries(demo_db, "auth.cli_login_failed")
    assert failed.entity_id == "sponsor" and failed.role == "anonymous"
    assert _entries(demo_db, "cohort.close") == []


def test_a_personal_token_acts_as_its_user_until_revoked(
    demo_db: Database, db_url: str, tmp_path: Path
) -> None:
    as_sponsor = ["--user", "sponsor", "--password-file", str(PASSWORD_FILE)]
    code, output = irt(*as_sponsor, "tokens", "create", "nightly", "--database-url", db_url)
    assert code == 0, output
    token = re.search(r"irt_\S+", output)
    assert token is not None
    env = {"IRT_TOKEN": token.group(0)}
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    before = snapshot(demo_db)
    code, output = irt("--password-file", str(wrong), *CLOSE_C1, "--database-url", db_url, env=env)
    assert code == 1 and "password is wrong" in output  # the signature, not the token
    assert _entries(demo_db, "cohort.close") == []
    assert len(_entries(demo_db, "signature.refused")) == 1
    assert {k: v for k, v in snapshot(demo_db).items() if not k.startswith("audit")} == {
        k: v for k, v in before.items() if not k.startswith("audit")
    }
    code, output = irt(
        "--password-file", str(PASSWORD_FILE), *CLOSE_C1, "--database-url", db_url, env=env
    )
    assert code == 0, output
    [entry] = _entries(demo_db, "cohort.close")
    assert (entry.username, entry.role) == ("sponsor", "sponsor_admin")
    assert json.loads(entry.after)["signature"]["meaning"] == "I approve closing cohort C1"
    token_id = re.search(
        r"Token (\d+)", irt(*as_sponsor, "tokens", "create", "x", "--database-url", db_url)[1]
    )
    assert token_id is not None
    code, _ = irt(
        *as_sponsor, "tokens", "revoke", "1", "--reason", "script retired", "--database-url", db_url
    )
    assert code == 0
    code, output = irt("report", "enrolment", "--database-url", db_url, env=env)
    assert code == 1 and "revoked" in output


def test_the_services_own_jobs_are_named_as_such(demo_db: Database, db_url: str) -> None:
    code, output = irt("supply", "check", "--database-url", db_url)
    assert code == 0 and "DE01: " in output
    assert re.search(r"kit counts: \d+ changes? folded", output)
    with demo_db.read() as session:
        assert session.execute(text("SELECT count(*) FROM kit_count_changes")).scalar_one() == 0
        names = set(session.execute(select(AuditEntry.username, AuditEntry.role)).all())
    assert ("system:demo", "system") in names
    people = {name for name, role in names if role != "system"}
    assert not any(name.startswith("system") for name in people)
