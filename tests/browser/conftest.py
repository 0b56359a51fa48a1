"""Browser tests: Playwright for Python driving Debian's Chromium (launched by path, never a
browser download) against a real uvicorn server on a demo database, on SQLite and PostgreSQL.

Chromium is /usr/bin/chromium (Debian package `chromium`; `.ci/run` installs it) or the path in
IRT_CHROMIUM. When it is missing the tests are skipped, except under CI=true, where that fails.
Screenshots and PDFs go to $IRT_TEST_ARTIFACTS/screenshots (default test-artifacts/, gitignored);
a failed test also leaves a screenshot of every page it had open in .../failures.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from app.db.engine import Database
from tests.support.server import running_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("IRT_TEST_ARTIFACTS", ROOT / "test-artifacts")).resolve()
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 20_000
_saved: list[Path] = []
_cleaned: list[bool] = []
_FAILED = pytest.StashKey[bool]()

try:
    import playwright  # noqa: F401
except ImportError:  # the dev extra pins it; without it, as without Chromium: skip outside CI
    if os.environ.get("CI") == "true":
        raise
    collect_ignore_glob = ["test_*.py"]


def chromium_path() -> str | None:
    """Debian's Chromium, or IRT_CHROMIUM; None when neither is there."""
    configured = os.environ.get("IRT_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the browser tests cannot run: {reason}")
    pytest.skip(f"{reason} (allowed outside CI)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _saved:
        terminalreporter.write_line(f"browser test artifacts ({len(_saved)} files): {ARTIFACTS}")


def _fresh_artifacts() -> None:
    """Remove the screenshots and failures of an earlier run (once per run)."""
    if not _cleaned:
        for folder in (SCREENSHOTS, ARTIFACTS / "failures"):
            shutil.rmtree(folder, ignore_errors=True)
        _cleaned.append(True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module (closed before other modules run)."""
    _fresh_artifacts()
    executable = chromium_path()
    if executable is None:
        _unavailable("Chromium not found: apt-get install chromium, or set IRT_CHROMIUM")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def server(demo_db: Database, db_url: str) -> Iterator[str]:
    """A real uvicorn server on the demo study; yields its base URL. One worker process: the
    pages' behaviour does not depend on how many there are (tests/concurrency runs several),
    and each extra one costs every browser test a start-up."""
    with running_server(db_url, workers=1) as (base, _pid):
        yield base


def _engine(request: pytest.FixtureRequest) -> str:
    callspec = getattr(request.node, "callspec", None)
    return str(callspec.params.get("db_url", "db")) if callspec else "db"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


@pytest.fixture
def new_context(
    browser: Browser, server: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., BrowserContext]]:
    """Make a fresh browser context (own cookies: one per user) on the server; options are
    Playwright's (e.g. java_script_enabled=False). A failed test screenshots every open page."""
    contexts: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        options = {
            "base_url": server,
            "viewport": {"width": 1280, "height": 900},
            "locale": "en-GB",
            "timezone_id": "UTC",
            **options,
        }
        context = browser.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context

    yield make
    failed = request.node.stash.get(_FAILED, False)
    for number, context in enumerate(contexts):
        if failed:
            for index, page in enumerate(context.pages):
                name = f"{_slug(request.node.name)}-{number}-{index}.png"
                target = ARTIFACTS / "failures" / name
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    page.screenshot(path=str(target), full_page=True)
                    _saved.append(target)
                except Exception:  # a crashed page: the test's own error says more
                    pass
        context.close()


@pytest.fixture
def page(new_context: Callable[..., BrowserContext]) -> Page:
    """A page in a fresh context, for tests that need only one user."""
    return new_context().new_page()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """Save a full-page screenshot as a test artifact: screenshots/<engine>/<name>.png."""
    engine = _engine(request)

    def save(page: Page, name: str) -> Path:
        target = SCREENSHOTS / engine / f"{_slug(name)}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target), full_page=True)
        _saved.append(target)
        return target

    return save


@pytest.fixture
def artifact_path(request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """A path for another artifact (e.g. a PDF): screenshots/<engine>/<name>."""
    engine = _engine(request)

    def path(name: str) -> Path:
        target = SCREENSHOTS / engine / _slug(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        _saved.append(target)
        return target

    return path
