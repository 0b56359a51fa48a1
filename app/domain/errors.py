"""Typed refusals that use cases raise; the edges (API, pages, CLI) choose how to show them.

An error carries a machine `code` and a `detail` a site user understands; its class says what
kind of refusal it is. Only the edge knows HTTP: app/api/problems.py maps each class to a
status, once."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refused request; nothing was changed, apart from the audit entry of the attempt."""

    def __init__(self, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.extra = extra


class MalformedRequest(DomainError):
    """The request itself is unusable (a missing or malformed header)."""


class NotAuthenticated(DomainError):
    """No valid credentials."""


class NotPermitted(DomainError):
    """The user may not do this (another site's subject, a role that lacks the right)."""


class NotFound(DomainError):
    """The thing asked for does not exist, or the user may not know that it does."""


class Conflict(DomainError):
    """Not possible in the current state (no kits, a closed cohort, a received shipment)."""


class InvalidInput(DomainError):
    """A value the user entered is not acceptable; `extra["errors"]` names the fields."""


class TooManyAttempts(DomainError):
    """Refused for now to slow down guessing; possible again later."""


class Unavailable(DomainError):
    """The service cannot answer yet (no study loaded, the database unreachable)."""


def not_found(what: str) -> NotFound:
    return NotFound("not_found", f"{what} was not found.")


def validation_error(field: str, message: str) -> InvalidInput:
    return InvalidInput("validation_error", message, errors=[{"field": field, "message": message}])
