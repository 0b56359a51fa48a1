"""What a user does in the browser, written once: log in, fill a form by its field names (each
field must have a label), read the values a confirmation marks with data-field, check that a
blinded user's page leaks nothing."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from playwright.sync_api import Locator, Page, expect

from tests.support.api import LEAK_TEXT
from tests.support.demo import DEMO_PASSWORD
from tests.support.helpers import today

EXCLUSIONS = (
    "active_or_unstable_neuropsychiatric_sle",
    "active_or_unstable_lupus_nephritis",
    "other_autoimmune_disease",
    "uncontrolled_medical_condition",
    "active_severe_infection",
    "malignancy_within_5_years",
)


def days_ago(days: int) -> str:
    return (today() - timedelta(days=days)).isoformat()


def field(page: Page, name: str) -> Locator:
    """The one visible form control named `name`; it must have a <label for> (accessibility)."""
    control = page.locator(f'[name="{name}"]:not([type="hidden"])')
    expect(control).to_have_count(1)
    labels = control.evaluate("el => Array.from(el.labels || []).map(l => l.innerText.trim())")
    assert labels and all(labels), f"form field {name!r} has no label"
    return control


def fill(page: Page, values: dict[str, Any]) -> None:
    """Fill each named field: text and dates are typed, selects chosen by value (or label),
    checkboxes set to the boolean given, radio groups set to the value given."""
    for name, value in values.items():
        radios = page.locator(f'input[type="radio"][name="{name}"]')
        if radios.count():
            page.locator(f'input[type="radio"][name="{name}"][value="{value}"]').check()
            continue
        control = field(page, name)
        tag = control.evaluate("el => el.tagName.toLowerCase()")
        kind = control.get_attribute("type") or ""
        if tag == "select":
            options = control.locator("option").evaluate_all(
                "os => os.map(o => [o.value, o.textContent.trim()])"
            )
            if str(value) in [v for v, _ in options]:
                control.select_option(value=str(value))
            else:
                control.select_option(label=str(value))
        elif kind == "checkbox":
            control.set_checked(bool(value))
        else:
            control.fill(str(value))


def login(page: Page, username: str, password: str = DEMO_PASSWORD) -> None:
    """Log in through the login form and wait until the browser has left it."""
    page.goto("/login")
    fill(page, {"username": username, "password": password})
    page.get_by_role("button", name=re.compile(r"log\s*in|sign\s*in", re.I)).click()
    expect(page).not_to_have_url(re.compile(r"/login"))


def logout(page: Page) -> None:
    page.get_by_role("button", name=re.compile(r"log\s*out|sign\s*out", re.I)).click()
    expect(page).to_have_url(re.compile(r"/login"))


def submit(page: Page, name: str | re.Pattern[str]) -> None:
    """Click the button with this visible name (a regex or a case-insensitive substring)."""
    pattern = name if isinstance(name, re.Pattern) else re.compile(re.escape(name), re.I)
    with page.expect_navigation():
        page.get_by_role("button", name=pattern).click()


def data_field(page: Page, name: str) -> str:
    """The text of the first element marked data-field=name (must be there and not empty)."""
    marked = page.locator(f'[data-field="{name}"]').first
    expect(marked).to_be_visible()
    text = marked.inner_text().strip()
    assert text, f"data-field {name!r} is empty"
    return text


def heading(page: Page) -> str:
    """The page's one <h1>, inside <main>."""
    expect(page.locator("h1")).to_have_count(1)
    expect(page.locator("main h1")).to_have_count(1)
    return page.locator("h1").inner_text().strip()


def assert_blinded(page: Page, where: str) -> None:
    """The page a blinded user sees names no arm or treatment."""
    text = page.content().lower()
    leaked = [word for word in LEAK_TEXT if word in text]
    assert not leaked, f"{where}: a blinded page contains {leaked}"


def subject_id(page: Page, screening_number: str) -> int:
    """Open the subject from the site's subject list; return its id from the detail URL."""
    page.goto("/subjects")
    page.get_by_role("link", name=re.compile(re.escape(screening_number))).first.click()
    match = re.search(r"/subjects/(\d+)", page.url)
    assert match, page.url
    return int(match.group(1))


def randomize_answers(weight_kg: str = "72.5", visit_days_ago: int = 28) -> dict[str, Any]:
    """An eligible subject (stratum SLEDAI<10 / PRED<10), day 1 `visit_days_ago` days back so that
    the week 4 visit falls on today."""
    answers: dict[str, Any] = {
        "visit_date": days_ago(visit_days_ago),
        "weight_kg": weight_kg,
        "sle_diagnosis_date": days_ago(400),
        "screening_date": days_ago(visit_days_ago + 7),
        "sledai_2k_score": "8",
        "bilag_a_count": "1",
        "bilag_b_count": "0",
        "on_soc_medication": True,
        "prednisone_equivalent_mg_per_day": "7.5",
    }
    answers.update({f"exclusions.{key}": False for key in EXCLUSIONS})
    return answers


def tab_to(page: Page, is_target: str, what: str, max_tabs: int = 60) -> None:
    """Press Tab until `is_target` (a JS function of the focused element) is true; no key at
    all when it already has the focus (e.g. an autofocus field)."""
    for _ in range(max_tabs + 1):
        if page.evaluate(f"() => ({is_target})(document.activeElement)"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{what} is not reachable with the Tab key")


def tab_to_field(page: Page, name: str) -> None:
    tab_to(page, f"el => el && el.name === {name!r}", f"field {name!r}")


def assert_focus_visible(page: Page) -> None:
    """The focused element shows a focus indicator (an outline or a box shadow)."""
    visible = page.evaluate(
        """() => {
            const s = getComputedStyle(document.activeElement);
            return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0)
                || (s.boxShadow && s.boxShadow !== 'none');
        }"""
    )
    assert visible, "the focused element has no visible focus indicator"


def assert_field_error(page: Page, name: str) -> str:
    """The field is described by a visible error message placed next to it (within 200 px),
    and a summary with role=alert is shown; returns the message."""
    control = field(page, name)
    ids = (control.get_attribute("aria-describedby") or "").split()
    messages = [page.locator(f'[id="{i}"]') for i in ids]
    messages = [m for m in messages if m.count() and m.inner_text().strip()]
    assert messages, f"field {name!r} is not described by an error message (aria-describedby)"
    box = control.bounding_box()
    message = messages[-1]
    near = message.bounding_box()
    assert box and near, f"field {name!r} or its message is not displayed"
    gap = max(near["y"] - (box["y"] + box["height"]), box["y"] - (near["y"] + near["height"]))
    assert gap < 200, f"the error of {name!r} is {gap:.0f} px away from the field"
    expect(page.get_by_role("alert").first).to_be_visible()
    return message.inner_text().strip()


ACCESSIBILITY_PROBLEMS = """() => {
    const problems = [];
    for (const el of document.querySelectorAll(
            'input:not([type=hidden]), select, textarea')) {
        if (!el.labels || !el.labels.length || !el.labels[0].innerText.trim())
            problems.push(`no label: ${el.tagName.toLowerCase()} ${el.name}`);
    }
    for (const th of document.querySelectorAll('th'))
        if (!th.getAttribute('scope')) problems.push(`th without scope: ${th.innerText}`);
    for (const b of document.querySelectorAll('button, input[type=submit]'))
        if (!(b.innerText || b.value || '').trim()) problems.push('a button without a name');
    if (document.querySelectorAll('main').length !== 1) problems.push('not one <main>');
    if (document.querySelectorAll('h1').length !== 1) problems.push('not one <h1>');
    if (!document.documentElement.lang) problems.push('no lang on <html>');
    if (!document.title.trim()) problems.push('no <title>');
    return problems;
}"""


def assert_accessible(page: Page, where: str) -> None:
    """Labels on every control, th scope, named buttons, one <main> and one <h1>, a title.
    Called right after a click on a link, the page may still be between documents: wait for
    the new one to load first."""
    page.wait_for_load_state("load")
    page.locator("main").first.wait_for()
    problems = page.evaluate(ACCESSIBILITY_PROBLEMS)
    assert not problems, f"{where}: {problems}"
