"""Pharmacy, monitor, admin and report pages on both engines: roles, site scoping, blinding,
CSRF, errors next to fields, and that each form does what the API does (once)."""

from __future__ import annotations

import re
import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Kit, ShipmentKit
from app.services import study_setup
from app.services.actor import SYSTEM
from app.services.transaction import writing
from tests.support.api import LEAK_TEXT, audit_entries
from tests.support.databases import assert_unchanged, forget_kit_shipment, snapshot
from tests.support.demo import DEMO_PASSWORD
from tests.support.helpers import login, randomize, register
from tests.web.support import field_error, hidden, submit, web_login

API = "/api/v1"


def _lots(db: Database) -> set[str]:
    with db.read() as session:
        return set(session.execute(select(Kit.lot).distinct()).scalars())


def assert_page_blinded(text: str, lots: set[str], where: str) -> None:
    lowered = text.lower()
    assert not [w for w in LEAK_TEXT if w in lowered], where
    visible = re.sub(r"<[^>]+>", " ", lowered)  # words of the page, not of its markup
    assert not re.search(r"\b(arm|arms|treatment|lot|lots)\b", visible), where
    assert not re.search(r'data-field="(arm|treatment|lot|content)', lowered), where
    words = set(re.findall(r"[A-Z0-9]+", text))
    assert not words & lots, (where, words & lots)


def _page(client: TestClient, url: str, status: int = 200) -> str:
    response = client.get(url, follow_redirects=False)
    assert response.status_code == status, (url, response.status_code, response.text[:500])
    return response.text


def _shipped(client: TestClient) -> int:
    supply = login(client, "supply")
    body = {"site_id": "DE01", "kits_per_content": 2, "reason": "top up before screening"}
    shipment = client.post(f"{API}/shipments", json=body, headers=supply).json()["shipment_id"]
    assert client.post(f"{API}/shipments/{shipment}/ship", headers=supply).status_code == 200
    return int(shipment)


def _shipment_kits(db: Database, shipment_id: int) -> dict[str, str]:
    with db.read() as session:
        rows = session.execute(
            select(Kit.kit_number, Kit.status)
            .join(ShipmentKit, ShipmentKit.kit_number == Kit.kit_number)
            .where(ShipmentKit.shipment_id == shipment_id)
        ).all()
    return {number: status for number, status in rows}


def test_pages_need_a_session_and_the_right_role(client: TestClient) -> None:
    response = client.get("/pharmacy/shipments", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/pharmacy/shipments"
    refusals = {
        "coordinator": ["/pharmacy", "/monitor/audit", "/admin/cohorts", "/reports/inventory"],
        "pharmacist": ["/monitor/allocations", "/admin/sites", "/reports/unblindings.csv"],
        "supply": ["/subjects/1/kits/X/replace", "/admin/phase2-dose", "/monitor/unblindings"],
        "sponsor": ["/pharmacy", "/monitor/audit/verify", "/reports/inventory.csv"],
        "monitor": ["/pharmacy/shipments", "/admin/cohorts", "/reports/inventory"],
    }
    for user, urls in refusals.items():
        web_login(client, user)
        for url in urls:
            assert "Not for your role" in _page(client, url, 403), (user, url)


def test_pharmacy_inventory_is_scoped_and_blinded(client: TestClient, demo_db: Database) -> None:
    lots = _lots(demo_db)
    web_login(client, "pharmacist")
    page = _page(client, "/pharmacy")
    assert "site DE01" in page and '<option value="DE02"' in page and "US01" not in page
    assert_page_blinded(page, lots, "/pharmacy")
    assert "site DE02" in _page(client, "/pharmacy?site_id=DE02")
    _page(client, "/pharmacy?site_id=US01", 404)
    dispensed = _page(client, "/pharmacy?site_id=DE01&show=dispensed")
    assert "Kits dispensed at site DE01" in dispensed and "Show the kits on hand" in dispensed
    assert (
        '<input type="hidden" name="show" value="dispensed">' in dispensed
    )  # site switch keeps it
    assert_page_blinded(dispensed, lots, "/pharmacy dispensed")
    assert "Show the kits dispensed" in page and ">dispensed<" not in page
    web_login(client, "supply")
    page = _page(client, "/pharmacy?site_id=US01")
    assert "site US01" in page
    assert_page_blinded(page, lots, "/pharmacy as supply")


def test_receipt_per_kit_with_excursion(client: TestClient, demo_db: Database) -> None:
    shipment_id = _shipped(client)
    kits = sorted(_shipment_kits(demo_db, shipment_id))
    url = f"/pharmacy/shipments/{shipment_id}/receive"
    token = web_login(client, "pharmacist")
    listing = _page(client, "/pharmacy/shipments")
    assert f"Receive shipment {shipment_id}" in listing
    form = _page(client, url)
    assert_page_blinded(form, _lots(demo_db), url)
    for kit in kits:
        assert f'<label for="outcome-{kit}-damaged">' in form

    before = snapshot(demo_db)
    data = {f"outcome.{kits[0]}": "damaged", "temperature_excursion": "on"}
    assert "form has expired" in client.post(url, data=data).text  # no CSRF token
    assert client.post(url, data={**data, "csrf_token": "forged"}).status_code == 403
    bad = submit(client, url, {f"outcome.{kits[0]}": "eaten"}, token)
    assert bad.status_code == 422
    assert field_error(bad.text, f"outcome.{kits[0]}") == "choose received, damaged or missing"
    unknown = submit(client, url, {"outcome.NOTINBOX": "missing"}, token)
    assert unknown.status_code == 422 and "not in shipment" in unknown.text
    assert_unchanged(demo_db, before)

    data = {f"outcome.{kits[0]}": "damaged", f"outcome.{kits[1]}": "missing"}
    response = submit(client, url, {**data, "temperature_excursion": "on"}, token)
    assert response.status_code == 303 and response.headers["location"] == url
    statuses = _shipment_kits(demo_db, shipment_id)
    assert (statuses[kits[0]], statuses[kits[1]]) == ("damaged", "lost")
    assert {statuses[k] for k in kits[2:]} == {"quarantined"}
    page = _page(client, url)
    assert "Record receipt" not in page and 'data-field="temperature_excursion">yes' in page
    again = submit(client, url, {}, token)  # the form sent twice: refused, shown with the reason
    assert again.status_code == 409 and 'role="alert"' in again.text


def test_kit_replacement_once_per_form(client: TestClient, demo_db: Database) -> None:
    coordinator = login(client, "coordinator")
    subject = register(client, coordinator)
    kit = randomize(client, coordinator, subject).json()["kits"][0]
    url = f"/subjects/{subject}/kits/{kit}/replace"
    token = web_login(client, "pharmacist")
    form = _page(client, url)
    assert_page_blinded(form, _lots(demo_db), url)
    key = hidden(form, "idempotency_key")
    short = submit(client, url, {"reason": "x", "status": "damaged", "idempotency_key": key}, token)
    assert short.status_code == 422 and field_error(short.text, "reason")
    assert 'aria-describedby="reason-hint reason-error"' in short.text
    assert hidden(short.text, "idempotency_key") == key

    data = {"reason": "vial dropped", "status": "damaged", "idempotency_key": key}
    first = submit(client, url, data, token)
    assert first.status_code == 303 and first.headers["location"].startswith("/confirmations/")
    second = submit(client, url, data, token)  # a double submit: the same confirmation
    assert second.headers["location"] == first.headers["location"]
    with demo_db.read() as session:
        assert session.get(Kit, kit).status == "damaged"  # type: ignore[union-attr]
    fresh = submit(client, url, {**data, "idempotency_key": uuid.uuid4().hex}, token)
    assert fresh.status_code == 409 and "already replaced" in fresh.text
    web_login(client, "coordinator2")  # wrong role, and another site
    _page(client, url, 403)


def test_monitor_pages_and_chain_verification(client: TestClient) -> None:
    coordinator = login(client, "coordinator")
    randomize(client, coordinator, register(client, coordinator))
    web_login(client, "monitor")
    page = _page(client, "/monitor/allocations")
    assert 'data-field="arm">' in page and 'data-field="treatment">' in page
    audit = _page(client, "/monitor/audit")
    assert "<h1>Audit trail</h1>" in audit and '<th scope="row">1</th>' in audit
    assert "Next entries" in audit and "Previous entries" not in audit
    last = int(re.findall(r"after_seq=(\d+)", audit)[-1])
    assert last == 100
    entries = audit_entries(client, login(client, "monitor"))
    tail = _page(client, f"/monitor/audit?after_seq={entries[-1]['seq'] - 3}")
    assert "subject.randomize" in tail and "Previous entries" in tail and "Next entries" not in tail
    assert "Verify chain" in audit and 'hx-get="/monitor/audit/verify"' in audit
    mine = _page(client, "/monitor/audit?username=coordinator&action=subject.randomize")
    rows = re.findall(
        r"<td>(coordinator|system:demo)</td><td>[a-z_]+</td>\s*<td>([a-z_.]+)</td>", mine
    )
    assert rows == [("coordinator", "subject.randomize")], rows
    assert "by coordinator, action subject.randomize" in mine
    page = _page(client, "/monitor/audit/verify")
    assert "<h1>" in page and "The chain is intact" in page
    partial = client.get("/monitor/audit/verify", headers={"HX-Request": "true"})
    assert "The chain is intact" in partial.text and "<h1>" not in partial.text
    assert _page(client, "/monitor/audit?after_seq=-1", 422)
    assert "No subject has been unblinded" in _page(client, "/monitor/unblindings")


def test_the_verify_page_names_each_difference_with_its_values(
    client: TestClient, demo_db: Database
) -> None:
    """An insider's edit of a kit's kept shipment: the page names the row, the problem, and the
    value found against the one expected, as the CLI does."""
    number, shipment = forget_kit_shipment(demo_db, "DE01")
    web_login(client, "monitor")
    page = _page(client, "/monitor/audit/verify")
    listed = re.findall(r"<li>([^<]*)</li>", page.split('data-field="replay_discrepancies"')[1])
    assert listed == [
        f"kits {number}: the kit&#39;s shipment differs from the shipments that carried it "
        f"(shipment_id: None, expected {shipment})"
    ]
    assert "Replay: 1 difference found" in page


def test_cohorts_and_phase2_dose(client: TestClient, demo_db: Database) -> None:
    token = web_login(client, "sponsor")
    page = _page(client, "/admin/cohorts")
    assert_page_blinded(page, _lots(demo_db), "/admin/cohorts")
    assert "Close cohort C1" in page and "Open cohort C2" in page

    before = snapshot(demo_db)
    short = submit(client, "/admin/cohorts/C2/open", {"C2.open.reason": "x"}, token)
    assert short.status_code == 422 and field_error(short.text, "C2.open.reason")
    signed = {"C2.open.reason": "SRC review done", "C2.open.signature.password": DEMO_PASSWORD}
    early = submit(client, "/admin/cohorts/C2/open", signed, token)
    assert early.status_code == 409 and 'role="alert"' in early.text
    dose = submit(
        client,
        "/admin/phase2-dose",
        {
            "dose_mg_per_kg": "1.2",
            "reason": "dose chosen early",
            "signature.password": DEMO_PASSWORD,
        },
        token,
    )
    assert dose.status_code == 409 and 'role="alert"' in dose.text
    assert_unchanged(demo_db, before)

    for code, action in (("C1", "close"), ("C2", "open"), ("C2", "close")):
        data = {
            f"{code}.{action}.reason": "safety review done",
            f"{code}.{action}.signature.password": DEMO_PASSWORD,
        }
        response = submit(client, f"/admin/cohorts/{code}/{action}", data, token)
        assert response.status_code == 303, response.text
    page = _page(client, "/admin/phase2-dose")
    assert '<option value="1.2">' in page
    bad = submit(
        client,
        "/admin/phase2-dose",
        {"dose_mg_per_kg": "", "reason": "dose review decision"},
        token,
    )
    assert bad.status_code == 422 and field_error(bad.text, "dose_mg_per_kg")
    data = {
        "dose_mg_per_kg": "1.2",
        "reason": "dose review decision",
        "signature.password": DEMO_PASSWORD,
    }
    assert submit(client, "/admin/phase2-dose", data, token).status_code == 303
    page = _page(client, "/admin/phase2-dose")
    assert 'data-field="dose_mg_per_kg">1.2 mg/kg' in page and "Record the phase" not in page


def test_site_activation(client: TestClient, demo_db: Database) -> None:
    with writing(demo_db) as session:
        study_setup.add_site(
            session, actor=SYSTEM, site_id="FR01", name="Paris", country="FR", depot_id="DEPOT-EU"
        )
    token = web_login(client, "sponsor")
    page = _page(client, "/admin/sites")
    assert "Activate site FR01" in page and '<label for="FR01-reason">' in page
    short = submit(client, "/admin/sites/FR01/activate", {"FR01.reason": ""}, token)
    assert short.status_code == 422 and field_error(short.text, "FR01.reason")
    nowhere = {"FR01.reason": "SIV done on site", "FR01.depot_id": "NOPE"}
    assert submit(client, "/admin/sites/FR01/activate", nowhere, token).status_code == 404
    response = submit(
        client, "/admin/sites/FR01/activate", {"FR01.reason": "SIV done on site"}, token
    )
    assert response.status_code == 303
    page = _page(client, response.headers["location"])
    assert "Site FR01 is active" in page and "Activate site FR01" not in page
    again = submit(client, "/admin/sites/FR01/activate", {"FR01.reason": "SIV done again"}, token)
    assert again.status_code == 409


def test_report_pages_and_csv_by_role(client: TestClient, demo_db: Database) -> None:
    lots = _lots(demo_db)
    investigator = login(client, "investigator")
    subject = register(client, investigator)
    randomize(client, investigator, subject)
    body = {
        "reason_category": "other",
        "reason": "emergency surgery planned",
        "signature": {"password": DEMO_PASSWORD},
    }
    client.post(f"{API}/subjects/{subject}/unblind", json=body, headers=investigator)
    pages = {
        "coordinator": ["/reports/enrolment"],
        "pharmacist": [
            "/reports/enrolment",
            "/reports/inventory",
            "/reports/inventory?site_id=DE02",
        ],
        "supply": ["/reports/enrolment", "/reports/inventory"],
        "sponsor": ["/reports/enrolment", "/reports/unblindings"],
    }
    for user, urls in pages.items():
        web_login(client, user)
        for url in urls:
            page = _page(client, url)
            assert page.count("<h1>") == 1
            assert_page_blinded(page, lots, f"{user} {url}")
            path, _, query = url.partition("?")
            csv = client.get(f"{path}.csv" + (f"?{query}" if query else ""))
            assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
            assert not [w for w in LEAK_TEXT if w in csv.text.lower()], (user, url)
    web_login(client, "sponsor")
    assert "emergency surgery planned" in _page(client, "/reports/unblindings")
    web_login(client, "pharmacist")
    _page(client, "/reports/inventory?site_id=US01", 404)
    web_login(client, "monitor")
    page = _page(client, "/reports/unblindings")
    assert 'data-field="treatment">' in page
    assert "treatment" in client.get("/reports/unblindings.csv").text.splitlines()[0]
