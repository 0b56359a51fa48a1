"""The full journey in a real browser, on both engines: the coordinator registers and randomizes a
subject (checklist, review, confirmation that prints on one A4 page), the pharmacist dispenses
week 4, the investigator unblinds with the typed confirmation, the monitor sees it all."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect
from pypdf import PdfReader

from tests.browser.pages import (
    assert_blinded,
    assert_field_error,
    data_field,
    fill,
    heading,
    login,
    randomize_answers,
    subject_id,
    submit,
)
from tests.support.demo import DEMO_PASSWORD as PASSWORD
from tests.support.helpers import today

SCREENING = "DE01-B001"
CONFIRMATION_URL = re.compile(r"/confirmations/[^/?#]+$")
KIT = re.compile(r"\b[A-Z0-9]{6,12}\b")
TREATMENT = re.compile(r"IMC-002 0\.8 mg/kg|Placebo")

Shot = Callable[[Page, str], Path]


def assert_one_a4_page(page: Page, target: Path, must_show: str) -> None:
    """The page printed to A4 (print stylesheet) is exactly one page, shows `must_show` and
    leaves the navigation out."""
    pdf = page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
    target.write_bytes(pdf)
    reader = PdfReader(io.BytesIO(pdf))
    pages = len(reader.pages)
    assert pages == 1, f"the confirmation prints on {pages} pages ({target})"
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842), box  # A4 in pt
    text = reader.pages[0].extract_text()
    assert must_show in text, text
    assert "Log out" not in text, "the printed confirmation shows the navigation"


def coordinator_randomizes(page: Page, screenshot: Shot, pdf_path: Path) -> tuple[int, str]:
    """Register and randomize; returns (subject id, randomization number)."""
    login(page, "coordinator")
    assert_blinded(page, "home")
    screenshot(page, "01-home-coordinator")

    page.goto("/subjects/new")
    heading(page)
    fill(
        page,
        {"site_id": "DE01", "screening_number": SCREENING, "sex": "F", "year_of_birth": "1984"},
    )
    screenshot(page, "02-register")
    submit(page, re.compile(r"register", re.I))
    subject = subject_id(page, SCREENING)
    page.goto("/subjects")
    expect(page.get_by_role("row", name=re.compile(SCREENING))).to_contain_text(
        re.compile("registered", re.I)
    )
    assert_blinded(page, "subject list")
    screenshot(page, "03-subjects")

    page.goto(f"/subjects/{subject}/randomize")
    heading(page)
    fill(page, randomize_answers())
    screenshot(page, "04-randomize-checklist")
    submit(page, re.compile(r"review", re.I))
    # the review shows what will be submitted, and nothing has happened yet
    expect(page.locator("main")).to_contain_text("72.5")
    expect(page.locator("main")).to_contain_text(SCREENING)
    assert_blinded(page, "randomize review")
    screenshot(page, "05-randomize-review")
    submit(page, re.compile(r"confirm", re.I))

    expect(page).to_have_url(CONFIRMATION_URL)
    number = data_field(page, "randomization_number")
    assert re.fullmatch(r"IMC-\d{4}", number), number
    assert data_field(page, "stratum")
    assert "58.0" in data_field(page, "dose_mg")  # 72.5 kg x 0.8 mg/kg
    assert KIT.search(data_field(page, "kits"))
    assert_blinded(page, "randomization confirmation")
    screenshot(page, "06-randomize-confirmation")
    assert_one_a4_page(page, pdf_path, number)
    return subject, number


def pharmacist_dispenses_week_4(page: Page, subject: int, screenshot: Shot) -> None:
    login(page, "pharmacist")
    page.goto(f"/subjects/{subject}/dispense")
    heading(page)
    fill(page, {"visit": "W4", "visit_date": today().isoformat(), "weight_kg": "74"})
    screenshot(page, "07-dispense-form")
    submit(page, re.compile(r"assign kits|dispense", re.I))
    # the weight differs from the last dose's: the visit is reviewed before kits are assigned
    expect(page.get_by_role("heading", level=1)).to_contain_text(re.compile(r"review", re.I))
    expect(page.locator("main")).to_contain_text("unchanged: less than 10 % difference")
    assert_blinded(page, "dosing review")
    submit(page, re.compile(r"confirm and assign kits", re.I))
    expect(page).to_have_url(CONFIRMATION_URL)
    expect(page.locator("main")).to_contain_text("W4")
    assert KIT.search(data_field(page, "kits"))
    assert "58.0" in data_field(page, "dose_mg")  # 74 kg is within 10 %: the dose holds
    assert_blinded(page, "dispensing confirmation")
    screenshot(page, "08-dispense-confirmation")


def investigator_unblinds(page: Page, subject: int, screenshot: Shot) -> str:
    """Unblind with the typed confirmation (a mistyped one first); returns the treatment."""
    login(page, "investigator")
    page.goto(f"/subjects/{subject}/unblind")
    heading(page)
    assert_blinded(page, "unblind form")
    answers = {
        "reason_category": "adverse_event",
        "reason": "Severe infusion reaction; the treating physician needs the treatment.",
        "confirm_screening_number": "DE01-B999",
    }
    fill(page, answers)
    submit(page, re.compile(r"unblind", re.I))
    expect(page).not_to_have_url(CONFIRMATION_URL)
    assert_field_error(page, "confirm_screening_number")
    assert_blinded(page, "unblind form with an error")
    screenshot(page, "09-unblind-mistyped")

    fill(page, {**answers, "confirm_screening_number": SCREENING, "signature.password": PASSWORD})
    submit(page, re.compile(r"unblind", re.I))
    expect(page).to_have_url(CONFIRMATION_URL)
    treatment = data_field(page, "treatment")
    assert TREATMENT.fullmatch(treatment), treatment
    screenshot(page, "10-unblind-confirmation")
    return treatment


def monitor_sees_it(page: Page, number: str, treatment: str, screenshot: Shot) -> None:
    login(page, "monitor")
    page.goto("/monitor/allocations")
    heading(page)
    row = page.get_by_role("row", name=re.compile(number))
    expect(row).to_have_count(1)
    expect(row).to_contain_text(treatment.split(" ")[0])
    screenshot(page, "11-monitor-allocations")

    page.goto("/monitor/unblindings")
    heading(page)
    expect(page.get_by_role("row", name=re.compile(SCREENING))).to_have_count(1)
    screenshot(page, "12-monitor-unblindings")

    page.goto("/monitor/audit")
    heading(page)
    page.get_by_role("button", name=re.compile(r"verify", re.I)).click()
    expect(page.locator('[data-field="verify_result"]')).to_contain_text(re.compile("intact"))
    expect(page).to_have_url(re.compile(r"/monitor/audit$"))  # HTMX swapped the result in
    screenshot(page, "13-monitor-audit-verified")


def test_coordinator_pharmacist_investigator_monitor(
    new_context: Callable[..., BrowserContext],
    screenshot: Shot,
    artifact_path: Callable[[str], Path],
) -> None:
    coordinator = new_context().new_page()
    subject, number = coordinator_randomizes(
        coordinator, screenshot, artifact_path("06-randomize-confirmation.pdf")
    )
    pharmacist_dispenses_week_4(new_context().new_page(), subject, screenshot)
    treatment = investigator_unblinds(new_context().new_page(), subject, screenshot)
    monitor_sees_it(new_context().new_page(), number, treatment, screenshot)

    # the coordinator's confirmations list shows all three, and stays blinded
    coordinator.goto("/confirmations")
    heading(coordinator)
    expect(coordinator.locator("main")).to_contain_text(SCREENING)
    assert_blinded(coordinator, "confirmations list")
    screenshot(coordinator, "14-confirmations")
