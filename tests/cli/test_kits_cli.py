"""The `irt` kit and site commands on both engines: generate, import (whole file or nothing,
same file twice a no-op), depots, site activation with its initial shipment."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from typer.testing import CliRunner

from app.cli import app
from app.db.engine import Database
from app.domain.kits import KIT_COLUMNS
from app.domain.study import load_study
from tests.support.cli import as_demo_user
from tests.support.databases import assert_unchanged, snapshot

runner = CliRunner()


def irt(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, as_demo_user(list(args)))
    return result.exit_code, result.output


def scalar(db: Database, sql: str, **params: object) -> object:
    with db.engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def set_up(db_url: str) -> None:
    code, output = irt("study", "load", "--database-url", db_url)
    assert code == 0, output
    code, output = irt(
        "depots", "add", "DEPOT-EU", "Central depot", "--country", "DE", "--database-url", db_url
    )
    assert code == 0, output
    assert "Depot DEPOT-EU added." in output


def generate(path: Path, per_content: int = 20) -> list[str]:
    code, output = irt("kits", "generate", "--out", str(path), "--per-content", str(per_content))
    assert code == 0, output
    assert f"Wrote {2 * per_content} kits to {path}." in output
    return path.read_text("utf-8").splitlines()


def test_generate_writes_a_kit_list(tmp_path: Path) -> None:
    path = tmp_path / "kits.csv"
    lines = generate(path)
    assert lines[0] == ",".join(KIT_COLUMNS)
    rows = [line.split(",") for line in lines[1:]]
    assert len(rows) == 40
    assert len({r[0] for r in rows}) == 40
    assert sorted({r[1] for r in rows}) == ["IMC002", "PLACEBO"]
    assert {r[4] for r in rows} == {"DEPOT-EU"}


def test_generate_with_another_depot(tmp_path: Path) -> None:
    path = tmp_path / "kits.csv"
    code, output = irt(
        "kits", "generate", "--out", str(path), "--per-content", "4", "--depot", "DEPOT-US"
    )
    assert code == 0, output
    rows = [line.split(",") for line in path.read_text("utf-8").splitlines()[1:]]
    assert len(rows) == 8
    assert {r[4] for r in rows} == {"DEPOT-US"}


def test_import_once_then_again_is_a_no_op(db: Database, db_url: str, tmp_path: Path) -> None:
    set_up(db_url)
    path = tmp_path / "kits.csv"
    generate(path)
    code, output = irt("kits", "import", str(path), "--database-url", db_url)
    assert code == 0, output
    assert "Imported 40 kits" in output
    assert scalar(db, "SELECT count(*) FROM kits") == 40
    assert scalar(db, "SELECT count(*) FROM kits WHERE status = 'at_depot'") == 40
    assert scalar(db, "SELECT count(*) FROM kits WHERE depot_id = 'DEPOT-EU'") == 40
    assert scalar(db, "SELECT count(DISTINCT content) FROM kits") == 2
    assert scalar(db, "SELECT count(*) FROM kit_imports") == 1

    before = snapshot(db)
    code, output = irt("kits", "import", str(path), "--database-url", db_url)
    assert code == 0, output
    assert "imported already" in output and "nothing changed" in output
    assert_unchanged(db, before)


def test_a_broken_file_is_refused_whole(db: Database, db_url: str, tmp_path: Path) -> None:
    set_up(db_url)
    path = tmp_path / "kits.csv"
    lines = generate(path)
    today = datetime.now(UTC).date()
    bad = list(lines)
    # row numbers count the header as row 1, so lines[i] is row i + 1
    bad[3] = ",".join([lines[2].split(",")[0], *lines[3].split(",")[1:]])  # row 4 repeats row 3
    fields = bad[6].split(",")
    bad[6] = ",".join([fields[0], "ASPIRIN", *fields[2:]])  # row 7
    fields = bad[10].split(",")
    bad[10] = ",".join([*fields[:3], (today - timedelta(days=3)).isoformat(), fields[4]])  # row 11
    fields = bad[15].split(",")
    bad[15] = ",".join([*fields[:3], "2031-13-01", fields[4]])  # row 16
    broken = tmp_path / "broken.csv"
    broken.write_text("\n".join(bad) + "\n", "utf-8")

    before = snapshot(db)
    code, output = irt("kits", "import", str(broken), "--database-url", db_url)
    assert code == 1
    assert "nothing was imported" in output
    named = re.findall(r"row (\d+):", output)
    assert named == ["4", "7", "11", "16"]
    assert "repeats row 3" in output
    assert "unknown content 'ASPIRIN'" in output
    assert "not in the future" in output
    assert "'2031-13-01' is not a date" in output
    assert_unchanged(db, before)
    assert scalar(db, "SELECT count(*) FROM kits") == 0

    # the good file still imports afterwards, and the broken one is refused again
    code, output = irt("kits", "import", str(path), "--database-url", db_url)
    assert code == 0, output
    before = snapshot(db)
    code, output = irt("kits", "import", str(broken), "--database-url", db_url)
    assert code == 1 and "row 4:" in output
    assert_unchanged(db, before)


def test_a_file_repeating_stored_kits_is_refused(db: Database, db_url: str, tmp_path: Path) -> None:
    set_up(db_url)
    path = tmp_path / "kits.csv"
    lines = generate(path, per_content=5)
    assert irt("kits", "import", str(path), "--database-url", db_url)[0] == 0
    other = tmp_path / "other.csv"
    other.write_text("\n".join(lines) + "\n\n", "utf-8")  # other bytes, same kits
    before = snapshot(db)
    code, output = irt("kits", "import", str(other), "--database-url", db_url)
    assert code == 1
    assert "exists already" in output and "nothing was imported" in output
    assert_unchanged(db, before)


def test_import_refuses_an_unknown_depot(db: Database, db_url: str, tmp_path: Path) -> None:
    set_up(db_url)
    path = tmp_path / "kits.csv"
    code, output = irt(
        "kits", "generate", "--out", str(path), "--per-content", "2", "--depot", "DEPOT-XX"
    )
    assert code == 0, output
    before = snapshot(db)
    code, output = irt("kits", "import", str(path), "--database-url", db_url)
    assert code == 1
    assert re.findall(r"row (\d+):", output) == ["2", "3", "4", "5"]
    assert "unknown depot 'DEPOT-XX'" in output
    assert_unchanged(db, before)


def test_site_activation_requests_the_initial_shipment(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    set_up(db_url)
    path = tmp_path / "kits.csv"
    generate(path)
    assert irt("kits", "import", str(path), "--database-url", db_url)[0] == 0

    code, output = irt(
        "sites", "add", "DE09", "Test site", "--country", "DE", "--depot", "DEPOT-EU",
        "--database-url", db_url,
    )  # fmt: skip
    assert code == 0, output
    assert "Site DE09 added (inactive)." in output
    assert scalar(db, "SELECT count(*) FROM shipments") == 0

    code, output = irt(
        "sites", "activate", "DE09", "--reason", "SIV done on site", "--database-url", db_url
    )
    assert code == 0, output
    match = re.search(r"Site DE09 active; initial shipment (\d+) requested\.", output)
    assert match, output
    shipment_id = int(match.group(1))
    assert scalar(db, "SELECT count(*) FROM shipments") == 1
    assert (
        scalar(
            db,
            "SELECT count(*) FROM shipments WHERE id = :id AND site_id = 'DE09' "
            "AND depot_id = 'DEPOT-EU' AND status = 'requested' AND kind = 'initial'",
            id=shipment_id,
        )
        == 1
    )
    # the study's target of each content, picked from the imported kits
    target = load_study().supply.resupply_target
    kits_sql = "SELECT count(*) FROM shipment_kits WHERE shipment_id = :id"
    assert scalar(db, kits_sql, id=shipment_id) == 2 * target
    for content in ("IMC002", "PLACEBO"):
        picked = scalar(
            db,
            "SELECT count(*) FROM shipment_kits sk JOIN kits k ON k.kit_number = sk.kit_number "
            "WHERE sk.shipment_id = :id AND k.content = :content",
            id=shipment_id,
            content=content,
        )
        assert picked == target
    assert scalar(db, "SELECT count(*) FROM sites WHERE id = 'DE09' AND active") == 1

    code, output = irt(
        "sites", "activate", "DE09", "--reason", "activated again", "--database-url", db_url
    )
    assert code == 1 and "active already" in output
    assert scalar(db, "SELECT count(*) FROM shipments") == 1


def test_activation_without_kits_requests_nothing(db: Database, db_url: str) -> None:
    set_up(db_url)
    code, output = irt(
        "sites", "add", "DE09", "Test site", "--country", "DE", "--database-url", db_url
    )
    assert code == 0, output
    code, output = irt(
        "sites", "activate", "DE09", "--reason", "SIV done on site", "--database-url", db_url
    )
    assert code == 1 and "depot" in output.lower()
    code, output = irt(
        "sites", "activate", "DE09", "--reason", "SIV done on site", "--depot", "DEPOT-EU",
        "--database-url", db_url,
    )  # fmt: skip
    assert code == 0, output
    assert "DE09 active" in output
    assert scalar(db, "SELECT count(*) FROM shipments") == 0
