"""Shared plumbing of the web pages: templates, the session cookie, CSRF, role checks, rendering
and the turning of refusals into errors shown next to their fields."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from app.api.deps import DB, SettingsDep
from app.api.problems import _field, _message
from app.db.engine import Database
from app.domain.errors import DomainError
from app.domain.roles import SITE_ROLES, Role
from app.domain.study import StudyDefinition
from app.services import idempotency
from app.services.actor import Actor
from app.services.auth import actor_from_token
from app.services.dispensing import urgent_resupply_on_shortage
from app.settings import Settings

HERE = Path(__file__).parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=TEMPLATES_DIR)

SESSION_COOKIE = "irt_session"
LOGIN_CSRF_COOKIE = "irt_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
HTMX_VERSION = "2.0.11"
"""htmx.org from the npm registry, vendored as static/htmx.min.js (docs/web.md)."""


# --- navigation -------------------------------------------------------------------------------

SITE_STAFF = frozenset(SITE_ROLES)
RANDOMIZERS = frozenset({Role.SITE_COORDINATOR, Role.INVESTIGATOR})
PHARMACY = frozenset({Role.PHARMACIST, Role.SUPPLY_MANAGER})
SUPPLY = frozenset({Role.SUPPLY_MANAGER})
MONITOR = frozenset({Role.UNBLINDED_MONITOR})
SPONSOR = frozenset({Role.SPONSOR_ADMIN})
CONFIRMATION_READERS = SITE_STAFF | MONITOR


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    roles: frozenset[Role]
    description: str = ""


NAV: list[NavItem] = [
    NavItem("Subjects", "/subjects", SITE_STAFF, "Register, randomize and dose subjects."),
    NavItem("Confirmations", "/confirmations", CONFIRMATION_READERS, "Printable confirmations."),
    NavItem("Pharmacy", "/pharmacy", PHARMACY, "Site inventory and shipments."),
    NavItem("Supply", "/supply", SUPPLY, "Shipments, quarantine, supply levels, depot stock."),
    NavItem("Forecast", "/supply/forecast", PHARMACY | MONITOR | SPONSOR, "Need per site."),
    NavItem("Simulation", "/supply/simulation", SUPPLY | MONITOR, "Simulated trials."),
    NavItem("Allocations", "/monitor/allocations", MONITOR, "Unblinded allocations."),
    NavItem("Unblindings", "/monitor/unblindings", MONITOR, "Emergency unblinding log."),
    NavItem("Audit trail", "/monitor/audit", MONITOR, "The audit trail and its verification."),
    NavItem("Sites", "/admin/sites", SPONSOR, "Sites and their activation."),
    NavItem("Cohorts", "/admin/cohorts", SPONSOR, "Open and close phase Ib cohorts."),
    NavItem("Phase II dose", "/admin/phase2-dose", SPONSOR, "Record the phase II dose."),
    NavItem("Reports", "/reports/enrolment", SITE_STAFF | PHARMACY | MONITOR | SPONSOR),
]
"""The menu: each page's entry shows only for the roles that may open it."""


def nav_for(role: Role | None) -> list[NavItem]:
    return [item for item in NAV if role is not None and role in item.roles]


# --- errors that end a page request -----------------------------------------------------------


class LoginRequired(Exception):
    """No session, or an expired one: 303 to the login page, coming back to `next_url`."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class PageRefused(Exception):
    """A page answered with an error page (403 wrong role or CSRF, 404, ...)."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


# --- CSRF -------------------------------------------------------------------------------------


def _hmac(secret: str, purpose: str, value: str) -> str:
    message = f"{purpose}\0{value}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def session_csrf_token(secret: str, session_token: str) -> str:
    """The CSRF token of a session: an HMAC of the session cookie with the IRT secret key."""
    return _hmac(secret, "csrf", session_token)


def login_csrf_token(secret: str, pre_session: str) -> str:
    """The login form's token: an HMAC of the pre-session cookie (login CSRF protection)."""
    return _hmac(secret, "login-csrf", pre_session)


def _sent_csrf(request: Request, form: FormData | None) -> str:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and form is not None:
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    return sent or ""


def csrf_refused() -> PageRefused:
    return PageRefused(
        403,
        "The form has expired",
        "The form could not be verified (a missing or wrong security token), so nothing was "
        "changed. Go back, reload the page and submit it again.",
    )


def check_csrf(request: Request, form: FormData | None, expected: str) -> None:
    if not hmac.compare_digest(_sent_csrf(request, form), expected):
        raise csrf_refused()


# --- the session and role checks ----------------------------------------------------------------


async def read_form(request: Request) -> FormData:
    """The submitted form (parsed once; Starlette keeps it on the request)."""
    return await request.form()


Form = Annotated[FormData, Depends(read_form)]


def safe_next(url: str | None) -> str:
    """Only a path of this site is a place to go back to after logging in."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return "/"
    return url


def _here(request: Request) -> str:
    path = request.url.path
    return f"{path}?{request.url.query}" if request.url.query else path


def page_actor(*roles: Role) -> Callable[..., Awaitable[Actor]]:
    """A page dependency: the logged-in user (303 to /login when there is no valid session),
    refused with a 403 page unless of one of `roles`; every POST must carry the CSRF token."""
    allowed = frozenset(roles) if roles else frozenset(Role)

    async def check(request: Request, db: DB, settings: SettingsDep) -> Actor:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            raise LoginRequired(_here(request) if request.method == "GET" else "/")
        try:
            with db.read() as session:
                actor = actor_from_token(session, token=token, secret=settings.secret_key)
        except DomainError:
            raise LoginRequired(_here(request) if request.method == "GET" else "/") from None
        request.state.actor = actor
        request.state.session_token = token
        if request.method not in ("GET", "HEAD"):
            form = await request.form()
            check_csrf(request, form, session_csrf_token(settings.secret_key, token))
        if actor.role not in allowed:
            raise PageRefused(
                403,
                "Not for your role",
                f"Your role ({actor.role.replace('_', ' ')}) may not open this page.",
            )
        return actor

    check.allowed_roles = allowed  # type: ignore[attr-defined]
    return check


def mark_page(request: Request) -> None:
    """Router-level dependency: errors of this request are shown as HTML pages."""
    request.state.is_page = True


# --- rendering ----------------------------------------------------------------------------------


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with the layout's context: user, menu, CSRF token, study."""
    actor: Actor | None = getattr(request.state, "actor", None)
    token: str | None = getattr(request.state, "session_token", None)
    settings = request.app.state.settings
    base = {
        "actor": actor,
        "nav": nav_for(actor.role if actor else None),
        "csrf_token": session_csrf_token(settings.secret_key, token) if token else "",
        "study": request.app.state.study,
        "htmx_version": HTMX_VERSION,
    }
    response = templates.TemplateResponse(
        request, template, {**base, **context}, status_code=status_code
    )
    response.headers["Content-Language"] = "en"
    return response


def see_other(url: str) -> RedirectResponse:
    """The answer to a successful POST: 303 to the page that shows the result."""
    return RedirectResponse(url, status_code=303)


def error_page(request: Request, *, status: int, title: str, detail: str) -> HTMLResponse:
    return render(request, "error.html", status_code=status, title=title, detail=detail)


def new_idempotency_key() -> str:
    """A one-time key put into an allocating form when it is rendered."""
    return uuid.uuid4().hex


def new_pre_session() -> str:
    return secrets.token_urlsafe(32)


def set_cookie(
    request: Request, *, response: Response, name: str, value: str, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


# --- form values and errors ---------------------------------------------------------------------


@dataclass
class FormErrors:
    """Errors of a refused form: per field (shown next to it) and a summary at the top."""

    fields: dict[str, str] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fields or self.summary)

    def add(self, name: str, message: str) -> None:
        if name in self.fields:
            self.fields[name] += f"; {message}"
        else:
            self.fields[name] = message
        self.summary.append(f"{name.replace('_', ' ')}: {message}")


def _rename(name: str, renames: Mapping[str, str], strip: Iterable[str]) -> str:
    for prefix in strip:
        name = name.removeprefix(prefix)
    return renames.get(name, name)


def errors_from_validation(
    exc: ValidationError, renames: Mapping[str, str] | None = None, strip: Iterable[str] = ()
) -> FormErrors:
    """A pydantic refusal of the form's values, by form field name."""
    errors = FormErrors()
    for error in exc.errors():
        raw = _field(tuple(error["loc"]), error["type"])
        errors.add(_rename(raw, renames or {}, tuple(strip)), _message(dict(error)))
    return errors


def errors_from_service(
    exc: DomainError, renames: Mapping[str, str] | None = None, strip: Iterable[str] = ()
) -> FormErrors:
    """A refusal by a use case: its field errors next to their fields, the message on top."""
    errors = FormErrors()
    field_errors = exc.extra.get("errors") or []
    for item in field_errors:
        name = _rename(str(item["field"]), renames or {}, tuple(strip))
        errors.fields[name] = str(item["message"])
    errors.summary.append(exc.detail)
    return errors


def form_values(form: FormData) -> dict[str, str]:
    """The submitted text values (for showing the form again as entered)."""
    return {k: v for k, v in form.items() if isinstance(v, str) and k != CSRF_FIELD}


def checkbox(form: Mapping[str, Any], name: str) -> bool:
    return form.get(name) in ("on", "true", "1", "yes")


def blank_to_none(value: str | None) -> str | None:
    return value if value not in (None, "") else None


# --- allocating forms -----------------------------------------------------------------------------

IN_FLIGHT_WAIT_SECONDS = 10.0


def allocate(
    db: Database,
    *,
    study: StudyDefinition,
    settings: Settings,
    actor: Actor,
    key: str | None,
    endpoint: str,
    payload: dict[str, Any],
    work: Callable[[Session], dict[str, Any]],
) -> dict[str, Any]:
    """Run an allocating use case as the API does (Idempotency-Key, urgent resupply on a
    shortage) with the form's one-time key: a double submit does the work once and both answers
    get the same result. A second submit arriving while the first still runs waits for it."""
    if not key:
        raise PageRefused(
            400,
            "The form has expired",
            "The form has no one-time key, so nothing was changed. Open the form again.",
        )
    deadline = time.monotonic() + IN_FLIGHT_WAIT_SECONDS
    while True:
        try:
            with urgent_resupply_on_shortage(db, study):
                _, body, _ = idempotency.run(
                    db,
                    actor=actor,
                    key=key,
                    endpoint=endpoint,
                    payload=payload,
                    lease_seconds=settings.idempotency_lease_seconds,
                    work=lambda session: (201, work(session)),
                )
            return body
        except DomainError as exc:
            if exc.code != "idempotency_in_flight" or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
