"""Visit window pages: the schedule on the subject page, the dosing form's next due visit and its
investigator-only override, a missed visit recorded from the page, the visit report, and the
review step before a cohort is closed."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from app.db.engine import Database
from tests.support.api import assert_blinded
from tests.support.databases import assert_unchanged, snapshot
from tests.support.demo import DEMO_PASSWORD
from tests.support.helpers import login, today
from tests.support.supply import randomize_on
from tests.web.support import field_error, hidden, submit, web_login

REASON = "the subject was in hospital, visit could not take place"


def test_schedule_override_and_missed_visit_pages(client: TestClient, demo_db: Database) -> None:
    coordinator = login(client, "coordinator")
    day_one = today() - timedelta(days=62)  # W4 and W8 overdue, W12 to come
    subject_id, _ = randomize_on(client, coordinator, "DE01", day_one)
    token = web_login(client, "coordinator")
    page = client.get(f"/subjects/{subject_id}")
    assert_blinded(page, "subject page")
    assert 'data-visit="W8" data-state="overdue"' in page.text
    assert 'data-visit="W12" data-state="upcoming"' in page.text
    assert f"/subjects/{subject_id}/visits/W8/missed" in page.text
    form = client.get(f"/subjects/{subject_id}/dispense")
    # the first overdue visit, under its own name: dosed late by override, or recorded missed
    assert '<option value="W4" selected>' in form.text
    assert 'name="window_override_reason"' not in form.text  # investigators only

    data = {
        "visit": "W8",
        "visit_date": today().isoformat(),
        "weight_kg": "70.0",
        "idempotency_key": hidden(form.text, "idempotency_key"),
    }
    before = snapshot(demo_db)
    refused = submit(client, f"/subjects/{subject_id}/dispense", data, token)
    message = field_error(refused.text, "visit_date") or ""
    assert refused.status_code == 409 and "outside its window" in message
    assert (day_one + timedelta(days=59)).strftime("%d-%b-%Y") in message  # the window's last day
    assert_unchanged(demo_db, before)

    missed = submit(client, f"/subjects/{subject_id}/visits/W4/missed", {"reason": "short"}, token)
    assert missed.status_code == 422 and field_error(missed.text, "reason")
    done = submit(client, f"/subjects/{subject_id}/visits/W4/missed", {"reason": REASON}, token)
    assert done.status_code == 303 and done.headers["location"] == f"/subjects/{subject_id}"
    page = client.get(f"/subjects/{subject_id}")
    assert 'data-visit="W4" data-state="missed"' in page.text and REASON in page.text

    token = web_login(client, "investigator")
    form = client.get(f"/subjects/{subject_id}/dispense")
    assert 'name="window_override_reason"' in form.text
    data["idempotency_key"] = hidden(form.text, "idempotency_key")
    data["window_override_reason"] = "the infusion was delayed by an infection, now resolved"
    dosed = submit(client, f"/subjects/{subject_id}/dispense", data, token)
    assert dosed.status_code == 303 and dosed.headers["location"].startswith("/confirmations/")

    report = client.get("/reports/visits?site_id=DE01")
    assert_blinded(report, "visit report")
    assert 'data-state="missed"' in report.text and REASON in report.text
    csv = client.get("/reports/visits.csv?site_id=DE01")
    assert csv.status_code == 200 and "missed" in csv.text


def test_closing_a_cohort_is_reviewed_before_it_is_signed(
    client: TestClient, demo_db: Database
) -> None:
    token = web_login(client, "sponsor")
    cohorts = client.get("/admin/cohorts")
    assert 'action="/admin/cohorts/C1/close/review"' in cohorts.text
    before = snapshot(demo_db)
    short = submit(client, "/admin/cohorts/C1/close/review", {"C1.close.reason": "x"}, token)
    assert short.status_code == 422 and field_error(short.text, "C1.close.reason")
    reason = "safety review committee, meeting 1"
    review = submit(client, "/admin/cohorts/C1/close/review", {"C1.close.reason": reason}, token)
    assert review.status_code == 200 and "cannot be undone" in review.text
    assert hidden(review.text, "C1.close.reason") == reason
    assert_unchanged(demo_db, before)  # nothing done by the review
    signed = {
        "C1.close.reason": reason,
        "C1.close.signature.meaning": hidden(review.text, "C1.close.signature.meaning"),
        "C1.close.signature.password": DEMO_PASSWORD,
    }
    closed = submit(client, "/admin/cohorts/C1/close", signed, token)
    assert closed.status_code == 303
    assert 'data-field="status">closed' in client.get("/admin/cohorts").text
