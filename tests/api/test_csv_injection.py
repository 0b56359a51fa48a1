"""CSV injection (OWASP): a reason typed as a spreadsheet formula is kept as typed in the data
and in JSON, and reaches every CSV that carries it as text ('=...), through the API, the pages
and the CLI. No cell of any CSV download starts a formula."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli import app as irt
from app.db.engine import Database
from app.domain.csv_cells import FORMULA_STARTS
from tests.support.cli import as_demo_user
from tests.support.demo import DEMO_PASSWORD
from tests.support.helpers import SIGNED, as_user, login, randomize, register
from tests.web.support import web_login

API = "/api/v1"
FORMULA = '=HYPERLINK("http://x","y")'
runner = CliRunner()


def _unblind_with_a_formula(client: TestClient, reason: str = FORMULA) -> int:
    investigator = login(client, "investigator")
    subject = register(client, investigator)
    assert randomize(client, investigator, subject).status_code == 201
    body = {"reason_category": "other", "reason": reason, **SIGNED}
    response = client.post(f"{API}/subjects/{subject}/unblind", json=body, headers=investigator)
    assert response.status_code == 200, response.text
    return subject


def assert_no_formula(text: str, where: str) -> list[list[str]]:
    table = list(csv.reader(io.StringIO(text, newline="")))
    assert table, where
    for row in table:
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS), (where, cell)
    return table


def test_a_formula_reason_is_text_in_every_unblindings_csv(
    client: TestClient, demo_db: Database, db_url: str, tmp_path: Path
) -> None:
    subject = _unblind_with_a_formula(client)
    for user in ("monitor", "sponsor"):  # the JSON keeps the reason as typed
        rows = client.get(f"{API}/reports/unblindings", headers=login(client, user)).json()
        assert [(r["subject_id"], r["reason"]) for r in rows] == [(subject, FORMULA)]

    files: dict[str, str] = {}
    for user in ("monitor", "sponsor"):
        response = client.get(f"{API}/reports/unblindings.csv", headers=login(client, user))
        assert response.status_code == 200, response.text
        files[f"API, {user}"] = response.text
        web_login(client, user)
        response = client.get("/reports/unblindings.csv")
        assert response.status_code == 200, response.text
        files[f"page, {user}"] = response.text
    for flags in ([], ["--with-treatment"]):
        out = tmp_path / f"unblindings{len(flags)}.csv"
        result = runner.invoke(
            irt,
            [
                *as_user("monitor"),
                *("report", "unblindings", *flags, "--out", str(out), "--database-url", db_url),
            ],
            input=DEMO_PASSWORD,
        )
        assert result.exit_code == 0, result.output
        files[f"irt report unblindings {flags}"] = out.read_text("utf-8")

    for where, text in files.items():
        header, *body = assert_no_formula(text, where)
        assert [dict(zip(header, row, strict=True))["reason"] for row in body] == [f"'{FORMULA}"]
    assert "treatment" in files["API, monitor"].splitlines()[0]
    assert "treatment" not in files["API, sponsor"].splitlines()[0]

    # the audit trail is exported as JSON Lines, not CSV: the reason stays exactly as typed
    out = tmp_path / "audit.jsonl"
    result = runner.invoke(
        irt, as_demo_user(["audit", "export", "--out", str(out), "--database-url", db_url])
    )
    assert result.exit_code == 0, result.output
    entries = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [e["reason"] for e in entries if e["action"] == "subject.unblind"] == [FORMULA]


def test_a_carriage_return_cannot_start_a_row_with_a_formula(client: TestClient) -> None:
    typed = f"see the log\r{FORMULA}"
    _unblind_with_a_formula(client, typed)
    response = client.get(f"{API}/reports/unblindings.csv", headers=login(client, "monitor"))
    header, *body = assert_no_formula(response.text, "unblindings.csv")
    assert [dict(zip(header, row, strict=True))["reason"] for row in body] == [typed]


def test_no_csv_download_has_a_formula_cell(client: TestClient, demo_db: Database) -> None:
    _unblind_with_a_formula(client)
    sdtm = ("dm", "ds", "ex", "ta", "te", "tv", "define")
    urls = {
        "monitor": [
            "/reports/enrolment.csv",
            "/reports/unblindings.csv",
            "/supply/forecast.csv?weeks=52",  # a negative figure would be written '-3
            "/admin/exports/allocations.csv",
            "/admin/exports/list.csv",
            *(f"/admin/exports/sdtm/{d}.csv" for d in sdtm),
        ],
        "sponsor": [
            "/reports/unblindings.csv",
            *(f"/admin/exports/blinded/sdtm/{d}.csv" for d in sdtm),
        ],
        "supply": ["/reports/inventory.csv", "/supply/forecast.csv?weeks=52"],
        "pharmacist": ["/reports/inventory.csv"],
    }
    for user, paths in urls.items():
        headers = login(client, user)
        for url in paths:
            response = client.get(f"{API}{url}", headers=headers)
            assert response.status_code == 200, (user, url, response.text)
            assert response.headers["content-type"].startswith("text/csv"), (user, url)
            assert_no_formula(response.text, f"{user} {url}")
