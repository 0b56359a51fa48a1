"""Transport hardening: security headers, a request size limit, CORS closed by default."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.problems import problem
from app.settings import Settings

HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"no-referrer",
    b"cache-control": b"no-store",
    b"permissions-policy": b"camera=(), microphone=(), geolocation=()",
    b"cross-origin-opener-policy": b"same-origin",
}
API_CSP = b"default-src 'none'; frame-ancestors 'none'"
"""The API serves JSON only. The interactive docs (/docs, /redoc) send a policy of their own,
with a nonce for their start-up script (app/api/docs_ui.py); a response with a policy keeps it."""
WEB_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    b"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
"""The web pages (app/web) load their script (htmx) and styles from this site only."""


class SecurityMiddleware:
    """Adds the security headers and refuses bodies over `max_bytes` (413) before any handler."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        if declared is None and b"transfer-encoding" in headers:
            # a chunked body announces no size: read it here, up to the limit, so that an
            # oversized one is refused with 413 like a declared one (the route's own body
            # parsing would turn the error into a 400)
            buffered = await self._read_limited(receive)
            if buffered is None:
                await self._too_large(scope, receive, send)
                return
            receive = _replay(buffered, receive)
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge()
            return message

        is_api = scope["path"].startswith(
            ("/api/", "/health", "/ready", "/metrics", "/openapi.json")
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() not in HEADERS
                ]
                headers += list(HEADERS.items())
                if all(k.lower() != b"content-security-policy" for k, _ in headers):
                    headers.append((b"content-security-policy", API_CSP if is_api else WEB_CSP))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except _TooLarge:
            await self._too_large(scope, receive, send_with_headers)

    async def _read_limited(self, receive: Receive) -> list[Message] | None:
        """The body's messages, or None once they pass `max_bytes`."""
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return None
            if not message.get("more_body", False):
                return messages

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413,
            "request_too_large",
            f"The request body is larger than {self.max_bytes} bytes.",
            scope.get("path"),
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


def install(app: FastAPI, settings: Settings) -> None:
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=False,
            allow_methods=["GET", "POST", "PUT"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        )
    app.add_middleware(SecurityMiddleware, max_bytes=settings.max_request_bytes)
