"""GET /api/v1/supply/forecast and /forecast.csv: who may read them, what each role gets (totals
over contents for every blinded role, per content for the unblinded monitor only), refusals as
problem+json that change nothing, and a CSV that is well-formed, blinded and formula-free."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Kit
from app.domain.study import load_study
from tests.support.api import assert_blinded, assert_problem, error_fields, leaks
from tests.support.databases import assert_unchanged, snapshot
from tests.support.helpers import login, today
from tests.support.supply import assert_supply_blinded, ok, randomize_on
from tests.web.support import field_error, web_login

URL = "/api/v1/supply/forecast"
CSV_URL = "/api/v1/supply/forecast.csv"
STUDY = load_study()
ALL_SITES = ["DE01", "DE02", "US01"]
BLINDED_READERS = {"supply": ALL_SITES, "sponsor": ALL_SITES, "pharmacist": ["DE01", "DE02"]}
FORBIDDEN = ("coordinator", "coordinator2", "investigator")
SITE_KEYS = {"site_id", "name", "depot_id", "lead_days", "shipment_due"}
FIGURES = {"stock", "in_transit", "need_lead", "need_horizon", "balance", "order_quantity"}
DEPOT_KEYS = {"depot_id", "name", "site_ids", "shippable", "shortfall", "balance"}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def trial(client: TestClient) -> TestClient:
    """Four C1 subjects at DE01 (one block: both arms) whose day 1 was three weeks ago."""
    coordinator = login(client, "coordinator")
    for _ in range(4):
        randomize_on(client, coordinator, "DE01", today() - timedelta(days=21))
    return client


def get(client: TestClient, user: str, url: str = URL, **params: Any) -> httpx.Response:
    response: httpx.Response = client.get(url, params=params, headers=login(client, user))
    return response


def rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="forecast.csv"' in response.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(response.text)))
    header, body = table[0], table[1:]
    assert len(set(header)) == len(header) and body
    assert all(len(row) == len(header) for row in body), response.text
    for row in table:
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS), (cell, response.text)
    return [dict(zip(header, row, strict=True)) for row in body]


def number(cell: str) -> int:
    """A CSV figure: a negative one is written '-3 (so that no cell starts a formula)."""
    return int(cell.removeprefix("'"))


def test_blinded_roles_get_totals_of_their_sites(trial: TestClient) -> None:
    for user, site_ids in BLINDED_READERS.items():
        response = get(trial, user, weeks=12)
        assert_blinded(response, user)
        assert_supply_blinded(response, user)
        body = ok(response)
        assert (body["weeks"], body["horizon_days"], body["as_of"]) == (12, 84, str(today()))
        assert [s["site_id"] for s in body["sites"]] == site_ids
        for site in body["sites"]:
            assert site.keys() == SITE_KEYS | FIGURES, site
            assert site["balance"] == site["stock"] + site["in_transit"] - site["need_horizon"]
        if user == "pharmacist":
            assert body["depots"] == []
        else:
            [depot] = body["depots"]
            assert depot.keys() == DEPOT_KEYS and depot["site_ids"] == ALL_SITES
            assert depot["balance"] == depot["shippable"] - depot["shortfall"]


def test_the_unblinded_monitor_gets_figures_per_content(trial: TestClient) -> None:
    response = get(trial, "monitor", weeks=12)
    body = ok(response)
    assert leaks(response)  # the control: the detector sees the contents
    totals = {s["site_id"]: s for s in ok(get(trial, "supply", weeks=12))["sites"]}
    assert [s["site_id"] for s in body["sites"]] == ALL_SITES
    for site in body["sites"]:
        lines = site["by_content"]
        assert [line["content"] for line in lines] == list(STUDY.contents)
        assert site.keys() == SITE_KEYS | {"by_content"}
        for figure in FIGURES:
            total = sum(line[figure] for line in lines)
            assert totals[site["site_id"]][figure] == total, (site["site_id"], figure)
    # four subjects at DE01 three weeks in: W4 falls inside 12 weeks, so DE01 needs more
    need = {s["site_id"]: s["need_horizon"] for s in totals.values()}
    assert need["DE01"] > need["DE02"] == need["US01"]
    [depot] = body["depots"]
    assert [line["content"] for line in depot["by_content"]] == list(STUDY.contents)


def test_roles_without_access_are_refused(trial: TestClient) -> None:
    for user in FORBIDDEN:
        for url in (URL, CSV_URL):
            response = get(trial, user, url)
            assert_problem(response, 403, "forbidden")
            assert_blinded(response, user)
    for url in (URL, CSV_URL):
        assert_problem(trial.get(url), 401, "unauthorized")


def test_a_site_filter_shows_one_of_your_sites_only(trial: TestClient) -> None:
    body = ok(get(trial, "pharmacist", site_id="DE02"))
    assert [s["site_id"] for s in body["sites"]] == ["DE02"] and body["depots"] == []
    for url in (URL, CSV_URL):
        assert_problem(get(trial, "pharmacist", url, site_id="US01"), 404, "not_found")
        assert_problem(get(trial, "supply", url, site_id="XX99"), 404, "not_found")
    [line] = rows(get(trial, "supply", CSV_URL, site_id="US01"))
    assert line["id"] == "US01" and line["level"] == "site"


def test_weeks_out_of_range_are_refused_and_change_nothing(
    trial: TestClient, demo_db: Database
) -> None:
    before = snapshot(demo_db)
    for user in ("supply", "monitor", "pharmacist"):
        for url in (URL, CSV_URL):
            for weeks in ("0", "53", "-1", "1000", "two", "1.5"):
                response = get(trial, user, url, weeks=weeks)
                body = assert_problem(response, 422, "validation_error")
                assert error_fields(body) == ["weeks"], body
                assert "weeks" in body["detail"]
    assert_unchanged(demo_db, before)
    for horizon in (1, 52):
        assert ok(get(trial, "supply", weeks=horizon))["weeks"] == horizon
    assert ok(get(trial, "supply"))["weeks"] == 8  # the default


def test_the_csv_is_well_formed_and_blinded_for_blinded_roles(
    trial: TestClient, demo_db: Database
) -> None:
    with demo_db.read() as session:
        lots = set(session.execute(select(Kit.lot).distinct()).scalars())
    for user, site_ids in BLINDED_READERS.items():
        response = get(trial, user, CSV_URL, weeks=52)
        assert_blinded(response, user)
        for lot in lots:
            assert lot not in response.text, (user, lot)
        table = rows(response)
        assert "content" not in table[0]
        assert [r["id"] for r in table if r["level"] == "site"] == site_ids
        depots = [r["id"] for r in table if r["level"] == "depot"]
        assert depots == ([] if user == "pharmacist" else ["DEPOT-EU"])
        totals = {s["site_id"]: s for s in ok(get(trial, user, weeks=52))["sites"]}
        for row in table:
            assert (row["as_of"], row["weeks"]) == (str(today()), "52")
            if row["level"] == "site":
                for figure in FIGURES:
                    assert number(row[figure]) == totals[row["id"]][figure], (row, figure)
                assert row["shipment_due"] in ("true", "false")


def test_the_monitors_csv_has_a_row_per_content(trial: TestClient) -> None:
    table = rows(get(trial, "monitor", CSV_URL, weeks=52))
    sites = [(r["id"], r["content"]) for r in table if r["level"] == "site"]
    assert sites == [(s, c) for s in ALL_SITES for c in STUDY.contents]
    depots = [(r["id"], r["content"]) for r in table if r["level"] == "depot"]
    assert depots == [("DEPOT-EU", c) for c in STUDY.contents]
    # over a year the active content runs short somewhere: the negative balance is neutralised
    assert any(r["balance"].startswith("'-") for r in table), table


# --- the page (app/web/pages_forecast.py), which calls the same service --------------------------


def test_the_page_shows_a_table_per_site_and_the_weeks_chosen(trial: TestClient) -> None:
    web_login(trial, "supply")
    page = trial.get("/supply/forecast", params={"weeks": "12"})
    assert page.status_code == 200, page.text
    assert_blinded(page, "supply page")
    assert page.text.count("<table>") == len(ALL_SITES) + 1  # and the depot's
    assert 'name="weeks"' in page.text and 'value="12"' in page.text
    assert 'href="/supply/forecast.csv?weeks=12"' in page.text
    totals = {s["site_id"]: s for s in ok(get(trial, "supply", weeks=12))["sites"]}
    for site_id, site in totals.items():
        for figure in ("need_horizon", "balance", "stock"):
            shown = f'data-field="{figure}-{site_id}">{site[figure]}</td>'
            assert shown in page.text, (site_id, figure)
    assert trial.get("/supply/forecast.csv", params={"weeks": "12"}).text == (
        get(trial, "supply", CSV_URL, weeks=12).text
    )
    web_login(trial, "pharmacist")
    page = trial.get("/supply/forecast")
    assert page.status_code == 200 and 'value="8"' in page.text
    assert "US01" not in page.text and "DEPOT-EU (" not in page.text
    web_login(trial, "coordinator")
    assert trial.get("/supply/forecast").status_code == 403


def test_the_page_refuses_weeks_out_of_range_next_to_the_field(trial: TestClient) -> None:
    web_login(trial, "supply")
    for weeks in ("0", "53", "x", "-1"):
        page = trial.get("/supply/forecast", params={"weeks": weeks})
        assert page.status_code == 422, page.text
        assert field_error(page.text, "weeks"), page.text
        assert "<table>" not in page.text
    assert trial.get("/supply/forecast.csv", params={"weeks": "53"}).status_code == 422


def test_the_monitors_page_splits_each_site_by_content(trial: TestClient) -> None:
    web_login(trial, "monitor")
    page = trial.get("/supply/forecast", params={"weeks": "12"})
    assert page.status_code == 200, page.text
    for content in STUDY.contents:
        assert f'<th scope="col">{content}</th>' in page.text
    body = ok(get(trial, "monitor", weeks=12))
    for site in body["sites"]:
        total = sum(line["need_horizon"] for line in site["by_content"])
        assert f'data-field="need_horizon-{site["site_id"]}">{total}</td>' in page.text
