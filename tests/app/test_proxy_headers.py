"""Behind a TLS proxy: X-Forwarded-Proto is believed from the listed proxies only, and then
the session cookie is Secure; IRT_SECURE_COOKIES makes it Secure always. On both engines."""

from __future__ import annotations

import os
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from typer.testing import CliRunner

from app.cli import app as cli
from app.db.engine import Database
from app.main import create_app
from app.settings import Settings
from app.web.session import SESSION_COOKIE
from tests.support.demo import DEMO_PASSWORD
from tests.web.support import hidden

PROXY = ("10.1.2.3", 40000)
STRANGER = ("192.0.2.7", 40000)
HTTPS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.20"}


def _cookie(set_cookies: list[str], name: str) -> str:
    found = [c for c in set_cookies if c.startswith(f"{name}=")]
    assert len(found) == 1, set_cookies
    return found[0]


def _is_secure(set_cookie: str) -> bool:
    morsel = SimpleCookie(set_cookie)
    return bool(next(iter(morsel.values()))["secure"])


def _login(settings: Settings, *, client: tuple[str, int], headers: dict[str, str]) -> list[str]:
    """Log in through the pages from `client` with `headers`; the cookies set: the login form's
    (from the form) and the session (from the login). Cookies are sent by hand: the test client
    would hold back a Secure cookie over its plain http."""
    app = create_app(settings)
    try:
        with TestClient(app, client=client) as browser:
            form = browser.get("/login", headers=headers)
            assert form.status_code == 200
            pre = form.headers.get_list("set-cookie")
            browser.cookies.clear()
            name, value = _cookie(pre, "irt_login_csrf").split(";")[0].split("=", 1)
            answer = browser.post(
                "/login",
                data={
                    "username": "coordinator",
                    "password": DEMO_PASSWORD,
                    "csrf_token": hidden(form.text, "csrf_token"),
                },
                headers={**headers, "Cookie": f"{name}={value}"},
                follow_redirects=False,
            )
            assert answer.status_code == 303, answer.text
            session = _cookie(answer.headers.get_list("set-cookie"), SESSION_COOKIE)
            return [_cookie(pre, "irt_login_csrf"), session]
    finally:
        app.state.db.dispose()


@pytest.fixture
def behind_proxy(demo_db: Database, db_url: str) -> Settings:
    return Settings(database_url=db_url, forwarded_allow_ips="10.0.0.0/8, ::1")


def test_https_from_a_listed_proxy_makes_the_cookies_secure(behind_proxy: Settings) -> None:
    cookies = _login(behind_proxy, client=PROXY, headers=HTTPS)
    assert _is_secure(_cookie(cookies, SESSION_COOKIE))
    assert _is_secure(_cookie(cookies, "irt_login_csrf"))
    session = _cookie(cookies, SESSION_COOKIE).lower()
    assert "httponly" in session and "samesite=strict" in session


def test_the_header_from_another_address_is_not_believed(behind_proxy: Settings) -> None:
    cookies = _login(behind_proxy, client=STRANGER, headers=HTTPS)
    assert not _is_secure(_cookie(cookies, SESSION_COOKIE))


def test_without_the_setting_the_header_is_believed_from_no_one(
    demo_db: Database, db_url: str
) -> None:
    settings = Settings(database_url=db_url)
    assert settings.forwarded_allow_ips is None
    for address in (PROXY, ("127.0.0.1", 40000)):
        cookies = _login(settings, client=address, headers=HTTPS)
        assert not _is_secure(_cookie(cookies, SESSION_COOKIE))


def test_plain_http_from_a_listed_proxy_stays_plain(behind_proxy: Settings) -> None:
    cookies = _login(behind_proxy, client=PROXY, headers={"X-Forwarded-Proto": "http"})
    assert not _is_secure(_cookie(cookies, SESSION_COOKIE))


def test_secure_cookies_marks_them_secure_over_plain_http(demo_db: Database, db_url: str) -> None:
    settings = Settings(database_url=db_url, secure_cookies=True)
    cookies = _login(settings, client=STRANGER, headers={})
    assert _is_secure(_cookie(cookies, SESSION_COOKIE))
    assert _is_secure(_cookie(cookies, "irt_login_csrf"))


def test_the_proxy_list_is_checked_when_read() -> None:
    assert Settings(forwarded_allow_ips=" 10.0.0.1 , fd00::/8").forwarded_allow_ips == (
        "10.0.0.1,fd00::/8"
    )
    assert Settings(forwarded_allow_ips="*").forwarded_allow_ips == "*"
    assert Settings(forwarded_allow_ips=" ").forwarded_allow_ips is None
    for wrong in ("10.0.0.300", "proxy.local", "10.0.0.1,*"):
        with pytest.raises(ValidationError, match="forwarded_allow_ips"):
            Settings(forwarded_allow_ips=wrong)


@pytest.fixture
def server_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """`irt serve` with uvicorn.run replaced: the arguments it was called with. The variables
    `run_server` sets are restored afterwards."""
    import uvicorn

    calls: dict[str, Any] = {}
    for name in ("IRT_DATABASE_URL", "IRT_SECRET_KEY", "IRT_FORWARDED_ALLOW_IPS"):
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.update(kwargs))
    yield calls


def test_irt_serve_hands_the_proxy_list_to_the_app_and_not_to_uvicorn(
    demo_db: Database, db_url: str, server_env: dict[str, Any]
) -> None:
    result = CliRunner().invoke(
        cli, ["serve", "--database-url", db_url, "--forwarded-allow-ips", "10.0.0.5"]
    )
    assert result.exit_code == 0, result.output
    assert server_env["proxy_headers"] is False and "forwarded_allow_ips" not in server_env
    assert os.environ["IRT_FORWARDED_ALLOW_IPS"] == "10.0.0.5"
    assert "10.0.0.5" in result.output


def test_irt_serve_without_the_setting_has_uvicorn_believe_no_proxy(
    demo_db: Database, db_url: str, server_env: dict[str, Any]
) -> None:
    result = CliRunner().invoke(cli, ["serve", "--database-url", db_url])
    assert result.exit_code == 0, result.output
    assert server_env["proxy_headers"] is False
    assert "IRT_FORWARDED_ALLOW_IPS" not in os.environ


def test_irt_serve_refuses_a_proxy_list_that_is_not_addresses(
    demo_db: Database, db_url: str, server_env: dict[str, Any]
) -> None:
    result = CliRunner().invoke(
        cli,
        ["serve", "--database-url", db_url],
        env={"IRT_FORWARDED_ALLOW_IPS": "nginx.internal"},
    )
    assert result.exit_code == 1 and "forwarded_allow_ips" in result.output
    assert server_env == {}
