"""The pages refuse a reason with fewer than 10 visible characters next to the reason field
(prefixed fields too), keep what was typed, and change nothing."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.db.engine import Database
from app.domain.reasons import TOO_SHORT
from tests.support.databases import assert_unchanged, snapshot
from tests.support.demo import DEMO_PASSWORD
from tests.support.helpers import login, randomize, register
from tests.web.support import field_error, submit, web_login

INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad" * 5


def test_unblinding_form(client: TestClient, demo_db: Database) -> None:
    investigator = login(client, "investigator")
    subject_id = register(client, investigator, "DE02", screening_number="DE02-R01")
    assert randomize(client, investigator, subject_id).status_code == 201
    token = web_login(client, "investigator")
    before = snapshot(demo_db)
    for reason in (INVISIBLE, "too short", "a\u200bb\u200bc\u200bd\u200be\u200bf"):
        data = {
            "reason_category": "adverse_event",
            "reason": reason,
            "confirm_screening_number": "DE02-R01",
            "signature.password": DEMO_PASSWORD,
        }
        page = submit(client, f"/subjects/{subject_id}/unblind", data, token)
        assert page.status_code == 422, page.text
        assert field_error(page.text, "reason") == TOO_SHORT
        assert TOO_SHORT in page.text.split('class="error-summary"')[1]
    assert_unchanged(demo_db, before)


def test_cohort_and_shipment_forms(client: TestClient, demo_db: Database) -> None:
    body = {"site_id": "DE01", "kits_per_content": 1, "reason": "top up before screening"}
    response = client.post("/api/v1/shipments", json=body, headers=login(client, "supply"))
    assert response.status_code == 201, response.text
    shipment_id = response.json()["shipment_id"]
    before = snapshot(demo_db)

    token = web_login(client, "sponsor")
    page = submit(client, "/admin/cohorts/C1/close", {"C1.close.reason": INVISIBLE}, token)
    assert page.status_code == 422 and field_error(page.text, "C1.close.reason") == TOO_SHORT

    token = web_login(client, "supply")
    url = f"/supply/shipments/{shipment_id}/cancel"
    page = submit(client, url, {"reason": "  not sent  "}, token)
    assert page.status_code == 422 and field_error(page.text, "reason") == TOO_SHORT
    assert "not sent" in page.text  # the reason typed is shown again
    assert_unchanged(demo_db, before)
