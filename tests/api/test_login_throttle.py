"""Login throttling through the API: delays per source and user name with Retry-After, a known
device that other people's failures never hold up, a bounded audit trail, and the investigator
who unblinds a subject while someone hammers their user name."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import AuditEntry
from app.main import create_app
from app.services import auth
from app.settings import Settings
from tests.support.api import assert_problem
from tests.support.demo import DEMO_PASSWORD
from tests.support.helpers import SIGNED, login, randomize, register

TOKEN_URL = "/api/v1/auth/token"
REASON = {"reason_category": "adverse_event", "reason": "Anaphylaxis after infusion, ICU"}
DELAY = 600
"""The first delay in these tests: long enough that no delay runs out during a test."""
SOURCE_FREE = 8


@pytest.fixture
def api(demo_db: Database, db_url: str) -> Iterator[TestClient]:
    settings = Settings(
        database_url=db_url,
        login_backoff_base_seconds=DELAY,
        login_source_free_failures=SOURCE_FREE,
    )
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    app.state.db.dispose()


def _post(client: TestClient, user: str, password: str, device: str | None = None):  # type: ignore[no-untyped-def]
    data = {"username": user, "password": password}
    if device is not None:
        data["device_token"] = device
    return client.post(TOKEN_URL, data=data)


def _trail(db: Database, entity_id: str) -> list[tuple[str, dict[str, object]]]:
    with db.read() as session:
        rows = session.execute(
            select(AuditEntry.action, AuditEntry.after)
            .where(AuditEntry.entity_id == entity_id, AuditEntry.action.like("auth.%"))
            .order_by(AuditEntry.seq)
        ).all()
    return [(action, json.loads(after)) for action, after in rows]


def test_failures_are_delayed_with_retry_after_and_audited_boundedly(
    api: TestClient, demo_db: Database
) -> None:
    for _ in range(5):
        assert_problem(_post(api, "pharmacist", "wrong-password"), 401, "unauthorized")
    throttled = _post(api, "pharmacist", DEMO_PASSWORD)  # no password is checked now
    body = assert_problem(throttled, 429, "too_many_attempts")
    assert 0 < int(throttled.headers["retry-after"]) <= DELAY
    assert body["retry_after"] == int(throttled.headers["retry-after"])
    assert "10 minutes" in body["detail"]
    assert _post(api, "coordinator", DEMO_PASSWORD).status_code == 200  # other users go on
    for _ in range(20):  # refusals during the delay add nothing to the trail
        assert _post(api, "pharmacist", "wrong-password").status_code == 429
    trail = _trail(demo_db, "pharmacist")
    assert [action for action, _ in trail] == [
        "auth.login_failed",  # the first failure of the window
        "auth.login_failed",  # the fifth, which started the delay
        "auth.login_throttled",  # the first refusal of the delay
    ]
    assert [after["failures_in_window"] for _, after in trail] == [1, 5, 5]
    assert trail[2][1]["throttled_by"] == "source_user"


def test_unknown_names_leave_a_bounded_trail_and_spraying_is_delayed_per_source(
    api: TestClient, demo_db: Database
) -> None:
    for _ in range(5):
        assert _post(api, "ghost", "wrong-password").status_code == 401
    assert _post(api, "ghost", "wrong-password").status_code == 429
    assert [a for a, _ in _trail(demo_db, "ghost")] == [
        "auth.login_failed",
        "auth.login_failed",
        "auth.login_throttled",
    ]
    for n in range(SOURCE_FREE - 5):  # the source's failures, across user names
        assert _post(api, f"spray{n}", "wrong-password").status_code == 401
    refused = assert_problem(_post(api, "spray-last", "x"), 429, "too_many_attempts")
    assert refused["retry_after"] > 0
    assert [a for a, _ in _trail(demo_db, "testclient")] == ["auth.login_throttled"]


def test_a_known_device_is_not_held_up_by_other_peoples_failures(api: TestClient) -> None:
    device = api.post(TOKEN_URL, data={"username": "pharmacist", "password": DEMO_PASSWORD})
    proof = device.json()["device_token"]
    other_users = api.post(TOKEN_URL, data={"username": "coordinator", "password": DEMO_PASSWORD})
    for _ in range(12):  # past the source-and-name, the name's and the source's free failures
        assert _post(api, "pharmacist", "wrong-password").status_code in (401, 429)
    assert_problem(_post(api, "pharmacist", DEMO_PASSWORD), 429, "too_many_attempts")
    for forged in (other_users.json()["device_token"], proof[:-2] + "xx", "garbage"):
        assert _post(api, "pharmacist", DEMO_PASSWORD, forged).status_code == 429
    assert _post(api, "pharmacist", DEMO_PASSWORD, proof).status_code == 200
    # whoever holds the proof is throttled per device: it is no licence to guess
    for _ in range(5):
        assert _post(api, "pharmacist", "wrong-password", proof).status_code == 401
    assert_problem(_post(api, "pharmacist", DEMO_PASSWORD, proof), 429, "too_many_attempts")


def test_investigator_unblinds_while_50_wrong_logins_run_in_parallel(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Done when: the user with the right password gets in and unblinds during the attack (the
    old lock refused them for 15 minutes); the attack itself gets few password checks."""
    coordinator = login(api, "coordinator")
    subject = register(api, coordinator, site_id="DE01")
    assert randomize(api, coordinator, subject).status_code == 201
    proof = _post(api, "investigator", DEMO_PASSWORD).json()["device_token"]  # an earlier day

    checked: Counter[str] = Counter()
    lock = threading.Lock()
    verify = auth.verify_password

    def counting(password_hash: str, password: str) -> bool:
        with lock:
            checked[password] += 1
        return verify(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", counting)
    started = threading.Barrier(51)
    done = threading.Semaphore(0)

    def attack(n: int) -> int:
        started.wait()
        status = _post(api, "investigator", f"guess-{n:04d}-password").status_code
        done.release()
        return int(status)

    with ThreadPoolExecutor(50) as pool:
        futures = [pool.submit(attack, n) for n in range(50)]
        started.wait()
        for _ in range(10):  # the attack is under way, and the name is being throttled
            assert done.acquire(timeout=60)
        assert _post(api, "investigator", DEMO_PASSWORD).status_code == 429  # the control
        token = _post(api, "investigator", DEMO_PASSWORD, proof)
        assert token.status_code == 200, token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        unblinded = api.post(
            f"/api/v1/subjects/{subject}/unblind",
            json={**REASON, **SIGNED},
            headers=headers,
        )
        statuses = Counter(f.result() for f in futures)
    assert unblinded.status_code == 200, unblinded.text
    assert unblinded.json()["treatment"]
    assert set(statuses) <= {401, 429} and statuses[401] <= 5, statuses
    guesses = sum(n for password, n in checked.items() if password.startswith("guess-"))
    assert guesses == statuses[401] <= 5


def test_a_failed_login_is_recorded_as_anonymous_whatever_name_was_tried(
    api: TestClient, demo_db: Database
) -> None:
    """Nobody logged in, so nobody is named as having acted: a tried `system:demo` or another
    user's name is the entry's entity, never its user (and neither name can be created)."""
    for tried in ("system:demo", "investigator"):
        assert _post(api, tried, "wrong-password").status_code == 401
        with demo_db.read() as session:
            users = session.execute(
                select(AuditEntry.username, AuditEntry.role).where(
                    AuditEntry.entity_id == tried, AuditEntry.action == "auth.login_failed"
                )
            ).all()
        assert users == [("anonymous", "anonymous")]
    with demo_db.read() as session:
        assert not session.execute(
            select(AuditEntry.seq)
            .where(AuditEntry.username.in_(["system:demo", "investigator"]))
            .where(AuditEntry.action.like("auth.%"))
        ).all()
