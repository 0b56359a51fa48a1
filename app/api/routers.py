"""The API's routers, in one place: the app includes them under /api/v1 and the route tests
walk them, so a new router cannot be served without being tested."""

from __future__ import annotations

from fastapi import APIRouter

from app.api import (
    admin,
    auth,
    confirmations,
    corrections,
    exports,
    forecast,
    lists,
    reports,
    study_admin,
    subject_lifecycle,
    subjects,
    supply,
    visits,
)

API_PREFIX = "/api/v1"
API_ROUTERS: tuple[APIRouter, ...] = tuple(
    module.router
    for module in (
        auth,
        subjects,
        corrections,
        subject_lifecycle,
        supply,
        forecast,
        admin,
        lists,
        study_admin,
        reports,
        confirmations,
        exports,
        visits,
    )
)
