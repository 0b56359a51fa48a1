"""Login, logout, CSRF and role checks of the pages, on both engines."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.db.engine import Database
from tests.support.databases import assert_unchanged, snapshot
from tests.web.support import csrf_token, hidden, submit, web_login


def test_login_sets_a_strict_httponly_session_and_logout_ends_it(client: TestClient) -> None:
    page = client.get("/subjects", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/subjects"
    form = client.get("/login?next=/subjects")
    assert 'name="next" value="/subjects"' in form.text
    response = client.post(
        "/login",
        data={
            "username": "coordinator",
            "password": "test-password",
            "csrf_token": hidden(form.text, "csrf_token"),
            "next": "/subjects",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/subjects"
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("irt_session=")
    )
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    home = client.get("/")
    assert home.status_code == 200 and "coordinator" in home.text
    assert "<h1>" in home.text and home.text.count("<h1") == 1
    out = submit(client, "/logout", {}, csrf_token(client))
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_wrong_password_is_shown_and_audited_as_the_api_does(client: TestClient) -> None:
    form = client.get("/login")
    response = client.post(
        "/login",
        data={
            "username": "coordinator",
            "password": "nope",
            "csrf_token": hidden(form.text, "csrf_token"),
        },
        follow_redirects=False,
    )
    assert response.status_code == 401
    assert 'role="alert"' in response.text and "wrong" in response.text
    assert 'value="coordinator"' in response.text  # the user name is kept
    assert "irt_session" not in client.cookies


def _form_login(client: TestClient, username: str, password: str) -> int:
    """Post the login form (keeping the browser's cookies); the status of the answer."""
    form = client.get("/login")
    data = {
        "username": username,
        "password": password,
        "csrf_token": hidden(form.text, "csrf_token"),
    }
    return client.post("/login", data=data, follow_redirects=False).status_code


def test_login_throttles_as_the_api_does_but_not_a_known_browser(client: TestClient) -> None:
    settings = client.app.state.settings  # type: ignore[attr-defined]
    client.app.state.settings = settings.model_copy(update={"login_backoff_base_seconds": 600})  # type: ignore[attr-defined]
    known = TestClient(client.app)  # a browser the pharmacist logged in with before
    assert _form_login(known, "pharmacist", "test-password") == 303
    assert any(name.startswith("irt_device_") for name in known.cookies)
    for _ in range(5):
        assert _form_login(client, "pharmacist", "x") == 401
    assert _form_login(client, "pharmacist", "test-password") == 429
    assert _form_login(known, "pharmacist", "test-password") == 303
    known.close()


def test_logout_ends_the_session_on_the_server(client: TestClient) -> None:
    web_login(client, "coordinator")
    stolen = client.cookies["irt_session"]
    out = submit(client, "/logout", {}, csrf_token(client))
    assert out.status_code == 303
    client.cookies.set("irt_session", stolen)  # the cookie, copied before the logout
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_login_without_its_csrf_token_is_refused_and_changes_nothing(
    client: TestClient, demo_db: Database
) -> None:
    client.get("/login")
    before = snapshot(demo_db)
    response = client.post("/login", data={"username": "coordinator", "password": "wrong"})
    assert response.status_code == 403
    assert snapshot(demo_db) == before  # not even a failed login recorded


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing(
    client: TestClient, demo_db: Database
) -> None:
    token = web_login(client, "coordinator")
    form = client.get("/subjects/new")
    data = {
        "site_id": "DE01",
        "screening_number": "DE01-CSRF",
        "sex": "F",
        "year_of_birth": "1980",
        "idempotency_key": hidden(form.text, "idempotency_key"),
    }
    before = snapshot(demo_db)
    forged = token[:-1] + ("1" if token.endswith("0") else "0")
    for sent in ({}, {"csrf_token": "0" * 64}, {"csrf_token": forged}):
        response = client.post("/subjects/new", data={**data, **sent}, follow_redirects=False)
        assert response.status_code == 403, response.text
        assert "nothing was changed" in response.text
    assert_unchanged(demo_db, before)
    # the HTMX header is accepted in place of the field
    response = client.post(
        "/subjects/new", data=data, headers={"X-CSRF-Token": token}, follow_redirects=False
    )
    assert response.status_code == 303


def test_pages_refuse_other_roles_with_a_403_page(client: TestClient) -> None:
    web_login(client, "monitor")
    for url in ("/subjects", "/subjects/new", "/subjects/1", "/subjects/1/randomize"):
        response = client.get(url, follow_redirects=False)
        assert response.status_code == 403, url
        assert "text/html" in response.headers["content-type"]
    web_login(client, "pharmacist")
    assert client.get("/subjects/1/randomize").status_code == 403
    assert client.get("/subjects/1/unblind").status_code == 403
    assert client.get("/subjects").status_code == 200


def test_an_expired_or_forged_session_goes_back_to_login(client: TestClient) -> None:
    client.cookies.set("irt_session", "not-a-token")
    response = client.get("/subjects?site_id=DE01", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/subjects%3Fsite_id%3DDE01"
    htmx = client.get("/subjects", headers={"HX-Request": "true"}, follow_redirects=False)
    assert htmx.headers["HX-Redirect"] == "/login?next=/subjects"


def test_next_only_goes_to_this_site(client: TestClient) -> None:
    form = client.get("/login?next=//evil.example/x")
    assert 'name="next" value="/"' in form.text


def test_pages_have_a_content_security_policy_for_their_own_scripts(client: TestClient) -> None:
    page = client.get("/login")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert client.get("/static/htmx.min.js").status_code == 200
    assert client.get("/static/print.css").status_code == 200
