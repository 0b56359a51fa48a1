"""The blinded walk: with subjects randomized in both arms (phase Ib and phase II) and kits of
both contents at the sites, every route of the OpenAPI document is called as every blinded role,
and no response (success or refusal, body or header) carries the arm, the treatment, a kit
content or lot, a block, a slot or the seed. The unblinded monitor is the control: the same
detector must find the arm in its allocations and the content in its kit list."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import resources
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.domain.kits import generate_kit_list, kit_list_csv
from app.domain.randomization_list import generate_list, to_csv
from app.domain.roles import BLINDED_ROLES, Role
from app.domain.study import load_study
from tests.support.api import assert_blinded, assert_problem, fill_path, leaks, openapi_operations
from tests.support.demo import DEMO_PASSWORD
from tests.support.helpers import (
    SIGNATURE_HEADERS,
    SIGNED,
    login,
    randomize,
    randomize_body,
    register,
    today,
)
from tests.support.pools import stock_stage_pools

API = "/api/v1"
ADMIN = f"{API}/admin"
EXPORTS = f"{ADMIN}/exports"
WEIGHT = 70.0
DEPOT = "DEPOT-EU"

# the blinded users of the demo, in walk order (coordinator2 is a site user of another site)
USERS = {
    "coordinator": Role.SITE_COORDINATOR,
    "coordinator2": Role.SITE_COORDINATOR,
    "investigator": Role.INVESTIGATOR,
    "pharmacist": Role.PHARMACIST,
    "supply": Role.SUPPLY_MANAGER,
    "sponsor": Role.SPONSOR_ADMIN,
}
HOME_SITE = {  # where each site user registers and randomizes in the walk
    "coordinator": "DE01",
    "coordinator2": "US01",
    "investigator": "DE02",
    "pharmacist": "DE01",
}
SITES_OF = {"coordinator2": {"US01"}}


def _sites_of(user: str) -> set[str]:
    return SITES_OF.get(user, {"DE01", "DE02"})


@dataclass
class Study:
    """The study built for the walk, with what the unblinded monitor knows about it."""

    arms: dict[int, str] = field(default_factory=dict)  # subject -> arm (monitor's allocations)
    sites: dict[int, str] = field(default_factory=dict)  # subject -> site
    c1: list[int] = field(default_factory=list)  # randomized four weeks ago, weight 70 kg
    phase2: list[int] = field(default_factory=list)  # the first four share one stratum
    registered_only: dict[str, int] = field(default_factory=dict)  # site -> subject
    day_one_kit: dict[int, str] = field(default_factory=dict)
    dispense_for: dict[str, int] = field(default_factory=dict)  # user -> subject due at W4
    shipments: dict[str, int] = field(default_factory=dict)  # purpose -> shipment id
    kits: dict[str, list[str]] = field(default_factory=dict)  # content -> two available at DE01
    available: dict[str, set[str]] = field(default_factory=dict)  # content -> all, at DE01
    expiry: dict[str, str] = field(default_factory=dict)  # kit -> expiry date, at DE01
    us01_kit: str = ""
    setup_responses: list[tuple[str, httpx.Response]] = field(default_factory=list)

    @property
    def subjects(self) -> list[int]:
        return sorted([*self.arms, *self.registered_only.values()])

    def keep(self, label: str, response: httpx.Response, status: int = 200) -> dict[str, Any]:
        assert response.status_code == status, f"{label}: {response.text}"
        self.setup_responses.append((label, response))
        body: dict[str, Any] = response.json()
        return body


def _four_weeks_ago(**overrides: Any) -> dict[str, Any]:
    """Randomized 28 days ago, so that visit W4 is due today."""
    body = randomize_body(weight_kg=WEIGHT, **overrides)
    body["visit_date"] = (today() - timedelta(days=28)).isoformat()
    body["eligibility"]["screening_date"] = (today() - timedelta(days=40)).isoformat()
    return body


def _allocations(client: TestClient) -> list[dict[str, Any]]:
    response = client.get(f"{ADMIN}/allocations", headers=login(client, "monitor"))
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


def _randomized(
    client: TestClient, study: Study, headers: dict[str, str], site: str, body: dict[str, Any]
) -> int:
    subject_id = register(client, headers, site_id=site)
    out = study.keep(f"randomize {subject_id}", randomize(client, headers, subject_id, body), 201)
    study.day_one_kit[subject_id] = out["kits"][0]
    return subject_id


@pytest.fixture
def study(client: TestClient) -> Study:
    built = Study()
    coordinator = login(client, "coordinator")
    investigator = login(client, "investigator")
    coordinator2 = login(client, "coordinator2")
    # phase Ib C1 (3:1 in blocks of 4): both arms appear within the first block
    while len({a["arm"] for a in _allocations(client)}) < 2:
        assert len(built.c1) < 4, "the first block of 4 must hold both arms"
        built.c1.append(_randomized(client, built, coordinator, "DE01", _four_weeks_ago()))
    built.dispense_for = {"coordinator": built.c1[0], "pharmacist": built.c1[1]}
    for user, headers in (("investigator", investigator), ("coordinator2", coordinator2)):
        subject_id = _randomized(client, built, headers, HOME_SITE[user], _four_weeks_ago())
        built.c1.append(subject_id)
        built.dispense_for[user] = subject_id

    # the sponsor's stage decisions, whose responses are checked too
    sponsor = login(client, "sponsor")
    for code, action in (("C1", "close"), ("C2", "open"), ("C2", "close")):
        url = f"{ADMIN}/cohorts/{code}/{action}"
        built.keep(
            f"{action} {code}",
            client.post(url, json={"reason": "SRC review done", **SIGNED}, headers=sponsor),
        )
    body = {"dose_mg_per_kg": 1.2, "reason": "SRC dose decision", **SIGNED}
    built.keep("phase2-dose", client.post(f"{ADMIN}/phase2-dose", json=body, headers=sponsor))
    stock_stage_pools(client.app.state.db)  # type: ignore[attr-defined]

    # phase II 1:1 in blocks of 4 or 6: four subjects of one stratum hold both arms
    for _ in range(4):
        body = randomize_body(sledai_2k_score=8, prednisone_equivalent_mg_per_day=5)
        built.phase2.append(_randomized(client, built, coordinator, "DE01", body))
    body = randomize_body(sledai_2k_score=14, prednisone_equivalent_mg_per_day=20)
    built.phase2.append(_randomized(client, built, investigator, "DE02", body))
    built.registered_only["DE01"] = register(client, coordinator, site_id="DE01")
    built.registered_only["US01"] = register(client, coordinator2, site_id="US01")

    # shipments to DE01 in every state the walk needs
    supply, pharmacist = login(client, "supply"), login(client, "pharmacist")
    plan = {
        "ship": [],
        "cancel": [],
        "receive pharmacist": ["ship"],
        "receive supply": ["ship"],
        "release": ["ship", "excursion"],
        "reject": ["ship", "excursion"],
    }
    for purpose, steps in plan.items():
        request = {
            "site_id": "DE01",
            "kits_per_content": 1,
            "reason": f"walk: shipment to {purpose}",
        }
        created = built.keep(
            f"request {purpose}",
            client.post(f"{API}/shipments", json=request, headers=supply),
            201,
        )
        shipment_id = created["shipment_id"]
        built.shipments[purpose] = shipment_id
        if "ship" in steps:
            url = f"{API}/shipments/{shipment_id}/ship"
            built.keep(f"ship {purpose}", client.post(url, headers=supply))
        if "excursion" in steps:
            url = f"{API}/shipments/{shipment_id}/receive"
            body = {"temperature_excursion": True}
            built.keep(f"receive {purpose}", client.post(url, json=body, headers=pharmacist))

    monitor = login(client, "monitor")
    available = client.get(
        f"{ADMIN}/kits", params={"site_id": "DE01", "status": "available"}, headers=monitor
    ).json()
    built.expiry = {k["kit_number"]: k["expiry_date"] for k in available}
    for content in load_study().contents:
        numbers = [k["kit_number"] for k in available if k["content"] == content]
        built.available[content] = set(numbers)
        built.kits[content] = numbers[:2]
        assert len(built.kits[content]) == 2
    us01 = client.get(f"{ADMIN}/kits", params={"site_id": "US01"}, headers=monitor).json()
    built.us01_kit = us01[0]["kit_number"]

    allocations = _allocations(client)
    built.arms = {a["subject_id"]: a["arm"] for a in allocations}
    built.sites = {a["subject_id"]: a["site_id"] for a in allocations}
    built.sites.update({s: site for site, s in built.registered_only.items()})
    assert {built.arms[s] for s in built.c1} == {"IMC002", "PLACEBO"}
    assert {built.arms[s] for s in built.phase2[:4]} == {"IMC002", "PLACEBO"}
    return built


# --- what the walk sends to each route --------------------------------------------------------

Request = tuple[str, str, str, dict[str, Any]]  # label, method, url, httpx keyword arguments
Builder = Callable[[TestClient, Study, str, dict[str, str]], list[Request]]


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def _get(url: str, *queries: dict[str, Any]) -> Builder:
    def build(client: TestClient, study: Study, user: str, hdrs: dict[str, str]) -> list[Request]:
        requests: list[Request] = [(f"GET {url}", "GET", url, {})]
        for query in queries:
            requests.append((f"GET {url} {query}", "GET", url, {"params": query}))
        return requests

    return build


def _token(client: TestClient, study: Study, user: str, hdrs: dict[str, str]) -> list[Request]:
    url = f"{API}/auth/token"
    return [
        ("login", "POST", url, {"data": {"username": user, "password": DEMO_PASSWORD}}),
        ("bad login", "POST", url, {"data": {"username": user, "password": "wrong"}}),
    ]


def _logout(client: TestClient, study: Study, user: str, hdrs: dict[str, str]) -> list[Request]:
    """A token of its own, so that the walk's token stays valid."""
    return [("logout", "POST", f"{API}/auth/logout", {"headers": login(client, user)})]


def _register(client: TestClient, study: Study, user: str, hdrs: dict[str, str]) -> list[Request]:
    body = {
        "site_id": HOME_SITE.get(user, "DE01"),
        "screening_number": uuid.uuid4().hex[:10],
        "sex": "M",
        "year_of_birth": 1975,
    }
    other = {**body, "site_id": "XX99", "screening_number": "X1"}
    url, key = f"{API}/subjects", _key()
    return [
        ("register", "POST", url, {"json": body, "headers": key}),
        ("register replay", "POST", url, {"json": body, "headers": key}),
        ("register elsewhere", "POST", url, {"json": other}),
    ]


def _subject_views(
    client: TestClient, study: Study, user: str, hdrs: dict[str, str]
) -> list[Request]:
    return [(f"view {s}", "GET", f"{API}/subjects/{s}", {}) for s in [*study.subjects, 999_999]]


def _randomize(client: TestClient, study: Study, user: str, hdrs: dict[str, str]) -> list[Request]:
    # a fresh subject when the role may register one, else any existing subject
    fresh = register(client, hdrs, HOME_SITE[user]) if user in HOME_SITE else study.c1[0]
    url, key = f"{API}/subjects/{fresh}/randomize", _key()
    body = randomize_body(weight_kg=WEIGHT)
    ineligible = randomize_body(sledai_2k_score=2, on_soc_medication=False)
    own = study.registered_only[min(_sites_of(user))]
    requests: list[Request] = [
        ("randomize", "POST", url, {"json": body, "headers": key}),
        ("randomize replay", "POST", url, {"json": body, "headers": key}),
        ("randomize again", "POST", url, {"json": body, "headers": _key()}),
        ("randomize conflict", "POST", url, {"json": randomize_body(90), "headers": key}),
        (
            "randomize ineligible",
            "POST",
            f"{API}/subjects/{own}/randomize",
            {"json": ineligible, "headers": _key()},
        ),
    ]
    for arm in ("IMC002", "PLACEBO"):
        subject_id = next(s for s in study.c1 if study.arms[s] == arm)
        url = f"{API}/subjects/{subject_id}/randomize"
        requests.append((f"randomize {arm}", "POST", url, {"json": body, "headers": _key()}))
    return requests


def _dispense(client: TestClient, study: Study, user: str, hdrs: dict[str, str]) -> list[Request]:
    subject_id = study.dispense_for.get(user, study.c1[0])
    url, key = f"{API}/subjects/{subject_id}/dispense", _key()
    body = {"visit": "W4", "visit_date": today().isoformat(), "weight_kg": WEIGHT}
    return [
        ("dispense", "POST", url, {"json": body, "headers": key}),
        ("dispense replay", "POST", url, {"json": body, "headers": key}),
        ("dispense again", "POST", url, {"json": body, "headers": _key()}),
        ("dispense unknown visit", "POST", url, {"json": {**body, "visit": "W5"}, "headers": key}),
    ]


def _replace(client: TestClient, study: Study, user: str, hdrs: dict[str, str]) -> list[Request]:
    subject_id = study.c1[0]
    kit = study.day_one_kit[subject_id]
    url, key = f"{API}/subjects/{subject_id}/kits/{kit}/replace", _key()
    body = {"reason": "vial dropped at preparation", "status": "damaged"}
    return [
        ("replace", "POST", url, {"json": body, "headers": key}),
        ("replace replay", "POST", url, {"json": body, "headers": key}),
        ("replace again", "POST", url, {"json": body, "headers": _key()}),
    ]


def _inventory(client: TestClient, study: Study, user: str, hdrs: dict[str, str]) -> list[Request]:
    return [
        (f"inventory {site}", "GET", f"{API}/sites/{site}/inventory", {})
        for site in ("DE01", "DE02", "US01", "XX99")
    ]


def _levels(client: TestClient, study: Study, user: str, hdrs: dict[str, str]) -> list[Request]:
    url = f"{API}/sites/DE01/supply-levels"
    return [
        ("levels", "PUT", url, {"json": {"trigger": 10, "target": 40}}),
        ("levels invalid", "PUT", url, {"json": {"trigger": 5, "target": 5}}),
    ]


def _request_shipment(
    client: TestClient, study: Study, user: str, hdrs: dict[str, str]
) -> list[Request]:
    body = {"site_id": "DE01", "kits_per_content": 1, "reason": "walk: manual shipment"}
    return [("request shipment", "POST", f"{API}/shipments", {"json": body})]


def _shipment_views(
    client: TestClient, study: Study, user: str, hdrs: dict[str, str]
) -> list[Request]:
    ids = [*study.shipments.values(), 999_999]
    return [(f"shipment {i}", "GET", f"{API}/shipments/{i}", {}) for i in ids]


def _shipment_action(action: str, body: dict[str, Any] | None = None) -> Builder:
    def build(client: TestClient, study: Study, user: str, hdrs: dict[str, str]) -> list[Request]:
        purpose = action
        if action == "receive":
            purpose = "receive supply" if user == "supply" else "receive pharmacist"
        url = f"{API}/shipments/{study.shipments[purpose]}/{action}"
        kwargs: dict[str, Any] = {"json": body} if body is not None else {}
        return [(action, "POST", url, kwargs)]

    return build


def _depot_stock(
    client: TestClient, study: Study, user: str, hdrs: dict[str, str]
) -> list[Request]:
    return [
        (f"depot stock {depot}", "GET", f"{API}/depots/{depot}/stock", {})
        for depot in (DEPOT, "XX99")
    ]


def _kit_views(client: TestClient, study: Study, user: str, hdrs: dict[str, str]) -> list[Request]:
    kits = {
        **{f"kit {content} {n}": n for content, ns in study.kits.items() for n in ns},
        "kit dispensed": study.day_one_kit[study.c1[1]],  # c1[0]'s is replaced
        "kit US01": study.us01_kit,
        "kit unknown": "ZZZZZZZZ",
    }
    return [(label, "GET", f"{API}/kits/{number}", {}) for label, number in kits.items()]


def _kit_status(client: TestClient, study: Study, user: str, hdrs: dict[str, str]) -> list[Request]:
    """A kit still available at DE01 now: earlier steps of the walk dispense kits there, and
    a kit picked at set-up may since have been handed out (first expiry, ties at random)."""
    available = client.get(
        f"{ADMIN}/kits",
        params={"site_id": "DE01", "status": "available"},
        headers=login(client, "monitor"),
    ).json()
    content = load_study().contents[0]
    number = max(k["kit_number"] for k in available if k["content"] == content)
    url = f"{API}/kits/{number}/status"
    return [
        ("quarantine", "POST", url, {"json": {"status": "quarantined", "reason": "fridge alarm"}}),
        (
            "release kit",
            "POST",
            url,
            {"json": {"status": "available", "reason": "checked the logger"}},
        ),
    ]


def _kit_import(client: TestClient, study: Study, user: str, hdrs: dict[str, str]) -> list[Request]:
    records = generate_kit_list(
        load_study().contents,
        per_content=1,
        expiry_dates=[today() + timedelta(days=400)],
        depot=DEPOT,
        rng=random.Random(user),
    )
    content = kit_list_csv(records).encode()
    kwargs = {"content": content, "headers": {"Content-Type": "text/csv", **SIGNATURE_HEADERS}}
    return [
        ("import kits", "POST", f"{ADMIN}/kits/import", kwargs),
        ("import kits again", "POST", f"{ADMIN}/kits/import", kwargs),
    ]


def _list_import(
    client: TestClient, study: Study, user: str, hdrs: dict[str, str]
) -> list[Request]:
    content = to_csv(generate_list(f"walk {user}", load_study().scope("C1"))).encode()
    kwargs = {"content": content, "headers": {"Content-Type": "text/csv", **SIGNATURE_HEADERS}}
    return [("import a list", "POST", f"{ADMIN}/lists/import?scope=C1", kwargs)]


def _cohort_change(action: str) -> Builder:
    def build(client: TestClient, study: Study, user: str, hdrs: dict[str, str]) -> list[Request]:
        url = f"{ADMIN}/cohorts/{{code}}/{action}"
        return [
            (
                f"{action} {code}",
                "POST",
                fill_path(url, code=code),
                {"json": {"reason": "walk: safety review", **SIGNED}},
            )
            for code in ("C1", "C2", "C3", "C9")
        ]

    return build


def _phase2_select(
    client: TestClient, study: Study, user: str, hdrs: dict[str, str]
) -> list[Request]:
    url = f"{ADMIN}/phase2-dose"
    return [
        (
            f"select {dose}",
            "POST",
            url,
            {"json": {"dose_mg_per_kg": dose, "reason": "walk: dose review", **SIGNED}},
        )
        for dose in (0.8, 1.2, 1.6)
    ]


def _caps_change(
    client: TestClient, study: Study, user: str, hdrs: dict[str, str]
) -> list[Request]:
    """A refused change (C1 is open: it has no unused places to give) and one that lowers the
    planned C3, whose places then stay unused."""
    body = {"reason": "walk: DSMB review of caps", **SIGNED}
    return [
        (
            f"caps {label}",
            "POST",
            f"{ADMIN}/caps",
            {"json": {**body, "caps": caps}, "headers": _key()},
        )
        for label, caps in (("over target", {"C1": 9}), ("lower C3", {"C3": 7}))
    ]


def _version_load(
    client: TestClient, study: Study, user: str, hdrs: dict[str, str]
) -> list[Request]:
    """The shipped definition again: refused as no change, whoever may load versions."""
    text = resources.files("app.studies").joinpath("imc002.toml").read_text("utf-8")
    body = {"reason": "walk: protocol amendment", "definition_toml": text, **SIGNED}
    return [
        (
            "version same",
            "POST",
            f"{ADMIN}/study-versions",
            {"json": {**body, "effective_date": date.today().isoformat()}},
        )
    ]


def _activate(client: TestClient, study: Study, user: str, hdrs: dict[str, str]) -> list[Request]:
    return [
        (
            f"activate {site}",
            "POST",
            f"{ADMIN}/sites/{site}/activate",
            {"json": {"reason": "walk: SIV done"}},
        )
        for site in ("DE01", "XX99")
    ]


def _timezone(client: TestClient, study: Study, user: str, hdrs: dict[str, str]) -> list[Request]:
    url = f"{ADMIN}/sites/{{}}/timezone"
    return [
        ("timezone DE01", "PUT", url.format("DE01"), {"json": {"timezone": "Europe/Berlin"}}),
        ("timezone unknown", "PUT", url.format("DE01"), {"json": {"timezone": "Mars/Olympus"}}),
        ("timezone XX99", "PUT", url.format("XX99"), {"json": {"timezone": "UTC"}}),
    ]


def _unblind(client: TestClient, study: Study, user: str, hdrs: dict[str, str]) -> list[Request]:
    """Refusals only: an investigator who unblinds a subject is no longer blinded for it (the
    success is tested in test_unblinding.py); here another site's subject, a subject not
    randomized, and a request without a reason."""
    url = f"{API}/subjects/{{}}/unblind"
    body = {
        "reason_category": "adverse_event",
        "reason": "walk: anaphylaxis after infusion",
        **SIGNED,
    }
    elsewhere = next(s for s in study.c1 if study.sites[s] not in _sites_of(user))
    own = study.registered_only[min(_sites_of(user))]
    mine = next(s for s in study.c1 if study.sites[s] in _sites_of(user))
    return [
        ("unblind elsewhere", "POST", url.format(elsewhere), {"json": body}),
        ("unblind not randomized", "POST", url.format(own), {"json": body}),
        (
            "unblind without reason",
            "POST",
            url.format(mine),
            {"json": {"reason_category": "other"}},
        ),
    ]


def _status_act(path: str, category: str) -> Builder:
    """A status change: on a fresh subject of the user's own site where the role may register
    one (randomized first for a discontinuation, so that it succeeds), and, refused for its
    date, on a randomized subject of each arm (the walk's subjects must stay on treatment for
    the users after this one; the refusals must read the same)."""

    def build(client: TestClient, study: Study, user: str, hdrs: dict[str, str]) -> list[Request]:
        body = {
            "effective_date": today().isoformat(),
            "reason_category": category,
            "reason": "walk: recorded on purpose",
        }
        url = f"{API}/subjects/{{}}/{path}"
        requests: list[Request] = []
        if user in HOME_SITE:
            fresh = register(client, hdrs, HOME_SITE[user])
            if path == "discontinue" and USERS[user] in RANDOMIZERS:
                randomize(client, hdrs, fresh, randomize_body(weight_kg=WEIGHT))
            key = _key()
            requests += [
                (f"{path}", "POST", url.format(fresh), {"json": body, "headers": key}),
                (f"{path} replay", "POST", url.format(fresh), {"json": body, "headers": key}),
            ]
        long_ago = {**body, "effective_date": (today() - timedelta(days=400)).isoformat()}
        for arm in ("IMC002", "PLACEBO"):
            subject_id = next(s for s in study.c1 if study.arms[s] == arm)
            requests.append((f"{path} {arm}", "POST", url.format(subject_id), {"json": long_ago}))
        return requests

    return build


def _status_views(
    client: TestClient, study: Study, user: str, hdrs: dict[str, str]
) -> list[Request]:
    return [
        (f"status history {s}", "GET", f"{API}/subjects/{s}/status-history", {})
        for s in [*study.subjects, 999_999]
    ]


def _status_undo(
    client: TestClient, study: Study, user: str, hdrs: dict[str, str]
) -> list[Request]:
    """The undo of a screen failure the walk's user recorded (when it could), and refusals."""
    requests: list[Request] = []
    url = f"{API}/subjects/{{}}/status-changes/{{}}/undo"
    body = {"reason": "walk: undone on purpose", **SIGNED}
    if user in HOME_SITE:
        fresh = register(client, hdrs, HOME_SITE[user])
        done = client.post(
            f"{API}/subjects/{fresh}/screen-fail",
            json={
                "effective_date": today().isoformat(),
                "reason_category": "other",
                "reason": "walk: screen failure to undo",
            },
            headers=hdrs,
        )
        change = done.json().get("change_id", 999_999) if done.status_code == 201 else 999_999
        requests.append(("status undo", "POST", url.format(fresh, change), {"json": body}))
    for arm in ("IMC002", "PLACEBO"):
        subject_id = next(s for s in study.c1 if study.arms[s] == arm)
        requests.append((f"status undo {arm}", "POST", url.format(subject_id, 1), {"json": body}))
    return requests


def _correct(client: TestClient, study: Study, user: str, hdrs: dict[str, str]) -> list[Request]:
    """A stratification factor and a weight corrected on a phase II subject of each arm (the
    answers must read the same), and a value that cannot be used."""
    url = f"{API}/subjects/{{}}/corrections"
    body = {"reason": "walk: source data verification", **SIGNED}
    requests: list[Request] = []
    for arm in ("IMC002", "PLACEBO"):
        subject_id = next(s for s in study.phase2[:4] if study.arms[s] == arm)
        for name, value in (("eligibility.sledai_2k_score", "12"), ("weight_kg", "75")):
            json_body = {**body, "field": name, "new_value": value}
            requests.append(
                (f"correct {name} {arm}", "POST", url.format(subject_id), {"json": json_body})
            )
        bad = {**body, "field": "sex", "new_value": "X"}
        requests.append((f"correct sex X {arm}", "POST", url.format(subject_id), {"json": bad}))
    return requests


def _correction_views(
    client: TestClient, study: Study, user: str, hdrs: dict[str, str]
) -> list[Request]:
    return [
        (f"corrections {s}", "GET", f"{API}/subjects/{s}/corrections", {})
        for s in [*study.subjects, 999_999]
    ]


def _schedule_views(
    client: TestClient, study: Study, user: str, hdrs: dict[str, str]
) -> list[Request]:
    return [
        (f"schedule {s}", "GET", f"{API}/subjects/{s}/visits", {})
        for s in [*study.subjects, 999_999]
    ]


def _visit_act(act: str) -> Builder:
    """A visit act on a C1 subject of each arm: week 48 (its window not open yet, or nothing
    dispensed), and a visit that does not exist; the answers must read the same."""

    def build(client: TestClient, study: Study, user: str, hdrs: dict[str, str]) -> list[Request]:
        body = {"json": {"reason": "walk: the visit did not take place"}}
        requests: list[Request] = []
        for arm in ("IMC002", "PLACEBO"):
            subject_id = next(s for s in study.c1 if study.arms[s] == arm)
            for visit in ("W48", "W5"):
                url = f"{API}/subjects/{subject_id}/visits/{visit}/{act}"
                requests.append((f"{act} {visit} {arm}", "POST", url, body))
        return requests

    return build


def _confirmation_views(
    client: TestClient, study: Study, user: str, hdrs: dict[str, str]
) -> list[Request]:
    """The confirmations of every randomization, dispensing and replacement of the walk so far
    (ids from 1), and one that does not exist."""
    ids = [*range(1, 3 * len(study.subjects)), 999_999]
    return [(f"confirmation {i}", "GET", f"{API}/confirmations/{i}", {}) for i in ids]


def _datasets(prefix: str) -> Builder:
    """Every SDTM dataset and the define, by name (the blinded TA has one BLINDED arm)."""

    def build(client: TestClient, study: Study, user: str, hdrs: dict[str, str]) -> list[Request]:
        names = ("dm", "ds", "ex", "ta", "te", "tv", "define")
        return [(f"{prefix} {n}", "GET", f"{prefix}/sdtm/{n}.csv", {}) for n in names]

    return build


REASON = {"reason": "walk of the blinded roles"}
BUILDERS: dict[tuple[str, str], Builder] = {
    ("POST", f"{API}/auth/token"): _token,
    ("GET", f"{API}/me"): _get(f"{API}/me"),
    ("POST", f"{API}/auth/logout"): _logout,
    ("GET", "/health"): _get("/health"),
    ("GET", "/ready"): _get("/ready"),
    ("POST", f"{API}/subjects"): _register,
    ("GET", f"{API}/subjects"): _get(
        f"{API}/subjects", *({"site_id": s} for s in ("DE01", "DE02", "US01", "XX99"))
    ),
    ("GET", f"{API}/subjects/{{subject_id}}"): _subject_views,
    ("POST", f"{API}/subjects/{{subject_id}}/randomize"): _randomize,
    ("POST", f"{API}/subjects/{{subject_id}}/dispense"): _dispense,
    ("POST", f"{API}/subjects/{{subject_id}}/kits/{{kit_number}}/replace"): _replace,
    ("POST", f"{API}/subjects/{{subject_id}}/unblind"): _unblind,
    ("GET", f"{API}/subjects/{{subject_id}}/status-history"): _status_views,
    ("POST", f"{API}/subjects/{{subject_id}}/corrections"): _correct,
    ("GET", f"{API}/subjects/{{subject_id}}/corrections"): _correction_views,
    ("POST", f"{API}/subjects/{{subject_id}}/screen-fail"): _status_act("screen-fail", "other"),
    ("POST", f"{API}/subjects/{{subject_id}}/discontinue"): _status_act("discontinue", "other"),
    ("POST", f"{API}/subjects/{{subject_id}}/withdraw"): _status_act("withdraw", "other"),
    ("POST", f"{API}/subjects/{{subject_id}}/complete"): _status_act("complete", "completed"),
    ("POST", f"{API}/subjects/{{subject_id}}/status-changes/{{change_id}}/undo"): _status_undo,
    ("GET", f"{API}/sites/{{site_id}}/inventory"): _inventory,
    ("PUT", f"{API}/sites/{{site_id}}/supply-levels"): _levels,
    ("GET", f"{API}/shipments"): _get(f"{API}/shipments", {"site_id": "DE01"}, {"site_id": "US01"}),
    ("GET", f"{API}/supply/forecast"): _get(
        f"{API}/supply/forecast", {"weeks": 52}, {"weeks": 0}, {"site_id": "US01"}
    ),
    ("GET", f"{API}/supply/forecast.csv"): _get(f"{API}/supply/forecast.csv", {"weeks": 52}),
    ("POST", f"{API}/shipments"): _request_shipment,
    ("GET", f"{API}/shipments/{{shipment_id}}"): _shipment_views,
    ("POST", f"{API}/shipments/{{shipment_id}}/ship"): _shipment_action("ship"),
    ("POST", f"{API}/shipments/{{shipment_id}}/cancel"): _shipment_action("cancel", REASON),
    ("POST", f"{API}/shipments/{{shipment_id}}/receive"): _shipment_action("receive", {}),
    ("POST", f"{API}/shipments/{{shipment_id}}/release"): _shipment_action("release", REASON),
    ("POST", f"{API}/shipments/{{shipment_id}}/reject"): _shipment_action("reject", REASON),
    ("GET", f"{API}/depots/{{depot_id}}/stock"): _depot_stock,
    ("GET", f"{API}/kits/{{kit_number}}"): _kit_views,
    ("POST", f"{API}/kits/{{kit_number}}/status"): _kit_status,
    ("GET", f"{ADMIN}/allocations"): _get(f"{ADMIN}/allocations"),
    ("GET", f"{ADMIN}/lists"): _get(f"{ADMIN}/lists"),
    ("GET", f"{ADMIN}/exports/allocations.csv"): _get(f"{ADMIN}/exports/allocations.csv"),
    ("GET", f"{ADMIN}/exports/list.csv"): _get(
        f"{ADMIN}/exports/list.csv", {"format": "redcap", "scope": "P2"}
    ),
    ("GET", f"{ADMIN}/audit"): _get(f"{ADMIN}/audit", {"limit": 1000}),
    ("GET", f"{ADMIN}/audit/verify"): _get(f"{ADMIN}/audit/verify"),
    ("GET", f"{ADMIN}/audit/checkpoints"): _get(f"{ADMIN}/audit/checkpoints"),
    ("GET", f"{ADMIN}/cohorts"): _get(f"{ADMIN}/cohorts"),
    ("POST", f"{ADMIN}/cohorts/{{code}}/open"): _cohort_change("open"),
    ("POST", f"{ADMIN}/cohorts/{{code}}/close"): _cohort_change("close"),
    ("GET", f"{ADMIN}/phase2-dose"): _get(f"{ADMIN}/phase2-dose"),
    ("POST", f"{ADMIN}/phase2-dose"): _phase2_select,
    ("GET", f"{ADMIN}/caps"): _get(f"{ADMIN}/caps"),
    ("POST", f"{ADMIN}/caps"): _caps_change,
    ("GET", f"{ADMIN}/study-versions"): _get(f"{ADMIN}/study-versions"),
    ("POST", f"{ADMIN}/study-versions"): _version_load,
    ("POST", f"{ADMIN}/kits/import"): _kit_import,
    ("POST", f"{ADMIN}/lists/import"): _list_import,
    ("GET", f"{ADMIN}/kits"): _get(f"{ADMIN}/kits", {"site_id": "DE01"}),
    ("GET", f"{ADMIN}/reconciliation"): _get(f"{ADMIN}/reconciliation"),
    ("GET", f"{ADMIN}/sites"): _get(f"{ADMIN}/sites"),
    ("POST", f"{ADMIN}/sites/{{site_id}}/activate"): _activate,
    ("PUT", f"{ADMIN}/sites/{{site_id}}/timezone"): _timezone,
    ("GET", f"{ADMIN}/unblindings"): _get(f"{ADMIN}/unblindings"),
    ("GET", f"{ADMIN}/outbox"): _get(f"{ADMIN}/outbox"),
    ("GET", f"{API}/confirmations"): _get(f"{API}/confirmations", {"site_id": "DE01"}),
    ("GET", f"{API}/confirmations/{{confirmation_id}}"): _confirmation_views,
    ("GET", f"{API}/reports/enrolment"): _get(f"{API}/reports/enrolment"),
    ("GET", f"{API}/reports/enrolment.csv"): _get(f"{API}/reports/enrolment.csv"),
    ("GET", f"{API}/reports/inventory"): _get(
        f"{API}/reports/inventory", *({"site_id": s} for s in ("DE01", "US01", "XX99"))
    ),
    ("GET", f"{API}/reports/kits-due"): _get(
        f"{API}/reports/kits-due", *({"site_id": s} for s in ("DE01", "US01", "XX99"))
    ),
    ("GET", f"{API}/reports/inventory.csv"): _get(
        f"{API}/reports/inventory.csv", {"site_id": "DE01"}
    ),
    ("GET", f"{API}/reports/unblindings"): _get(f"{API}/reports/unblindings"),
    ("GET", f"{API}/reports/unblindings.csv"): _get(f"{API}/reports/unblindings.csv"),
    ("GET", f"{API}/subjects/{{subject_id}}/visits"): _schedule_views,
    ("POST", f"{API}/subjects/{{subject_id}}/visits/{{visit}}/missed"): _visit_act("missed"),
    ("POST", f"{API}/subjects/{{subject_id}}/visits/{{visit}}/entered-in-error"): _visit_act(
        "entered-in-error"
    ),
    ("GET", f"{API}/reports/visits"): _get(
        f"{API}/reports/visits", *({"site_id": s} for s in ("DE01", "US01", "XX99"))
    ),
    ("GET", f"{API}/reports/visits.csv"): _get(f"{API}/reports/visits.csv", {"site_id": "DE01"}),
    ("GET", f"{API}/reports/misstratified"): _get(f"{API}/reports/misstratified"),
    ("GET", f"{API}/reports/misstratified.csv"): _get(f"{API}/reports/misstratified.csv"),
    # data exports: the detector reads a zip member by member
    ("GET", f"{EXPORTS}/sdtm.zip"): _get(f"{EXPORTS}/sdtm.zip", {"format": "xpt"}),
    ("GET", f"{EXPORTS}/sdtm/{{dataset}}.csv"): _datasets(EXPORTS),
    ("GET", f"{EXPORTS}/odm.xml"): _get(f"{EXPORTS}/odm.xml"),
    ("GET", f"{EXPORTS}/fhir.json"): _get(f"{EXPORTS}/fhir.json"),
    ("GET", f"{EXPORTS}/blinded/sdtm.zip"): _get(f"{EXPORTS}/blinded/sdtm.zip", {"format": "xpt"}),
    ("GET", f"{EXPORTS}/blinded/sdtm/{{dataset}}.csv"): _datasets(f"{EXPORTS}/blinded"),
    ("GET", f"{EXPORTS}/blinded/odm.xml"): _get(f"{EXPORTS}/blinded/odm.xml"),
    ("GET", f"{EXPORTS}/blinded/fhir.json"): _get(f"{EXPORTS}/blinded/fhir.json"),
}
UNAUTHENTICATED = {("POST", f"{API}/auth/token")}

# who may call what: the roles and API contract (and, where the design is silent, the code),
# written out so that the walk checks the roles as well as the blinding
EVERYONE = frozenset(Role)
SITE_STAFF = frozenset({Role.SITE_COORDINATOR, Role.INVESTIGATOR, Role.PHARMACIST})
RANDOMIZERS = frozenset({Role.SITE_COORDINATOR, Role.INVESTIGATOR})
PHARMACIST = frozenset({Role.PHARMACIST})
INVESTIGATOR = frozenset({Role.INVESTIGATOR})
PHARMACY = frozenset({Role.PHARMACIST, Role.SUPPLY_MANAGER})
SUPPLY = frozenset({Role.SUPPLY_MANAGER})
MONITOR = frozenset({Role.UNBLINDED_MONITOR})
SPONSOR = frozenset({Role.SPONSOR_ADMIN})
ALLOWED: dict[tuple[str, str], frozenset[Role]] = {
    ("POST", f"{API}/auth/token"): EVERYONE,
    ("GET", f"{API}/me"): EVERYONE,
    ("POST", f"{API}/auth/logout"): EVERYONE,
    ("GET", "/health"): EVERYONE,
    ("GET", "/ready"): EVERYONE,
    ("POST", f"{API}/subjects"): SITE_STAFF,
    ("GET", f"{API}/subjects"): SITE_STAFF,
    ("GET", f"{API}/subjects/{{subject_id}}"): SITE_STAFF,
    ("POST", f"{API}/subjects/{{subject_id}}/randomize"): RANDOMIZERS,
    ("POST", f"{API}/subjects/{{subject_id}}/dispense"): SITE_STAFF,
    ("POST", f"{API}/subjects/{{subject_id}}/kits/{{kit_number}}/replace"): PHARMACIST,
    ("POST", f"{API}/subjects/{{subject_id}}/unblind"): INVESTIGATOR,
    ("GET", f"{API}/subjects/{{subject_id}}/status-history"): SITE_STAFF,
    ("POST", f"{API}/subjects/{{subject_id}}/corrections"): RANDOMIZERS,
    ("GET", f"{API}/subjects/{{subject_id}}/corrections"): SITE_STAFF,
    ("POST", f"{API}/subjects/{{subject_id}}/screen-fail"): RANDOMIZERS,
    ("POST", f"{API}/subjects/{{subject_id}}/discontinue"): RANDOMIZERS,
    ("POST", f"{API}/subjects/{{subject_id}}/withdraw"): RANDOMIZERS,
    ("POST", f"{API}/subjects/{{subject_id}}/complete"): RANDOMIZERS,
    ("POST", f"{API}/subjects/{{subject_id}}/status-changes/{{change_id}}/undo"): RANDOMIZERS,
    ("GET", f"{API}/sites/{{site_id}}/inventory"): PHARMACY,
    ("PUT", f"{API}/sites/{{site_id}}/supply-levels"): SUPPLY,
    ("GET", f"{API}/shipments"): PHARMACY,
    ("GET", f"{API}/supply/forecast"): PHARMACY | SPONSOR | MONITOR,
    ("GET", f"{API}/supply/forecast.csv"): PHARMACY | SPONSOR | MONITOR,
    ("POST", f"{API}/shipments"): SUPPLY,
    ("GET", f"{API}/shipments/{{shipment_id}}"): PHARMACY,
    ("POST", f"{API}/shipments/{{shipment_id}}/ship"): SUPPLY,
    ("POST", f"{API}/shipments/{{shipment_id}}/cancel"): SUPPLY,
    ("POST", f"{API}/shipments/{{shipment_id}}/receive"): PHARMACY,
    ("POST", f"{API}/shipments/{{shipment_id}}/release"): SUPPLY,
    ("POST", f"{API}/shipments/{{shipment_id}}/reject"): SUPPLY,
    ("GET", f"{API}/depots/{{depot_id}}/stock"): SUPPLY | MONITOR,
    ("GET", f"{API}/kits/{{kit_number}}"): PHARMACY,
    ("POST", f"{API}/kits/{{kit_number}}/status"): PHARMACY,
    ("GET", f"{ADMIN}/allocations"): MONITOR,
    ("GET", f"{ADMIN}/lists"): MONITOR,
    ("GET", f"{ADMIN}/exports/allocations.csv"): MONITOR,
    ("GET", f"{ADMIN}/exports/list.csv"): MONITOR,
    ("GET", f"{ADMIN}/audit"): MONITOR,
    ("GET", f"{ADMIN}/audit/verify"): MONITOR,
    ("GET", f"{ADMIN}/audit/checkpoints"): MONITOR,
    ("GET", f"{ADMIN}/cohorts"): SPONSOR,
    ("POST", f"{ADMIN}/cohorts/{{code}}/open"): SPONSOR,
    ("POST", f"{ADMIN}/cohorts/{{code}}/close"): SPONSOR,
    ("GET", f"{ADMIN}/phase2-dose"): SPONSOR,
    ("POST", f"{ADMIN}/phase2-dose"): SPONSOR,
    ("GET", f"{ADMIN}/caps"): SPONSOR,
    ("POST", f"{ADMIN}/caps"): SPONSOR,
    ("GET", f"{ADMIN}/study-versions"): SPONSOR | MONITOR,
    ("POST", f"{ADMIN}/study-versions"): SPONSOR,
    ("POST", f"{ADMIN}/kits/import"): MONITOR,
    ("POST", f"{ADMIN}/lists/import"): MONITOR,
    ("GET", f"{ADMIN}/kits"): MONITOR,
    ("GET", f"{ADMIN}/reconciliation"): MONITOR,
    ("GET", f"{ADMIN}/sites"): SPONSOR,
    ("POST", f"{ADMIN}/sites/{{site_id}}/activate"): SPONSOR,
    ("PUT", f"{ADMIN}/sites/{{site_id}}/timezone"): SPONSOR,
    ("GET", f"{ADMIN}/unblindings"): MONITOR,
    ("GET", f"{ADMIN}/outbox"): MONITOR,
    ("GET", f"{API}/confirmations"): SITE_STAFF,
    ("GET", f"{API}/confirmations/{{confirmation_id}}"): SITE_STAFF,
    ("GET", f"{API}/reports/enrolment"): EVERYONE,
    ("GET", f"{API}/reports/enrolment.csv"): EVERYONE,
    ("GET", f"{API}/reports/inventory"): PHARMACY,
    ("GET", f"{API}/reports/inventory.csv"): PHARMACY,
    ("GET", f"{API}/reports/kits-due"): PHARMACY,
    ("GET", f"{API}/reports/unblindings"): MONITOR | SPONSOR,
    ("GET", f"{API}/reports/unblindings.csv"): MONITOR | SPONSOR,
    ("GET", f"{API}/subjects/{{subject_id}}/visits"): SITE_STAFF,
    ("POST", f"{API}/subjects/{{subject_id}}/visits/{{visit}}/missed"): SITE_STAFF,
    ("POST", f"{API}/subjects/{{subject_id}}/visits/{{visit}}/entered-in-error"): SITE_STAFF,
    ("GET", f"{API}/reports/visits"): SITE_STAFF,
    ("GET", f"{API}/reports/visits.csv"): SITE_STAFF,
    ("GET", f"{API}/reports/misstratified"): SITE_STAFF | MONITOR | SPONSOR,
    ("GET", f"{API}/reports/misstratified.csv"): SITE_STAFF | MONITOR | SPONSOR,
    ("GET", f"{EXPORTS}/sdtm.zip"): MONITOR,
    ("GET", f"{EXPORTS}/sdtm/{{dataset}}.csv"): MONITOR,
    ("GET", f"{EXPORTS}/odm.xml"): MONITOR,
    ("GET", f"{EXPORTS}/fhir.json"): MONITOR,
    ("GET", f"{EXPORTS}/blinded/sdtm.zip"): MONITOR | SPONSOR,
    ("GET", f"{EXPORTS}/blinded/sdtm/{{dataset}}.csv"): MONITOR | SPONSOR,
    ("GET", f"{EXPORTS}/blinded/odm.xml"): MONITOR | SPONSOR,
    ("GET", f"{EXPORTS}/blinded/fhir.json"): MONITOR | SPONSOR,
}
# refusals an allowed role meets on purpose in the walk (wrong password, someone else's site)
EXPECTED_REFUSALS = {"bad login", "register elsewhere"}


def _walk(client: TestClient, study: Study, user: str, subtests: Any) -> dict[str, httpx.Response]:
    role = USERS[user]
    headers = login(client, user)
    seen: dict[str, httpx.Response] = {}
    for operation in openapi_operations(client.app):
        allowed = role in ALLOWED[operation]
        for label, method, url, kwargs in BUILDERS[operation](client, study, user, headers):
            if operation not in UNAUTHENTICATED:
                kwargs = {**kwargs, "headers": {**headers, **kwargs.get("headers", {})}}
            response = client.request(method, url, **kwargs)
            seen[label] = response
            context = f"{user}: {method} {url} ({label}) -> {response.status_code}"
            with subtests.test(msg=context):
                assert_blinded(response, context)
                assert response.status_code < 500, response.text
                if not allowed:
                    assert_problem(response, 403, "forbidden")
                elif label not in EXPECTED_REFUSALS:
                    assert response.status_code not in (401, 403), response.text
    return seen


def _assert_reached(study: Study, user: str, seen: dict[str, httpx.Response]) -> None:
    """The walk did reach what the role may see, so the checks were not vacuous."""
    role = USERS[user]
    assert seen["login"].status_code == 200 and seen["GET /health"].status_code == 200
    assert seen[f"GET {API}/me"].json()["role"] == role
    if role in SITE_STAFF:
        mine = {s for s in study.subjects if study.sites[s] in _sites_of(user)}
        for subject_id in study.subjects:
            status = seen[f"view {subject_id}"].status_code
            assert status == (200 if subject_id in mine else 404), (user, subject_id)
        assert {s["subject_id"] for s in seen[f"GET {API}/subjects"].json()} & set(
            study.subjects
        ) == mine
        assert seen["register"].status_code == 201
        assert seen["register replay"].headers["idempotent-replayed"] == "true"
        assert_problem(seen["register elsewhere"], 403, "not_your_site")
        first, replay = seen["dispense"], seen["dispense replay"]
        assert first.status_code == 201, first.text
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.content == first.content
        assert first.json()["visit"] == "W4" and len(first.json()["kits"]) == 1
        assert_problem(seen["dispense again"], 409, "already_dispensed")
    if role in RANDOMIZERS and user in HOME_SITE:  # the status changes (docs/lifecycle.md)
        for path, status in (("discontinue", "discontinued"), ("withdraw", "withdrawn")):
            first, replay = seen[path], seen[f"{path} replay"]
            assert first.status_code == 201 and first.json()["status"] == status, first.text
            assert replay.headers["idempotent-replayed"] == "true"
        assert_problem(seen["complete"], 409, "status_change_not_allowed")
        assert seen["status undo"].json()["status"] == "registered", seen["status undo"].text
        # refused for its date where the user sees the subject, unknown elsewhere (US01)
        refused = [seen[f"discontinue {arm}"] for arm in ("IMC002", "PLACEBO")]
        subjects = [next(s for s in study.c1 if study.arms[s] == a) for a in ("IMC002", "PLACEBO")]
        expected = [422 if study.sites[s] in _sites_of(user) else 404 for s in subjects]
        assert [r.status_code for r in refused] == expected
    if role in RANDOMIZERS:
        first, replay = seen["randomize"], seen["randomize replay"]
        assert first.status_code == 201 and replay.status_code == 201, first.text
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.content == first.content
        assert_problem(seen["randomize again"], 409, "already_randomized")
        assert_problem(seen["randomize conflict"], 422, "idempotency_conflict")
        assert_problem(seen["randomize ineligible"], 422, "ineligible")
        # refusing an active and a placebo subject reads the same, but for the subject id
        refusals = [seen[f"randomize {arm}"] for arm in ("IMC002", "PLACEBO")]
        assert refusals[0].status_code == refusals[1].status_code
        assert refusals[0].status_code in (404, 409)
        bodies = [_without_ids(r.json(), study) for r in refusals]
        assert bodies[0] == bodies[1]
    if role == Role.INVESTIGATOR:
        assert_problem(seen["unblind elsewhere"], 404, "not_found")
        assert_problem(seen["unblind not randomized"], 409, "not_randomized")
        assert_problem(seen["unblind without reason"], 422, "validation_error")
    if role == Role.PHARMACIST:
        replaced = seen["replace"]
        assert replaced.status_code == 201, replaced.text
        assert replaced.json()["replaced_kit"] == study.day_one_kit[study.c1[0]]
        assert seen["replace replay"].content == replaced.content
        assert_problem(seen["replace again"], 409, "already_replaced")
        assert seen["receive"].status_code == 200, seen["receive"].text
        assert seen["quarantine"].status_code == 200, seen["quarantine"].text
        assert_problem(seen["inventory US01"], 404, "not_found")
        assert_problem(seen["kit US01"], 404, "not_found")
    if role in PHARMACY:
        inventory = seen["inventory DE01"]
        assert inventory.status_code == 200 and inventory.json()["kits"], inventory.text
        assert seen[f"GET {API}/shipments"].json()
        for content, numbers in study.kits.items():
            for number in numbers:
                assert seen[f"kit {content} {number}"].status_code == 200, (content, number)
        assert seen["kit dispensed"].json()["status"] == "dispensed"
    if role == Role.SUPPLY_MANAGER:
        for label, status in (
            ("levels", 200),
            ("request shipment", 201),
            ("ship", 200),
            ("cancel", 200),
            ("receive", 200),
            ("release", 200),
            ("reject", 200),
            ("release kit", 200),
            ("import kits", 403),  # the file names contents: unblinded monitor only
            ("import kits again", 403),
            ("inventory US01", 200),
            ("depot stock DEPOT-EU", 200),
            ("depot stock XX99", 404),
        ):
            assert seen[label].status_code == status, (label, seen[label].text)
        assert seen["kit US01"].status_code == 200
    if role == Role.SPONSOR_ADMIN:
        assert seen[f"GET {ADMIN}/cohorts"].status_code == 200
        assert seen[f"GET {ADMIN}/sites"].status_code == 200
        assert seen[f"GET {ADMIN}/phase2-dose"].json()["dose_mg_per_kg"] == 1.2
        assert_problem(seen["select 1.2"], 409, "invalid_stage_change")
        assert_problem(seen["activate DE01"], 409, "site_already_active")
        assert seen["timezone DE01"].json()["timezone"] == "Europe/Berlin"
        assert_problem(seen["timezone unknown"], 422, "validation_error")
        assert_problem(seen["timezone XX99"], 404, "not_found")


def _without_ids(body: dict[str, Any], study: Study) -> dict[str, Any]:
    text = json.dumps(body, sort_keys=True)
    for subject_id in study.c1:
        text = text.replace(f"Subject {subject_id} ", "Subject <id> ")
        text = text.replace(f"/subjects/{subject_id}/", "/subjects/<id>/")
    return dict(json.loads(text))


def test_blinded_walk(client: TestClient, study: Study, subtests: Any) -> None:
    operations = sorted(openapi_operations(client.app))
    # a new route must be added to the walk, with the roles that may call it
    assert operations == sorted(BUILDERS) == sorted(ALLOWED)
    for label, response in study.setup_responses:
        with subtests.test(msg=f"set-up: {label}"):
            assert_blinded(response, label)
    for user, role in USERS.items():
        assert role in BLINDED_ROLES
        seen = _walk(client, study, user, subtests)
        with subtests.test(msg=f"{user}: the walk reached the role's routes"):
            _assert_reached(study, user, seen)


def test_the_detector_sees_what_the_monitor_sees(client: TestClient, study: Study) -> None:
    """The control: the unblinded monitor does see arms and contents, and the detector says so."""
    monitor = login(client, "monitor")
    response = client.get(f"{ADMIN}/allocations", headers=monitor)
    found = leaks(response)
    assert "JSON key 'arm'" in found and "JSON key 'treatment'" in found
    assert "body contains 'placebo'" in found and "body contains 'imc002'" in found
    assert any("slot" in f for f in found) and any("block" in f for f in found)
    arms = {a["subject_id"]: (a["arm"], a["treatment"]) for a in response.json()}
    assert {arms[s] for s in study.c1} == {("IMC002", "IMC-002"), ("PLACEBO", "Placebo")}
    kits = client.get(f"{ADMIN}/kits", params={"site_id": "DE01"}, headers=monitor)
    assert {"JSON key 'content'", "JSON key 'lot'"} <= set(leaks(kits))


NOISE = {
    "subject_id",
    "screening_number",
    "randomization_number",
    "randomized_at",
    "confirmation_id",
}


def _stripped(value: Any) -> Any:
    """A blinded view without what differs between any two subjects: identifiers, times, and
    kit numbers (random by design), of which only the count is kept."""
    if isinstance(value, dict):
        return {
            k: len(v) if k == "kits" else _stripped(v) for k, v in value.items() if k not in NOISE
        }
    if isinstance(value, list):
        return [_stripped(v) for v in value]
    return value


def test_subjects_and_kits_of_different_arms_look_the_same(
    client: TestClient, study: Study, subtests: Any
) -> None:
    pharmacist = login(client, "pharmacist")
    pairs = {
        "phase_ib": tuple(
            next(s for s in study.c1 if study.arms[s] == arm and study.sites[s] == "DE01")
            for arm in ("IMC002", "PLACEBO")
        )
    }
    pairs["phase_ii"] = (
        next(s for s in study.phase2[:4] if study.arms[s] == "IMC002"),
        next(s for s in study.phase2[:4] if study.arms[s] == "PLACEBO"),
    )
    # a later dosing visit for both C1 subjects, so their visit lists are compared too
    dispensed = []
    for subject_id in pairs["phase_ib"]:
        body = {"visit": "W4", "visit_date": today().isoformat(), "weight_kg": WEIGHT}
        response = client.post(
            f"{API}/subjects/{subject_id}/dispense", json=body, headers={**pharmacist, **_key()}
        )
        assert response.status_code == 201, response.text
        dispensed.append(response.json())
    assert _stripped(dispensed[0]) == _stripped(dispensed[1])

    randomized = {
        int(r.json()["subject_id"]): r.json()
        for label, r in study.setup_responses
        if label.startswith("randomize")
    }
    for stage, (active, placebo) in pairs.items():
        with subtests.test(msg=f"randomize responses, {stage}"):
            assert randomized[active]["stage"] == stage
            assert _stripped(randomized[active]) == _stripped(randomized[placebo])
        for user in ("coordinator", "investigator", "pharmacist"):
            with subtests.test(msg=f"subject views, {stage}, {user}"):
                headers = login(client, user)
                views = [
                    client.get(f"{API}/subjects/{s}", headers=headers).json()
                    for s in (active, placebo)
                ]
                assert views[0] != views[1]  # two subjects...
                assert _stripped(views[0]) == _stripped(views[1])  # ...the blind cannot tell apart
                listed = {
                    s["subject_id"]: s
                    for s in client.get(f"{API}/subjects", headers=headers).json()
                }
                assert _stripped(listed[active]) == _stripped(listed[placebo])
        with subtests.test(msg=f"day-one kits, {stage}"):
            kits = [
                client.get(f"{API}/kits/{study.day_one_kit[s]}", headers=pharmacist).json()
                for s in (active, placebo)
            ]
            numbers = [study.day_one_kit[s] for s in (active, placebo)]
            assert [k.pop("kit_number") for k in kits] == numbers
            assert kits[0] == kits[1]

    with subtests.test(msg="available kits of each content with the same expiry"):
        # re-read now: the W4 dispensings above took kits (picked at random among ties)
        now_available = client.get(
            f"{ADMIN}/kits",
            params={"site_id": "DE01", "status": "available"},
            headers=login(client, "monitor"),
        ).json()
        active, placebo = (
            [k["kit_number"] for k in now_available if k["content"] == c]
            for c in load_study().contents
        )
        first, second = next(
            (a, p) for a in active for p in placebo if study.expiry[a] == study.expiry[p]
        )
        for user in ("pharmacist", "supply"):
            headers = login(client, user)
            kits = [client.get(f"{API}/kits/{n}", headers=headers).json() for n in (first, second)]
            assert [k.pop("kit_number") for k in kits] == [first, second]
            assert kits[0] == kits[1]
