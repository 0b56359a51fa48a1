"""The pages' cookies: how they are set, and cookies set by a dependency rather than a handler
(the renewed session, the kept form), which FastAPI would drop when the handler returns a
Response of its own, so `QueuedCookies` adds them to whatever response the request gets."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_QUEUE = "irt_queued_cookies"


def set_cookie(
    request: Request, *, response: Response, name: str, value: str, max_age: int | None
) -> None:
    """A cookie no script can read and no other site can send; HTTPS-only when the request came
    over HTTPS (as told by a trusted proxy, IRT_FORWARDED_ALLOW_IPS) or IRT_SECURE_COOKIES is on."""
    secure = request.app.state.settings.secure_cookies or request.url.scheme == "https"
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=bool(secure),
    )


def _queue(request: Request, carrier: Response, name: str) -> None:
    headers = [(k, v) for k, v in carrier.raw_headers if k == b"set-cookie"]
    queued: dict[str, list[tuple[bytes, bytes]]] = request.scope.setdefault("state", {}).setdefault(
        _QUEUE, {}
    )
    queued[name] = headers


def queue_cookie(request: Request, *, name: str, value: str, max_age: int | None) -> None:
    """Set a cookie on this request's response, whichever response that turns out to be."""
    carrier = Response()
    set_cookie(request, response=carrier, name=name, value=value, max_age=max_age)
    _queue(request, carrier, name)


def queue_deletion(request: Request, name: str) -> None:
    """Delete a cookie with this request's response."""
    carrier = Response()
    carrier.delete_cookie(name, path="/")
    _queue(request, carrier, name)


class QueuedCookies:
    """Adds the queued cookies to the response; a cookie the handler set itself wins (a logout
    deletes the session even when the same request would have renewed it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_cookies(message: Message) -> None:
            queued = scope.get("state", {}).get(_QUEUE)
            if message["type"] == "http.response.start" and queued:
                headers = list(message.get("headers", []))
                own = {
                    v.split(b"=", 1)[0].decode("latin-1")
                    for k, v in headers
                    if k.lower() == b"set-cookie"
                }
                for name, cookie_headers in queued.items():
                    if name not in own:
                        headers += cookie_headers
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_cookies)
