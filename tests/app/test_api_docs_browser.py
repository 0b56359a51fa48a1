"""/docs and /redoc in Chromium on a real server: they render under their own policy, with no
violation, and nothing but Redoc's sidebar logo (blocked) is even asked of another host.

Drives Debian's Chromium by path (as tests/browser does); skipped when it or Playwright is
missing, except under CI=true, where that fails."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.db.engine import Database
from tests.support.server import running_server

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
"""Redoc 2's sidebar credit shows this image; the policy blocks it and Redoc hides it."""
WATCH_VIOLATIONS = """document.addEventListener("securitypolicyviolation", (e) =>
    console.error(`violation ${e.effectiveDirective} ${e.blockedURI}`));"""


def _chromium() -> str:
    path = os.environ.get("IRT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true and Chromium is missing")
        pytest.skip("Chromium not found (allowed outside CI)")
    return path


@pytest.fixture
def base(demo_db: Database, db_url: str) -> Iterator[str]:
    with running_server(db_url) as (url, _pid):
        yield url


def test_the_docs_render_in_a_browser_within_their_policy(base: str) -> None:
    if os.environ.get("CI") != "true":
        pytest.importorskip("playwright")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=_chromium(), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            errors: list[str] = []
            asked: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: asked.append(r.url))
            page.add_init_script(WATCH_VIOLATIONS)

            page.goto(f"{base}/docs")
            page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
            assert "IMC-002 IRT" in page.inner_text(".swagger-ui .info .title")
            assert len(page.query_selector_all(".opblock")) > 10
            assert errors == []

            page.goto(f"{base}/redoc")
            page.wait_for_selector("h1", timeout=20_000)
            page.fill("input[placeholder='Search...']", "randomize")
            page.wait_for_selector("[data-role='search:results'] li", timeout=10_000)
            assert "IMC-002 IRT" in page.inner_text("h1")
            styles = page.eval_on_selector_all(
                "style", "els => els.map(e => e.sheet ? e.sheet.cssRules.length : -1)"
            )
            assert styles and min(styles) > 0  # every style Redoc injects was applied
            assert [e for e in errors if REDOCLY_LOGO not in e] == []
            assert {u for u in asked if not u.startswith((base, "data:", "blob:"))} <= {
                REDOCLY_LOGO
            }
        finally:
            browser.close()
