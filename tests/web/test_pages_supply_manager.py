"""The supply manager's pages (shipments, quarantine, supply levels, depot stock) and the
pharmacist's receipt with its review step and receipt date, on both engines: each form does
what the API does through the same use case, refusals are shown next to their fields and
change nothing, and no page names an arm, a kit content or a lot."""

from __future__ import annotations

import html
import json
import re
from datetime import date, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.db.engine import Database
from app.db.models import Kit, Shipment, ShipmentKit, SupplyLevel
from app.domain.date_display import format_date
from app.services.transaction import utcnow, writing
from tests.support.api import audit_entries
from tests.support.databases import assert_unchanged, snapshot
from tests.support.demo import DEMO_LEVELS
from tests.support.helpers import login, today
from tests.web.support import field_error, submit, web_login
from tests.web.test_pages_supply_admin import assert_page_blinded

API = "/api/v1"
DEPOT = "DEPOT-EU"
SUPPLY_PAGES = (
    "/supply",
    "/supply/shipments",
    "/supply/shipments?site_id=DE01&status=requested",
    "/supply/shipments/new",
    "/supply/quarantine",
    "/supply/levels",
    "/supply/depots",
)


def _lots(db: Database) -> set[str]:
    with db.read() as session:
        return set(session.execute(select(Kit.lot).distinct()).scalars())


def _page(client: TestClient, url: str, status: int = 200) -> str:
    response = client.get(url, follow_redirects=False)
    assert response.status_code == status, (url, response.status_code, response.text[:500])
    return response.text


def _hidden_fields(page: str, action: str) -> dict[str, str]:
    """The hidden inputs of the form posting to `action` (without the CSRF token)."""
    match = re.search(rf'<form method="post" action="{re.escape(action)}">(.*?)</form>', page, re.S)
    assert match, f"no form posting to {action}"
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', match.group(1))
    return {html.unescape(k): html.unescape(v) for k, v in fields if k != "csrf_token"}


def _requested(client: TestClient, site_id: str = "DE01", per_content: int = 2) -> int:
    body = {
        "site_id": site_id,
        "kits_per_content": per_content,
        "reason": "top up before screening",
    }
    response = client.post(f"{API}/shipments", json=body, headers=login(client, "supply"))
    assert response.status_code == 201, response.text
    return int(response.json()["shipment_id"])


def _shipped(client: TestClient, days_ago: int = 0) -> int:
    shipment_id = _requested(client)
    response = client.post(f"{API}/shipments/{shipment_id}/ship", headers=login(client, "supply"))
    assert response.status_code == 200, response.text
    if days_ago:
        db: Database = client.app.state.db  # type: ignore[attr-defined]
        with writing(db) as session:
            shipment = session.get(Shipment, shipment_id)
            assert shipment is not None
            shipment.shipped_at = utcnow() - timedelta(days=days_ago)
    return shipment_id


def _kits(db: Database, shipment_id: int) -> dict[str, str]:
    with db.read() as session:
        rows = session.execute(
            select(Kit.kit_number, Kit.status)
            .join(ShipmentKit, ShipmentKit.kit_number == Kit.kit_number)
            .where(ShipmentKit.shipment_id == shipment_id)
        ).all()
    return {number: status for number, status in rows}


def _shipment(db: Database, shipment_id: int) -> Shipment:
    with db.read() as session:
        shipment = session.get(Shipment, shipment_id)
        assert shipment is not None
        session.expunge(shipment)
        return shipment


def test_supply_pages_are_the_supply_managers_and_blinded(
    client: TestClient, demo_db: Database
) -> None:
    lots = _lots(demo_db)
    web_login(client, "supply")
    home = _page(client, "/")
    assert '<a href="/supply">Supply</a>' in home and 'href="/supply/depots"' in home
    for url in SUPPLY_PAGES:
        page = _page(client, url)
        assert page.count("<h1>") == 1, url
        assert_page_blinded(page, lots, f"supply {url}")
    supply_home = _page(client, "/supply")
    assert 'id="forecast"' in supply_home and 'href="/supply/forecast"' in supply_home
    _page(client, "/supply/shipments?status=lost", 422)
    _page(client, "/supply/shipments/999999", 404)
    for user in ("pharmacist", "coordinator", "sponsor", "monitor"):
        web_login(client, user)
        assert '<a href="/supply">' not in _page(client, "/")
        for url in SUPPLY_PAGES:
            assert "Not for your role" in _page(client, url, 403), (user, url)


def test_request_ship_and_cancel_shipments(client: TestClient, demo_db: Database) -> None:
    token = web_login(client, "supply")
    assert 'href="/supply/shipments/new"' in _page(client, "/supply/shipments")
    page = _page(client, "/supply/shipments/new")
    assert '<label for="kits_per_content">' in page and '<option value="DE01">' in page

    before = snapshot(demo_db)
    bad = submit(
        client,
        "/supply/shipments",
        {"site_id": "DE01", "kits_per_content": "0", "reason": "x"},
        token,
    )
    assert bad.status_code == 422
    assert field_error(bad.text, "kits_per_content") and field_error(bad.text, "reason")
    assert 'value="0"' in bad.text  # the form keeps what was entered
    data = {"site_id": "XX99", "kits_per_content": "2", "reason": "top up before screening"}
    nowhere = submit(client, "/supply/shipments", data, token)
    assert nowhere.status_code == 404 and "XX99" in (field_error(nowhere.text, "site_id") or "")
    assert_unchanged(demo_db, before)

    data = {"site_id": "DE01", "kits_per_content": "3", "reason": "two screenings next week"}
    done = submit(client, "/supply/shipments", data, token)
    assert done.status_code == 303, done.text
    match = re.fullmatch(r"/supply/shipments/(\d+)\?done=requested", done.headers["location"])
    assert match, done.headers["location"]
    first = int(match.group(1))
    page = _page(client, done.headers["location"])
    assert 'data-field="status">requested' in page and 'data-field="kit_count">6' in page
    assert f"Ship shipment {first}" in page and 'role="status"' in page
    assert_page_blinded(page, _lots(demo_db), "requested shipment")
    manual = [
        e for e in audit_entries(client, login(client, "monitor")) if e["entity_id"] == str(first)
    ]
    assert [e["action"] for e in manual] == ["shipment.request", "shipment.manual"]
    assert manual[-1]["reason"] == "two screenings next week"

    shipped = submit(client, f"/supply/shipments/{first}/ship", {}, token)
    assert shipped.status_code == 303
    assert set(_kits(demo_db, first).values()) == {"in_transit"}
    assert 'data-field="status">shipped' in _page(client, shipped.headers["location"])
    again = submit(client, f"/supply/shipments/{first}/ship", {}, token)
    assert again.status_code == 409 and 'role="alert"' in again.text and "is shipped" in again.text

    second = _requested(client)
    before = snapshot(demo_db)
    short = submit(client, f"/supply/shipments/{second}/cancel", {"reason": "no"}, token)
    assert short.status_code == 422 and field_error(short.text, "reason")
    assert_unchanged(demo_db, before)
    data = {"reason": "site visit postponed"}
    cancelled = submit(client, f"/supply/shipments/{second}/cancel", data, token)
    assert cancelled.status_code == 303
    assert _shipment(demo_db, second).status == "cancelled"
    assert set(_kits(demo_db, second).values()) == {"at_depot"}

    listing = _page(client, "/supply/shipments?status=cancelled")
    assert f"Shipment {second}</a>" in listing and f"Shipment {first}</a>" not in listing
    listing = _page(client, "/supply/shipments?site_id=DE02")
    assert f"Shipment {first}</a>" not in listing


def _quarantined_shipment(client: TestClient) -> int:
    shipment_id = _shipped(client)
    body = {"temperature_excursion": True}
    url = f"{API}/shipments/{shipment_id}/receive"
    response = client.post(url, json=body, headers=login(client, "pharmacist"))
    assert response.status_code == 200 and response.json()["status"] == "quarantined"
    return shipment_id


def _quarantine_kit(client: TestClient, user: str, number: str) -> None:
    body = {"status": "quarantined", "reason": "fridge alarm"}
    response = client.post(f"{API}/kits/{number}/status", json=body, headers=login(client, user))
    assert response.status_code == 200, response.text


def test_quarantine_decisions(client: TestClient, demo_db: Database) -> None:
    released, rejected = _quarantined_shipment(client), _quarantined_shipment(client)
    with demo_db.read() as session:
        at_site = session.execute(
            select(Kit.kit_number).where(Kit.site_id == "DE01", Kit.status == "available").limit(1)
        ).scalar_one()
        at_depot = list(
            session.execute(
                select(Kit.kit_number)
                .where(Kit.site_id.is_(None), Kit.status == "at_depot")
                .order_by(Kit.kit_number)
                .limit(2)
            ).scalars()
        )
    _quarantine_kit(client, "pharmacist", at_site)
    for number in at_depot:
        _quarantine_kit(client, "supply", number)

    token = web_login(client, "supply")
    page = _page(client, "/supply/quarantine")
    assert_page_blinded(page, _lots(demo_db), "/supply/quarantine")
    for shipment_id in (released, rejected):
        assert f"Record the decision for shipment {shipment_id}" in page
    for number in (at_site, *at_depot, *_kits(demo_db, released)):
        assert f"Record the decision for kit {number}" in page
    assert f'<label for="shipment-{released}-decision">' in page

    before = snapshot(demo_db)
    url = f"/supply/quarantine/shipments/{released}"
    prefix = f"shipment-{released}."
    undecided = submit(client, url, {f"{prefix}reason": "checked the log"}, token)
    assert undecided.status_code == 422
    assert field_error(undecided.text, f"{prefix}decision") == "choose release or reject"
    short = submit(client, url, {f"{prefix}decision": "release", f"{prefix}reason": "ok"}, token)
    assert short.status_code == 422 and field_error(short.text, f"{prefix}reason")
    assert 'aria-invalid="true"' in short.text
    kit_url = f"/supply/quarantine/kits/{at_site}"
    short = submit(client, kit_url, {f"kit-{at_site}.decision": "reject"}, token)
    assert short.status_code == 422 and field_error(short.text, f"kit-{at_site}.reason")
    assert_unchanged(demo_db, before)

    data = {f"{prefix}decision": "release", f"{prefix}reason": "within the stability data"}
    response = submit(client, url, data, token)
    assert response.status_code == 303 and response.headers["location"].endswith("released")
    assert _shipment(demo_db, released).status == "received"
    assert set(_kits(demo_db, released).values()) == {"available"}
    prefix = f"shipment-{rejected}."
    data = {f"{prefix}decision": "reject", f"{prefix}reason": "out of the stability data"}
    response = submit(client, f"/supply/quarantine/shipments/{rejected}", data, token)
    assert response.status_code == 303
    assert _shipment(demo_db, rejected).status == "rejected"
    assert set(_kits(demo_db, rejected).values()) == {"damaged"}

    decisions = {at_site: "release", at_depot[0]: "release", at_depot[1]: "reject"}
    for number, decision in decisions.items():
        data = {f"kit-{number}.decision": decision, f"kit-{number}.reason": "inspected at the site"}
        response = submit(client, f"/supply/quarantine/kits/{number}", data, token)
        assert response.status_code == 303, response.text
    with demo_db.read() as session:
        statuses = {n: session.get(Kit, n).status for n in decisions}  # type: ignore[union-attr]
    assert statuses == {at_site: "available", at_depot[0]: "at_depot", at_depot[1]: "damaged"}
    page = _page(client, "/supply/quarantine")
    assert "No quarantined shipment." in page and "No quarantined kit." in page
    data = {f"kit-{at_site}.decision": "reject", f"kit-{at_site}.reason": "inspected at the site"}
    again = submit(client, f"/supply/quarantine/kits/{at_site}", data, token)
    assert again.status_code == 409 and 'role="alert"' in again.text


def test_supply_levels_per_site(client: TestClient, demo_db: Database) -> None:
    token = web_login(client, "supply")
    page = _page(client, "/supply/levels")
    trigger, target = DEMO_LEVELS
    assert f'name="DE01.trigger" type="number" value="{trigger}"' in page
    assert f'name="DE01.target" type="number" value="{target}"' in page
    assert_page_blinded(page, _lots(demo_db), "/supply/levels")

    before = snapshot(demo_db)
    inverted = submit(
        client, "/supply/levels/DE01", {"DE01.trigger": "20", "DE01.target": "20"}, token
    )
    assert inverted.status_code == 422
    assert field_error(inverted.text, "DE01.target") == "must be above trigger"
    assert 'name="DE01.trigger" type="number" value="20"' in inverted.text
    typo = submit(client, "/supply/levels/DE01", {"DE01.trigger": "x", "DE01.target": "30"}, token)
    assert typo.status_code == 422 and field_error(typo.text, "DE01.trigger")
    assert_unchanged(demo_db, before)
    unknown = submit(
        client, "/supply/levels/XX99", {"XX99.trigger": "5", "XX99.target": "9"}, token
    )
    assert unknown.status_code == 404

    data = {"DE01.trigger": "12", "DE01.target": "30"}
    done = submit(client, "/supply/levels/DE01", data, token)
    assert done.status_code == 303 and done.headers["location"].startswith("/supply/levels?done=")
    with demo_db.read() as session:
        levels = session.execute(
            select(SupplyLevel.trigger, SupplyLevel.target).where(SupplyLevel.site_id == "DE01")
        ).all()
    assert {tuple(level) for level in levels} == {(12, 30)} and len(levels) == 2
    page = _page(client, done.headers["location"])
    assert 'name="DE01.trigger" type="number" value="12"' in page and 'role="status"' in page


def test_depot_stock_totals_only(client: TestClient, demo_db: Database) -> None:
    requested = _requested(client, per_content=4)
    web_login(client, "supply")
    page = _page(client, "/supply/depots")
    assert_page_blinded(page, _lots(demo_db), "/supply/depots")
    with demo_db.read() as session:
        at_depot = session.execute(
            select(func.count()).where(Kit.depot_id == DEPOT, Kit.site_id.is_(None))
        ).scalar_one()
        expiries = set(
            session.execute(
                select(Kit.expiry_date).where(Kit.depot_id == DEPOT, Kit.site_id.is_(None))
            ).scalars()
        )
    assert f'data-field="total">{at_depot}<' in page
    assert 'data-field="reserved">8<' in page  # the requested shipment's kits, picked
    for expiry in expiries:
        assert f'<th scope="row">{format_date(expiry)}</th>' in page  # 01-Dec-2026
    api = client.get(f"{API}/depots/{DEPOT}/stock", headers=login(client, "supply")).json()
    assert f'data-field="shippable">{api["shippable"]}<' in page
    assert requested and api["reserved"] == 8


# --- the pharmacist's receipt: review, then confirm; the receipt date -----------------------


def test_receipt_review_then_confirm_with_an_earlier_date(
    client: TestClient, demo_db: Database
) -> None:
    shipment_id = _shipped(client, days_ago=5)
    kits = sorted(_kits(demo_db, shipment_id))
    damaged, missing = kits[0], kits[1]
    arrived = (today() - timedelta(days=3)).isoformat()
    url = f"/pharmacy/shipments/{shipment_id}/receive"
    token = web_login(client, "pharmacist")
    form = _page(client, url)
    assert f'action="{url}/review"' in form and "Review receipt" in form
    assert f'name="received_on" type="date" value="{today().isoformat()}"' in form

    before = snapshot(demo_db)
    data = {
        f"outcome.{damaged}": "damaged",
        f"outcome.{missing}": "missing",
        **{f"outcome.{k}": "received" for k in kits[2:]},
        "received_on": arrived,
    }
    review = submit(client, f"{url}/review", data, token)
    assert review.status_code == 200, review.text
    page = review.text
    assert_page_blinded(page, _lots(demo_db), "receipt review")
    assert f'data-field="received_on">{format_date(arrived)}<' in page
    assert f'data-field="received">{len(kits) - 2}<' in page
    assert f'data-field="damaged">{damaged}<' in page
    assert f'data-field="missing">{missing}<' in page
    assert 'data-field="temperature_excursion">no<' in page
    assert "Confirm receipt" in page
    assert snapshot(demo_db) == before  # the review records nothing
    carried = _hidden_fields(page, url)
    assert carried == {
        "received_on": arrived,
        f"outcome.{damaged}": "damaged",
        f"outcome.{missing}": "missing",
    }

    change = submit(client, f"{url}/review", {**carried, "action": "edit"}, token)
    assert change.status_code == 200 and "Review receipt" in change.text
    assert re.search(rf'id="outcome-{damaged}-damaged"[^>]*checked', change.text)
    assert f'name="received_on" type="date" value="{arrived}"' in change.text

    confirmed = submit(client, url, carried, token)
    assert confirmed.status_code == 303 and confirmed.headers["location"] == url
    shipment = _shipment(demo_db, shipment_id)
    assert shipment.status == "received" and shipment.received_on == date.fromisoformat(arrived)
    assert shipment.received_at is not None and shipment.received_at.date() == today()
    statuses = _kits(demo_db, shipment_id)
    assert (statuses[damaged], statuses[missing]) == ("damaged", "lost")
    assert {statuses[k] for k in kits[2:]} == {"available"}
    page = _page(client, url)
    shown = format_date(arrived)
    assert f'data-field="received_on">{shown}<' in page and "Review receipt" not in page
    entries = audit_entries(client, login(client, "monitor"))
    receipt = next(
        e
        for e in entries
        if e["action"] == "shipment.receive" and e["entity_id"] == str(shipment_id)
    )
    recorded = json.loads(receipt["after"])
    assert recorded["received_on"] == arrived
    assert recorded["damaged"] == [damaged] and recorded["missing"] == [missing]


def test_bad_receipt_dates_are_refused_next_to_the_field(
    client: TestClient, demo_db: Database
) -> None:
    shipment_id = _shipped(client, days_ago=2)
    shipped_on = _shipment(demo_db, shipment_id).shipped_at.date()  # type: ignore[union-attr]
    url = f"/pharmacy/shipments/{shipment_id}/receive"
    token = web_login(client, "pharmacist")
    before = snapshot(demo_db)
    cases = {
        (today() + timedelta(days=2)).isoformat(): "in the future",
        (shipped_on - timedelta(days=1)).isoformat(): "before the shipment was shipped",
        "31/12/2026": "date",
    }
    for value, message in cases.items():
        for target in (f"{url}/review", url):  # the review and the confirmation alike
            response = submit(client, target, {"received_on": value}, token)
            assert response.status_code == 422, (value, target, response.text[:300])
            assert message in (field_error(response.text, "received_on") or ""), (value, target)
            assert f'name="received_on" type="date" value="{value}"' in response.text
    assert_unchanged(demo_db, before)
    on_the_day = submit(client, url, {"received_on": shipped_on.isoformat()}, token)
    assert on_the_day.status_code == 303
    assert _shipment(demo_db, shipment_id).received_on == shipped_on
