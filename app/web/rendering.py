"""Rendering the pages: the Jinja2 templates with the layout's context (user, menu, CSRF token,
study), the error page, and the redirect that answers a successful POST."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from app.services.actor import Actor
from app.web.csrf import session_csrf_token
from app.web.navigation import nav_for
from app.web.session import seconds_left

HERE = Path(__file__).parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=TEMPLATES_DIR)

HTMX_VERSION = "2.0.11"
"""htmx.org from the npm registry, vendored as static/htmx.min.js (docs/web.md)."""


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with the layout's context: user, menu, CSRF token, study."""
    actor: Actor | None = getattr(request.state, "actor", None)
    session_id: str | None = getattr(request.state, "session_id", None)
    settings = request.app.state.settings
    base = {
        "actor": actor,
        "nav": nav_for(actor.role if actor else None),
        "csrf_token": session_csrf_token(settings.secret_key, session_id) if session_id else "",
        # the session warning (static/session.js): seconds left when the page was made
        "session_expires_in": seconds_left(request),
        "session_warning": settings.session_warning_seconds,
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
