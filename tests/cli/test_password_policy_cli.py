"""The password policy wherever a password is set: `irt users create` and `reset-password`
refuse before touching the database, and so do the use cases behind them, on both engines."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.db.engine import Database
from app.domain.errors import InvalidInput
from app.domain.roles import Role
from app.services import accounts, study_setup
from app.services.actor import SYSTEM
from app.services.transaction import writing
from tests.support.databases import snapshot

runner = CliRunner()
WEAK = {
    "aaaaaaaaaa": "at least 12 characters",
    "Password1234": "commonly used",
    "x-Pharmacist-2026": "user name",
}


def test_the_cli_refuses_weak_passwords_and_changes_nothing(demo_db: Database, db_url: str) -> None:
    before = snapshot(demo_db)
    for password, message in WEAK.items():
        for args in (
            ["users", "create", "pharmacist", "--role", "pharmacist", "--site", "DE01"],
            ["users", "reset-password", "pharmacist", "--reason", "forgotten password"],
        ):
            result = runner.invoke(app, [*args, "--password", password, "--database-url", db_url])
            assert result.exit_code == 1 and message in result.output, (args, result.output)
    assert snapshot(demo_db) == before


def test_the_use_cases_refuse_weak_passwords(demo_db: Database) -> None:
    before = snapshot(demo_db)
    for password in WEAK:
        with pytest.raises(InvalidInput), writing(demo_db) as session:
            accounts.reset_password(
                session,
                actor=SYSTEM,
                username="pharmacist",
                password=password,
                reason="forgotten password",
            )
        with pytest.raises(InvalidInput), writing(demo_db) as session:
            study_setup.add_user(
                session,
                actor=SYSTEM,
                username="pharmacist2",
                password=password.replace("Pharmacist", "pharmacist2"),
                role=Role.PHARMACIST,
            )
    assert snapshot(demo_db) == before
