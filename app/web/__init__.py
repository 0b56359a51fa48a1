"""Server-rendered pages for site staff, pharmacists, the monitor and the sponsor (Jinja2 and
HTMX, every core form usable without JavaScript). See docs/web.md."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.problems import OUTAGES, RETRY_AFTER_SECONDS, status_of
from app.db.engine import TextWithNul
from app.domain.errors import DomainError, NotFound
from app.web import (
    pages_admin,
    pages_caps,
    pages_forecast,
    pages_monitor,
    pages_pharmacy,
    pages_reports,
    pages_session,
    pages_simulation,
    pages_site,
    pages_supply,
)
from app.web.cookies import QueuedCookies
from app.web.refusals import LoginRequired, PageRefused
from app.web.rendering import STATIC_DIR, error_page
from app.web.session import mark_page

router = APIRouter(include_in_schema=False, dependencies=[Depends(mark_page)])
for _module in (
    pages_site,
    pages_pharmacy,
    pages_supply,
    pages_forecast,
    pages_simulation,
    pages_monitor,
    pages_admin,
    pages_caps,
    pages_reports,
    pages_session,
):
    router.include_router(_module.router)

__all__ = ["install", "router"]


OUTAGE_PAGE = (
    "The service cannot reach its database just now, so nothing was saved. Wait a minute, "
    "then try again: go back and send the form again, or reload the page."
)


def _is_page(request: Request) -> bool:
    return bool(getattr(request.state, "is_page", False))


def install(app: FastAPI) -> None:
    """Include the pages, serve /static, and answer a page's errors with HTML pages (the API
    keeps its problem+json)."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(QueuedCookies)  # the renewed session, the kept form (app/web/cookies.py)
    api_handlers = dict(app.exception_handlers)

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        target = "/login" if exc.next_url == "/" else f"/login?next={quote(exc.next_url, safe='/')}"
        if request.headers.get("HX-Request"):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageRefused)
        return error_page(request, status=exc.status, title=exc.title, detail=exc.detail)

    def html_or_api(kind: Any) -> Any:
        original = api_handlers[kind]

        async def handle(request: Request, exc: Exception) -> Response:
            if not _is_page(request):
                response: Response = await original(request, exc)
                return response
            if isinstance(exc, OUTAGES):
                page = error_page(request, status=503, title="Not saved", detail=OUTAGE_PAGE)
                page.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
                return page
            if isinstance(exc, DomainError):
                title = "Not found" if isinstance(exc, NotFound) else "Not possible"
                return error_page(request, status=status_of(exc), title=title, detail=exc.detail)
            if isinstance(exc, StarletteHTTPException):
                title = "Not found" if exc.status_code == 404 else "Not possible"
                return error_page(
                    request, status=exc.status_code, title=title, detail=str(exc.detail)
                )
            detail = "The address or the form is not valid"
            if isinstance(exc, RequestValidationError):
                detail += ": " + "; ".join(str(e["msg"]) for e in exc.errors())
            return error_page(request, status=422, title="Not valid", detail=detail + ".")

        return handle

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(PageRefused, refused)
    kinds = (DomainError, StarletteHTTPException, RequestValidationError, TextWithNul, *OUTAGES)
    for kind in kinds:
        if kind in api_handlers:
            app.add_exception_handler(kind, html_or_api(kind))
