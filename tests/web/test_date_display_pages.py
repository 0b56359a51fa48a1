"""Dates and times as people read them (docs/web.md): a known visit date shows as DD-Mon-YYYY,
times are in the site's zone with the zone named, and no page shows ISO 8601 machine time; the
unblinded monitor's pages here, the blinded roles' in the page walk (test_page_blinding.py)."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import OutboxMessage, Site
from app.domain.date_display import format_date
from tests.support.helpers import SIGNED, login, today
from tests.support.supply import randomize_on
from tests.web.support import iso_timestamps, visible_text, web_login

SHOWN_TIME = r"\d{2}-(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-\d{4} \d{2}:\d{2}"
UNBLIND = {"reason_category": "adverse_event", "reason": "Anaphylaxis after infusion", **SIGNED}


def test_pages_show_readable_dates_in_the_sites_zone(client: TestClient, demo_db: Database) -> None:
    day_one = today() - timedelta(days=28)
    coordinator = login(client, "coordinator")
    subject_id, _ = randomize_on(client, coordinator, "DE01", day_one)
    unblinded = client.post(
        f"/api/v1/subjects/{subject_id}/unblind",
        json=UNBLIND,
        headers=login(client, "investigator"),
    )
    assert unblinded.status_code in (200, 201), unblinded.text
    with demo_db.read() as session:
        zone = session.execute(select(Site.timezone).where(Site.id == "DE01")).scalar_one()
        lines = list(session.execute(select(OutboxMessage.subject_line)).scalars())
    assert zone != "UTC"  # the demo's German site keeps its own zone

    web_login(client, "coordinator")
    page = client.get(f"/subjects/{subject_id}")
    assert page.status_code == 200, page.text
    text = visible_text(page.text)
    assert format_date(day_one) in text and day_one.isoformat() not in text
    assert re.search(rf"{SHOWN_TIME} {re.escape(zone)}", text), text  # randomized at, local

    web_login(client, "monitor")
    for url in (
        "/monitor/allocations",
        "/monitor/audit",
        "/monitor/unblindings",
        "/confirmations",
        "/confirmations/1",
    ):
        response = client.get(url)
        assert response.status_code == 200, (url, response.text)
        assert iso_timestamps(response) == [], url
        assert re.search(SHOWN_TIME, visible_text(response.text)), url
    # the confirmation's message names the moment as the site reads it
    assert any(re.search(rf"{SHOWN_TIME} {re.escape(zone)}$", line) for line in lines), lines
