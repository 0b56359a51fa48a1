"""The `irt` command line on both engines: lists, commitments, verification, demo set-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from app.cli import app
from app.db.engine import Database
from app.db.migrate import NotMigratedError, head_revision
from app.domain import randomization_list as rl
from app.domain.study import load_study
from app.main import create_app
from app.services import checkpoints
from app.settings import Settings
from tests.support.cli import as_demo_user
from tests.support.databases import assert_unchanged, snapshot
from tests.support.demo import DEMO_SEED

runner = CliRunner()


def irt(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, as_demo_user(list(args)))
    return result.exit_code, result.output


def test_show_commitment_matches_the_generated_list(demo_db: Database, db_url: str) -> None:
    code, output = irt("lists", "show-commitment", "--database-url", db_url)
    assert code == 0
    expected = rl.generate_all(DEMO_SEED, load_study())
    for scope, slots in expected.items():
        assert f"{scope}  {rl.commitment(slots)}" in output


def test_verify_passes_then_names_a_tampered_list(demo_db: Database, db_url: str) -> None:
    code, output = irt("lists", "verify", "--database-url", db_url)
    assert code == 0 and "BROKEN" not in output and "P2: ok" in output
    with demo_db.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE randomization_slots SET arm = CASE arm WHEN 'PLACEBO' THEN 'IMC002' "
                "ELSE 'PLACEBO' END WHERE id = (SELECT min(s.id) FROM randomization_slots s "
                "JOIN randomization_lists l ON l.id = s.list_id WHERE l.scope = 'C2')"
            )
        )
    code, output = irt("lists", "verify", "--database-url", db_url)
    assert code == 1
    assert "C2: BROKEN" in output and "C1: ok" in output


def test_import_refuses_a_bad_file_whole_and_names_rows(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    assert irt("study", "load", "--database-url", db_url)[0] == 0
    canonical = rl.to_csv(rl.generate_list("external", load_study().scope("C1"))).splitlines()
    bad = list(canonical)
    bad[1] = bad[1].replace("IMC002", "ASPIRIN").replace("PLACEBO", "ASPIRIN")
    bad[4] = bad[4].replace(",ALL,", ",NOPE,")
    path = tmp_path / "list.csv"
    path.write_text("\n".join(bad) + "\n")
    before = snapshot(db)
    code, output = irt("lists", "import", str(path), "--database-url", db_url)
    assert code == 1
    assert "row 2:" in output and "row 5:" in output and "nothing was imported" in output
    assert_unchanged(db, before)

    path.write_text("\n".join(canonical) + "\n")
    code, output = irt("lists", "import", str(path), "--database-url", db_url)
    assert code == 0, output
    code, output = irt("lists", "show-commitment", "--database-url", db_url)
    expected = rl.commitment(rl.generate_list("external", load_study().scope("C1")))
    assert f"C1  {expected}  imported" in output
    code, output = irt("lists", "import", str(path), "--database-url", db_url)
    assert code == 1 and "exists already" in output


def test_app_refuses_to_start_on_an_unmigrated_database(tmp_path: Path) -> None:
    with pytest.raises(NotMigratedError, match="irt db upgrade"):
        create_app(Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}"))


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    code, output = irt("serve", "--database-url", f"sqlite:///{tmp_path / 'empty.db'}")
    assert code == 1 and "irt db upgrade" in output


def test_a_database_url_that_cannot_be_read_is_refused_in_a_line() -> None:
    for command in (("report", "enrolment"), ("serve",)):
        result = runner.invoke(app, [*command, "--database-url", "no-such:/secret@x"])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert "database URL (--database-url or IRT_DATABASE_URL) cannot be read" in result.output
        assert "secret" not in result.output and "Traceback" not in result.output


def test_a_database_that_cannot_be_reached_is_refused_in_a_line() -> None:
    """A wrong user or password: the driver's reason, not a traceback, and no password."""
    unreachable = "postgresql+psycopg://no-such-user:secret-pw@127.0.0.1:1/none"
    for command in (("report", "enrolment"), ("serve",)):
        result = runner.invoke(app, [*command, "--database-url", unreachable])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert "Cannot open the database: " in result.output, result.output
        assert "secret-pw" not in result.output and "Traceback" not in result.output


def test_a_missing_database_file_is_named_and_not_created(tmp_path: Path) -> None:
    """A wrong path (or no --database-url) is told as such; no empty file is left behind."""
    missing = tmp_path / "irt.db"
    for args in (("report", "enrolment"), ("audit", "verify")):
        result = runner.invoke(app, [*args, "--database-url", f"sqlite:///{missing}"])
        code, output = result.exit_code, result.output
        assert code == 1 and f"No database at {missing}" in output, output
        assert "--database-url" in output and "irt db upgrade" in output
    code, output = irt("serve", "--database-url", f"sqlite:///{missing}")
    assert code == 1 and f"No database at {missing}" in output, output
    assert not missing.exists()


def test_a_missing_database_is_named_by_its_whole_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative URL names the file where it was looked for, not only as typed."""
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["report", "enrolment", "--database-url", "sqlite:///irt.db"])
    assert result.exit_code == 1 and f"No database at {tmp_path / 'irt.db'}." in result.output


def test_demo_sets_up_a_servable_study(db_url: str, tmp_path: Path) -> None:
    code, output = irt("demo", "--database-url", db_url, "--no-serve", "--password", "pw-123456")
    assert code == 1 and "at least 12 characters" in output  # the password policy, first
    for weak in ("password1234", "my-monitor-password"):  # common; holds a demo user's name
        assert irt("demo", "--database-url", db_url, "--no-serve", "--password", weak)[0] == 1
    code, output = irt(
        "demo", "--database-url", db_url, "--no-serve", "--password", "pw-1234567890"
    )
    assert code == 0, output
    assert "coordinator" in output and "unblinded_monitor" in output
    code, output = irt("demo", "--database-url", db_url, "--no-serve")
    assert code == 1 and "already" in output
    code, output = irt("demo", "--database-url", db_url, "--no-serve", "--if-empty")
    assert code == 0
    application = create_app(Settings(database_url=db_url))
    assert application.state.study.code == "IMC-002"
    application.state.db.dispose()


def test_serve_refuses_a_database_without_a_study(db_url: str) -> None:
    code, output = irt("serve", "--database-url", db_url)
    assert code == 1 and "No study is loaded" in output and "irt study load" in output


def test_the_demo_keeps_its_checkpoints_beside_its_file_and_verify_finds_them(
    tmp_path: Path,
) -> None:
    """`irt demo` on a SQLite file signs checkpoints into files beside it; a later `irt audit
    verify` on that file checks against them without any setting, and names tampering."""
    database = tmp_path / "trial.db"
    url = f"sqlite:///{database}"
    password = "pw-1234567890"
    code, output = irt("demo", "--database-url", url, "--no-serve", "--password", password)
    assert code == 0, output
    log, key = tmp_path / "trial.checkpoints.jsonl", tmp_path / "trial.checkpoint-key.pem"
    assert log.read_text("utf-8").strip() and key.exists()
    secret = tmp_path / "password"
    secret.write_text(password + "\n", "utf-8")
    verify = ["--user", "monitor", "--password-file", str(secret), "audit", "verify"]
    code, output = irt(*verify, "--database-url", url)
    assert code == 0 and "none configured" not in output, output
    served = create_app(Settings(database_url=url))  # `irt serve` on the file: the same pair
    try:
        served_log = checkpoints.log_of(served.state.db)
        assert served_log is not None and served_log.read().checkpoints
    finally:
        served.state.db.dispose()
    signed = log.read_text("utf-8").splitlines()
    with Database(url).engine.begin() as conn:  # an insider rewrites a checkpointed entry
        conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
        conn.execute(text("UPDATE audit_log SET reason = 'rewritten' WHERE seq = 1"))
    code, output = irt(*verify, "--database-url", url)
    assert code == 1, output
    assert output.strip().splitlines()[-1] == (  # the verdict last, whatever the chain line said
        "audit verify: FAILED, the audit evidence does not hold (see above)"
    )
    assert log.read_text("utf-8").splitlines()[: len(signed)] == signed


def test_db_upgrade_says_what_it_migrated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    code, output = irt("db", "upgrade", "--database-url", url)
    assert code == 0 and f"from schema none (empty) to {head_revision()}." in output, output
    code, output = irt("db", "upgrade", "--database-url", url)
    assert code == 0 and f"current schema ({head_revision()}): nothing to migrate" in output
