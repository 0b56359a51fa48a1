"""A training database says so on every page, printed too; the sponsor moves the unused places
of a closed cohort to phase II through the review step and a signature. Both engines."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from app.db.engine import Database
from app.domain.environment import Mode
from app.domain.study import load_study
from app.services.demo import set_up_demo
from tests.browser.pages import data_field, fill, heading, login, submit
from tests.support.caps import randomize_many, stage
from tests.support.demo import DEMO_KITS, DEMO_LEVELS, DEMO_PASSWORD, DEMO_SEED
from tests.support.server import running_server

Shot = Callable[[Page, str], Path]


@pytest.fixture
def server(db: Database, db_url: str) -> Iterator[str]:
    """A training demo (as `irt demo` sets it up) with cohort C1 closed after 3 subjects."""
    set_up_demo(
        db,
        study=load_study(),
        password=DEMO_PASSWORD,
        seed=DEMO_SEED,
        kits_per_content=DEMO_KITS,
        site_levels=DEMO_LEVELS,
        in_transit_site=None,
        mode=Mode.TRAINING,
    )
    randomize_many(db, 3, prefix="C1")
    stage(db, ("C1", "close"))
    with running_server(db_url) as (base, _pid):
        yield base


def test_training_banner_on_every_page_and_caps_moved_with_review(
    page: Page, screenshot: Shot
) -> None:
    page.goto("/login")
    expect(page.locator(".training-banner")).to_contain_text("TRAINING")
    login(page, "sponsor")
    for url in ("/", "/admin/cohorts", "/admin/caps", "/admin/study-versions"):
        page.goto(url)
        expect(page.locator(".training-banner")).to_contain_text("TRAINING")
        assert page.title().startswith("TRAINING")
    page.emulate_media(media="print")
    expect(page.locator(".training-banner")).to_be_visible()
    page.emulate_media(media="screen")

    page.goto("/admin/caps")
    assert heading(page) == "Randomization caps"
    fill(page, {"reason": "DSMB: C1 stopped after 3 subjects"})
    submit(page, "Move every unused place")
    expect(page.locator('input[name="cap.C1"]')).to_have_value("3")
    expect(page.locator('input[name="cap.P2"]')).to_have_value("199")
    submit(page, "Review the change")
    assert heading(page) == "Review the change of caps"
    expect(page.locator('tr[data-scope="P2"] [data-field="after"]')).to_have_text("199")
    assert "218 of 218" in data_field(page, "total-after")
    screenshot(page, "caps-review")
    fill(page, {"signature.password": DEMO_PASSWORD})
    submit(page, "Sign and change the caps")
    expect(page).to_have_url(re.compile(r"/admin/caps\?done=1"))
    expect(page.locator('tr[data-scope="C1"] [data-field="unused"]')).to_have_text("0")
    expect(page.locator('input[name="cap.P2"]')).to_have_value("199")
    screenshot(page, "caps-moved")
