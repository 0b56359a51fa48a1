"""`POST /admin/lists/import`: the tools' files import, signed; a bad or mixed-up file is a
problem+json naming rows and columns, imports nothing, and is recorded as a refused attempt. On
both engines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli import app as cli
from app.db.engine import Database
from app.domain import list_formats as lf
from app.domain import randomization_list as rl
from app.domain.study import load_study
from app.main import create_app
from app.settings import Settings
from tests.support.cli import as_demo_user
from tests.support.databases import assert_unchanged, snapshot
from tests.support.helpers import SIGNATURE_HEADERS, login

STUDY = load_study()
FIXTURES = Path(__file__).parents[1] / "fixtures"
URL = "/api/v1/admin/lists/import"


@pytest.fixture
def fresh(db: Database, db_url: str) -> Iterator[TestClient]:
    """A study with no list yet, served."""
    result = CliRunner().invoke(cli, as_demo_user(["study", "load", "--database-url", db_url]))
    assert result.exit_code == 0, result.output
    application = create_app(Settings(database_url=db_url))
    with TestClient(application, raise_server_exceptions=False) as client:
        yield client
    application.state.db.dispose()


def _post(
    client: TestClient, content: bytes, user: str = "monitor", **params: str
) -> httpx.Response:
    headers = {**login(client, user), "Content-Type": "text/csv", **SIGNATURE_HEADERS}
    return client.post(URL, content=content, params=params, headers=headers)


def test_a_sealed_envelope_export_imports_signed(fresh: TestClient) -> None:
    content = (FIXTURES / "sealed_envelope/export_with_strata.csv").read_bytes()
    response = _post(fresh, content, format="sealed-envelope", scope="P2")
    assert response.status_code == 201, response.text
    (row,) = response.json()
    expected = lf.parse_sealed_envelope(content.decode(), STUDY, "P2")
    assert (row["scope"], row["source"], row["sha256"]) == (
        "P2",
        "imported",
        rl.commitment(expected),
    )
    again = _post(fresh, content, format="sealed-envelope", scope="P2")
    assert again.status_code == 409
    assert again.json()["code"] == "list_exists"


def test_a_bad_file_is_a_problem_naming_rows_and_columns_and_imports_nothing(
    fresh: TestClient, db: Database
) -> None:
    lines = (FIXTURES / "redcap/redcap_template.csv").read_text("utf-8").splitlines()
    lines[4] = lines[4].replace(",2,0,0,", ",3,0,0,", 1).replace(",1,0,0,", ",3,0,0,", 1)
    lines[9] = ",1,0,5,,,"
    before = snapshot(db)
    response = _post(fresh, ("\r\n".join(lines) + "\r\n").encode(), format="redcap")
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "invalid_list"
    assert problem["problems"] == [
        "row 5, column 'redcap_randomization_group': '3' is not a group (1 = IMC002, 2 = PLACEBO)",
        "row 10, column 'pred_group': '5' is not a level of PRED",
    ]
    (entry,) = assert_unchanged(db, before)
    assert entry["action"] == "randomization_list.import_refused"
    assert entry["after"]["code"] == "invalid_list"
    mixed = (FIXTURES / "redcap/allocation_download.csv").read_bytes()
    response = _post(fresh, mixed, format="sealed-envelope")
    assert response.status_code == 422
    assert any("use --format redcap" in p for p in response.json()["problems"])
    response = _post(fresh, b"\xff\xfe,1", format="redcap")
    assert response.json()["problems"][0].startswith("the file is not UTF-8")


def test_only_the_unblinded_monitor_imports(fresh: TestClient) -> None:
    content = (FIXTURES / "redcap/allocation_download.csv").read_bytes()
    assert _post(fresh, content, "sponsor", format="redcap").status_code == 403
    bad_pair = _post(fresh, content, format="redcap", column="sledai")
    assert bad_pair.status_code == 422
    assert "write it as FROM=TO" in bad_pair.json()["detail"]
