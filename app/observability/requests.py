"""Per request: an id (the client's X-Request-ID when it is a plain token, else a new one),
echoed in the response and carried by the log lines and audit entries written meanwhile; one
JSON log line when the answer is sent; the latency observed per route template."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability import metrics
from app.observability.logs import get_logger
from app.services.request_context import serving

HEADER = b"x-request-id"
_TOKEN = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
"""A client's id is kept when it is 1 to 128 letters, digits, `.`, `_`, `:` or `-` (what
proxies and tracing systems send); anything else could forge log lines, and is replaced."""
log = get_logger("irt.request")


def request_id_of(scope: Scope) -> str:
    headers: dict[bytes, bytes] = dict(scope.get("headers") or [])
    sent = headers.get(HEADER)
    if sent is not None and _TOKEN.fullmatch(sent):
        return sent.decode("ascii")
    return uuid.uuid4().hex


def route_of(scope: Scope, templates: dict[int, str]) -> str:
    """The matched route's template (`/api/v1/subjects/{subject_id}`), never the raw path: the
    metric's labels stay few and carry no identifiers. `templates`: route id -> full template
    (FastAPI names an included route by its path inside its router)."""
    route = scope.get("route")
    path = templates.get(id(route)) or getattr(route, "path", None)
    return str(path) if isinstance(path, str) and path else "unmatched"


class RequestObservation:
    """Outermost middleware: it sees every answer, the 413s and 500s of the layers inside too."""

    def __init__(self, app: ASGIApp, templates: dict[int, str]) -> None:
        self.app = app
        self.templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                message["headers"] = [*headers, (HEADER, request_id.encode("ascii"))]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id), serving(request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                seconds = time.perf_counter() - started
                route = route_of(scope, self.templates)
                metrics.observe_request(
                    method=scope["method"], route=route, status=status, seconds=seconds
                )
                log.info(
                    "request",
                    method=scope["method"],
                    route=route,
                    path=scope["path"],
                    status=status,
                    duration_ms=round(seconds * 1000, 1),
                    client=(scope.get("client") or ("unknown", 0))[0],
                )
