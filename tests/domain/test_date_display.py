"""Dates and times as pages show them: DD-Mon-YYYY, a time in the named zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from app.domain.date_display import MONTHS, format_date, format_moment


def test_a_known_date_and_time() -> None:
    moment = datetime(2026, 12, 1, 21, 42, 35, 725978, tzinfo=UTC)
    assert format_date(date(2026, 12, 1)) == "01-Dec-2026"
    assert format_date("2026-12-01") == "01-Dec-2026"
    assert format_moment("2026-12-01T21:42:35.725978Z") == "01-Dec-2026 21:42 UTC"
    assert format_moment(moment, seconds=True) == "01-Dec-2026 21:42:35 UTC"
    # in the site's zone, named; the date is the site's
    assert format_moment(moment, "Europe/Berlin") == "01-Dec-2026 22:42 Europe/Berlin"
    assert format_moment(moment, "Asia/Tokyo") == "02-Dec-2026 06:42 Asia/Tokyo"
    assert format_date(moment, "Asia/Tokyo") == "02-Dec-2026"
    assert format_moment(moment.replace(tzinfo=None), "America/New_York").endswith(
        "16:42 America/New_York"
    )  # a naive moment is UTC, as the database keeps it


def test_unknown_zones_fall_back_to_utc_and_name_it() -> None:
    moment = datetime(2026, 7, 1, 8, 5, tzinfo=UTC)
    for zone in (None, "", "Mars/Olympus", "europe/berlin"):
        assert format_moment(moment, zone) == "01-Jul-2026 08:05 UTC"


def test_nothing_and_text_that_is_not_a_date() -> None:
    assert format_date(None) == format_moment(None) == format_date("") == ""
    assert format_date("not yet") == "not yet"
    assert format_moment(date(2026, 1, 2)) == "02-Jan-2026"  # a date alone has no time


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2999, 12, 31)))
def test_shown_dates_read_back_as_the_same_day(naive: datetime) -> None:
    moment = naive.replace(tzinfo=UTC)
    day, month, year = format_date(moment).split("-")
    assert date(int(year), MONTHS.index(month) + 1, int(day)) == moment.date()
    assert format_date(moment.isoformat()) == format_date(moment.date())
    shown = format_moment(moment, "Pacific/Kiritimati")  # UTC+14 since 1995
    local = moment + timedelta(hours=14)
    assert shown.startswith(format_date(local.date()))
    assert shown.endswith(f"{local:%H:%M} Pacific/Kiritimati")
