"""The API's routers, in one place: the app includes them under /api/v1 and the route tests
walk them, so a new router cannot be served without being tested."""

from __future__ import annotations

from fastapi import APIRouter

from app.api import admin, auth, confirmations, exports, forecast, reports, subjects, supply

API_PREFIX = "/api/v1"
API_ROUTERS: tuple[APIRouter, ...] = tuple(
    module.router
    for module in (auth, subjects, supply, forecast, admin, reports, confirmations, exports)
)
