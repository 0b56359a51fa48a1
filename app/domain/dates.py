"""Dates entered by users: the service keeps UTC, users live in every time zone."""

from __future__ import annotations

from datetime import date, datetime, timedelta

LATEST_TIMEZONE = timedelta(hours=14)
"""The easternmost time zone (UTC+14): a date is not in the future while it is today there."""


def latest_today(now: datetime) -> date:
    """The latest date that is today somewhere on earth at the UTC time `now`."""
    return (now + LATEST_TIMEZONE).date()
