"""The exceptions that end a page request with something other than the page: the login page
(no valid session) or an error page (wrong role, expired form, ...). app/web/__init__.py turns
them into responses, so any helper deep in a request may raise them."""

from __future__ import annotations


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
