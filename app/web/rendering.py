"""Rendering the pages: the Jinja2 templates with the layout's context (user, menu, CSRF token,
study), the error page, and the redirect that answers a successful POST."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from app.domain import lifecycle
from app.domain.date_display import UTC_NAME, format_date, format_moment
from app.services import sites
from app.services.actor import Actor
from app.web.csrf import session_csrf_token
from app.web.navigation import nav_for
from app.web.session import seconds_left

HERE = Path(__file__).parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=TEMPLATES_DIR)
templates.env.filters["status_label"] = lifecycle.label  # a subject's status, as site staff say it
# dates as 01-Dec-2026, times in a named zone (docs/web.md): `{{ v | as_date }}`,
# `{{ moment | as_time(zone_of(site_id)) }}`; date inputs keep ISO values
templates.env.filters["as_date"] = format_date
templates.env.filters["as_time"] = format_moment

HTMX_VERSION = "2.0.11"
"""htmx.org from the npm registry, vendored as static/htmx.min.js (docs/web.md)."""


class SiteZones:
    """`zone_of(site_id)` in the templates: the site's time zone (UTC when none), read once per
    page, and only by a page that shows a site's time."""

    def __init__(self, request: Request) -> None:
        self._request = request
        self._zones: dict[str, str] | None = None

    def __call__(self, site_id: str | None) -> str:
        if self._zones is None:
            with self._request.app.state.db.read() as session:
                self._zones = sites.timezones(session)
        return self._zones.get(site_id or "", UTC_NAME)


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
        "zone_of": SiteZones(request),
        "training": getattr(request.app.state, "training", False),  # docs/deployment.md
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
