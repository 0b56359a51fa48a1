"""RFC 9457 problem+json for every error, with a machine `code` and no stack traces."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.db.engine import TextWithNul
from app.domain.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    MalformedRequest,
    NotAuthenticated,
    NotFound,
    NotPermitted,
    TooManyAttempts,
    Unavailable,
)
from app.services import attempts
from app.services.auth import actor_from_token

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("irt.api")


STATUS: dict[type[DomainError], int] = {
    MalformedRequest: 400,
    NotAuthenticated: 401,
    NotPermitted: 403,
    NotFound: 404,
    Conflict: 409,
    InvalidInput: 422,
    TooManyAttempts: 429,
    Unavailable: 503,
}
"""The one place where a kind of refusal becomes an HTTP status (API and pages alike)."""


RETRY_AFTER_SECONDS = 5
"""What a 503 asks the client to wait before trying again (the Retry-After header)."""
OUTAGES: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout)
"""The database errors that mean "unreachable or busy now", not "this request is wrong":
refused or lost connections, a server restarting or ending the session, SQLite's file
locked or unreadable, no pooled connection free in time."""
OUTAGE_DETAIL = (
    "The service cannot reach its database just now, so nothing was saved. "
    "Please try again in a minute; sending the same request again is safe."
)


def is_outage(exc: BaseException) -> bool:
    if isinstance(exc, OUTAGES):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def status_of(error: DomainError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 409


def problem(
    status: int, code: str, detail: str, instance: str | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:irt:problem:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 429 and "retry_after" in extra:  # throttled: when to try again
        headers = {"Retry-After": str(extra["retry_after"])}
    if status == 503:
        headers = {"Retry-After": str(extra.get("retry_after", RETRY_AFTER_SECONDS))}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


_OUTSIDE_BODY = ("query", "path", "header")


def field_of(loc: tuple[Any, ...], error_type: str = "") -> str:
    if error_type == "json_invalid":  # loc is ("body", character offset): no field to name
        return "body"
    if loc and loc[0] in _OUTSIDE_BODY:
        # a repeatable query parameter (?status=a&status=b) is named, not its position in a list
        loc = tuple(p for p in loc if not isinstance(p, int))
    parts = [str(p) for p in loc if p not in ("body", *_OUTSIDE_BODY)]
    return ".".join(parts) or "body"


def message_of(error: dict[str, Any]) -> str:
    if error["type"] == "missing":
        return "this field is required"
    if error["type"] == "extra_forbidden":
        return "this field is not expected"
    if error["type"] == "json_invalid":
        return "the body is not valid JSON"
    message = str(error["msg"]).removeprefix("Value error, ")
    sent = error.get("input")
    if error["loc"] and error["loc"][0] == "query" and isinstance(sent, str) and len(sent) <= 40:
        # a query value is in the address the user typed: echo it (never a body value, which
        # may be a password)
        return f"{message} (got {sent!r})"
    return message


def record_invalid_command(request: Request, body: Any, fields: list[str]) -> None:
    """Record a command refused for its shape, as the user its bearer token names (an
    anonymous or unreadable request is not recorded: nobody can be named)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return
    db = request.app.state.db
    try:
        with db.read() as session:
            actor = actor_from_token(
                session, token=token, secret=request.app.state.settings.secret_key
            )
    except DomainError:
        return
    attempts.record_invalid_request(
        db, actor=actor, method=request.method, path=request.url.path, sent=body, fields=fields
    )


def outage_problem(instance: str | None) -> JSONResponse:
    return problem(503, "database_unavailable", OUTAGE_DETAIL, instance)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (a path may have one route per method)."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        pattern = getattr(route, "path_regex", None)
        if pattern is not None and route.methods and pattern.match(request.scope["path"]):
            methods |= route.methods
    return sorted(methods)


def install(app: FastAPI) -> None:
    async def _outage(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return outage_problem(request.url.path)

    for kind in OUTAGES:
        app.add_exception_handler(kind, _outage)

    @app.exception_handler(DomainError)
    async def _service_error(request: Request, exc: DomainError) -> JSONResponse:
        return problem(status_of(exc), exc.code, exc.detail, request.url.path, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": field_of(tuple(e["loc"]), e["type"]), "message": message_of(e)}
            for e in exc.errors()
        ]
        detail = "The request is not valid: " + "; ".join(
            f"{e['field']}: {e['message']}" for e in errors
        )
        if request.method != "GET":
            await run_in_threadpool(
                record_invalid_command, request, exc.body, [e["field"] for e in errors]
            )
        return problem(422, "validation_error", detail, request.url.path, errors=errors)

    @app.exception_handler(TextWithNul)
    async def _nul(request: Request, exc: TextWithNul) -> JSONResponse:
        detail = "The request is not valid: text may not contain the NUL character (U+0000)."
        errors = [{"field": "body", "message": str(exc)}]
        return problem(422, "validation_error", detail, request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        response = problem(exc.status_code, code, str(exc.detail), request.url.path)
        if exc.status_code == 405:  # RFC 9110: a 405 lists the methods the path does serve
            response.headers["Allow"] = ", ".join(allowed_methods(request))
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_outage(exc):  # raised outside the routes (a middleware), or wrapped
            return await _outage(request, exc)
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem(
            500,
            "internal_error",
            "Something went wrong on our side; nothing was changed. Try again, and contact "
            "support if it happens again.",
            request.url.path,
        )
