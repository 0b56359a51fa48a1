"""The local-time helpers: a site's wall-clock time of a UTC moment, its date, the ISO text
with and without offset, and a default zone per country."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from app.domain import dates

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Pacific/Kiritimati", "Pacific/Pago_Pago"]


@given(
    st.datetimes(datetime(1990, 1, 1), datetime(2060, 1, 1), timezones=st.just(UTC)),
    st.sampled_from(ZONES),
)
# the hour that repeats when summer time ends: an aware datetime in it never compares equal to
# one in another zone (PEP 495), so the instants are compared as timestamps
@example(datetime(2008, 10, 26, 0, 30, tzinfo=UTC), "Europe/Berlin")
def test_local_time_is_the_same_instant(moment: datetime, zone: str) -> None:
    local = dates.to_local(moment, zone)
    assert local.timestamp() == moment.timestamp() and local.tzinfo is not None
    assert dates.to_local(moment.replace(tzinfo=None), zone) == local  # naive: taken as UTC
    text = dates.local_iso(moment, zone)
    assert len(text) == 19 and text == local.replace(microsecond=0, tzinfo=None).isoformat()
    exact = datetime.fromisoformat(dates.local_iso(moment, zone, offset=True))
    assert exact == moment.replace(microsecond=0) and exact.isoformat()[:19] == text
    assert dates.local_date(moment, zone) == local.date()
    assert dates.local_date(moment, zone) <= dates.latest_today(moment)


def test_an_evening_in_boston_is_still_the_same_day() -> None:
    moment = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)  # 20:30 in Boston on 1 March
    assert dates.local_iso(moment, "America/New_York") == "2026-03-01T20:30:00"
    assert dates.local_iso(moment, "Europe/Berlin", offset=True) == "2026-03-02T02:30:00+01:00"


def test_zones_and_country_defaults() -> None:
    assert dates.is_timezone("Europe/Berlin") and dates.is_timezone("UTC")
    assert not dates.is_timezone("Europe/Atlantis") and not dates.is_timezone("")
    with pytest.raises(ValueError, match="unknown time zone"):
        dates.zone("Mars/Olympus")
    assert [dates.country_timezone(c) for c in ("DE", "us", "FR", "XX")] == [
        "Europe/Berlin",
        "America/New_York",
        "Europe/Paris",
        "UTC",
    ]
