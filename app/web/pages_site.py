"""Home, login and logout; includes the subject and confirmation pages (W1's URL map)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from app.api.deps import DB, SettingsDep
from app.api.problems import status_of
from app.domain.errors import DomainError
from app.domain.roles import EVERYONE
from app.services.actor import Actor
from app.services.auth import issue_token, login
from app.web import pages_confirmations, pages_subjects, pages_unblinding
from app.web.csrf import LOGIN_CSRF_COOKIE, check_csrf, login_csrf_token, new_pre_session
from app.web.forms import Form
from app.web.rendering import render, see_other
from app.web.session import SESSION_COOKIE, page_actor, safe_next, set_cookie

router = APIRouter()
router.include_router(pages_subjects.router)
router.include_router(pages_unblinding.router)
router.include_router(pages_confirmations.router)

AnyUser = Annotated[Actor, Depends(page_actor(*EVERYONE))]


@router.get("/", response_class=HTMLResponse)
def home(request: Request, actor: AnyUser) -> Response:
    return render(request, "home.html")


def _login_page(
    request: Request,
    *,
    secret: str,
    next_url: str,
    status_code: int = 200,
    username: str = "",
    error: str = "",
) -> Response:
    pre_session = request.cookies.get(LOGIN_CSRF_COOKIE) or new_pre_session()
    response = render(
        request,
        "login.html",
        status_code=status_code,
        login_csrf=login_csrf_token(secret, pre_session),
        next_url=next_url,
        username=username,
        error=error,
    )
    set_cookie(request, response=response, name=LOGIN_CSRF_COOKIE, value=pre_session, max_age=3600)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, settings: SettingsDep, next: str = "/") -> Response:
    return _login_page(request, secret=settings.secret_key, next_url=safe_next(next))


@router.post("/login", response_class=HTMLResponse)
def login_submit(request: Request, form: Form, db: DB, settings: SettingsDep) -> Response:
    """Check the password as the API does (throttled, failures audited); set the session."""
    pre_session = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    check_csrf(request, form, login_csrf_token(settings.secret_key, pre_session))
    username = str(form.get("username") or "")
    password = str(form.get("password") or "")
    next_url = safe_next(str(form.get("next") or "/"))
    try:
        user = login(db, settings=settings, username=username, password=password)
    except DomainError as exc:
        return _login_page(
            request,
            secret=settings.secret_key,
            next_url=next_url,
            status_code=status_of(exc),
            username=username,
            error=exc.detail,
        )
    response = see_other(next_url)
    token = issue_token(
        user=user, secret=settings.secret_key, ttl_seconds=settings.token_ttl_seconds
    )
    set_cookie(
        request,
        response=response,
        name=SESSION_COOKIE,
        value=token,
        max_age=settings.token_ttl_seconds,
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(request: Request, actor: AnyUser) -> Response:
    """End the session in this browser (the CSRF token is checked by `page_actor`)."""
    response = see_other("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
