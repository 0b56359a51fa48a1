"""The simulation page (/supply/simulation) on both engines: the supply manager runs a few trials
and reads the figures and two inline SVG plots, the JSON and CSV downloads recompute the same
run, site roles are refused, and a bad scenario, upload or number is shown next to its field
(422) with nothing run and nothing changed in the database."""

from __future__ import annotations

import csv
import html
import io
import re
from pathlib import Path

from fastapi.testclient import TestClient

from app.db.engine import Database
from app.services import simulation
from tests.support.databases import assert_unchanged, snapshot
from tests.web.support import field_error, hidden, submit, web_login

URL = "/supply/simulation"
DEMO_TEXT = (
    Path(simulation.__file__).parent.parent / "simulation" / "scenarios" / "imc002-demo.toml"
).read_text("utf-8")
TRIALS = 4


def _upload(text: str) -> dict[str, tuple[str, bytes, str]]:
    return {"scenario_file": ("scenario.toml", text.encode(), "application/toml")}


def _data_field(page: str, name: str) -> str:
    match = re.search(rf'data-field="{re.escape(name)}">([^<]*)<', page)
    assert match, f"no data-field {name!r}"
    return match.group(1)


def test_supply_manager_runs_a_scenario_and_downloads_it(
    client: TestClient, demo_db: Database
) -> None:
    token = web_login(client, "supply")
    form = client.get(URL)
    assert form.status_code == 200, form.text
    assert f'href="{URL}"' in form.text  # the menu entry
    assert hidden(form.text, "csrf_token") == token
    assert 'enctype="multipart/form-data"' in form.text and 'name="scenario_file"' in form.text
    assert "reveal nothing about the real trial" in form.text
    assert "0.1 s per trial per CPU" in form.text
    before = snapshot(demo_db)

    data = {"scenario": "imc002-demo", "trials": str(TRIALS), "seed": "5"}
    page = submit(client, URL, data, token)
    assert page.status_code == 200, page.text
    text = page.text
    assert_unchanged(demo_db, before)
    assert "P(any missed dose)" in text and "95 % interval" in text
    assert "Missed doses per 1,000 visits" in text and "Shipments per trial" in text
    assert "Overage" in text and _data_field(text, "overage_percent").endswith("%")
    for content in ("IMC002", "PLACEBO"):
        for figure in ("shipped", "dispensed", "expired", "wasted"):
            float(_data_field(text, f"{figure}-{content}"))
    assert "Blind leak" in text and "Stage phase_ii" in text
    assert float(_data_field(text, "prior-phase_ii")) == 0.5
    float(_data_field(text, "classifier-phase_ii"))
    assert "Refused while stock is shown" in text
    svgs = re.findall(r"<svg\b.*?</svg>", text, re.S)
    assert len(svgs) == 2
    for svg, title in zip(svgs, ("Stock at each site", "Risk of running out"), strict=True):
        assert re.search(rf"<title[^>]*>{title}", svg) and "<desc" in svg
        assert "Week of the trial" in svg and "<polyline" in svg
        for site in ("DE01", "DE02", "US01"):
            assert f"Site {site}" in svg
    assert "Kits (mean)" in svgs[0] and "Trials with a refusal" in svgs[1]
    assert "<script" not in text.split("</head>")[1]

    # the downloads recompute the same run from the query string
    query = "scenario=imc002-demo&trials=4&seed=5"
    shown = html.escape(query)
    assert f'href="{URL}.json?{shown}"' in text and f'href="{URL}.csv?{shown}"' in text
    figures = client.get(f"{URL}.json?{query}")
    assert figures.status_code == 200, figures.text
    assert "attachment" in figures.headers["content-disposition"]
    body = figures.json()
    sheet = client.get(f"{URL}.csv?{query}")
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(sheet.text)))
    assert body["trials"] == TRIALS == len({r["trial"] for r in rows})
    assert len(rows) == TRIALS * 2 and {r["trial"] for r in rows} == {"5", "6", "7", "8"}
    assert _data_field(text, "p_any_missed").startswith(f"{body['p_any_missed_dose']:.3f}")
    assert set(body["stock_by_week"]) == {"DE01", "DE02", "US01"}
    assert_unchanged(demo_db, before)


def test_an_uploaded_scenario_runs_without_downloads(client: TestClient) -> None:
    token = web_login(client, "monitor")
    assert f'href="{URL}"' in client.get("/").text
    data = {"scenario": "imc002-20-sites", "trials": "2", "seed": "1"}
    page = submit(client, URL, data, token, files=_upload(DEMO_TEXT))
    assert page.status_code == 200, page.text
    assert "Results: IMC-002 demo: three sites, one depot" in page.text  # the file, not the list
    assert page.text.count("<svg") == 2
    assert f"{URL}.json" not in page.text and "irt simulate --scenario FILE" in page.text


def test_roles(client: TestClient) -> None:
    response = client.get(URL, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == f"/login?next={URL}"
    for user in ("coordinator", "investigator", "pharmacist"):
        token = web_login(client, user)
        assert client.get(URL).status_code == 403, user
        assert f'href="{URL}"' not in client.get("/").text, user
        refused = submit(client, URL, {"trials": "2", "seed": "1"}, token)
        assert refused.status_code == 403 and "Not for your role" in refused.text
        assert client.get(f"{URL}.json?trials=2&seed=1").status_code == 403
        assert client.get(f"{URL}.csv?trials=2&seed=1").status_code == 403
    web_login(client, "sponsor")  # may open it from the supply pages; not in its menu
    assert client.get(URL).status_code == 200
    assert f'href="{URL}"' not in client.get("/").text


def test_bad_input_is_shown_next_to_its_field(client: TestClient, demo_db: Database) -> None:
    token = web_login(client, "supply")
    before = snapshot(demo_db)
    good = {"scenario": "imc002-demo", "trials": "2", "seed": "1"}

    def refused(field: str, data: dict[str, str], text: str | None = None) -> str:
        files = _upload(text) if text is not None else None
        response = submit(client, URL, {**good, **data}, token, files=files)
        assert response.status_code == 422, response.text
        assert "<svg" not in response.text and "Results:" not in response.text
        message = field_error(response.text, field)
        assert message, (field, response.text)
        return message

    assert "Unknown scenario 'nope'" in refused("scenario", {"scenario": "nope"})
    unknown = refused("scenario_file", {}, DEMO_TEXT + "\nrecruitment_boost = 2\n")
    assert "recruitment_boost: Extra inputs are not permitted" in unknown
    negative = DEMO_TEXT.replace("screen_fail_rate = 0.25", "screen_fail_rate = -0.25")
    assert "screen_fail_rate" in refused("scenario_file", {}, negative)
    assert "not valid TOML" in refused("scenario_file", {}, "days = [")
    binary = submit(
        client, URL, good, token, files={"scenario_file": ("x.toml", b"\xff\xfe\x00", "x")}
    )
    assert binary.status_code == 422 and "not UTF-8" in (
        field_error(binary.text, "scenario_file") or ""
    )
    for trials in ("0", "201", "x", "-1", ""):
        assert "from 1 to 200" in refused("trials", {"trials": trials}), trials
    assert "from 0 to" in refused("seed", {"seed": "-1"})
    # every error at once, each next to its field, the values kept
    both = submit(client, URL, {"trials": "500", "seed": "x"}, token, files=_upload("x = 1"))
    assert both.status_code == 422
    assert field_error(both.text, "trials") and field_error(both.text, "seed")
    assert "x: Extra inputs are not permitted" in (field_error(both.text, "scenario_file") or "")
    assert 'value="500"' in both.text
    # no CSRF token: refused before anything runs
    assert client.post(URL, data=good).status_code == 403
    for query in ("trials=0&seed=1", "trials=2&seed=x", "scenario=nope&trials=2&seed=1"):
        assert client.get(f"{URL}.json?{query}").status_code == 422, query
    assert_unchanged(demo_db, before)
