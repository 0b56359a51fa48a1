"""The web session slides with use and ends after inactivity (or its maximum), the warning's
routes, and a form sent after the end: kept for its user, sent once after the new login, never
shown to another user. Time is moved with the sessions' clock (app.web.session.clock)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.db.engine import Database
from app.main import create_app
from app.settings import Settings
from app.web import kept_forms
from app.web import session as web_session
from tests.support.helpers import login
from tests.web.support import eligible_form, hidden, submit, web_login

MINUTE = 60


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += minutes * MINUTE


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(web_session, "clock", fake)
    return fake


def _renewed(response: Any) -> bool:
    return any(c.startswith("irt_session=") for c in response.headers.get_list("set-cookie"))


def test_the_session_slides_with_use_and_ends_after_30_idle_minutes(
    client: TestClient, clock: Clock
) -> None:
    token = web_login(client, "coordinator")
    clock.advance(5)
    assert not _renewed(client.get("/"))  # under a quarter of its life: no new token
    clock.advance(5)
    page = client.get("/")
    assert page.status_code == 200 and _renewed(page)  # renewed at 10 min: now ends at 40
    clock.advance(29)
    assert client.get("/subjects").status_code == 200  # 39 min after login, still in
    # the CSRF token of a form rendered before the renewals is still good (other tabs)
    assert submit(client, "/session/extend", {}, token).status_code == 200
    clock.advance(31)
    ended = client.get("/subjects", follow_redirects=False)
    assert ended.status_code == 303 and ended.headers["location"] == "/login?next=/subjects"


def test_the_session_ends_at_its_maximum_however_active(
    demo_db: Database, db_url: str, clock: Clock
) -> None:
    app = create_app(Settings(database_url=db_url, session_max_seconds=3600))
    with TestClient(app) as client:
        token = web_login(client, "coordinator")
        for _ in range(2):
            clock.advance(25)
            assert client.get("/").status_code == 200
        clock.advance(5)  # 55 min: the end is the maximum, "Stay logged in" cannot pass it
        answer = submit(client, "/session/extend", {}, token).json()
        assert answer == {"expires_in": 5 * MINUTE, "extendable": False}
        clock.advance(5)
        assert client.get("/", follow_redirects=False).status_code == 303
    app.state.db.dispose()


def test_stay_logged_in_extends_and_the_status_does_not(client: TestClient, clock: Clock) -> None:
    token = web_login(client, "coordinator")
    page = client.get("/subjects")  # the page carries the warning and its numbers
    assert 'role="alertdialog"' in page.text and 'src="/static/session.js"' in page.text
    assert 'data-expires-in="1800" data-warning="120"' in page.text
    assert client.get("/static/session.js").status_code == 200
    clock.advance(28)
    status = client.get("/session/status")
    assert status.json() == {"expires_in": 2 * MINUTE, "extendable": True}
    assert not _renewed(status)
    assert client.post("/session/extend", follow_redirects=False).status_code == 403  # no CSRF
    extended = client.post("/session/extend", headers={"X-CSRF-Token": token})
    assert extended.json() == {"expires_in": 30 * MINUTE, "extendable": True}
    assert _renewed(extended)
    clock.advance(29)
    assert client.get("/").status_code == 200


def _register(client: TestClient, token: str) -> int:
    form = client.get("/subjects/new")
    data = {
        "site_id": "DE01",
        "screening_number": "DE01-K001",
        "sex": "F",
        "year_of_birth": "1980",
        "idempotency_key": hidden(form.text, "idempotency_key"),
    }
    response = submit(client, "/subjects/new", data, token)
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])


def _allocations(client: TestClient) -> list[Any]:
    monitor = login(client, "monitor")
    result: list[Any] = client.get("/api/v1/admin/allocations", headers=monitor).json()
    return result


@pytest.fixture
def expired_randomization(client: TestClient, clock: Clock) -> Iterator[tuple[int, str]]:
    """The coordinator's randomize form, sent 31 idle minutes after it was opened; yields the
    subject and the form's one-time key."""
    token = web_login(client, "coordinator")
    subject_id = _register(client, token)
    form = client.get(f"/subjects/{subject_id}/randomize")
    key = hidden(form.text, "idempotency_key")
    clock.advance(31)
    data = {**eligible_form("70.0"), "idempotency_key": key, "password": "never-kept"}
    sent = submit(client, f"/subjects/{subject_id}/randomize", data, token)
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/login?next={kept_forms.KEPT_PATH}"
    assert kept_forms.KEPT_COOKIE in client.cookies
    yield subject_id, key


def test_a_form_sent_after_the_end_is_kept_and_sent_once_after_logging_in_again(
    client: TestClient, expired_randomization: tuple[int, str]
) -> None:
    subject_id, key = expired_randomization
    assert not _allocations(client)  # nothing ran
    notice = client.get("/login")
    assert "The form has been kept" in notice.text
    back = client.post(
        "/login",
        data={
            "username": "coordinator",
            "password": "test-password",
            "csrf_token": hidden(notice.text, "csrf_token"),
            "next": "/",
        },
        follow_redirects=False,
    )
    assert back.headers["location"] == kept_forms.KEPT_PATH
    page = client.get(kept_forms.KEPT_PATH)
    assert "Submit now" in page.text and 'data-kept="weight_kg">70.0<' in page.text
    assert "never-kept" not in page.text  # a password field is never kept: it is asked again
    assert 'type="password" id="kept-1" name="password"' in page.text
    assert hidden(page.text, "idempotency_key") == key  # the original one-time key
    action = f"/subjects/{subject_id}/randomize"
    assert f'action="{action}"' in page.text
    form = page.text.split(f'action="{action}"', 1)[1].split("</form>", 1)[0]
    data = {
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form)
    }
    assert data["idempotency_key"] == key and data.keys() > eligible_form().keys()
    token = data.pop("csrf_token")
    first = submit(client, action, data, token)
    second = submit(client, action, data, token)  # a double submit lands once
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert [a["subject_id"] for a in _allocations(client)] == [subject_id]
    assert kept_forms.KEPT_COOKIE not in client.cookies  # sent: no longer kept
    assert "No unsent form" in client.get(kept_forms.KEPT_PATH).text


def test_another_user_logging_in_never_sees_or_sends_the_kept_form(
    client: TestClient, expired_randomization: tuple[int, str]
) -> None:
    back = client.post(
        "/login",
        data={
            "username": "coordinator2",
            "password": "test-password",
            "csrf_token": hidden(client.get("/login").text, "csrf_token"),
            "next": "/subjects",
        },
        follow_redirects=False,
    )
    assert back.headers["location"] == "/subjects"
    assert kept_forms.KEPT_COOKIE not in client.cookies  # deleted at that login
    page = client.get(kept_forms.KEPT_PATH)
    assert "No unsent form" in page.text and "70.0" not in page.text
    web_login(client, "coordinator")  # gone for its own user too, with nothing sent
    assert "No unsent form" in client.get(kept_forms.KEPT_PATH).text
    assert not _allocations(client)


def test_an_expired_post_without_its_csrf_token_is_not_kept(
    client: TestClient, clock: Clock
) -> None:
    web_login(client, "coordinator")
    clock.advance(31)
    sent = client.post("/subjects/new", data={"site_id": "DE01"}, follow_redirects=False)
    assert sent.status_code == 303 and sent.headers["location"] == "/login"
    assert kept_forms.KEPT_COOKIE not in client.cookies


def test_a_kept_form_cookie_is_sealed_with_the_secret_key() -> None:
    kept = kept_forms.KeptForm("coordinator", "/subjects/1/randomize", (("a", "1"),), 1)
    sealed = kept_forms.seal(kept, "secret-one")
    assert "coordinator" not in sealed and kept_forms.unseal(sealed, "secret-one") == kept
    assert kept_forms.unseal(sealed, "secret-two") is None
    assert kept_forms.unseal(sealed[:-2] + "AA", "secret-one") is None


def test_a_logout_due_for_renewal_still_ends_the_session(client: TestClient, clock: Clock) -> None:
    token = web_login(client, "coordinator")
    clock.advance(10)  # the logout's own request would renew the token: the deletion wins
    out = submit(client, "/logout", {}, token)
    assert out.status_code == 303 and "irt_session" not in client.cookies
    assert client.get("/", follow_redirects=False).status_code == 303
