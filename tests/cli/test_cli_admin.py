"""The admin commands of `irt` on both engines: sites, cohorts, the phase II dose, shipments and
reports; each change audited, each refusal exits 1 and changes nothing."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import select
from typer.testing import CliRunner

from app.cli import app
from app.db.engine import Database
from app.db.models import AuditEntry, Kit, ShipmentKit
from tests.support.api import LEAK_TEXT
from tests.support.cli import as_demo_user
from tests.support.databases import assert_unchanged, snapshot

runner = CliRunner()


def irt(db_url: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, as_demo_user([*args, "--database-url", db_url]))
    return result.exit_code, result.output


def _last_audit(db: Database) -> AuditEntry:
    with db.read() as session:
        return session.execute(select(AuditEntry).order_by(AuditEntry.seq.desc())).scalars().first()


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every (path, command) below a typer group, groups included."""
    found = []
    for name, command in group.commands.items():
        found.append(((*path, name), command))
        if hasattr(command, "commands"):
            found += _commands(command, (*path, name))
    return found


def test_every_command_has_help_text() -> None:
    commands = _commands(typer.main.get_command(app))
    names = {path for path, _ in commands}
    for required in ("cohorts", "phase2-dose", "shipments", "report", "sites"):
        assert (required,) in names
    for path, command in commands:
        assert command.help, f"`irt {' '.join(path)}` has no help text"
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, path


def test_cohorts_and_phase2_dose(demo_db: Database, db_url: str) -> None:
    code, output = irt(db_url, "cohorts", "list")
    assert code == 0 and "C1   0.8 mg/kg  open" in output and "C2   1.2 mg/kg  planned" in output

    before = snapshot(demo_db)
    code, output = irt(db_url, "cohorts", "open", "C2", "--reason", "too early to open")
    assert code == 1 and "C1" in output
    code, output = irt(db_url, "phase2-dose", "select", "1.2", "--reason", "too early for the dose")
    assert code == 1
    code, output = irt(db_url, "phase2-dose", "select", "abc", "--reason", "typo in the dose")
    assert code == 1 and "Not a number" in output
    assert_unchanged(demo_db, before)

    code, output = irt(db_url, "cohorts", "close", "C1", "--reason", "SRC 1 review done")
    assert code == 0 and "C1   0.8 mg/kg  closed" in output
    entry = _last_audit(demo_db)
    assert (entry.action, entry.username, entry.reason) == (
        "cohort.close",
        "sponsor",
        "SRC 1 review done",
    )
    for command in ("open", "close"):
        assert irt(db_url, "cohorts", command, "C2", "--reason", "SRC review done")[0] == 0
    assert irt(db_url, "phase2-dose", "show")[1].strip() == "Phase II dose: not selected yet."
    code, output = irt(db_url, "phase2-dose", "select", "1.2", "--reason", "SRC 2 decision")
    assert code == 0 and "Phase II dose: 1.2 mg/kg" in output
    with demo_db.read() as session:
        actions = session.execute(select(AuditEntry.action).order_by(AuditEntry.seq)).scalars()
        after_selection = list(actions)
    selected = after_selection.index("phase2.select_dose")
    # then every site's resupply check stocks the phase II pool for the subjects to come
    assert set(after_selection[selected + 1 :]) == {"shipment.request", "site.resupply"}
    assert "1.2 mg/kg" in irt(db_url, "phase2-dose", "show")[1]


def _kits_of(db: Database, shipment_id: int) -> list[str]:
    with db.read() as session:
        return list(
            session.execute(
                select(ShipmentKit.kit_number).where(ShipmentKit.shipment_id == shipment_id)
            ).scalars()
        )


def test_shipment_life_from_the_command_line(demo_db: Database, db_url: str) -> None:
    code, output = irt(db_url, "sites", "list")
    assert code == 0 and "DE01" in output and "active" in output

    code, output = irt(db_url, "shipments", "request", "DE01", "--kits-per-content", "2")
    assert code != 0  # the reason is required
    code, output = irt(
        db_url,
        "shipments",
        "request",
        "DE01",
        "--kits-per-content",
        "2",
        "--reason",
        "stock up before screening",
    )
    assert code == 0 and "requested" in output and "4 kits" in output, output
    shipment_id = int(output.split()[0])
    code, output = irt(db_url, "shipments", "list", "--site", "DE01")
    assert code == 0 and f"{shipment_id:>5}  DEPOT-EU -> DE01" in output
    assert not any(word in output.lower() for word in LEAK_TEXT)

    before = snapshot(demo_db)
    code, output = irt(db_url, "shipments", "receive", str(shipment_id))
    assert code == 1 and "shipped" in output  # not sent yet
    assert_unchanged(demo_db, before)

    assert irt(db_url, "shipments", "ship", str(shipment_id))[0] == 0
    damaged, missing, *_ = _kits_of(demo_db, shipment_id)
    code, output = irt(
        db_url,
        "shipments",
        "receive",
        str(shipment_id),
        "--damaged",
        damaged,
        "--missing",
        missing,
        "--temperature-excursion",
    )
    assert code == 0 and "quarantined" in output and "TEMPERATURE EXCURSION" in output, output
    code, output = irt(
        db_url, "shipments", "release", str(shipment_id), "--reason", "logger data ok"
    )
    assert code == 0, output
    with demo_db.read() as session:
        statuses = {
            k.kit_number: k.status
            for k in session.execute(
                select(Kit).where(Kit.kit_number.in_(_kits_of(demo_db, shipment_id)))
            ).scalars()
        }
    assert statuses[damaged] == "damaged" and statuses[missing] == "lost"
    assert sorted(s for n, s in statuses.items() if n not in (damaged, missing)) == [
        "available",
        "available",
    ]

    code, output = irt(db_url, "shipments", "request", "DE01", "--reason", "to be cancelled")
    cancelled = output.split()[0]
    code, output = irt(db_url, "shipments", "cancel", cancelled, "--reason", "no longer needed")
    assert code == 0 and "cancelled" in output


def test_reports_as_csv(demo_db: Database, db_url: str, tmp_path: Path) -> None:
    code, output = irt(db_url, "report", "enrolment")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(output)))
    c1 = next(r for r in rows if r["level"] == "stage" and r["scope"] == "C1")
    assert (c1["status"], c1["randomized"], c1["cap"]) == ("open", "0", "8")

    out = tmp_path / "inventory.csv"
    code, output = irt(db_url, "report", "inventory", "--out", str(out))
    assert code == 0 and f"Wrote {out}" in output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {r["location"] for r in rows} == {"DE01", "DE02", "US01", "DEPOT-EU"}
    assert not any(word in out.read_text().lower() for word in LEAK_TEXT)
    code, output = irt(db_url, "report", "inventory", "--site", "XX99")
    assert code == 1 and "XX99" in output

    code, output = irt(db_url, "report", "unblindings")
    assert code == 0 and output.startswith("subject_id,") and "treatment" not in output
    code, output = irt(db_url, "report", "unblindings", "--with-treatment")
    assert code == 0 and output.splitlines()[0].endswith(",treatment")


def test_a_reason_needs_ten_visible_characters(demo_db: Database, db_url: str) -> None:
    before = snapshot(demo_db)
    for args in (
        ("cohorts", "close", "C1", "--reason", "SRC done"),
        ("sites", "activate", "DE01", "--reason", "\u200b" * 20),
        ("shipments", "request", "DE01", "--reason", "  top up  "),
        ("users", "disable", "coordinator", "--reason", "left"),
    ):
        code, output = irt(db_url, *args)
        assert code == 1 and "The reason must have at least 10 visible characters." in output, args
    assert_unchanged(demo_db, before)
