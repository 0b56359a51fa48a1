"""A data correction on the subject page, as a coordinator makes it in Chromium: the form, the
review with the value as it stands and the signature's meaning, a wrong password, the signed
correction listed on the subject page; on both engines."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.pages import assert_blinded, data_field, fill, heading, login, submit
from tests.support.demo import DEMO_PASSWORD

Shot = Callable[[Page, str], Path]


def test_coordinator_corrects_a_year_of_birth(page: Page, screenshot: Shot) -> None:
    login(page, "coordinator")
    page.goto("/subjects/new")
    fill(
        page,
        {"site_id": "DE01", "screening_number": "DE01-C001", "sex": "F", "year_of_birth": "1918"},
    )
    submit(page, "Register")
    expect(page).to_have_url(re.compile(r"/subjects/\d+$"))
    page.get_by_role("link", name="Correct the data").click()
    assert heading(page).startswith("Correct the data of subject DE01-C001")
    fill(
        page,
        {
            "field": "year_of_birth",
            "new_value": "1981",
            "reason": "typing error, checked against the ID card",
        },
    )
    submit(page, "Review")
    assert data_field(page, "old_value") == "1918"
    assert data_field(page, "new_value") == "1981"
    assert "I approve the correction of" in data_field(page, "meaning")
    screenshot(page, "corrections-01-review")
    fill(page, {"signature.password": "not-my-password"})
    submit(page, "Sign and correct")
    expect(page.locator("#signature-password-error")).to_be_visible()
    fill(page, {"signature.password": DEMO_PASSWORD})
    submit(page, "Sign and correct")
    expect(page).to_have_url(re.compile(r"/subjects/\d+#corrections$"))
    table = page.locator('[data-field="corrections"]')
    expect(table).to_contain_text("typing error, checked against the ID card")
    expect(table).to_contain_text("1918")
    expect(page.locator("main")).to_contain_text("F, 1981")
    assert_blinded(page, "subject page after a correction")
    screenshot(page, "corrections-02-subject")
