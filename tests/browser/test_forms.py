"""The forms as people use them: with the keyboard only, with a mistake, without JavaScript;
logging in and out; on both engines."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.pages import (
    assert_blinded,
    assert_field_error,
    assert_focus_visible,
    data_field,
    fill,
    heading,
    login,
    logout,
    randomize_answers,
    subject_id,
    submit,
    tab_to,
    tab_to_field,
)
from tests.support.demo import DEMO_PASSWORD

Shot = Callable[[Page, str], Path]


def type_into(page: Page, name: str, text: str) -> None:
    tab_to_field(page, name)
    assert_focus_visible(page)
    page.keyboard.type(text)


def test_keyboard_only_login_and_registration(page: Page, screenshot: Shot) -> None:
    page.goto("/login")
    type_into(page, "username", "coordinator")
    type_into(page, "password", DEMO_PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page).not_to_have_url(re.compile(r"/login"))

    page.goto("/subjects/new")
    # a select takes typed text too (type-ahead), as a keyboard user chooses
    for name, text in (("site_id", "DE01"), ("screening_number", "DE01-K001")):
        type_into(page, name, text)
    tab_to_field(page, "sex")
    assert_focus_visible(page)
    if page.evaluate("() => document.activeElement.type") == "radio":
        page.keyboard.press("Space")  # the first radio (F) is focused: select it
    else:
        page.keyboard.type("F")
    type_into(page, "year_of_birth", "1990")
    values = page.evaluate(
        """() => Object.fromEntries(['site_id', 'screening_number', 'year_of_birth']
            .map(n => [n, document.querySelector(`[name="${n}"]:not([type=hidden])`).value]))"""
    )
    assert values == {
        "site_id": "DE01",
        "screening_number": "DE01-K001",
        "year_of_birth": "1990",
    }, values
    screenshot(page, "kb-register-filled")
    tab_to(
        page,
        "el => el && (el.tagName === 'BUTTON' || el.type === 'submit')"
        " && /register/i.test(el.innerText || el.value)",
        "the Register button",
    )
    assert_focus_visible(page)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    subject_id(page, "DE01-K001")  # registered: it is in the site's list


def test_errors_are_shown_next_to_the_field_and_change_nothing(
    page: Page, screenshot: Shot
) -> None:
    login(page, "coordinator")
    page.goto("/subjects/new")
    # the server's own validation, not the browser's: switch the HTML constraints off
    page.evaluate("() => document.querySelectorAll('form').forEach(f => f.noValidate = true)")
    fill(
        page,
        {"site_id": "DE01", "screening_number": "DE01 E01", "sex": "F", "year_of_birth": "1850"},
    )
    submit(page, re.compile(r"register", re.I))
    assert_field_error(page, "screening_number")
    assert_field_error(page, "year_of_birth")
    # what was typed is kept, for the user to correct
    expect(page.locator('[name="screening_number"]')).to_have_value("DE01 E01")
    screenshot(page, "error-register-fields")
    page.goto("/subjects")
    expect(page.locator("main")).not_to_contain_text("DE01 E01")

    # a service refusal lands next to its field too: an ineligible subject is not randomized
    page.goto("/subjects/new")
    fill(
        page,
        {"site_id": "DE01", "screening_number": "DE01-E02", "sex": "M", "year_of_birth": "1970"},
    )
    submit(page, re.compile(r"register", re.I))
    subject = subject_id(page, "DE01-E02")
    page.goto(f"/subjects/{subject}/randomize")
    fill(page, {**randomize_answers(), "sledai_2k_score": "4"})
    submit(page, re.compile(r"review", re.I))
    if page.get_by_role("alert").count() == 0:  # checked at the final step, not the review
        submit(page, re.compile(r"confirm", re.I))
    expect(page.get_by_role("alert").first).to_contain_text(re.compile(r"SLEDAI", re.I))
    assert_blinded(page, "ineligible randomization")
    screenshot(page, "error-randomize-ineligible")
    page.goto(f"/subjects/{subject}")
    expect(page.locator("main")).to_contain_text(re.compile("registered", re.I))


def test_randomization_without_javascript(
    new_context: Callable[..., BrowserContext], screenshot: Shot
) -> None:
    page = new_context(java_script_enabled=False).new_page()
    login(page, "coordinator")
    page.goto("/subjects/new")
    fill(
        page,
        {"site_id": "DE02", "screening_number": "DE02-N001", "sex": "F", "year_of_birth": "1979"},
    )
    submit(page, re.compile(r"register", re.I))
    subject = subject_id(page, "DE02-N001")
    page.goto(f"/subjects/{subject}/randomize")
    fill(page, randomize_answers(weight_kg="64"))
    submit(page, re.compile(r"review", re.I))
    submit(page, re.compile(r"confirm", re.I))
    expect(page).to_have_url(re.compile(r"/confirmations/"))
    assert re.fullmatch(r"IMC-\d{4}", data_field(page, "randomization_number"))
    # 64 kg x 0.8 mg/kg = 51.2 mg = 5.12 mL, drawn as 5.1 mL: 51.0 mg
    assert "51.0" in data_field(page, "dose_mg")
    assert_blinded(page, "confirmation without JavaScript")
    screenshot(page, "nojs-randomize-confirmation")
    logout(page)


def test_login_redirects_back_and_logout_ends_the_session(
    new_context: Callable[..., BrowserContext], screenshot: Shot
) -> None:
    context = new_context()
    page = context.new_page()
    page.goto("/subjects")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    heading(page)
    screenshot(page, "login")
    fill(page, {"username": "coordinator", "password": "not-the-password"})
    submit(page, re.compile(r"log\s*in|sign\s*in", re.I))
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.get_by_role("alert").first).to_be_visible()
    assert not [c for c in context.cookies() if c["name"] == "irt_session"]

    fill(page, {"username": "coordinator", "password": DEMO_PASSWORD})
    submit(page, re.compile(r"log\s*in|sign\s*in", re.I))
    expect(page).to_have_url(re.compile(r"/subjects$"))
    cookie = next(c for c in context.cookies() if c["name"] == "irt_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie
    expect(page.get_by_text("coordinator").first).to_be_visible()  # the logged-in user

    logout(page)
    assert not [c for c in context.cookies() if c["name"] == "irt_session"]
    page.goto("/subjects")
    expect(page).to_have_url(re.compile(r"/login"))


def test_a_confirmation_submitted_twice_randomizes_once(
    new_context: Callable[..., BrowserContext], screenshot: Shot
) -> None:
    """The review form's one-time key: a first submission whose answer was lost, then the
    user's own click, give one randomization and the same confirmation."""
    context = new_context()
    page = context.new_page()
    login(page, "coordinator")
    page.goto("/subjects/new")
    fill(
        page,
        {"site_id": "DE01", "screening_number": "DE01-D001", "sex": "F", "year_of_birth": "1988"},
    )
    submit(page, re.compile(r"register", re.I))
    subject = subject_id(page, "DE01-D001")
    page.goto(f"/subjects/{subject}/randomize")
    fill(page, randomize_answers())
    submit(page, re.compile(r"review", re.I))

    form = page.locator(f'form[action="/subjects/{subject}/randomize"]')
    body = form.evaluate("f => new URLSearchParams(new FormData(f)).toString()")
    first = context.request.post(
        f"/subjects/{subject}/randomize",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        max_redirects=0,
    )
    assert first.status == 303, first.text()
    submit(page, re.compile(r"confirm", re.I))
    assert page.url.endswith(first.headers["location"]), (page.url, first.headers)

    page.goto("/confirmations")
    rows = page.get_by_role("row", name=re.compile(r"Randomization confirmation.*DE01-D001"))
    expect(rows).to_have_count(1)
    screenshot(page, "double-submit-confirmations")
