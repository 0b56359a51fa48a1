"""The supply manager and the pharmacist in the browser, on both engines: the supply manager
(without JavaScript) requests and ships a shipment; the pharmacist receives it with one damaged
kit through the review step; the supply pages are accessible and blinded."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect

from app.domain.date_display import format_date
from tests.browser.pages import (
    assert_accessible,
    assert_blinded,
    data_field,
    fill,
    heading,
    login,
    submit,
)
from tests.support.helpers import today

Shot = Callable[[Page, str], Path]
SUPPLY_PAGES = ("/supply", "/supply/shipments", "/supply/quarantine", "/supply/levels")


def test_supply_manager_ships_and_pharmacist_receives_with_review(
    new_context: Callable[..., BrowserContext], screenshot: Shot
) -> None:
    supply = new_context(java_script_enabled=False).new_page()
    login(supply, "supply")
    supply.get_by_role("navigation", name="Main").get_by_role("link", name="Supply").click()
    assert heading(supply) == "Supply"
    for path in (*SUPPLY_PAGES, "/supply/depots"):
        supply.goto(path)
        assert_accessible(supply, path)
        assert_blinded(supply, path)
        screenshot(supply, f"page-supply-{path.strip('/').replace('/', '-')}")

    supply.goto("/supply/shipments")
    with supply.expect_navigation():
        supply.get_by_role("link", name="Request a shipment").first.click()
    assert_accessible(supply, "request a shipment")
    fill(supply, {"site_id": "DE02", "kits_per_content": "2", "reason": "Two screenings planned."})
    submit(supply, re.compile(r"request shipment", re.I))
    expect(supply).to_have_url(re.compile(r"/supply/shipments/\d+"))
    assert data_field(supply, "status") == "requested" and data_field(supply, "kit_count") == "4"
    shipment_id = int(re.findall(r"/supply/shipments/(\d+)", supply.url)[0])
    submit(supply, f"Ship shipment {shipment_id}")
    assert data_field(supply, "status") == "shipped"
    assert_blinded(supply, "shipped shipment")
    screenshot(supply, "supply-shipment-shipped")

    pharmacist = new_context().new_page()
    login(pharmacist, "pharmacist")
    pharmacist.goto("/pharmacy/shipments")
    pharmacist.get_by_role("link", name=f"Receive shipment {shipment_id}", exact=True).click()
    kits = pharmacist.locator("fieldset legend").all_inner_texts()
    numbers = [m.group(1) for k in kits if (m := re.search(r"Kit (\w+)", k))]
    assert len(numbers) == 4, kits
    damaged = numbers[0]
    pharmacist.locator("fieldset", has_text=damaged).get_by_label("Damaged").check()
    fill(pharmacist, {"received_on": today().isoformat()})
    submit(pharmacist, re.compile(r"review receipt", re.I))

    assert heading(pharmacist) == f"Review the receipt of shipment {shipment_id}"
    assert_accessible(pharmacist, "receipt review")
    assert_blinded(pharmacist, "receipt review")
    assert data_field(pharmacist, "received") == "3"
    assert data_field(pharmacist, "damaged") == damaged
    assert data_field(pharmacist, "missing") == "none"
    assert data_field(pharmacist, "received_on") == format_date(today())
    assert data_field(pharmacist, "temperature_excursion") == "no"
    screenshot(pharmacist, "pharmacy-receive-review")
    submit(pharmacist, re.compile(r"confirm receipt", re.I))

    expect(pharmacist.locator('[data-field="status"]').first).to_have_text("received")
    expect(pharmacist.get_by_role("row", name=re.compile(damaged))).to_contain_text("damaged")
    for number in numbers[1:]:
        expect(pharmacist.get_by_role("row", name=re.compile(number))).to_contain_text("available")
    assert data_field(pharmacist, "received_on") == format_date(today())

    supply.goto(f"/supply/shipments/{shipment_id}")
    assert data_field(supply, "status") == "received"
    assert data_field(supply, "received_on") == format_date(today())
