"""Discontinuing a subject from its page, as a coordinator does it: the button, the form, the
review (nothing recorded yet), the confirmation, and the subject page afterwards (status in
words, no dosing visit button, the change in the history). On both engines."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from playwright.sync_api import Page, expect

from app.db.engine import Database
from app.domain.roles import Role
from app.domain.study import load_study
from app.services import commands
from app.services.actor import Actor
from tests.browser.pages import assert_blinded, data_field, fill, heading, login, submit
from tests.support.builders import eligible_answers

Shot = Callable[[Page, str], Path]
COORDINATOR = Actor("coordinator", Role.SITE_COORDINATOR, frozenset({"DE01", "DE02"}))


def _randomized(db: Database) -> int:
    """Set-up through the use cases: the journey under test is the discontinuation."""
    subject = commands.register_subject(
        db=db,
        actor=COORDINATOR,
        retry=commands.Retry(key=None, lease_seconds=30),
        site_id="DE01",
        screening_number="DE01-LC01",
        sex="F",
        year_of_birth=1985,
    ).result
    commands.randomize(
        db=db,
        study=load_study(),
        actor=COORDINATOR,
        retry=commands.Retry(key="browser-lc01", lease_seconds=30),
        subject_id=subject.subject_id,
        visit_date=date.today(),
        weight_kg=Decimal("68.0"),
        answers=eligible_answers(screening_date=date.today() - timedelta(days=5)),
    )
    return subject.subject_id


def test_discontinue_from_the_subject_page(page: Page, demo_db: Database, screenshot: Shot) -> None:
    subject_id = _randomized(demo_db)
    login(page, "coordinator")
    page.goto(f"/subjects/{subject_id}")
    expect(page.locator('[data-field="status"]')).to_have_text("Randomized, dosing")
    with page.expect_navigation():
        page.get_by_role("link", name=re.compile("dosing discontinuation", re.I)).click()
    assert "discontinuation" in heading(page).lower()
    fill(
        page,
        {
            "reason_category": "adverse_event",
            "reason": "Persistent rash after the day 1 infusion",
        },
    )
    submit(page, re.compile(r"^review$", re.I))
    # the review: nothing recorded yet, the consequence stated
    assert data_field(page, "target") == "Stopped dosing (in follow-up)"
    expect(page.get_by_text(re.compile("no more kits", re.I))).to_be_visible()
    screenshot(page, "lifecycle-discontinue-review")
    submit(page, re.compile(r"confirm dosing discontinuation", re.I))
    expect(page).to_have_url(re.compile(r"/confirmations/\d+"))
    assert data_field(page, "subject_status") == "Stopped dosing (in follow-up)"
    assert_blinded(page, "discontinuation confirmation")
    screenshot(page, "lifecycle-discontinue-confirmation")

    page.goto(f"/subjects/{subject_id}")
    expect(page.locator('[data-field="status"]')).to_have_text("Stopped dosing (in follow-up)")
    expect(page.get_by_role("link", name=re.compile("record a dosing visit", re.I))).to_have_count(
        0
    )
    expect(page.locator('[data-field="status-history"]')).to_contain_text("Dosing discontinuation")
    expect(
        page.get_by_role("link", name=re.compile("undo the last status change", re.I))
    ).to_be_visible()
    assert_blinded(page, "subject page after discontinuation")
