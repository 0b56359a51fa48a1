"""Helpers for the page tests: log in through the form, read hidden fields, submit forms."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.support.demo import DEMO_PASSWORD
from tests.support.helpers import eligibility, today


def hidden(page: str, name: str) -> str:
    """The value of the hidden input `name` in the page (the first one)."""
    match = re.search(
        rf'<input[^>]*name="{re.escape(name)}"[^>]*value="([^"]*)"', page
    ) or re.search(rf'<input[^>]*value="([^"]*)"[^>]*name="{re.escape(name)}"', page)
    assert match, f"no hidden input {name!r} in the page"
    return html.unescape(match.group(1))


def web_login(client: TestClient, username: str, password: str = DEMO_PASSWORD) -> str:
    """Log in through the login form; returns the session's CSRF token."""
    client.cookies.clear()
    page = client.get("/login")
    assert page.status_code == 200, page.text
    response = client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "csrf_token": hidden(page.text, "csrf_token"),
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_token(client)


def csrf_token(client: TestClient) -> str:
    """The session's CSRF token, read from the home page's logout form."""
    home = client.get("/")
    assert home.status_code == 200, home.text
    return hidden(home.text, "csrf_token")


def submit(
    client: TestClient, url: str, data: dict[str, Any], token: str, **kwargs: Any
) -> httpx.Response:
    """POST a form with the CSRF token, not following the redirect."""
    return client.post(url, data={**data, "csrf_token": token}, follow_redirects=False, **kwargs)


def field_error(page: str, name: str) -> str | None:
    """The error text shown next to field `name`, if any."""
    match = re.search(
        rf'<p class="field-error" id="{re.escape(name.replace(".", "-"))}-error">(.*?)</p>',
        page,
        re.S,
    )
    if not match:
        return None
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1))).replace("Error:", "").strip()


def eligible_form(weight_kg: str = "70.0", **overrides: str) -> dict[str, str]:
    """The randomize form of an eligible subject (the API's answers of tests.support.helpers, as a
    browser sends them: ticked boxes "on", unticked ones absent), dated today."""
    answers = eligibility()
    exclusions = answers.pop("exclusions")
    form = {k: "on" if v is True else str(v) for k, v in answers.items() if v is not False}
    form |= {f"exclusions.{k}": "on" for k, v in exclusions.items() if v}
    return {**form, "visit_date": today().isoformat(), "weight_kg": weight_kg, **overrides}


ISO_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
"""What a page must never show: machine time (docs/web.md shows 01-Dec-2026 21:42 UTC)."""


def visible_text(page: str, *, code: bool = False) -> str:
    """The page as read: no tags, scripts or styles (an input's value is not text); without
    `code`, no <code> either (data shown as recorded, e.g. the audit trail's JSON)."""
    hidden = "script|style" if code else "script|style|code"
    text = re.sub(rf"<({hidden})\b.*?</\1>", " ", page, flags=re.DOTALL | re.IGNORECASE)
    return html.unescape(re.sub(r"<[^>]+>", " ", text))


def iso_timestamps(response: httpx.Response) -> list[str]:
    """The ISO 8601 timestamps an HTML page shows (empty: none; other media are not pages)."""
    if not response.headers.get("content-type", "").startswith("text/html"):
        return []
    return ISO_TIMESTAMP.findall(visible_text(response.text))
