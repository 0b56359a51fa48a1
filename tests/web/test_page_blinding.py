"""The blinded walk over the pages: with subjects of both arms (phase Ib and phase II) and kits of
both contents at the sites (the API walk's study), every page is opened, and every form
submitted, as every blinded role; no page (success or refusal) names an arm, a treatment, a kit
content or a lot. Every page also refuses the roles that may not see it (403 page), and the
table below must name every page route, with the roles its `page_actor` admits.

Adding a page: add its row to PAGES (method and path as declared, a builder of the requests to
make, the roles allowed)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Kit
from app.domain.roles import BLINDED_ROLES, Role
from app.web import router as web_router
from tests.api.test_blinding import (  # the API walk's study: both arms, both stages, shipments
    HOME_SITE,
    USERS,
    Study,
    _sites_of,
    study,
)
from tests.support.api import assert_blinded, leaks
from tests.support.demo import DEMO_PASSWORD
from tests.support.helpers import login, register, today
from tests.web.support import eligible_form, iso_timestamps, web_login

__all__ = ["study"]  # the fixture, imported for the walk

PageRequest = tuple[str, str, str, dict[str, str]]  # label, method, url, form data
PageBuilder = Callable[[TestClient, Study, str], list[PageRequest]]

EVERYONE = frozenset(Role)
SITE_STAFF = frozenset({Role.SITE_COORDINATOR, Role.INVESTIGATOR, Role.PHARMACIST})
RANDOMIZERS = frozenset({Role.SITE_COORDINATOR, Role.INVESTIGATOR})
INVESTIGATOR = frozenset({Role.INVESTIGATOR})
CONFIRMATION_READERS = SITE_STAFF | {Role.UNBLINDED_MONITOR}
WEIGHT = "70.0"


def _get(url: str, *queries: str) -> PageBuilder:
    def build(client: TestClient, study: Study, user: str) -> list[PageRequest]:
        return [(f"GET {url}{q}", "GET", f"{url}{q}", {}) for q in ("", *queries)]

    return build


def _eligible(**overrides: str) -> dict[str, str]:
    return eligible_form(WEIGHT, idempotency_key=uuid.uuid4().hex, **overrides)


def _own_registered(study: Study, user: str) -> int:
    return study.registered_only[min(_sites_of(user))]


def _arm_subjects(study: Study) -> dict[str, int]:
    return {arm: next(s for s in study.c1 if study.arms[s] == arm) for arm in ("IMC002", "PLACEBO")}


def _register(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    data = {
        "site_id": HOME_SITE.get(user, "DE01"),
        "screening_number": uuid.uuid4().hex[:10],
        "sex": "M",
        "year_of_birth": "1975",
        "idempotency_key": uuid.uuid4().hex,
    }
    return [
        ("register", "POST", "/subjects/new", data),
        ("register invalid", "POST", "/subjects/new", {**data, "year_of_birth": "x"}),
    ]


def _subject_pages(suffix: str) -> PageBuilder:
    def build(client: TestClient, study: Study, user: str) -> list[PageRequest]:
        ids = [*study.subjects, 999_999]
        return [(f"GET {s}{suffix}", "GET", f"/subjects/{s}{suffix}", {}) for s in ids]

    return build


def _review(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    url = f"/subjects/{_own_registered(study, user)}/randomize/review"
    return [
        ("review", "POST", url, _eligible()),
        ("review ineligible", "POST", url, _eligible(sledai_2k_score="2")),
        ("review edit", "POST", url, _eligible(action="edit")),
    ]


def _randomize(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    requests: list[PageRequest] = []
    if user in HOME_SITE and Role(USERS[user]) in RANDOMIZERS:
        fresh = register(client, login(client, user), HOME_SITE[user])
        data = _eligible()
        url = f"/subjects/{fresh}/randomize"
        requests += [("randomize", "POST", url, data), ("randomize again", "POST", url, data)]
    for arm, subject_id in _arm_subjects(study).items():
        url = f"/subjects/{subject_id}/randomize"
        requests.append((f"randomize {arm}", "POST", url, _eligible()))
    return requests


def _dispense(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    subject_id = study.dispense_for.get(user, study.c1[0])
    data = {
        "visit": "W4",
        "visit_date": today().isoformat(),
        "weight_kg": WEIGHT,
        "idempotency_key": uuid.uuid4().hex,
    }
    url = f"/subjects/{subject_id}/dispense"
    requests = [("dispense", "POST", url, data), ("dispense again", "POST", url, data)]
    for arm, other in _arm_subjects(study).items():
        again = {**data, "idempotency_key": uuid.uuid4().hex, "visit": "W8"}
        requests.append((f"dispense {arm}", "POST", f"/subjects/{other}/dispense", again))
    return requests


def _unblind(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    """Refusals only (the success is in test_subject_pages.py)."""
    data = {
        "reason_category": "other",
        "reason": "walk: refused on purpose",
        "signature.password": DEMO_PASSWORD,
    }
    elsewhere = next(s for s in study.c1 if study.sites[s] not in _sites_of(user))
    mine = next(s for s in study.c1 if study.sites[s] in _sites_of(user))
    own = _own_registered(study, user)
    return [
        ("unblind elsewhere", "POST", f"/subjects/{elsewhere}/unblind", data),
        ("unblind not randomized", "POST", f"/subjects/{own}/unblind", data),
        (
            "unblind mistyped",
            "POST",
            f"/subjects/{mine}/unblind",
            {**data, "confirm_screening_number": "nope"},
        ),
    ]


def _confirmations(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    ids = [*range(1, 3 * len(study.subjects)), 999_999]
    return [(f"confirmation {i}", "GET", f"/confirmations/{i}", {}) for i in ids]


def _nothing(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    return []


# --- pharmacy, monitor, admin and report pages (W2) -------------------------------------------

PHARMACY = frozenset({Role.PHARMACIST, Role.SUPPLY_MANAGER})
PHARMACIST = frozenset({Role.PHARMACIST})
SUPPLY = frozenset({Role.SUPPLY_MANAGER})
MONITOR = frozenset({Role.UNBLINDED_MONITOR})
SPONSOR = frozenset({Role.SPONSOR_ADMIN})
MISSTRATIFIED = SITE_STAFF | MONITOR | SPONSOR


def _receipt_pages(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    ids = [*study.shipments.values(), 999_999]
    return [(f"shipment {i}", "GET", f"/pharmacy/shipments/{i}/receive", {}) for i in ids]


def _receive(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    purpose = {"supply": "receive supply", "pharmacist": "receive pharmacist"}.get(user, "ship")
    url = f"/pharmacy/shipments/{study.shipments[purpose]}/receive"
    return [
        ("receive unknown kit", "POST", url, {"outcome.ZZZZZZZZ": "missing"}),
        ("receive", "POST", url, {"temperature_excursion": ""}),
        ("receive again", "POST", url, {}),
    ]


def _receipt_review(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    """The review records nothing: the shipment is still received by `_receive` after it."""
    purpose = {"supply": "receive supply", "pharmacist": "receive pharmacist"}.get(user, "ship")
    url = f"/pharmacy/shipments/{study.shipments[purpose]}/receive/review"
    future = (today() + timedelta(days=2)).isoformat()
    return [
        ("receipt review", "POST", url, {"received_on": today().isoformat()}),
        ("receipt review future", "POST", url, {"received_on": future}),
        ("receipt review edit", "POST", url, {"action": "edit"}),
    ]


def _replace_pages(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    return [
        (f"replace page {arm}", "GET", f"/subjects/{s}/kits/{study.day_one_kit[s]}/replace", {})
        for arm, s in _arm_subjects(study).items()
    ]


def _replace(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    requests: list[PageRequest] = []
    for arm, subject_id in _arm_subjects(study).items():
        url = f"/subjects/{subject_id}/kits/{study.day_one_kit[subject_id]}/replace"
        data = {"reason": "vial dropped", "status": "damaged", "idempotency_key": uuid.uuid4().hex}
        requests += [
            (f"replace {arm}", "POST", url, data),
            (f"replace {arm} again", "POST", url, data),
        ]
    return requests


def _supply_shipment_pages(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    ids = [*study.shipments.values(), 999_999]
    return [(f"supply shipment {i}", "GET", f"/supply/shipments/{i}", {}) for i in ids]


def _supply_request(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    data = {"site_id": "DE01", "kits_per_content": "1", "reason": "walk: manual shipment"}
    return [
        ("supply request", "POST", "/supply/shipments", data),
        ("supply request invalid", "POST", "/supply/shipments", {**data, "kits_per_content": "0"}),
    ]


def _supply_ship(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    url = f"/supply/shipments/{study.shipments['ship']}/ship"
    return [("supply ship", "POST", url, {}), ("supply ship again", "POST", url, {})]


def _supply_cancel(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    url = f"/supply/shipments/{study.shipments['cancel']}/cancel"
    return [
        ("supply cancel invalid", "POST", url, {"reason": "x"}),
        ("supply cancel", "POST", url, {"reason": "walk: not needed"}),
    ]


def _supply_kit_decisions(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    """One quarantined kit of each content (the excursion shipments' kits), released: the two
    answers must read the same."""
    quarantined = client.get(
        "/api/v1/admin/kits",
        params={"status": "quarantined"},
        headers=login(client, "monitor"),
    ).json()
    requests: list[PageRequest] = []
    for content in ("IMC002", "PLACEBO"):
        number = min(k["kit_number"] for k in quarantined if k["content"] == content)
        data = {f"kit-{number}.decision": "release", f"kit-{number}.reason": "walk: kit inspected"}
        url = f"/supply/quarantine/kits/{number}"
        requests.append((f"supply kit decision {content}", "POST", url, data))
    return requests


def _supply_shipment_decisions(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    requests: list[PageRequest] = []
    for decision in ("release", "reject"):
        shipment_id = study.shipments[decision]
        prefix = f"shipment-{shipment_id}."
        data = {f"{prefix}decision": decision, f"{prefix}reason": "walk: decided"}
        url = f"/supply/quarantine/shipments/{shipment_id}"
        requests.append((f"supply {decision} invalid", "POST", url, {f"{prefix}reason": "walk"}))
        requests.append((f"supply {decision}", "POST", url, data))
    return requests


def _supply_levels(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    url = "/supply/levels/DE01"
    return [
        ("supply levels", "POST", url, {"DE01.trigger": "10", "DE01.target": "40"}),
        ("supply levels invalid", "POST", url, {"DE01.trigger": "5", "DE01.target": "5"}),
    ]


def _activate(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    return [
        (
            "activate DE01",
            "POST",
            "/admin/sites/DE01/activate",
            {"DE01.reason": "walk: site initiation visit done"},
        )
    ]


def _timezone(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    url = "/admin/sites/US01/timezone"
    return [
        ("timezone US01", "POST", url, {"US01.timezone": "America/New_York"}),
        ("timezone unknown", "POST", url, {"US01.timezone": "Mars/Olympus"}),
    ]


def _cohort(action: str) -> PageBuilder:
    def build(client: TestClient, study: Study, user: str) -> list[PageRequest]:
        return [
            (
                f"{action} {code}",
                "POST",
                f"/admin/cohorts/{code}/{action}",
                {
                    f"{code}.{action}.reason": "walk: safety review done",
                    f"{code}.{action}.signature.password": DEMO_PASSWORD,
                },
            )
            for code in ("C1", "C2", "C3")
        ]

    return build


def _phase2(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    data = {
        "dose_mg_per_kg": "0.8",
        "reason": "walk: dose review decision",
        "signature.password": DEMO_PASSWORD,
    }
    return [("select dose", "POST", "/admin/phase2-dose", data)]


def _caps(url: str) -> PageBuilder:
    """Lower the planned C3 by one (its place stays unused), for review or signed."""

    def build(client: TestClient, study: Study, user: str) -> list[PageRequest]:
        data = {
            "cap.C3": "7",
            "reason": "walk: DSMB review of caps",
            "signature.password": DEMO_PASSWORD,
            "idempotency_key": f"walk-caps-{user}",
        }
        return [(f"caps {url}", "POST", url, data)]

    return build


def _correction(submit: bool) -> PageBuilder:
    """A stratification factor corrected on a phase II subject of each arm (review, or the
    signed submit and a wrong password): the pages must read the same for both arms."""

    def build(client: TestClient, study: Study, user: str) -> list[PageRequest]:
        requests: list[PageRequest] = []
        for arm in ("IMC002", "PLACEBO"):
            subject_id = next(s for s in study.phase2[:4] if study.arms[s] == arm)
            data = {
                "field": "eligibility.bilag_b_count",
                "new_value": "3",
                "reason": "walk: source data verification",
                "idempotency_key": uuid.uuid4().hex,
            }
            if not submit:
                url = f"/subjects/{subject_id}/corrections/review"
                requests += [
                    (f"review correction {arm}", "POST", url, data),
                    (f"edit correction {arm}", "POST", url, {**data, "action": "edit"}),
                ]
                continue
            url = f"/subjects/{subject_id}/corrections"
            wrong = {**data, "signature.password": "not-the-password"}
            signed = {**data, "signature.password": DEMO_PASSWORD}
            requests += [
                (f"correct wrong password {arm}", "POST", url, wrong),
                (f"correct {arm}", "POST", url, signed),
            ]
        return requests

    return build


PAGES: dict[tuple[str, str], tuple[PageBuilder, frozenset[Role]]] = {
    ("GET", "/"): (_get("/"), EVERYONE),
    ("GET", "/login"): (_get("/login"), EVERYONE),
    ("POST", "/login"): (_nothing, EVERYONE),  # tests/web/test_session_pages.py
    ("POST", "/logout"): (_nothing, EVERYONE),  # would end the walk's session
    ("GET", "/subjects"): (_get("/subjects", "?site_id=DE01", "?site_id=US01"), SITE_STAFF),
    ("GET", "/subjects/new"): (_get("/subjects/new"), SITE_STAFF),
    ("POST", "/subjects/new"): (_register, SITE_STAFF),
    ("GET", "/subjects/{subject_id}"): (_subject_pages(""), SITE_STAFF),
    ("GET", "/subjects/{subject_id}/randomize"): (_subject_pages("/randomize"), RANDOMIZERS),
    ("POST", "/subjects/{subject_id}/randomize/review"): (_review, RANDOMIZERS),
    ("POST", "/subjects/{subject_id}/randomize"): (_randomize, RANDOMIZERS),
    ("GET", "/subjects/{subject_id}/dispense"): (_subject_pages("/dispense"), SITE_STAFF),
    ("POST", "/subjects/{subject_id}/dispense"): (_dispense, SITE_STAFF),
    ("GET", "/subjects/{subject_id}/unblind"): (_subject_pages("/unblind"), INVESTIGATOR),
    ("POST", "/subjects/{subject_id}/unblind"): (_unblind, INVESTIGATOR),
    ("GET", "/subjects/{subject_id}/corrections/new"): (
        _subject_pages("/corrections/new"),
        RANDOMIZERS,
    ),
    ("POST", "/subjects/{subject_id}/corrections/review"): (_correction(False), RANDOMIZERS),
    ("POST", "/subjects/{subject_id}/corrections"): (_correction(True), RANDOMIZERS),
    ("GET", "/reports/misstratified"): (_get("/reports/misstratified"), MISSTRATIFIED),
    ("GET", "/reports/misstratified.csv"): (_get("/reports/misstratified.csv"), MISSTRATIFIED),
    ("GET", "/confirmations"): (_get("/confirmations"), CONFIRMATION_READERS),
    ("GET", "/confirmations/{confirmation_id}"): (_confirmations, CONFIRMATION_READERS),
    ("GET", "/pharmacy"): (
        _get("/pharmacy", "?site_id=DE02", "?site_id=US01", "?show=dispensed"),
        PHARMACY,
    ),
    ("GET", "/pharmacy/shipments"): (_get("/pharmacy/shipments"), PHARMACY),
    ("GET", "/pharmacy/shipments/{shipment_id}/receive"): (_receipt_pages, PHARMACY),
    ("POST", "/pharmacy/shipments/{shipment_id}/receive/review"): (_receipt_review, PHARMACY),
    ("POST", "/pharmacy/shipments/{shipment_id}/receive"): (_receive, PHARMACY),
    ("GET", "/subjects/{subject_id}/kits/{kit_number}/replace"): (_replace_pages, PHARMACIST),
    ("POST", "/subjects/{subject_id}/kits/{kit_number}/replace"): (_replace, PHARMACIST),
    ("GET", "/supply"): (_get("/supply"), SUPPLY),
    ("GET", "/supply/shipments"): (
        _get("/supply/shipments", "?site_id=DE01", "?status=quarantined"),
        SUPPLY,
    ),
    ("GET", "/supply/shipments/new"): (_get("/supply/shipments/new"), SUPPLY),
    ("POST", "/supply/shipments"): (_supply_request, SUPPLY),
    ("GET", "/supply/shipments/{shipment_id}"): (_supply_shipment_pages, SUPPLY),
    ("POST", "/supply/shipments/{shipment_id}/ship"): (_supply_ship, SUPPLY),
    ("POST", "/supply/shipments/{shipment_id}/cancel"): (_supply_cancel, SUPPLY),
    ("GET", "/supply/quarantine"): (_get("/supply/quarantine"), SUPPLY),
    ("POST", "/supply/quarantine/kits/{kit_number}"): (_supply_kit_decisions, SUPPLY),
    ("POST", "/supply/quarantine/shipments/{shipment_id}"): (_supply_shipment_decisions, SUPPLY),
    ("GET", "/supply/levels"): (_get("/supply/levels"), SUPPLY),
    ("POST", "/supply/levels/{site_id}"): (_supply_levels, SUPPLY),
    ("GET", "/supply/depots"): (_get("/supply/depots"), SUPPLY),
    ("GET", "/monitor/allocations"): (_get("/monitor/allocations"), MONITOR),
    ("GET", "/monitor/unblindings"): (_get("/monitor/unblindings"), MONITOR),
    ("GET", "/monitor/audit"): (_get("/monitor/audit", "?after_seq=100"), MONITOR),
    ("GET", "/monitor/audit/verify"): (_get("/monitor/audit/verify"), MONITOR),
    ("GET", "/admin/sites"): (_get("/admin/sites"), SPONSOR),
    ("POST", "/admin/sites/{site_id}/activate"): (_activate, SPONSOR),
    ("POST", "/admin/sites/{site_id}/timezone"): (_timezone, SPONSOR),
    ("GET", "/admin/caps"): (_get("/admin/caps"), SPONSOR),
    ("POST", "/admin/caps/review"): (_caps("/admin/caps/review"), SPONSOR),
    ("POST", "/admin/caps"): (_caps("/admin/caps"), SPONSOR),
    ("GET", "/admin/study-versions"): (_get("/admin/study-versions"), SPONSOR | MONITOR),
    ("GET", "/admin/cohorts"): (_get("/admin/cohorts"), SPONSOR),
    ("POST", "/admin/cohorts/{code}/open"): (_cohort("open"), SPONSOR),
    ("POST", "/admin/cohorts/{code}/close"): (_cohort("close"), SPONSOR),
    ("GET", "/admin/phase2-dose"): (_get("/admin/phase2-dose"), SPONSOR),
    ("POST", "/admin/phase2-dose"): (_phase2, SPONSOR),
    ("GET", "/reports/enrolment"): (_get("/reports/enrolment"), EVERYONE),
    ("GET", "/reports/enrolment.csv"): (_get("/reports/enrolment.csv"), EVERYONE),
    ("GET", "/reports/inventory"): (_get("/reports/inventory", "?site_id=DE01"), PHARMACY),
    ("GET", "/reports/inventory.csv"): (_get("/reports/inventory.csv"), PHARMACY),
    ("GET", "/reports/kits-due"): (_get("/reports/kits-due", "?site_id=DE01"), PHARMACY),
    ("GET", "/reports/unblindings"): (_get("/reports/unblindings"), MONITOR | SPONSOR),
    ("GET", "/reports/unblindings.csv"): (_get("/reports/unblindings.csv"), MONITOR | SPONSOR),
}
# the live forecast (app/web/pages_forecast.py): totals over contents for every blinded role
FORECAST_READERS = PHARMACY | MONITOR | SPONSOR
PAGES[("GET", "/supply/forecast")] = (
    _get("/supply/forecast", "?weeks=1", "?weeks=52", "?weeks=0", "?weeks=x"),
    FORECAST_READERS,
)
PAGES[("GET", "/supply/forecast.csv")] = (
    _get("/supply/forecast.csv", "?weeks=52", "?weeks=53"),
    FORECAST_READERS,
)
# the simulation (app/web/pages_simulation.py) reads no trial data: simulated trials name their
# contents, which tells nothing of the real trial's arms, so the walk does not look for arms there
SIMULATION_READERS = SUPPLY | SPONSOR | MONITOR
SIMULATION_RUN = {"scenario": "imc002-demo", "trials": "1", "seed": "1"}
SIMULATED = ("/supply/simulation",)


def _simulate(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    return [
        ("simulate", "POST", "/supply/simulation", SIMULATION_RUN),
        ("simulate invalid", "POST", "/supply/simulation", {**SIMULATION_RUN, "trials": "0"}),
    ]


PAGES[("GET", "/supply/simulation")] = (_get("/supply/simulation"), SIMULATION_READERS)
PAGES[("POST", "/supply/simulation")] = (_simulate, SIMULATION_READERS)
for _suffix in (".json", ".csv"):
    PAGES[("GET", f"/supply/simulation{_suffix}")] = (
        _get(f"/supply/simulation{_suffix}", "?trials=1&seed=1", "?trials=0&seed=1"),
        SIMULATION_READERS,
    )
# the session's own routes (app/web/pages_session.py; tests/web/test_session_timeout.py)
PAGES[("GET", "/session/status")] = (_get("/session/status"), EVERYONE)
PAGES[("POST", "/session/extend")] = (
    lambda client, study, user: [("stay logged in", "POST", "/session/extend", {})],
    EVERYONE,
)
PAGES[("GET", "/session/kept")] = (_get("/session/kept"), EVERYONE)
PAGES[("POST", "/session/kept/discard")] = (
    lambda client, study, user: [("discard kept", "POST", "/session/kept/discard", {})],
    EVERYONE,
)


# the subject status pages (app/web/pages_lifecycle.py), walked after the dosing visits
STATUS_PATHS = ("screen-fail", "discontinue", "withdraw", "complete")


def _status_body(category: str = "other") -> dict[str, str]:
    return {
        "effective_date": today().isoformat(),
        "reason_category": category,
        "reason": "walk: recorded on purpose",
        "idempotency_key": uuid.uuid4().hex,
    }


def _status_forms(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    own = _own_registered(study, user)
    requests = [
        (f"status form {p}", "GET", f"/subjects/{own}/status/{p}", {})
        for p in (*STATUS_PATHS, "nonsense")
    ]
    requests += [
        (f"status form {arm}", "GET", f"/subjects/{s}/status/discontinue", {})
        for arm, s in _arm_subjects(study).items()
    ]
    return requests


def _status_reviews(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    own = _own_registered(study, user)
    requests = [
        ("status review", "POST", f"/subjects/{own}/status/screen-fail/review", _status_body()),
        (
            "status review refused",
            "POST",
            f"/subjects/{own}/status/discontinue/review",
            _status_body(),
        ),
    ]
    for arm, subject_id in _arm_subjects(study).items():
        url = f"/subjects/{subject_id}/status/discontinue/review"
        requests.append((f"status review {arm}", "POST", url, _status_body("adverse_event")))
    return requests


def _status_submits(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    requests: list[PageRequest] = []
    if user in HOME_SITE and Role(USERS[user]) in RANDOMIZERS:
        fresh = register(client, login(client, user), HOME_SITE[user])
        url = f"/subjects/{fresh}/status/screen-fail"
        requests.append(("status screen fail", "POST", url, _status_body("eligibility_not_met")))
    for arm, subject_id in _arm_subjects(study).items():
        url = f"/subjects/{subject_id}/status/complete"
        requests.append((f"status complete {arm}", "POST", url, _status_body("completed")))
    return requests


def _undo_pages(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    ids = [_own_registered(study, user), *_arm_subjects(study).values()]
    return [(f"undo form {s}", "GET", f"/subjects/{s}/status-undo", {}) for s in ids]


def _undo_reviews(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    data = {"reason": "walk: undone on purpose", "idempotency_key": uuid.uuid4().hex}
    return [
        (f"undo review {s}", "POST", f"/subjects/{s}/status-undo/review", data)
        for s in [_own_registered(study, user), *_arm_subjects(study).values()]
    ]


def _undo_submits(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    data = {
        "reason": "walk: undone on purpose",
        "change_id": "1",
        "signature.password": DEMO_PASSWORD,
        "idempotency_key": uuid.uuid4().hex,
    }
    return [
        (f"undo {s}", "POST", f"/subjects/{s}/status-undo", data)
        for s in [_own_registered(study, user), *_arm_subjects(study).values()]
    ]


PAGES[("GET", "/subjects/{subject_id}/status/{path}")] = (_status_forms, RANDOMIZERS)
PAGES[("POST", "/subjects/{subject_id}/status/{path}/review")] = (_status_reviews, RANDOMIZERS)
PAGES[("POST", "/subjects/{subject_id}/status/{path}")] = (_status_submits, RANDOMIZERS)
PAGES[("GET", "/subjects/{subject_id}/status-undo")] = (_undo_pages, RANDOMIZERS)
PAGES[("POST", "/subjects/{subject_id}/status-undo/review")] = (_undo_reviews, RANDOMIZERS)
PAGES[("POST", "/subjects/{subject_id}/status-undo")] = (_undo_submits, RANDOMIZERS)


# visit windows (app/web/pages_visits.py): acts on week 48 of a subject of each arm (its window
# is not open, nothing is dispensed: refused alike), the visit report, the cohort close review
def _visit_acts(method: str, act: str) -> PageBuilder:
    def build(client: TestClient, study: Study, user: str) -> list[PageRequest]:
        data = {"reason": "walk: the visit did not take place"}
        requests: list[PageRequest] = []
        for arm, subject_id in _arm_subjects(study).items():
            url = f"/subjects/{subject_id}/visits/W48/{act}"
            requests.append(
                (f"{method} {act} {arm}", method, url, data if method == "POST" else {})
            )
        if method == "POST":
            own = _arm_subjects(study)["IMC002"]
            bad = ("POST", f"/subjects/{own}/visits/W48/{act}", {"reason": "short"})
            requests.append((f"{act} short reason", *bad))
        return requests

    return build


def _close_reviews(client: TestClient, study: Study, user: str) -> list[PageRequest]:
    return [
        (f"close review {code}", "POST", f"/admin/cohorts/{code}/close/review", data)
        for code in ("C1", "C2", "C3")
        for data in ({f"{code}.close.reason": "walk: safety review done"},)
    ]


for _act in ("missed", "entered-in-error"):
    PAGES[("GET", f"/subjects/{{subject_id}}/visits/{{visit}}/{_act}")] = (
        _visit_acts("GET", _act),
        SITE_STAFF,
    )
    PAGES[("POST", f"/subjects/{{subject_id}}/visits/{{visit}}/{_act}")] = (
        _visit_acts("POST", _act),
        SITE_STAFF,
    )
PAGES[("GET", "/reports/visits")] = (_get("/reports/visits", "?site_id=DE01"), SITE_STAFF)
PAGES[("GET", "/reports/visits.csv")] = (_get("/reports/visits.csv", "?site_id=DE01"), SITE_STAFF)
PAGES[("POST", "/admin/cohorts/{code}/close/review")] = (_close_reviews, SPONSOR)
PUBLIC = {("GET", "/login"), ("POST", "/login")}


def _page_routes() -> dict[tuple[str, str], frozenset[Role] | None]:
    """Every page route with the roles of its `page_actor` (None: no session needed)."""
    found: dict[tuple[str, str], frozenset[Role] | None] = {}
    for route, path in _flat_routes(web_router.routes):
        allowed = None
        pending = list(route.dependant.dependencies)
        while pending:
            dependant = pending.pop()
            roles = getattr(dependant.call, "allowed_roles", None)
            if roles is not None:
                allowed = frozenset(roles)
            pending.extend(dependant.dependencies)
        for method in route.methods:
            found[(method, path)] = allowed
    return found


def _flat_routes(routes: list[Any]) -> list[tuple[APIRoute, str]]:
    """(route, full path) of every page; FastAPI keeps included routers nested."""
    flat: list[tuple[APIRoute, str]] = []
    for item in routes:
        if isinstance(item, APIRoute):
            flat.append((item, item.path))
            continue
        for context in item.effective_route_contexts():
            assert isinstance(context.original_route, APIRoute)
            flat.append((context.original_route, context.path))
    return flat


def test_every_page_is_in_the_table_with_the_roles_it_admits() -> None:
    routes = _page_routes()
    assert set(routes) == set(PAGES), "add the page to PAGES in tests/web/test_page_blinding.py"
    for key, roles in routes.items():
        expected = None if key in PUBLIC else PAGES[key][1]
        assert roles == expected, key


def _walk(client: TestClient, study: Study, user: str, subtests: Any) -> dict[str, httpx.Response]:
    role = Role(USERS[user])
    token = web_login(client, user)
    seen: dict[str, httpx.Response] = {}
    for (method, _), (build, allowed_roles) in PAGES.items():
        allowed = role in allowed_roles
        for label, verb, url, data in build(client, study, user):
            assert verb == method
            if verb == "POST":
                response = client.post(url, data={**data, "csrf_token": token})
            else:
                response = client.get(url)
            seen[label] = response
            context = f"{user}: {verb} {url} ({label}) -> {response.status_code}"
            with subtests.test(msg=context):
                if not url.startswith(SIMULATED):
                    assert_blinded(response, context)
                # dates and times as people read them, never ISO 8601 machine time
                assert iso_timestamps(response) == [], context
                # every form a page shows can be submitted: its CSRF token is filled in
                assert 'name="csrf_token" value=""' not in response.text, context
                assert response.status_code < 500, response.text
                assert response.url.path != "/login" or url == "/login", context
                if not allowed:
                    assert response.status_code == 403, context
                else:
                    assert response.status_code not in (401, 403), response.text
    return seen


def _lots(client: TestClient) -> set[str]:
    db: Database = client.app.state.db  # type: ignore[attr-defined]
    with db.read() as session:
        lots = set(session.execute(select(Kit.lot).distinct()).scalars())
    assert len(lots) >= 2, lots
    return lots


@pytest.mark.parametrize("user", sorted(USERS))
def test_blinded_page_walk(client: TestClient, study: Study, user: str, subtests: Any) -> None:
    assert USERS[user] in BLINDED_ROLES
    seen = _walk(client, study, user, subtests)
    role = Role(USERS[user])
    lots = _lots(client)
    for label, response in seen.items():  # lot codes differ by content: none may show
        shown = [lot for lot in lots if lot in response.text]
        assert not shown, f"{user}: {label} shows lot(s) {shown}"
    if role in SITE_STAFF:  # the walk reached what the role may see
        mine = {s for s in study.subjects if study.sites[s] in _sites_of(user)}
        for subject_id in study.subjects:
            expected = 200 if subject_id in mine else 404
            assert seen[f"GET {subject_id}"].status_code == expected, (user, subject_id)
        assert seen["GET /confirmations"].text.count('href="/confirmations/') >= 1
        assert seen["dispense"].url.path.startswith("/confirmations/")
        assert seen["dispense again"].url.path == seen["dispense"].url.path
    if role in RANDOMIZERS and user in HOME_SITE:
        assert seen["randomize"].url.path.startswith("/confirmations/"), seen["randomize"].text
        assert seen["randomize again"].url.path == seen["randomize"].url.path
        assert seen["review"].status_code == 200 and "Confirm and randomize" in seen["review"].text
        assert seen["review ineligible"].status_code == 422
        # refusing an active and a placebo subject reads the same but for the subject
        bodies = [seen[f"randomize {arm}"] for arm in ("IMC002", "PLACEBO")]
        assert bodies[0].status_code == bodies[1].status_code
    if role == Role.INVESTIGATOR:
        assert seen["unblind elsewhere"].status_code == 404
        assert seen["unblind not randomized"].status_code in (409, 422)
        assert seen["unblind mistyped"].status_code == 422
    if role == Role.PHARMACIST:
        for arm in ("IMC002", "PLACEBO"):
            first, again = seen[f"replace {arm}"], seen[f"replace {arm} again"]
            assert first.url.path.startswith("/confirmations/"), first.text
            assert again.url.path == first.url.path
    if role in PHARMACY:
        assert seen["receive"].status_code == 200 and "Record receipt" not in seen["receive"].text
        assert seen["receive unknown kit"].status_code == 422
        assert seen["receive again"].status_code == 409
        review = seen["receipt review"]
        assert review.status_code == 200 and "Confirm receipt" in review.text, review.text
        assert seen["receipt review future"].status_code == 422
        assert seen["receipt review edit"].status_code == 200
    if role == Role.SUPPLY_MANAGER:
        _assert_supply_walk(study, seen)


def _assert_supply_walk(study: Study, seen: dict[str, httpx.Response]) -> None:
    """The supply manager's forms did their work (so the walk saw their answers)."""
    shipped = seen["supply ship"]
    assert shipped.url.path == f"/supply/shipments/{study.shipments['ship']}", shipped.text
    assert 'data-field="status">shipped' in shipped.text
    assert seen["supply ship again"].status_code == 409
    assert seen["supply request"].url.path.startswith("/supply/shipments/")
    assert 'data-field="status">requested' in seen["supply request"].text
    for label in ("supply request invalid", "supply cancel invalid", "supply levels invalid"):
        assert seen[label].status_code == 422, label
    assert 'data-field="status">cancelled' in seen["supply cancel"].text
    assert seen["supply levels"].url.path == "/supply/levels"
    for decision in ("release", "reject"):
        assert seen[f"supply {decision} invalid"].status_code == 422
        assert seen[f"supply {decision}"].url.path == "/supply/quarantine", decision
    # releasing a kit of either content reads the same
    answers = [seen[f"supply kit decision {c}"] for c in ("IMC002", "PLACEBO")]
    assert [a.url.path for a in answers] == ["/supply/quarantine"] * 2
    assert answers[0].status_code == answers[1].status_code == 200


def test_the_detector_finds_the_arm_on_the_monitors_confirmations(
    client: TestClient, study: Study
) -> None:
    """The control: the unblinded monitor's confirmation pages name the treatment."""
    web_login(client, "monitor")
    found = []
    for confirmation_id in range(1, 3 * len(study.subjects)):
        page = client.get(f"/confirmations/{confirmation_id}")
        if page.status_code == 200:
            found += leaks(page)
    assert any("placebo" in problem for problem in found), found
