"""Dates entered by users and shown to them: the service keeps UTC, users live in every time
zone. A site has an IANA time zone (`sites.timezone`); its local date and time is what its
staff wrote on their source documents, so that is what exports and pages show for it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

LATEST_TIMEZONE = timedelta(hours=14)
"""The easternmost time zone (UTC+14): a date is not in the future while it is today there."""

DEFAULT_TIMEZONE = "UTC"
"""The zone of a site whose country has no zone in the time zone database."""


def latest_today(now: datetime) -> date:
    """The latest date that is today somewhere on earth at the UTC time `now`."""
    return (now + LATEST_TIMEZONE).date()


def is_timezone(name: str) -> bool:
    """An IANA time zone name the time zone database knows ("Europe/Berlin", "UTC")."""
    return name in _zone_names()


def zone(name: str) -> ZoneInfo:
    """The zone of an IANA name; ValueError names the unknown zone."""
    if not is_timezone(name):
        raise ValueError(f"unknown time zone {name!r}")
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError as exc:  # pragma: no cover - listed but not loadable
        raise ValueError(f"unknown time zone {name!r}") from exc


def to_local(moment: datetime, timezone: str) -> datetime:
    """The wall-clock time at a site in `timezone` of the instant `moment` (a naive moment is
    taken as UTC, as the database stores it), aware of its offset."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(zone(timezone))


def local_date(moment: datetime, timezone: str) -> date:
    """The site's calendar date at the instant `moment`."""
    return to_local(moment, timezone).date()


def local_iso(moment: datetime, timezone: str, *, offset: bool = False) -> str:
    """ISO 8601 local date and time to the second; without the offset by default (SDTM --DTC
    values are local times with no offset), with it (`+01:00`) when asked."""
    local = to_local(moment, timezone).replace(microsecond=0)
    return local.isoformat() if offset else local.replace(tzinfo=None).isoformat()


def country_timezone(country: str) -> str:
    """A default zone for a site in `country` (ISO 3166-1 alpha-2): the first zone the time zone
    database lists for it (its most populous region, America/New_York for US), UTC when none.
    A guess for countries with several zones: the sponsor sets the site's own."""
    return _first_zone_by_country().get(country.upper(), DEFAULT_TIMEZONE)


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones()) | {DEFAULT_TIMEZONE}


@lru_cache(maxsize=1)
def _first_zone_by_country() -> dict[str, str]:
    """Country -> first zone of zone.tab (shipped by the tzdata package)."""
    try:
        text = (resources.files("tzdata.zoneinfo") / "zone.tab").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover - tzdata is installed
        return {}
    first: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        country, _, name, *_ = line.split("\t")
        first.setdefault(country, name)
    return first
