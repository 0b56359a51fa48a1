"""Every main page, opened in the browser by the role it is for: it renders (200), is accessible
(labels, th scope, one <main> and <h1>), stays blinded for blinded roles, and is saved as a
screenshot; a page for another role answers 403."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import BrowserContext, Page

from tests.browser.pages import assert_accessible, assert_blinded, login

PAGES: dict[str, tuple[str, ...]] = {
    "coordinator": ("/", "/subjects", "/subjects/new", "/confirmations", "/reports/enrolment"),
    "pharmacist": ("/", "/pharmacy", "/pharmacy/shipments", "/reports/inventory"),
    "sponsor": ("/", "/admin/sites", "/admin/cohorts", "/admin/phase2-dose"),
    "monitor": (
        "/",
        "/monitor/allocations",
        "/monitor/unblindings",
        "/monitor/audit",
        "/reports/enrolment",
        "/reports/unblindings",
    ),
}
UNBLINDED = {"monitor"}
REFUSED: dict[str, tuple[str, ...]] = {
    "coordinator": ("/pharmacy", "/monitor/allocations", "/admin/cohorts"),
    "pharmacist": ("/monitor/allocations", "/monitor/audit", "/admin/sites"),
    "sponsor": ("/monitor/allocations", "/subjects/new"),
}


def test_main_pages_render_accessibly_and_blinded(
    new_context: Callable[..., BrowserContext], screenshot: Callable[[Page, str], Path]
) -> None:
    failures: list[str] = []
    for user, paths in PAGES.items():
        page = new_context().new_page()
        login(page, user)
        for path in paths:
            response = page.goto(path)
            where = f"{user} {path}"
            if response is None or response.status != 200:
                failures.append(f"{where}: HTTP {response.status if response else '-'}")
                continue
            screenshot(page, f"page-{user}-{path.strip('/').replace('/', '-') or 'home'}")
            try:
                assert_accessible(page, where)
                if user not in UNBLINDED:
                    assert_blinded(page, where)
            except AssertionError as exc:
                failures.append(str(exc))
        for path in REFUSED.get(user, ()):
            response = page.goto(path)
            if response is None or response.status != 403:
                failures.append(f"{user} {path}: not refused ({response and response.status})")
            elif user not in UNBLINDED:
                assert_blinded(page, f"{user} {path} (refused)")
    assert not failures, "\n".join(failures)
