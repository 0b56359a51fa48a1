"""Home, login and logout; includes the subject and confirmation pages (W1's URL map)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from app.api.deps import DB, SettingsDep, client_source
from app.api.problems import status_of
from app.domain.errors import DomainError
from app.domain.roles import EVERYONE
from app.services import device_proof
from app.services.actor import Actor
from app.services.auth import login
from app.services.auth import logout as end_session
from app.web import (
    kept_forms,
    pages_confirmations,
    pages_corrections,
    pages_lifecycle,
    pages_subjects,
    pages_unblinding,
    pages_visits,
)
from app.web.csrf import LOGIN_CSRF_COOKIE, check_csrf, login_csrf_token, new_pre_session
from app.web.forms import Form
from app.web.rendering import render, see_other
from app.web.session import SESSION_COOKIE, page_actor, safe_next, set_cookie, start_session
from app.web.session import now as session_now

router = APIRouter()
router.include_router(pages_subjects.router)
router.include_router(pages_unblinding.router)
router.include_router(pages_visits.router)
router.include_router(pages_lifecycle.router)
router.include_router(pages_confirmations.router)
router.include_router(pages_corrections.router)

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
        form_kept=kept_forms.KEPT_COOKIE in request.cookies,
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
    device_cookie = device_proof.cookie_name(username=username, secret=settings.secret_key)
    known = device_proof.device_id(
        proof=request.cookies.get(device_cookie), username=username, secret=settings.secret_key
    )
    try:
        user = login(
            db,
            settings=settings,
            username=username,
            password=password,
            source=client_source(request),
            device_id=known,
        )
    except DomainError as exc:
        return _login_page(
            request,
            secret=settings.secret_key,
            next_url=next_url,
            status_code=status_of(exc),
            username=username,
            error=exc.detail,
        )
    # a form this user sent after the session ended comes first (app/web/kept_forms.py)
    kept = kept_forms.after_login(
        request, username=user.username, settings=settings, now=session_now()
    )
    response = see_other(kept or next_url)
    start_session(request, response=response, user=user, settings=settings)
    set_cookie(
        request,
        response=response,
        name=device_cookie,
        value=device_proof.issue(
            username=user.username, secret=settings.secret_key, days=settings.device_proof_days
        ),
        max_age=settings.device_proof_days * 86400,
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(request: Request, actor: AnyUser, db: DB, settings: SettingsDep) -> Response:
    """End the session on the server and in this browser (the CSRF token is checked by
    `page_actor`); the device cookie stays, so this device remains known for the next login."""
    end_session(
        db,
        token=request.state.session_token,
        secret=settings.secret_key,
        ttl_seconds=settings.token_ttl_seconds,
    )
    response = see_other("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(kept_forms.KEPT_COOKIE, path="/")
    return response
