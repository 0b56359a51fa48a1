"""The blinded walk: with subjects randomized in both arms (phase Ib and phase II), every route of
the OpenAPI document is called as every blinded role, and no response (success or refusal, body
or header) carries the arm, the treatment, a kit content, a block, a slot or the seed. The
unblinded monitor is the control: the same detector must find the arm in its allocations."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.domain.roles import BLINDED_ROLES, Role
from tests.api.support import (
    assert_blinded,
    assert_problem,
    fill_path,
    leaks,
    openapi_operations,
)
from tests.helpers import login, randomize, randomize_body, register

ADMIN = "/api/v1/admin"
C1_WEIGHT = 70.0
P2_STRATUM = "SLEDAI<10/PRED<10"

# one user per blinded role (coordinator2 adds a site user of another site)
USERS = {
    "coordinator": Role.SITE_COORDINATOR,
    "coordinator2": Role.SITE_COORDINATOR,
    "investigator": Role.INVESTIGATOR,
    "pharmacist": Role.PHARMACIST,
    "supply": Role.SUPPLY_MANAGER,
    "sponsor": Role.SPONSOR_ADMIN,
}
# where each site user registers in the walk
HOME_SITE = {
    "coordinator": "DE01",
    "investigator": "DE02",
    "pharmacist": "DE01",
    "coordinator2": "US01",
}


@dataclass
class Study:
    """The study built for the walk, with what the unblinded monitor knows about it."""

    arms: dict[int, str]  # subject id -> arm, from the monitor's allocations
    sites: dict[int, str]  # subject id -> site
    c1: list[int]
    phase2: list[int]
    registered_only: dict[str, int]  # site -> a subject registered there, never randomized
    setup_responses: list[tuple[str, httpx.Response]] = field(default_factory=list)

    @property
    def subjects(self) -> list[int]:
        return sorted([*self.arms, *self.registered_only.values()])


def _allocations(client: TestClient) -> list[dict[str, Any]]:
    response = client.get(f"{ADMIN}/allocations", headers=login(client, "monitor"))
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


def _randomized(
    client: TestClient,
    study: Study,
    headers: dict[str, str],
    site: str,
    body: dict[str, Any],
) -> int:
    subject_id = register(client, headers, site_id=site)
    response = randomize(client, headers, subject_id, body)
    assert response.status_code == 201, response.text
    study.setup_responses.append((f"randomize {subject_id}", response))
    return subject_id


@pytest.fixture
def study(client: TestClient) -> Study:
    built = Study(arms={}, sites={}, c1=[], phase2=[], registered_only={})
    coordinator = login(client, "coordinator")
    # phase Ib C1 (3:1 in blocks of 4): both arms appear within the first block
    while len({a["arm"] for a in _allocations(client)}) < 2:
        assert len(built.c1) < 4, "the first block of 4 must hold both arms"
        body = randomize_body(weight_kg=C1_WEIGHT)
        built.c1.append(_randomized(client, built, coordinator, "DE01", body))
    built.c1.append(
        _randomized(client, built, login(client, "investigator"), "DE02", randomize_body())
    )
    built.c1.append(
        _randomized(client, built, login(client, "coordinator2"), "US01", randomize_body())
    )
    # the sponsor's stage decisions, whose responses are checked too
    sponsor = login(client, "sponsor")
    for code, action in (("C1", "close"), ("C2", "open"), ("C2", "close")):
        response = client.post(
            f"{ADMIN}/cohorts/{code}/{action}", json={"reason": "review"}, headers=sponsor
        )
        assert response.status_code == 200, response.text
        built.setup_responses.append((f"{action} {code}", response))
    response = client.post(
        f"{ADMIN}/phase2-dose", json={"dose_mg_per_kg": 1.2, "reason": "SRC"}, headers=sponsor
    )
    assert response.status_code == 200, response.text
    built.setup_responses.append(("phase2-dose", response))
    # phase II 1:1 in blocks of 4 or 6: four subjects of a stratum hold both arms
    for _ in range(4):
        body = randomize_body(sledai_2k_score=8, prednisone_equivalent_mg_per_day=5)
        built.phase2.append(_randomized(client, built, coordinator, "DE01", body))
    body = randomize_body(sledai_2k_score=14, prednisone_equivalent_mg_per_day=20)
    built.phase2.append(_randomized(client, built, coordinator, "DE02", body))
    built.registered_only["DE01"] = register(client, coordinator, site_id="DE01")
    built.registered_only["US01"] = register(client, login(client, "coordinator2"), "US01")

    allocations = _allocations(client)
    built.arms = {a["subject_id"]: a["arm"] for a in allocations}
    built.sites = {a["subject_id"]: a["site_id"] for a in allocations}
    built.sites.update({s: site for site, s in built.registered_only.items()})
    assert {built.arms[s] for s in built.c1} == {"IMC002", "PLACEBO"}
    assert {built.arms[s] for s in built.phase2[:4]} == {"IMC002", "PLACEBO"}
    return built


# --- the walk -------------------------------------------------------------------------------

Request = tuple[str, str, str, dict[str, Any]]  # label, method, url, httpx keyword arguments
Builder = Callable[[TestClient, Study, str, dict[str, str]], list[Request]]


def _each(template: str, method: str, **values: list[object]) -> list[Request]:
    """One request per value of the (single) path parameter."""
    ((name, choices),) = values.items()
    return [
        (
            f"{method} {fill_path(template, **{name: v})}",
            method,
            fill_path(template, **{name: v}),
            {},
        )
        for v in choices
    ]


def _token(client: TestClient, study: Study, user: str, headers: dict[str, str]) -> list[Request]:
    from tests.conftest import DEMO_PASSWORD

    url = "/api/v1/auth/token"
    return [
        ("login", "POST", url, {"data": {"username": user, "password": DEMO_PASSWORD}}),
        ("bad login", "POST", url, {"data": {"username": user, "password": "wrong"}}),
    ]


def _register(
    client: TestClient, study: Study, user: str, headers: dict[str, str]
) -> list[Request]:
    body = {
        "site_id": HOME_SITE.get(user, "DE01"),
        "screening_number": uuid.uuid4().hex[:10],
        "sex": "M",
        "year_of_birth": 1975,
    }
    key = {"Idempotency-Key": uuid.uuid4().hex}
    return [
        ("register", "POST", "/api/v1/subjects", {"json": body, "headers": key}),
        ("register replay", "POST", "/api/v1/subjects", {"json": body, "headers": key}),
        (
            "register elsewhere",
            "POST",
            "/api/v1/subjects",
            {"json": {**body, "site_id": "XX99", "screening_number": "X1"}},
        ),
    ]


def _randomize(
    client: TestClient, study: Study, user: str, headers: dict[str, str]
) -> list[Request]:
    # a fresh subject when the role may register one, else any existing subject
    fresh = register(client, headers, HOME_SITE[user]) if user in HOME_SITE else study.c1[0]
    url = f"/api/v1/subjects/{fresh}/randomize"
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = randomize_body(weight_kg=C1_WEIGHT)
    ineligible = randomize_body(sledai_2k_score=2, on_soc_medication=False)
    return [
        ("randomize", "POST", url, {"json": body, "headers": key}),
        ("randomize replay", "POST", url, {"json": body, "headers": key}),
        ("randomize again", "POST", url, {"json": body, "headers": {"Idempotency-Key": "x2"}}),
        (
            "randomize conflict",
            "POST",
            url,
            {"json": randomize_body(weight_kg=90), "headers": key},
        ),
        (
            "randomize ineligible",
            "POST",
            f"/api/v1/subjects/{study.registered_only[min(_sites_of(user))]}/randomize",
            {"json": ineligible, "headers": {"Idempotency-Key": uuid.uuid4().hex}},
        ),
        *[
            (
                f"randomize an {arm} subject",
                "POST",
                f"/api/v1/subjects/{_c1_subject(study, arm)}/randomize",
                {"json": body, "headers": {"Idempotency-Key": uuid.uuid4().hex}},
            )
            for arm in ("IMC002", "PLACEBO")
        ],
    ]


def _c1_subject(study: Study, arm: str) -> int:
    return next(s for s in study.c1 if study.arms[s] == arm)


def _subjects(
    client: TestClient, study: Study, user: str, headers: dict[str, str]
) -> list[Request]:
    url = "/api/v1/subjects"
    return [
        ("list", "GET", url, {}),
        *[
            (f"list {site}", "GET", url, {"params": {"site_id": site}})
            for site in ("DE01", "DE02", "US01", "XX99")
        ],
    ]


def _cohort_change(action: str) -> Builder:
    def build(
        client: TestClient, study: Study, user: str, headers: dict[str, str]
    ) -> list[Request]:
        url = f"{ADMIN}/cohorts/{{code}}/{action}"
        return [
            (f"{action} {code}", "POST", fill_path(url, code=code), {"json": {"reason": "walk"}})
            for code in ("C1", "C2", "C3", "C9")
        ]

    return build


def _phase2_select(
    client: TestClient, study: Study, user: str, headers: dict[str, str]
) -> list[Request]:
    url = f"{ADMIN}/phase2-dose"
    return [
        (f"select {dose}", "POST", url, {"json": {"dose_mg_per_kg": dose, "reason": "walk"}})
        for dose in (0.8, 1.2, 1.6)
    ]


def _get(url: str, **params: Any) -> Builder:
    def build(
        client: TestClient, study: Study, user: str, headers: dict[str, str]
    ) -> list[Request]:
        return [(f"GET {url}", "GET", url, {"params": params} if params else {})]

    return build


def _subject_views(
    client: TestClient, study: Study, user: str, headers: dict[str, str]
) -> list[Request]:
    ids: list[object] = [*study.subjects, 999_999]
    return _each("/api/v1/subjects/{subject_id}", "GET", subject_id=ids)


BUILDERS: dict[tuple[str, str], Builder] = {
    ("POST", "/api/v1/auth/token"): _token,
    ("GET", "/api/v1/me"): _get("/api/v1/me"),
    ("GET", "/health"): _get("/health"),
    ("POST", "/api/v1/subjects"): _register,
    ("GET", "/api/v1/subjects"): _subjects,
    ("GET", "/api/v1/subjects/{subject_id}"): _subject_views,
    ("POST", "/api/v1/subjects/{subject_id}/randomize"): _randomize,
    ("GET", f"{ADMIN}/allocations"): _get(f"{ADMIN}/allocations"),
    ("GET", f"{ADMIN}/lists"): _get(f"{ADMIN}/lists"),
    ("GET", f"{ADMIN}/audit"): _get(f"{ADMIN}/audit", limit=1000),
    ("GET", f"{ADMIN}/audit/verify"): _get(f"{ADMIN}/audit/verify"),
    ("GET", f"{ADMIN}/cohorts"): _get(f"{ADMIN}/cohorts"),
    ("POST", f"{ADMIN}/cohorts/{{code}}/open"): _cohort_change("open"),
    ("POST", f"{ADMIN}/cohorts/{{code}}/close"): _cohort_change("close"),
    ("GET", f"{ADMIN}/phase2-dose"): _get(f"{ADMIN}/phase2-dose"),
    ("POST", f"{ADMIN}/phase2-dose"): _phase2_select,
}
PUBLIC = {("POST", "/api/v1/auth/token"), ("GET", "/health")}

# who may call what: DESIGN.md sections 3 and 5, written out so the walk also checks the roles
SITE_STAFF = frozenset({Role.SITE_COORDINATOR, Role.INVESTIGATOR, Role.PHARMACIST})
RANDOMIZERS = frozenset({Role.SITE_COORDINATOR, Role.INVESTIGATOR})
MONITOR = frozenset({Role.UNBLINDED_MONITOR})
SPONSOR = frozenset({Role.SPONSOR_ADMIN})
ALLOWED: dict[tuple[str, str], frozenset[Role]] = {
    ("POST", "/api/v1/auth/token"): frozenset(Role),
    ("GET", "/api/v1/me"): frozenset(Role),
    ("GET", "/health"): frozenset(Role),
    ("POST", "/api/v1/subjects"): SITE_STAFF,
    ("GET", "/api/v1/subjects"): SITE_STAFF,
    ("GET", "/api/v1/subjects/{subject_id}"): SITE_STAFF,
    ("POST", "/api/v1/subjects/{subject_id}/randomize"): RANDOMIZERS,
    ("GET", f"{ADMIN}/allocations"): MONITOR,
    ("GET", f"{ADMIN}/lists"): MONITOR,
    ("GET", f"{ADMIN}/audit"): MONITOR,
    ("GET", f"{ADMIN}/audit/verify"): MONITOR,
    ("GET", f"{ADMIN}/cohorts"): SPONSOR,
    ("POST", f"{ADMIN}/cohorts/{{code}}/open"): SPONSOR,
    ("POST", f"{ADMIN}/cohorts/{{code}}/close"): SPONSOR,
    ("GET", f"{ADMIN}/phase2-dose"): SPONSOR,
    ("POST", f"{ADMIN}/phase2-dose"): SPONSOR,
}


def test_every_route_has_a_walk(client: TestClient) -> None:
    """A new route must be added to the walk (and so be checked for blinding)."""
    operations = sorted(openapi_operations(client.app))  # type: ignore[arg-type]
    assert operations == sorted(BUILDERS) == sorted(ALLOWED)


@pytest.mark.parametrize("user", list(USERS))
def test_blinded_walk(client: TestClient, study: Study, user: str) -> None:
    role = USERS[user]
    assert role in BLINDED_ROLES
    headers = login(client, user)
    assert client.get("/api/v1/me", headers=headers).json()["role"] == role
    for label, response in study.setup_responses:
        assert_blinded(response, f"set-up {label}")

    seen: dict[str, httpx.Response] = {}
    for operation in openapi_operations(client.app):  # type: ignore[arg-type]
        allowed = role in ALLOWED[operation]
        for label, method, url, kwargs in BUILDERS[operation](client, study, user, headers):
            kwargs = copy.deepcopy(kwargs)
            if operation not in PUBLIC or operation == ("GET", "/health"):
                kwargs["headers"] = {**headers, **kwargs.get("headers", {})}
            response = client.request(method, url, **kwargs)
            context = f"{user} {label} -> {response.status_code}"
            assert_blinded(response, context)
            assert response.status_code < 500, context
            if not allowed:
                assert_problem(response, 403, "forbidden")
            else:
                assert response.status_code not in (401, 403) or label in {
                    "bad login",
                    "register elsewhere",
                }, f"{context}: {response.text}"
            seen[label] = response

    # the walk did reach what the role may see, so the checks above were not vacuous
    assert seen["login"].status_code == 200 and seen["GET /health"].status_code == 200
    if role in (Role.SITE_COORDINATOR, Role.INVESTIGATOR, Role.PHARMACIST):
        mine = [s for s in study.subjects if study.sites[s] in _sites_of(user)]
        assert mine
        for subject_id in study.subjects:
            status = seen[f"GET /api/v1/subjects/{subject_id}"].status_code
            assert status == (200 if subject_id in mine else 404), (user, subject_id)
        listed = {s["subject_id"] for s in seen["list"].json()}
        assert set(mine) <= listed and not listed & (set(study.subjects) - set(mine))
        assert seen["register"].status_code == 201
        assert seen["register replay"].headers["idempotent-replayed"] == "true"
        assert_problem(seen["register elsewhere"], 403, "not_your_site")
    if role in (Role.SITE_COORDINATOR, Role.INVESTIGATOR):
        first, replay = seen["randomize"], seen["randomize replay"]
        assert first.status_code == 201 and replay.status_code == 201, first.text
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.content == first.content
        assert_problem(seen["randomize again"], 409, "already_randomized")
        assert_problem(seen["randomize conflict"], 422, "idempotency_conflict")
        assert_problem(seen["randomize ineligible"], 422, "ineligible")
        # refusing an active and a placebo subject reads the same, but for the subject id
        refusals = [seen[f"randomize an {arm} subject"] for arm in ("IMC002", "PLACEBO")]
        assert refusals[0].status_code == refusals[1].status_code in (404, 409)
        assert [_without_ids(r.json(), study) for r in refusals] == [
            _without_ids(refusals[0].json(), study)
        ] * 2
    if role == Role.SPONSOR_ADMIN:
        assert seen[f"GET {ADMIN}/cohorts"].status_code == 200
        assert seen[f"GET {ADMIN}/phase2-dose"].json()["dose_mg_per_kg"] == 1.2
        assert_problem(seen["select 1.2"], 409, "invalid_stage_change")


def _without_ids(body: dict[str, Any], study: Study) -> dict[str, Any]:
    text = json.dumps(body, sort_keys=True)
    for subject_id in study.c1:
        text = text.replace(f"Subject {subject_id} ", "Subject <id> ")
        text = text.replace(f"/subjects/{subject_id}/", "/subjects/<id>/")
    return dict(json.loads(text))


def _sites_of(user: str) -> set[str]:
    return {"coordinator2": {"US01"}}.get(user, {"DE01", "DE02"})


def test_the_detector_finds_the_arm_in_the_monitors_views(client: TestClient, study: Study) -> None:
    """The control: the unblinded monitor does see arms, and the detector says so."""
    monitor = login(client, "monitor")
    response = client.get(f"{ADMIN}/allocations", headers=monitor)
    found = leaks(response)
    assert "JSON key 'arm'" in found and "JSON key 'treatment'" in found
    assert "body contains 'placebo'" in found and "body contains 'imc002'" in found
    assert any("slot" in f for f in found) and any("block" in f for f in found)
    arms = {a["subject_id"]: (a["arm"], a["treatment"]) for a in response.json()}
    assert {arms[s] for s in study.c1} == {("IMC002", "IMC-002"), ("PLACEBO", "Placebo")}
    # and the audit trail, monitor-only, holds the slots the randomizations used
    assert leaks(client.get(f"{ADMIN}/audit", params={"limit": 1000}, headers=monitor))


BLIND_NOISE = ("subject_id", "screening_number", "randomization_number", "randomized_at")


def _stripped(view: dict[str, Any]) -> dict[str, Any]:
    view = {k: v for k, v in view.items() if k not in BLIND_NOISE}
    if view.get("randomization"):
        view["randomization"] = {
            k: v for k, v in view["randomization"].items() if k not in BLIND_NOISE
        }
    return view


@pytest.mark.parametrize("stage", ["phase_ib", "phase_ii"])
def test_subjects_in_different_arms_look_the_same(
    client: TestClient, study: Study, stage: str
) -> None:
    group = study.c1 if stage == "phase_ib" else study.phase2[:4]
    active = next(s for s in group if study.arms[s] == "IMC002")
    placebo = next(s for s in group if study.arms[s] == "PLACEBO")
    for user in ("coordinator", "investigator", "pharmacist"):
        headers = login(client, user)
        views = [
            client.get(f"/api/v1/subjects/{s}", headers=headers).json() for s in (active, placebo)
        ]
        assert views[0]["randomization"]["stage"] == stage
        assert views[0] != views[1]  # they are two subjects...
        assert _stripped(views[0]) == _stripped(views[1])  # ...that the blind cannot tell apart
        listed = {
            s["subject_id"]: s for s in client.get("/api/v1/subjects", headers=headers).json()
        }
        assert _stripped(listed[active]) == _stripped(listed[placebo])
    responses = {
        int(r.json()["subject_id"]): r.json()
        for label, r in study.setup_responses
        if label.startswith("randomize")
    }
    assert _stripped(responses[active]) == _stripped(responses[placebo])
