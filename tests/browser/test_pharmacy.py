"""The pharmacist's pages in the browser, on both engines: receive a shipment kit by kit
(damaged, missing) through the review step, see the site's inventory, replace a damaged kit of
a subject."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from app.db.engine import Database
from app.domain.study import load_study
from app.services.demo import set_up_demo
from tests.browser.pages import (
    assert_accessible,
    assert_blinded,
    data_field,
    fill,
    login,
    randomize_answers,
    subject_id,
    submit,
)
from tests.support.demo import DEMO_KITS, DEMO_LEVELS, DEMO_PASSWORD, DEMO_SEED
from tests.support.server import running_server

Shot = Callable[[Page, str], Path]


@pytest.fixture
def server(db: Database, db_url: str) -> Iterator[str]:
    """The demo study with DE02's initial shipment shipped but not yet received."""
    set_up_demo(
        db,
        study=load_study(),
        password=DEMO_PASSWORD,
        seed=DEMO_SEED,
        kits_per_content=DEMO_KITS,
        site_levels=DEMO_LEVELS,
        in_transit_site="DE02",
    )
    with running_server(db_url) as (base, _pid):
        yield base


def receive_with_damaged_and_missing(page: Page, screenshot: Shot) -> tuple[str, str]:
    """Receive DE02's shipment, one kit damaged and one missing; returns their numbers."""
    page.goto("/pharmacy/shipments")
    assert_blinded(page, "shipments")
    with page.expect_navigation():
        page.get_by_role("link", name=re.compile(r"receive shipment", re.I)).first.click()
    assert_accessible(page, "receive shipment")
    assert_blinded(page, "receive shipment")
    kits = page.locator("fieldset legend").all_inner_texts()
    numbers = [m.group(1) for k in kits if (m := re.search(r"Kit (\w+)", k))]
    assert len(numbers) >= 3, kits
    damaged, missing = numbers[0], numbers[1]
    page.locator("fieldset", has_text=damaged).get_by_label("Damaged").check()
    page.locator("fieldset", has_text=missing).get_by_label("Missing").check()
    screenshot(page, "pharmacy-receive-form")
    submit(page, re.compile(r"review receipt", re.I))
    expect(page.locator('[data-field="damaged"]')).to_have_text(damaged)
    expect(page.locator('[data-field="missing"]')).to_have_text(missing)
    submit(page, re.compile(r"confirm receipt", re.I))

    expect(page.locator('[data-field="status"]').first).to_contain_text("received")
    expect(page.get_by_role("row", name=re.compile(damaged))).to_contain_text("damaged")
    expect(page.get_by_role("row", name=re.compile(missing))).to_contain_text("missing")
    expect(page.get_by_role("row", name=re.compile(numbers[2]))).to_contain_text("received")
    assert_blinded(page, "received shipment")
    screenshot(page, "pharmacy-receive-done")
    return damaged, missing


def test_receipt_inventory_and_kit_replacement(
    new_context: Callable[..., BrowserContext], screenshot: Shot
) -> None:
    pharmacist = new_context().new_page()
    login(pharmacist, "pharmacist")
    pharmacist.goto("/pharmacy?site_id=DE02")
    expect(pharmacist.locator('[data-field="dispensable"]')).to_have_text("0")
    damaged, missing = receive_with_damaged_and_missing(pharmacist, screenshot)

    pharmacist.goto("/pharmacy")
    pharmacist.get_by_label("Site").select_option("DE02")
    with pharmacist.expect_navigation():
        pharmacist.get_by_role("button", name=re.compile(r"show", re.I)).click()
    expect(pharmacist.locator("h1")).to_contain_text("DE02")
    assert int(data_field(pharmacist, "dispensable")) > 0
    assert_blinded(pharmacist, "pharmacy inventory")
    screenshot(pharmacist, "pharmacy-inventory-DE02")

    # a subject at DE02 is randomized, then its day-1 kit turns out damaged
    coordinator = new_context().new_page()
    login(coordinator, "coordinator")
    coordinator.goto("/subjects/new")
    fill(
        coordinator,
        {"site_id": "DE02", "screening_number": "DE02-R001", "sex": "M", "year_of_birth": "1975"},
    )
    submit(coordinator, re.compile(r"register", re.I))
    subject = subject_id(coordinator, "DE02-R001")
    coordinator.goto(f"/subjects/{subject}/randomize")
    fill(coordinator, randomize_answers(weight_kg="80"))
    submit(coordinator, re.compile(r"review", re.I))
    submit(coordinator, re.compile(r"confirm", re.I))
    kit = data_field(coordinator, "kits")
    assert kit not in (damaged, missing)

    pharmacist.goto(f"/subjects/{subject}")
    with pharmacist.expect_navigation():
        pharmacist.get_by_role("link", name=re.compile(rf"replace\s+kit {kit}", re.I)).click()
    assert_accessible(pharmacist, "replace kit")
    fill(pharmacist, {"status": "damaged", "reason": "Vial dropped during preparation."})
    screenshot(pharmacist, "pharmacy-replace-form")
    submit(pharmacist, re.compile(rf"replace kit {kit}", re.I))
    expect(pharmacist).to_have_url(re.compile(r"/confirmations/"))
    assert data_field(pharmacist, "replaced_kit") == kit
    new_kit = data_field(pharmacist, "kits")
    assert new_kit != kit and re.fullmatch(r"[A-Z0-9]{6,12}", new_kit), new_kit
    assert_blinded(pharmacist, "replacement confirmation")
    screenshot(pharmacist, "pharmacy-replace-confirmation")
