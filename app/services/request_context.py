"""The id of the HTTP request being served, so that the audit entries it writes can be matched
with its log line (the id is set by the edge, app/observability/requests.py; the CLI has none)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_REQUEST_ID: ContextVar[str | None] = ContextVar("irt_request_id", default=None)


def current_request_id() -> str | None:
    return _REQUEST_ID.get()


@contextmanager
def serving(request_id: str) -> Iterator[None]:
    """Everything run inside, worker threads included (they copy the context), sees the id."""
    token = _REQUEST_ID.set(request_id)
    try:
        yield
    finally:
        _REQUEST_ID.reset(token)
