"""`irt caps`, `irt study load-version | versions` and a training database's command line, on
both engines."""

from __future__ import annotations

from datetime import date
from importlib import resources
from pathlib import Path

from typer.testing import CliRunner

from app.cli import app
from app.db.engine import Database
from tests.support.caps import randomize_many, stage
from tests.support.cli import as_demo_user

runner = CliRunner()


def irt(*args: str, user: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, as_demo_user(list(args), user))
    return result.exit_code, result.output


def test_caps_move_and_a_new_version_from_the_command_line(
    demo_db: Database, db_url: str, tmp_path: Path
) -> None:
    randomize_many(demo_db, 3, prefix="C1")
    stage(demo_db, ("C1", "close"))
    code, output = irt(
        "caps",
        "move",
        "C1",
        "--reason",
        "DSMB: C1 stopped",
        "--database-url",
        db_url,
        user="sponsor",
    )
    assert code == 0, output
    assert "P2   planned  cap  199" in output and "Total 218 of the target 218" in output
    code, output = irt(
        "caps", "move", "C1", "--reason", "DSMB: C1 again", "--database-url", db_url, user="sponsor"
    )
    assert code == 1 and "0 unused places" in output
    shipped = resources.files("app.studies").joinpath("imc002.toml").read_text("utf-8")
    amended = tmp_path / "amendment.toml"
    amended.write_text(
        shipped.replace("total_cap = 218", "total_cap = 220").replace("cap = 194", "cap = 196")
    )
    today = date.today().isoformat()
    code, output = irt(
        "study",
        "load-version",
        str(amended),
        "--effective-date",
        today,
        "--reason",
        "Protocol amendment 2",
        "--database-url",
        db_url,
    )
    assert code == 0, output
    assert f"Version 2 loaded, in effect from {today}" in output
    code, output = irt("study", "versions", "--database-url", db_url)
    assert code == 0 and "first version" in output and "total_cap, phase_ii  (in effect)" in output


def test_a_training_database_says_so_and_refuses_production_kits(
    db_url: str, tmp_path: Path
) -> None:
    code, output = irt("db", "upgrade", "--database-url", db_url)
    code, output = irt("study", "load", "--training", "--database-url", db_url)
    assert code == 0 and output.startswith("TRAINING Study IMC-002 loaded"), output
    kits = tmp_path / "kits.csv"
    code, output = irt("kits", "generate", "--out", str(kits), "--per-content", "5")
    assert code == 0 and not kits.read_text("utf-8").startswith("# irt-mode")
    code, output = irt("kits", "import", str(kits), "--database-url", db_url)
    assert code == 1 and "TRAINING: this is a training database." in output
    assert "takes training kit lists only" in output
    irt("depots", "add", "DEPOT-EU", "Central depot", "--country", "DE", "--database-url", db_url)
    code, output = irt("kits", "generate", "--out", str(kits), "--per-content", "5", "--training")
    assert code == 0 and kits.read_text("utf-8").startswith("# irt-mode: training\n")
    code, output = irt("kits", "import", str(kits), "--database-url", db_url)
    assert code == 0, output
