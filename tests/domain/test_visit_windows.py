"""Visit windows: targets from day 1, windows that never overlap, and each visit's state."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.study import Schedule, StudyDefinitionError, load_study, parse_study
from app.domain.visits import (
    VisitOutOfWindow,
    VisitState,
    needs_override,
    next_due,
    schedule_states,
    shortest_gap_days,
    window_of,
    windows,
)

STUDY = load_study()
SCHEDULE = STUDY.schedule
CODES = [v.code for v in SCHEDULE.visits()]
DAY_ONE = date(2031, 1, 6)
PROPERTY = settings(max_examples=200, deadline=None)

day_ones = st.integers(-3000, 3000).map(lambda d: DAY_ONE + timedelta(days=d))
recorded = st.sets(st.sampled_from(CODES[1:]))


def _valid(interval: int, before: int, after: int) -> bool:
    return before + after < interval * 7


@st.composite
def valid_schedules(draw: st.DrawFn) -> Schedule:
    interval = draw(st.integers(1, 8))
    before = draw(st.integers(0, interval * 7 - 1))
    after = draw(st.integers(0, interval * 7 - 1 - before))
    return Schedule(
        visit_interval_weeks=interval,
        last_week=interval * draw(st.integers(0, 14)),
        window_days_before=before,
        window_days_after=after,
    )


def test_the_imc002_defaults_are_three_days_either_side() -> None:
    w8 = window_of(SCHEDULE, day_one=DAY_ONE, code="W8")
    assert w8.target == DAY_ONE + timedelta(days=56)
    assert (w8.opens, w8.closes) == (w8.target - timedelta(3), w8.target + timedelta(3))
    d1 = window_of(SCHEDULE, day_one=DAY_ONE, code="D1")
    assert d1.opens == d1.target == d1.closes == DAY_ONE


@given(valid_schedules(), day_ones)
@PROPERTY
def test_windows_never_overlap_and_hold_their_target(schedule: Schedule, day_one: date) -> None:
    found = windows(schedule, day_one)
    for earlier, later in itertools.pairwise(found):
        assert earlier.closes < later.opens
    for window in found:
        assert window.opens <= window.target <= window.closes
        assert window.target == day_one + timedelta(days=window.visit.day_offset)


@given(st.integers(1, 8), st.integers(0, 60), st.integers(0, 60))
@PROPERTY
def test_the_definition_refuses_windows_that_would_overlap(
    interval: int, before: int, after: int
) -> None:
    data = STUDY.model_dump(mode="json")
    data["schedule"] = {
        "visit_interval_weeks": interval,
        "last_week": interval * 12,
        "window_days_before": before,
        "window_days_after": after,
    }
    if _valid(interval, before, after):
        assert parse_study(data).schedule.window_days_after == after
    else:
        with pytest.raises(StudyDefinitionError, match="never overlap"):
            parse_study(data)


@given(day_ones, recorded, recorded, st.integers(-10, 400))
@PROPERTY
def test_a_missed_visit_never_moves_later_targets(
    day_one: date, dispensed: set[str], missed: set[str], today_offset: int
) -> None:
    missed -= dispensed
    today = day_one + timedelta(days=today_offset)
    plain = schedule_states(SCHEDULE, day_one=day_one, dispensed=set(), missed=set(), today=today)
    lived = schedule_states(
        SCHEDULE, day_one=day_one, dispensed=dispensed, missed=missed, today=today
    )
    assert [s.window for s in plain] == [s.window for s in lived]


@given(day_ones, recorded, recorded, st.integers(-10, 400))
@PROPERTY
def test_states_follow_the_record_and_the_calendar(
    day_one: date, dispensed: set[str], missed: set[str], today_offset: int
) -> None:
    missed -= dispensed
    today = day_one + timedelta(days=today_offset)
    states = schedule_states(
        SCHEDULE, day_one=day_one, dispensed=dispensed | {"D1"}, missed=missed, today=today
    )
    last = max(CODES.index(c) for c in dispensed | missed | {"D1"})
    due = [s for s in states if s.state == VisitState.DUE]
    assert len(due) <= 1  # windows never overlap: one visit due at a time at most
    for index, item in enumerate(states):
        code, window = item.window.visit.code, item.window
        if code in dispensed | {"D1"}:
            assert item.state == VisitState.DISPENSED
        elif code in missed:
            assert item.state == VisitState.MISSED
        elif index < last or today > window.closes:
            assert item.state == VisitState.OVERDUE
        else:
            assert item.state == (VisitState.DUE if window.contains(today) else VisitState.UPCOMING)
    offered = next_due(states)
    after = states[last + 1 :]
    if offered is None:
        assert not after
        return
    assert CODES.index(offered.window.visit.code) > last
    if any(s.state == VisitState.DUE for s in after):
        assert offered.state == VisitState.DUE  # the visit due today comes first
    elif any(s.state == VisitState.OVERDUE for s in after):
        assert offered == next(s for s in after if s.state == VisitState.OVERDUE)
    else:
        assert offered == after[0]


@given(day_ones, st.sampled_from(CODES[1:]), st.integers(-20, 20))
@PROPERTY
def test_an_override_is_needed_exactly_outside_the_window(
    day_one: date, code: str, offset: int
) -> None:
    window = window_of(SCHEDULE, day_one=day_one, code=code)
    day = window.target + timedelta(days=offset)
    assert needs_override(window, day) == (abs(offset) > 3)


def test_the_refusal_names_the_window_dates() -> None:
    window = window_of(SCHEDULE, day_one=DAY_ONE, code="W8")
    refusal = VisitOutOfWindow(window, window.closes + timedelta(days=3))
    assert refusal.code == "visit_out_of_window"
    assert window.opens.strftime("%d-%b-%Y") in refusal.detail  # as the pages show dates
    assert window.closes.strftime("%d-%b-%Y") in refusal.detail
    assert refusal.extra["target_date"] == window.target.isoformat()


def test_next_due_skips_a_visit_whose_window_closed() -> None:
    today = DAY_ONE + timedelta(days=58)  # W4's window closed, W8's is open
    states = schedule_states(SCHEDULE, day_one=DAY_ONE, dispensed={"D1"}, missed=set(), today=today)
    by_code = {s.window.visit.code: s.state for s in states}
    assert by_code["W4"] == VisitState.OVERDUE and by_code["W8"] == VisitState.DUE
    offered = next_due(states)
    assert offered is not None and offered.window.visit.code == "W8"


def test_a_late_visit_is_offered_under_its_own_name_before_the_next_window_opens() -> None:
    today = DAY_ONE + timedelta(days=40)  # W4's window closed, W8's not open yet
    states = schedule_states(SCHEDULE, day_one=DAY_ONE, dispensed={"D1"}, missed=set(), today=today)
    offered = next_due(states)
    assert offered is not None and offered.window.visit.code == "W4"


def test_the_shortest_gap_is_the_interval_less_both_windows() -> None:
    assert (
        shortest_gap_days(SCHEDULE) == 28 - SCHEDULE.window_days_before - SCHEDULE.window_days_after
    )
