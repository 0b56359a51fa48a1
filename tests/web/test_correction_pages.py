"""The correction pages on both engines: form, review (the value as it stands, the meaning
signed), a wrong password kept on the review, the signed submit, the subject page's list; and
the randomization review naming a protocol criterion next to its answer."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient

from tests.support.demo import DEMO_PASSWORD
from tests.support.helpers import login, randomize, randomize_body, register, today
from tests.web.support import eligible_form, field_error, hidden, submit, web_login


def test_a_weight_correction_through_the_pages(client: TestClient) -> None:
    headers = login(client, "coordinator")
    subject_id = register(client, headers, "DE01")
    assert randomize(client, headers, subject_id, randomize_body(weight_kg=70.0)).status_code == 201
    token = web_login(client, "coordinator")
    page = client.get(f"/subjects/{subject_id}")
    assert f'href="/subjects/{subject_id}/corrections/new"' in page.text
    form = client.get(f"/subjects/{subject_id}/corrections/new")
    assert form.status_code == 200
    data = {
        "field": "weight_kg",
        "visit": "D1",
        "new_value": "72.5",
        "reason": "scale misread, source checked",
        "idempotency_key": hidden(form.text, "idempotency_key"),
    }
    review = submit(client, f"/subjects/{subject_id}/corrections/review", data, token)
    assert review.status_code == 200, review.text
    assert re.search(r'data-field="old_value">70</td>', review.text)
    assert re.search(r'data-field="new_value">72.5</td>', review.text)
    meaning = hidden(review.text, "signature.meaning")
    assert "Weight measured at a dosing visit (kg)" in meaning and "at visit D1" in meaning
    assert meaning.endswith(" to 72.5")
    signed = {**data, "signature.meaning": meaning}
    wrong = submit(
        client,
        f"/subjects/{subject_id}/corrections",
        {**signed, "signature.password": "wrong-password"},
        token,
    )
    assert wrong.status_code == 422 and field_error(wrong.text, "signature.password")
    assert 'data-field="new_value">72.5</td>' in wrong.text  # still the review
    done = submit(
        client,
        f"/subjects/{subject_id}/corrections",
        {**signed, "signature.password": DEMO_PASSWORD},
        token,
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/subjects/{subject_id}#corrections"
    page = client.get(f"/subjects/{subject_id}")
    assert "scale misread, source checked" in page.text
    assert re.search(r"<td>70</td><td>72.5</td>", page.text)
    # the dose given on day 1 is the one of 70 kg
    visits = client.get(f"/api/v1/subjects/{subject_id}", headers=headers).json()["visits"]
    assert visits[0]["dose"]["weight_kg"] == 70.0


def test_a_pharmacist_may_not_correct(client: TestClient) -> None:
    subject_id = register(client, login(client, "coordinator"), "DE01")
    web_login(client, "pharmacist")
    assert client.get(f"/subjects/{subject_id}/corrections/new").status_code == 403
    page = client.get(f"/subjects/{subject_id}")
    assert "/corrections/new" not in page.text


def test_the_review_names_a_stale_screening_next_to_its_date(client: TestClient) -> None:
    subject_id = register(client, login(client, "coordinator"), "DE01")
    token = web_login(client, "coordinator")
    form = client.get(f"/subjects/{subject_id}/randomize")
    data = eligible_form(
        idempotency_key=hidden(form.text, "idempotency_key"),
        screening_date=(today() - timedelta(days=45)).isoformat(),
    )
    review = submit(client, f"/subjects/{subject_id}/randomize/review", data, token)
    assert review.status_code == 422
    assert "within 28 days of screening" in (field_error(review.text, "screening_date") or "")
