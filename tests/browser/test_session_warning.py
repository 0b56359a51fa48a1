"""The warning before the web session ends (static/session.js), in Chromium, on a server whose
sessions last 20 idle seconds and warn 18 seconds before the end: the alert dialog appears with
the focus on "Stay logged in", which extends the session and closes it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from app.db.engine import Database
from tests.browser.pages import assert_accessible, login
from tests.support.server import running_server

IDLE_SECONDS = 20
WARNING_SECONDS = 18


@pytest.fixture
def server(demo_db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The browser tests' server, with short sessions (the settings come from the environment)."""
    monkeypatch.setenv("IRT_SESSION_IDLE_SECONDS", str(IDLE_SECONDS))
    monkeypatch.setenv("IRT_SESSION_WARNING_SECONDS", str(WARNING_SECONDS))
    with running_server(db_url) as (base, _pid):
        yield base


def _seconds_left(page: Page) -> int:
    answer = page.request.get("/session/status")
    assert answer.ok, answer.status
    return int(json.loads(answer.text())["expires_in"])


def test_the_warning_appears_and_stay_logged_in_extends_the_session(page: Page) -> None:
    login(page, "coordinator")
    dialog = page.get_by_role("alertdialog", name="Your session is about to end")
    expect(dialog).to_be_hidden()
    expect(dialog).to_be_visible(timeout=8_000)  # about 2 s after the page was made
    stay = dialog.get_by_role("button", name="Stay logged in")
    expect(stay).to_be_focused()
    assert_accessible(page, "session warning")
    page.wait_for_timeout(1_500)
    before = _seconds_left(page)
    assert before <= WARNING_SECONDS
    stay.click()
    expect(dialog).to_be_hidden()
    assert _seconds_left(page) > before  # a fresh idle period
    expect(page.locator("#session-warning")).to_have_attribute(
        "data-extended-at", re.compile(r"^\d+$")
    )
