"""Visit windows in the browser, on both engines: the subject's schedule with target dates and
windows, the dosing form offering the next due visit, and week 8 refused 3 days after its window
closed, with the window's dates next to the visit date."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.browser.pages import assert_accessible, assert_blinded, assert_field_error, fill, login
from tests.support.helpers import login as api_login
from tests.support.helpers import randomize, randomize_body, register, today

Shot = Callable[[Page, str], Path]


def _subject_with_week_8_overdue(base: str) -> int:
    """Randomized 62 days ago (week 8's window closed 3 days ago), week 4 dosed on its target."""
    day_one = today() - timedelta(days=62)
    with httpx.Client(base_url=base, timeout=60) as client:
        coordinator = api_login(client, "coordinator")
        subject_id = register(client, coordinator, "DE01")
        body = randomize_body(weight_kg=72.5)
        body["visit_date"] = day_one.isoformat()
        body["eligibility"]["screening_date"] = (day_one - timedelta(days=7)).isoformat()
        assert randomize(client, coordinator, subject_id, body).status_code == 201
        w4 = {"visit": "W4", "visit_date": (day_one + timedelta(days=28)).isoformat()}
        response = client.post(
            f"/api/v1/subjects/{subject_id}/dispense",
            json={**w4, "weight_kg": 72.5},
            headers={**coordinator, "Idempotency-Key": f"browser-w4-{subject_id}"},
        )
        assert response.status_code == 201, response.text
    return subject_id


def test_the_schedule_and_an_out_of_window_dose_refused(
    page: Page, server: str, screenshot: Shot
) -> None:
    subject_id = _subject_with_week_8_overdue(server)
    login(page, "pharmacist")
    page.goto(f"/subjects/{subject_id}")
    assert_accessible(page, "subject with schedule")
    assert_blinded(page, "subject with schedule")
    schedule = page.locator('table[data-field="schedule"]')
    expect(schedule).to_be_visible()
    w8 = schedule.locator('tr[data-visit="W8"]')
    expect(w8).to_have_attribute("data-state", "overdue")
    expect(w8).to_contain_text(" to ")  # the window, from ... to ...
    expect(schedule.locator('tr[data-visit="W4"]')).to_have_attribute("data-state", "dispensed")
    expect(schedule.locator('tr[data-visit="W12"]')).to_have_attribute("data-state", "upcoming")
    screenshot(page, "visit-schedule")

    page.goto(f"/subjects/{subject_id}/dispense")
    assert_accessible(page, "dosing form")
    selected = page.locator('select[name="visit"] option:checked')
    expect(selected).to_have_attribute("value", "W8")  # the overdue visit, under its own name
    fill(page, {"visit": "W8", "visit_date": today().isoformat(), "weight_kg": "72.5"})
    with page.expect_navigation():
        page.get_by_role("button", name=re.compile("assign kits", re.I)).click()
    message = assert_field_error(page, "visit_date")
    assert "outside its window" in message, message
    assert re.search(r"\d{2}-[A-Z][a-z]{2}-\d{4} to \d{2}-[A-Z][a-z]{2}-\d{4}", message), message
    assert_blinded(page, "out-of-window refusal")
    screenshot(page, "visit-out-of-window")
    # nothing was dispensed: week 8 is still overdue
    page.goto(f"/subjects/{subject_id}")
    expect(page.locator('tr[data-visit="W8"]')).to_have_attribute("data-state", "overdue")
