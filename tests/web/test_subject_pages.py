"""Subject pages on both engines: register, randomize (review, confirm, double submit),
dosing visit, emergency unblinding, confirmations (page, API, outbox)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from app.db.engine import Database
from tests.support.api import assert_blinded
from tests.support.databases import assert_attempt_recorded, assert_unchanged, snapshot
from tests.support.demo import DEMO_PASSWORD
from tests.support.helpers import login, randomize, randomize_body, register, today
from tests.web.support import eligible_form, field_error, hidden, submit, web_login

ELIGIBLE = eligible_form(weight_kg="70,5")


def _register_page(client: TestClient, token: str, number: str) -> int:
    form = client.get("/subjects/new")
    assert form.status_code == 200
    data = {
        "site_id": "DE01",
        "screening_number": number,
        "sex": "F",
        "year_of_birth": "1980",
        "idempotency_key": hidden(form.text, "idempotency_key"),
    }
    response = submit(client, "/subjects/new", data, token)
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/subjects/(\d+)", response.headers["location"])
    assert match
    return int(match.group(1))


def _confirmation_id(response: Any) -> int:
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/confirmations/(\d+)", response.headers["location"])
    assert match, response.headers["location"]
    return int(match.group(1))


def _field(page: str, name: str) -> str:
    match = re.search(rf'data-field="{name}">(.*?)</td>', page, re.S)
    assert match, f"no data-field {name}"
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def _allocations(client: TestClient) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = client.get(
        "/api/v1/admin/allocations", headers=login(client, "monitor")
    ).json()
    return result


def test_register_shows_errors_next_to_fields_and_keeps_values(
    client: TestClient, demo_db: Database
) -> None:
    token = web_login(client, "coordinator")
    form = client.get("/subjects/new")
    data = {
        "site_id": "DE01",
        "screening_number": "bad number!",
        "sex": "",
        "year_of_birth": "19x0",
        "idempotency_key": hidden(form.text, "idempotency_key"),
    }
    before = snapshot(demo_db)
    page = submit(client, "/subjects/new", data, token)
    assert page.status_code == 422
    assert field_error(page.text, "screening_number")
    assert field_error(page.text, "sex") == "this field is required"
    assert field_error(page.text, "year_of_birth")
    assert 'value="bad number!"' in page.text and 'value="19x0"' in page.text
    assert 'aria-describedby="screening_number-hint screening_number-error"' in page.text
    assert 'role="alert"' in page.text
    assert_unchanged(demo_db, before)
    subject_id = _register_page(client, token, "DE01-W001")
    duplicate = client.get("/subjects/new")
    data = {
        "site_id": "DE01",
        "screening_number": "DE01-W001",
        "sex": "F",
        "year_of_birth": "1980",
        "idempotency_key": hidden(duplicate.text, "idempotency_key"),
    }
    page = submit(client, "/subjects/new", data, token)
    assert page.status_code == 409 and "already registered" in (
        field_error(page.text, "screening_number") or ""
    )
    listing = client.get("/subjects")
    assert f'href="/subjects/{subject_id}"' in listing.text and "DE01-W001" in listing.text


def test_randomize_review_confirm_and_a_double_submit_randomizes_once(
    client: TestClient,
) -> None:
    token = web_login(client, "coordinator")
    subject_id = _register_page(client, token, "DE01-W002")
    form = client.get(f"/subjects/{subject_id}/randomize")
    assert (
        form.status_code == 200
        and 'for="exclusions-active_or_unstable_lupus_nephritis"' in form.text
    )
    data = {**ELIGIBLE, "idempotency_key": hidden(form.text, "idempotency_key")}
    review = submit(client, f"/subjects/{subject_id}/randomize/review", data, token)
    assert review.status_code == 200, review.text
    assert "Confirm and randomize" in review.text and _field(review.text, "weight_kg") == "70.5"
    assert not _allocations(client)  # the review changes nothing
    # "Change answers" shows the form again with the answers kept
    edit = submit(
        client, f"/subjects/{subject_id}/randomize/review", {**data, "action": "edit"}, token
    )
    assert edit.status_code == 200 and 'value="70,5"' in edit.text
    confirm_data = {k: hidden(review.text, k) for k in data}
    first = submit(client, f"/subjects/{subject_id}/randomize", confirm_data, token)
    second = submit(client, f"/subjects/{subject_id}/randomize", confirm_data, token)
    confirmation = _confirmation_id(first)
    assert _confirmation_id(second) == confirmation
    assert [a["subject_id"] for a in _allocations(client)] == [subject_id]

    page = client.get(f"/confirmations/{confirmation}")
    assert page.status_code == 200
    assert_blinded(page, "randomization confirmation")
    assert _field(page.text, "stratum") == "ALL"
    # 70.5 kg x 0.8 mg/kg = 56.4 mg, drawn up to the syringe's 0.1 mL: 5.6 mL, so 56 mg
    assert _field(page.text, "dose_mg") == "56.0"
    assert len(_field(page.text, "kits").split(", ")) == 1
    assert _field(page.text, "performed_by").startswith("coordinator")
    assert 'media="print"' in page.text
    api = client.get(f"/api/v1/confirmations/{confirmation}", headers=login(client, "coordinator"))
    assert api.status_code == 200 and api.json()["kind"] == "randomization"
    assert api.json()["randomization_number"] == _field(page.text, "randomization_number")
    assert_blinded(api, "confirmation API")
    # another site's user cannot see it, on the page or through the API
    assert (
        client.get(
            f"/api/v1/confirmations/{confirmation}", headers=login(client, "coordinator2")
        ).status_code
        == 404
    )
    web_login(client, "coordinator2")
    assert client.get(f"/confirmations/{confirmation}").status_code == 404


def test_an_ineligible_subject_is_refused_with_errors_next_to_the_answers(
    client: TestClient, demo_db: Database
) -> None:
    token = web_login(client, "investigator")
    subject_id = register(client, login(client, "investigator"), "DE02")
    form = client.get(f"/subjects/{subject_id}/randomize")
    data = {
        **ELIGIBLE,
        "sledai_2k_score": "3",
        "exclusions.active_or_unstable_lupus_nephritis": "on",
        "weight_kg": "",
        "idempotency_key": hidden(form.text, "idempotency_key"),
    }
    page = submit(client, f"/subjects/{subject_id}/randomize/review", data, token)
    assert page.status_code == 422
    assert field_error(page.text, "weight_kg") == "this field is required"
    data["weight_kg"] = "250"
    page = submit(client, f"/subjects/{subject_id}/randomize/review", data, token)
    assert page.status_code == 422
    assert "SLEDAI-2K" in (field_error(page.text, "sledai_2k_score") or "")
    assert "nephritis" in (
        field_error(page.text, "exclusions.active_or_unstable_lupus_nephritis") or ""
    )
    assert 'value="3"' in page.text
    assert re.search(r'id="exclusions-active_or_unstable_lupus_nephritis"[^>]*checked', page.text)
    # the weight range is the service's rule: refused at the final step, next to the field
    data["sledai_2k_score"], data["exclusions.active_or_unstable_lupus_nephritis"] = "8", ""
    before = snapshot(demo_db)
    page = submit(client, f"/subjects/{subject_id}/randomize", data, token)
    assert page.status_code == 422 and "weight" in (field_error(page.text, "weight_kg") or "")
    assert_unchanged(demo_db, before)


def test_dosing_visit_page_assigns_kits_once_and_confirms(client: TestClient) -> None:
    headers = login(client, "coordinator")
    subject_id = register(client, headers, "DE01")
    body = randomize_body(weight_kg=70.0)
    body["visit_date"] = (today() - timedelta(days=28)).isoformat()
    body["eligibility"]["screening_date"] = (today() - timedelta(days=35)).isoformat()
    assert randomize(client, headers, subject_id, body).status_code == 201
    token = web_login(client, "pharmacist")
    form = client.get(f"/subjects/{subject_id}/dispense")
    assert form.status_code == 200 and re.search(r'<option value="W4" selected>', form.text)
    data = {
        "visit": "W4",
        "visit_date": today().isoformat(),
        "weight_kg": "71",
        "idempotency_key": hidden(form.text, "idempotency_key"),
    }
    # 71 kg is not the 70 kg the last dose used: a review first, nothing assigned yet
    review = submit(client, f"/subjects/{subject_id}/dispense", data, token)
    assert review.status_code == 200 and 'data-field="weight_used">70.0' in review.text
    data["reviewed"] = "yes"
    first = submit(client, f"/subjects/{subject_id}/dispense", data, token)
    again = submit(client, f"/subjects/{subject_id}/dispense", data, token)
    confirmation = _confirmation_id(first)
    assert _confirmation_id(again) == confirmation
    page = client.get(f"/confirmations/{confirmation}")
    assert_blinded(page, "dispensing confirmation")
    assert _field(page.text, "visit").startswith("W4") and _field(page.text, "dose_mg") == "56.0"
    detail = client.get(f"/subjects/{subject_id}")
    # one row in the dosing visits, one in the schedule, where W4 is now dispensed
    assert detail.text.count('<th scope="row">W4</th>') == 2
    assert 'data-visit="W4" data-state="dispensed"' in detail.text
    # a new form for the same visit: refused next to the visit field, nothing done
    form = client.get(f"/subjects/{subject_id}/dispense")
    data["idempotency_key"] = hidden(form.text, "idempotency_key")
    page = submit(client, f"/subjects/{subject_id}/dispense", data, token)
    assert page.status_code == 409 and "already dispensed" in (
        field_error(page.text, "visit") or ""
    )


def test_unblinding_needs_the_typed_number_and_shows_the_treatment_to_its_investigator(
    client: TestClient, demo_db: Database
) -> None:
    investigator = login(client, "investigator")
    subject_id = register(client, investigator, "DE02", screening_number="DE02-U01")
    assert randomize(client, investigator, subject_id).status_code == 201
    token = web_login(client, "investigator")
    form = client.get(f"/subjects/{subject_id}/unblind")
    assert form.status_code == 200 and 'for="confirm_screening_number"' in form.text
    data = {
        "reason_category": "adverse_event",
        "reason": "anaphylaxis during the infusion",
        "confirm_screening_number": "DE02-U02",
        "signature.password": DEMO_PASSWORD,
    }
    before = snapshot(demo_db)
    page = submit(client, f"/subjects/{subject_id}/unblind", data, token)
    assert page.status_code == 422 and field_error(page.text, "confirm_screening_number")
    assert "anaphylaxis during the infusion" in page.text  # the reason is kept
    assert_unchanged(demo_db, before)
    data["confirm_screening_number"] = "DE02-U01"
    first = submit(client, f"/subjects/{subject_id}/unblind", data, token)
    confirmation = _confirmation_id(first)
    assert _confirmation_id(submit(client, f"/subjects/{subject_id}/unblind", data, token)) == (
        confirmation
    )
    arm = next(a["arm"] for a in _allocations(client) if a["subject_id"] == subject_id)
    page = client.get(f"/confirmations/{confirmation}")
    treatment = _field(page.text, "treatment")
    assert treatment == ("Placebo" if arm == "PLACEBO" else "IMC-002 0.8 mg/kg")
    web_login(client, "coordinator")  # same site, blinded
    blinded = client.get(f"/confirmations/{confirmation}")
    assert blinded.status_code == 200 and 'data-field="treatment"' not in blinded.text
    assert _field(blinded.text, "reason_category") == "adverse event"
    web_login(client, "monitor")
    assert _field(client.get(f"/confirmations/{confirmation}").text, "treatment") == treatment


def test_confirmations_go_to_the_site_users_through_the_outbox_without_treatment(
    client: TestClient,
) -> None:
    investigator = login(client, "investigator")
    subject_id = register(client, investigator, "DE01", screening_number="DE01-OB1")
    response = randomize(client, investigator, subject_id)
    assert response.status_code == 201 and response.json()["confirmation_id"] >= 1
    unblind = client.post(
        f"/api/v1/subjects/{subject_id}/unblind",
        json={
            "reason_category": "overdose",
            "reason": "ten vials given instead of one",
            "signature": {"password": DEMO_PASSWORD},
        },
        headers=investigator,
    )
    assert unblind.status_code == 200 and unblind.json()["confirmation_id"] >= 1
    monitor = login(client, "monitor")
    outbox = client.get("/api/v1/admin/outbox", headers=monitor).json()
    mine = [m for m in outbox if m["kind"].startswith("confirmation.")]
    kinds = sorted(m["kind"] for m in mine)
    assert kinds == [
        "confirmation.randomization",
        "confirmation.unblinded_notice",
        "confirmation.unblinding",
    ]
    for message in mine:
        text = json.dumps(message).lower()
        assert "placebo" not in text and "imc002" not in text and "mg/kg" not in text
    site_message = next(m for m in mine if m["kind"] == "confirmation.randomization")
    assert {"coordinator", "investigator", "pharmacist"} <= set(site_message["recipients"])
    assert "coordinator2" not in site_message["recipients"]
    assert site_message["body"]["screening_number"] == "DE01-OB1"
    assert site_message["body"]["kits"]
    notice = next(m for m in mine if m["kind"] == "confirmation.unblinded_notice")
    assert notice["recipients"] == ["investigator"]
    audit = client.get("/api/v1/admin/audit", params={"limit": 1000}, headers=monitor).json()
    created = [e for e in audit if e["action"] == "confirmation.create"]
    assert len(created) == 2
    listing = client.get("/api/v1/confirmations", headers=investigator).json()
    assert {c["kind"] for c in listing} >= {"randomization", "unblinding"}


def test_refusals_sent_from_the_pages_are_in_the_audit_trail(
    client: TestClient, demo_db: Database
) -> None:
    """A SLEDAI of 5 sent from the randomize page is refused by the use case (not only by the
    page), so it is recorded as the page's user; so is a form its schema refuses."""
    token = web_login(client, "coordinator")
    subject_id = register(client, login(client, "coordinator"), "DE01")
    form = client.get(f"/subjects/{subject_id}/randomize")
    data = {
        **eligible_form("70.0"),
        "sledai_2k_score": "5",
        "idempotency_key": hidden(form.text, "idempotency_key"),
    }
    before = snapshot(demo_db)
    page = submit(client, f"/subjects/{subject_id}/randomize", data, token)
    assert page.status_code == 422 and "SLEDAI-2K" in (
        field_error(page.text, "sledai_2k_score") or ""
    )
    entry = assert_attempt_recorded(
        demo_db, before, action="subject.randomize_refused", username="coordinator"
    )
    assert entry["after"]["code"] == "ineligible"
    before = snapshot(demo_db)
    page = submit(client, f"/subjects/{subject_id}/randomize", {**data, "weight_kg": "abc"}, token)
    assert page.status_code == 422
    entry = assert_attempt_recorded(
        demo_db, before, action="request.invalid_refused", username="coordinator"
    )
    assert entry["entity_id"] == f"/subjects/{subject_id}/randomize"
    assert "weight_kg" in entry["after"]["fields"]
