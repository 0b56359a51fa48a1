"""Errors a use case raises; the API turns them into RFC 9457 problem+json."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """A refused request: HTTP status, machine `code`, a message a site user understands."""

    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra


def not_found(what: str) -> ServiceError:
    return ServiceError(404, "not_found", f"{what} was not found.")


def validation_error(field: str, message: str) -> ServiceError:
    return ServiceError(
        422, "validation_error", message, errors=[{"field": field, "message": message}]
    )
