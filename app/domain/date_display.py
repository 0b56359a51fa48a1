"""Dates and times as people read them (docs/web.md): 01-Dec-2026, and a time in the site's zone
with the zone named (01-Dec-2026 22:42 Europe/Berlin). Neither order (day first or month first)
nor the browser's locale can be misread; the month is an English abbreviation whatever the
server's locale. Exports and the API keep ISO 8601."""

from __future__ import annotations

from datetime import UTC, date, datetime

from app.domain.dates import is_timezone, to_local

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
UTC_NAME = "UTC"

Shown = date | datetime | str | None


def zone_name(timezone: str | None) -> str:
    """The zone a time is shown in: the site's IANA zone, UTC when none or unknown."""
    return timezone if timezone and is_timezone(timezone) else UTC_NAME


def _parse(value: Shown) -> date | datetime | None:
    """A date, a datetime, or its ISO 8601 text ("2026-12-01", "2026-12-01T21:42:35Z")."""
    if value is None or isinstance(value, date):  # datetime is a date
        return value
    text = value.strip()
    if not text:
        return None
    if len(text) == 10:
        return date.fromisoformat(text)
    return datetime.fromisoformat(text)


def _day(value: date) -> str:
    return f"{value.day:02d}-{MONTHS[value.month - 1]}-{value.year:04d}"


def format_date(value: Shown, timezone: str | None = None) -> str:
    """DD-Mon-YYYY; a moment is shown as its date in `timezone` (UTC by default). Text that is
    not ISO 8601 is shown as it is; None as nothing."""
    try:
        parsed = _parse(value)
    except ValueError:
        return str(value)
    if parsed is None:
        return ""
    if isinstance(parsed, datetime):
        parsed = _local(parsed, timezone)
    return _day(parsed)


def format_moment(value: Shown, timezone: str | None = None, *, seconds: bool = False) -> str:
    """DD-Mon-YYYY HH:MM (HH:MM:SS with `seconds`) in `timezone`, the zone named after it.
    A date alone is shown as a date."""
    try:
        parsed = _parse(value)
    except ValueError:
        return str(value)
    if parsed is None:
        return ""
    if not isinstance(parsed, datetime):
        return _day(parsed)
    local = _local(parsed, timezone)
    clock = local.strftime("%H:%M:%S" if seconds else "%H:%M")
    return f"{_day(local)} {clock} {zone_name(timezone)}"


def _local(moment: datetime, timezone: str | None) -> datetime:
    """The moment in the zone (a naive moment is UTC, as the database keeps it)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return to_local(aware, zone_name(timezone))
