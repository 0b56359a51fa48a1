"""ODM keyed by the EDC's subject label (the screening number the site entered) instead of
USUBJID, through the API and the CLI, on both engines."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import xmlschema
from fastapi.testclient import TestClient
from odmlib.schema_manager import get_schema_path
from typer.testing import CliRunner

from app.cli import app
from tests.support.cli import as_demo_user
from tests.support.helpers import login, randomize, register

ODM_SCHEMA = xmlschema.XMLSchema(get_schema_path("odm", "1.3.2"))
NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}
EXPORTS = "/api/v1/admin/exports"


def _keys(text: str) -> dict[str, str]:
    """SubjectKey -> the site it refers to."""
    root = ET.fromstring(text.encode())
    return {
        s.attrib["SubjectKey"]: s.find("odm:SiteRef", NS).attrib["LocationOID"]  # type: ignore[union-attr]
        for s in root.iterfind(".//odm:SubjectData", NS)
    }


def test_subjects_are_keyed_by_their_label_when_asked(client: TestClient, tmp_path: Path) -> None:
    coordinator = login(client, "coordinator")
    subject = register(client, coordinator, site_id="DE01", screening_number="SCR-101")
    assert randomize(client, coordinator, subject).status_code == 201
    register(client, coordinator, site_id="DE02", screening_number="SCR-102")
    monitor, sponsor = login(client, "monitor"), login(client, "sponsor")
    default = client.get(f"{EXPORTS}/odm.xml", headers=monitor)
    assert default.status_code == 200
    assert _keys(default.text) == {
        "IMC-002-DE01-SCR-101": "LOC.DE01",
        "IMC-002-DE02-SCR-102": "LOC.DE02",
    }
    for path, headers in (("odm.xml", monitor), ("blinded/odm.xml", sponsor)):
        response = client.get(
            f"{EXPORTS}/{path}", params={"subject_key": "subject-label"}, headers=headers
        )
        assert response.status_code == 200, response.text
        ODM_SCHEMA.validate(response.text)
        assert _keys(response.text) == {"SCR-101": "LOC.DE01", "SCR-102": "LOC.DE02"}
    bad = client.get(f"{EXPORTS}/odm.xml", params={"subject_key": "name"}, headers=monitor)
    assert bad.status_code == 422


def test_a_label_used_at_two_sites_is_refused_by_name(
    client: TestClient, db_url: str, tmp_path: Path
) -> None:
    register(client, login(client, "coordinator"), site_id="DE01", screening_number="0001")
    register(client, login(client, "coordinator2"), site_id="US01", screening_number="0001")
    response = client.get(
        f"{EXPORTS}/odm.xml",
        params={"subject_key": "subject-label"},
        headers=login(client, "monitor"),
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "subject_label_not_unique"
    assert "'0001' is used at sites DE01, US01" in problem["detail"]
    out = tmp_path / "odm.xml"
    args = ["export", "odm", "--output", str(out), "--subject-key", "subject-label"]
    result = CliRunner().invoke(app, as_demo_user([*args, "--database-url", db_url]))
    assert result.exit_code == 1 and "'0001' is used at sites DE01, US01" in result.output
    assert not out.exists()
    result = CliRunner().invoke(
        app, as_demo_user(["export", "odm", "--output", str(out), "--database-url", db_url])
    )
    assert result.exit_code == 0, result.output
    assert set(_keys(out.read_text())) == {"IMC-002-DE01-0001", "IMC-002-US01-0001"}
