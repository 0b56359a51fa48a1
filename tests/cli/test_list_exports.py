"""Lists in REDCap and Sealed Envelope layouts through the CLI, and the unblinded CSV exports of
the admin API, on both engines."""

from __future__ import annotations

import csv
import io
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli import app
from app.db.engine import Database
from app.domain import list_formats as lf
from app.domain import randomization_list as rl
from app.domain.study import load_study
from tests.domain.test_list_formats import sealed_envelope
from tests.support.cli import as_demo_user
from tests.support.databases import assert_unchanged, pg_admin, pg_url, snapshot
from tests.support.demo import DEMO_SEED
from tests.support.helpers import login, open_phase2, randomize, randomize_body, register

runner = CliRunner()
STUDY = load_study()
FIXTURES = Path(__file__).parents[1] / "fixtures"
ADMIN = "/api/v1/admin"
BLINDED_USERS = ("coordinator", "investigator", "pharmacist", "supply", "sponsor")


def irt(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, as_demo_user(list(args)))
    return result.exit_code, result.output


@pytest.fixture
def other_db_url(
    db_url: str, tmp_path: Path, sqlite_template: Path, pg_template: str | None
) -> Iterator[str]:
    """A second fresh, migrated database on the same engine as `db_url`."""
    if db_url.startswith("sqlite"):
        path = tmp_path / "other.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    name = f"irt_t_{uuid.uuid4().hex[:12]}"
    with pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield pg_url(name)
    with pg_admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _commitment_line(url: str, scope: str) -> str:
    code, output = irt("lists", "show-commitment", "--database-url", url)
    assert code == 0, output
    return next(line for line in output.splitlines() if line.startswith(f"{scope}  "))


def _arms(url: str, scope: str, tmp_path: Path) -> list[tuple[str, str, str]]:
    out = tmp_path / f"canonical-{uuid.uuid4().hex}.csv"
    code, output = irt(
        "lists", "export", "--scope", scope, "--out", str(out), "--database-url", url
    )
    assert code == 0, output
    rows = csv.DictReader(io.StringIO(out.read_text()))
    return [(r["stratum"], r["sequence"], r["arm"]) for r in rows]


@pytest.mark.parametrize("scope", ["C1", "P2"])
def test_redcap_export_imports_into_a_fresh_database_arm_for_arm(
    demo_db: Database, db_url: str, other_db_url: str, tmp_path: Path, scope: str
) -> None:
    """Every arm comes back in its place; the commitment too where blocks have one size (C1).
    In P2 the blocks are read back from the arms, so the commitment is that of the reading."""
    out = tmp_path / "redcap.csv"
    code, output = irt(
        "lists", "export", "--format", "redcap", "--scope", scope, "--out", str(out),
        "--database-url", db_url,
    )  # fmt: skip
    assert code == 0, output
    assert out.read_text().startswith("redcap_randomization_number,redcap_randomization_group")
    assert irt("study", "load", "--database-url", other_db_url)[0] == 0
    code, output = irt(
        "lists", "import", str(out), "--format", "redcap", "--scope", scope,
        "--database-url", other_db_url,
    )  # fmt: skip
    assert code == 0, output
    assert _arms(other_db_url, scope, tmp_path) == _arms(db_url, scope, tmp_path)
    expected = rl.commitment(rl.generate_list(DEMO_SEED, STUDY.scope(scope)))
    assert f"{scope}  {expected}  generated" in _commitment_line(db_url, scope)
    imported = _commitment_line(other_db_url, scope)
    assert (f"{scope}  {expected}  imported" in imported) == (scope == "C1"), imported


def test_sealed_envelope_export_imports_into_a_fresh_database_exactly(
    demo_db: Database, db_url: str, other_db_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "se.csv"
    code, output = irt(
        "lists", "export", "--format", "sealed-envelope", "--scope", "P2", "--out", str(out),
        "--database-url", db_url,
    )  # fmt: skip
    assert code == 0, output
    assert out.read_text().startswith("Randomisation code,SLEDAI,PRED,Block identifier")
    assert irt("study", "load", "--database-url", other_db_url)[0] == 0
    code, output = irt(
        "lists", "import", str(out), "--format", "sealed-envelope", "--database-url", other_db_url
    )
    assert code == 0, output
    expected = rl.commitment(rl.generate_list(DEMO_SEED, STUDY.scope("P2")))
    assert f"P2  {expected}  imported" in _commitment_line(other_db_url, "P2")


@pytest.mark.parametrize(
    ("name", "file_format", "extra"),
    [
        ("redcap/allocation_download.csv", "redcap", []),
        ("redcap/redcap_template.csv", "redcap", []),
        ("sealed_envelope/export_with_strata.csv", "sealed-envelope", []),
        (
            "sealed_envelope/export_with_strata.csv",
            "sealed-envelope",
            ["--column", "SLEDAI-2K score=SLEDAI", "--column", "Prednisone dose=PRED"],
        ),
    ],
)
def test_the_tools_files_import_and_export_back_to_the_same_list(
    db: Database, db_url: str, tmp_path: Path, name: str, file_format: str, extra: list[str]
) -> None:
    assert irt("study", "load", "--database-url", db_url)[0] == 0
    path = FIXTURES / name
    code, output = irt(
        "lists", "import", str(path), "--format", file_format, *extra, "--database-url", db_url
    )
    assert code == 0, output
    parsed = lf.parse(path.read_text("utf-8"), study=STUDY, file_format=file_format, scope="P2")
    line = _commitment_line(db_url, "P2")
    assert f"P2  {rl.commitment(parsed['P2'])}  imported" in line
    out = tmp_path / "again.csv"
    code, output = irt(
        "lists", "export", "--format", file_format, "--out", str(out), "--database-url", db_url
    )
    assert code == 0, output
    again = lf.parse(out.read_text("utf-8"), study=STUDY, file_format=file_format, scope="P2")
    assert again == parsed


def test_a_table_grouped_by_site_is_refused_and_imports_nothing(db: Database, db_url: str) -> None:
    assert irt("study", "load", "--database-url", db_url)[0] == 0
    before = snapshot(db)
    code, output = irt(
        "lists", "import", str(FIXTURES / "redcap/allocation_download_by_dag.csv"),
        "--format", "redcap", "--scope", "C1", "--dag", "1330=DE01", "--dag", "1331=DE02",
        "--dag", "1332=US01", "--database-url", db_url,
    )  # fmt: skip
    assert code == 1
    assert "grouped by site" in output and "nothing was imported" in output
    assert_unchanged(db, before)
    code, output = irt("lists", "import", "x.csv", "--dag", "1330", "--database-url", db_url)
    assert code == 1 and "--dag '1330': write it as FROM=TO" in output


def test_canonical_export_stays_the_default_and_takes_a_scope(
    demo_db: Database, db_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "all.csv"
    assert irt("lists", "export", "--out", str(out), "--database-url", db_url)[0] == 0
    assert out.read_text() == rl.to_csv(
        s for slots in rl.generate_all(DEMO_SEED, STUDY).values() for s in slots
    )
    code, _ = irt("lists", "export", "--scope", "C2", "--out", str(out), "--database-url", db_url)
    assert code == 0
    assert out.read_text() == rl.to_csv(rl.generate_list(DEMO_SEED, STUDY.scope("C2")))
    code, output = irt(
        "lists", "export", "--scope", "P9", "--out", str(out), "--database-url", db_url
    )
    assert code == 1 and "unknown scope" in output


def test_a_sealed_envelope_file_imports(db: Database, db_url: str, tmp_path: Path) -> None:
    assert irt("study", "load", "--database-url", db_url)[0] == 0
    slots = rl.generate_list("sealed-envelope", STUDY.scope("P2"))
    path = tmp_path / "se.csv"
    path.write_text(sealed_envelope(slots))
    code, output = irt(
        "lists", "import", str(path), "--format", "sealed-envelope", "--database-url", db_url
    )
    assert code == 0, output
    assert f"P2  {rl.commitment(slots)}  imported" in _commitment_line(db_url, "P2")


@pytest.mark.parametrize("file_format", ["redcap", "sealed-envelope"])
def test_bad_files_are_refused_whole_naming_every_bad_row(
    db: Database, db_url: str, tmp_path: Path, file_format: str
) -> None:
    assert irt("study", "load", "--database-url", db_url)[0] == 0
    slots = rl.generate_list("bad", STUDY.scope("C1"))
    if file_format == "redcap":
        lines = lf.to_redcap(slots, STUDY, "C1").splitlines()
        lines[2] = lines[2].split(",")[0] + ",5"
        lines[6] = lines[1].split(",")[0] + "," + lines[6].split(",")[1]  # a repeated number
    else:
        lines = sealed_envelope(slots).splitlines()
        lines[2] = lines[2].rsplit(",", 1)[0] + ",Aspirin"
        lines[6] = "x," + lines[6].split(",", 1)[1]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    before = snapshot(db)
    code, output = irt(
        "lists", "import", str(path), "--format", file_format, "--scope", "C1",
        "--database-url", db_url,
    )  # fmt: skip
    assert code == 1
    assert "row 3, column" in output and "row 7" in output and "nothing was imported" in output
    assert_unchanged(db, before)


def _allocations_csv(client: TestClient, headers: dict[str, str]) -> list[dict[str, str]]:
    response = client.get(f"{ADMIN}/exports/allocations.csv", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def test_allocations_csv_matches_the_monitors_allocations(client: TestClient) -> None:
    monitor = login(client, "monitor")
    assert _allocations_csv(client, monitor) == []
    coordinator = login(client, "coordinator")
    for _ in range(2):
        assert randomize(client, coordinator, register(client, coordinator)).status_code == 201
    open_phase2(client)
    body = randomize_body(sledai_2k_score=12, prednisone_equivalent_mg_per_day=20)
    assert randomize(client, coordinator, register(client, coordinator), body).status_code == 201
    rows = _allocations_csv(client, monitor)
    allocations = client.get(f"{ADMIN}/allocations", headers=monitor).json()
    assert len(rows) == len(allocations) == 3
    assert tuple(rows[0]) == (
        "subject_id", "site_id", "screening_number", "randomization_number", "stage", "cohort",
        "stratum", "arm", "treatment", "randomized_at", "randomized_by",
    )  # fmt: skip
    for row, allocation in zip(rows, allocations, strict=True):
        expected = {k: "" if allocation[k] is None else str(allocation[k]) for k in row}
        assert row == expected
    assert rows[2]["stratum"] == "SLEDAI>=10/PRED>=10" and rows[2]["cohort"] == ""


def test_list_csv_exports_the_stored_list(client: TestClient) -> None:
    monitor = login(client, "monitor")
    url = f"{ADMIN}/exports/list.csv"
    response = client.get(url, headers=monitor)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    all_slots = [s for slots in rl.generate_all(DEMO_SEED, STUDY).values() for s in slots]
    assert response.text == rl.to_csv(all_slots)
    response = client.get(url, params={"format": "redcap", "scope": "P2"}, headers=monitor)
    p2 = rl.generate_list(DEMO_SEED, STUDY.scope("P2"))
    assert response.status_code == 200 and response.text == lf.to_redcap(p2, STUDY, "P2")
    response = client.get(url, params={"format": "sealed-envelope"}, headers=monitor)
    assert response.status_code == 200
    assert response.text == lf.to_sealed_envelope(p2, STUDY, "P2")
    assert client.get(url, params={"format": "xml"}, headers=monitor).status_code == 422
    assert client.get(url, params={"scope": "P9"}, headers=monitor).status_code == 422


def test_blinded_roles_get_403_on_the_exports(client: TestClient) -> None:
    for user in BLINDED_USERS:
        headers = login(client, user)
        for path in ("allocations.csv", "list.csv"):
            response = client.get(f"{ADMIN}/exports/{path}", headers=headers)
            assert response.status_code == 403, (user, path, response.text)
            assert "text/csv" not in response.headers["content-type"]
