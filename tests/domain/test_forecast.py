"""The forecast: pending visits of subjects on treatment, and subjects still to come."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.forecast import (
    DueCalendar,
    Enrolment,
    OnTreatment,
    enrolment_need,
    pending_visits,
    places_shares,
    site_need,
    subject_need,
)
from app.domain.study import Visit, load_study

STUDY = load_study()
VISITS = STUDY.schedule.visits()
CONTENTS = STUDY.contents
TODAY = date(2031, 3, 15)
PROPERTY = settings(max_examples=150, deadline=None)

subjects = st.lists(
    st.builds(
        OnTreatment,
        content=st.sampled_from(CONTENTS),
        day_one=st.integers(-400, 30).map(lambda d: TODAY + timedelta(days=d)),
        next_index=st.integers(1, 13),
        vials=st.integers(1, 4),
    ),
    max_size=25,
)


@PROPERTY
@given(subjects, st.integers(0, 120))
def test_calendar_and_direct_count_agree(on: list[OnTreatment], horizon: int) -> None:
    """The simulator's calendar and the service's direct count are one rule."""
    calendar = DueCalendar(CONTENTS, TODAY - timedelta(days=500), 1500)
    for subject in on:
        for due, vials in pending_visits(subject, VISITS):
            calendar.add(subject.content, due, vials)
    direct = subject_need(on, visits=VISITS, today=TODAY, horizon_days=horizon)
    for content in CONTENTS:
        assert calendar.need(content, TODAY + timedelta(days=horizon)) == direct.get(content, 0)
    # every content at once, as the simulator's resupply check asks
    until = TODAY + timedelta(days=horizon)
    assert calendar.needs(until) == tuple(direct.get(c, 0) for c in CONTENTS)
    assert calendar.needs(TODAY - timedelta(days=501)) == (0,) * len(CONTENTS)


@PROPERTY
@given(subjects, st.integers(1, 600), st.integers(0, 25))
def test_total_is_the_need_at_the_calendar_end(
    on: list[OnTreatment], days: int, removed: int
) -> None:
    """`total` (kept as visits come and go) counts what `need` counts at the far end, visits
    past the calendar's end left out."""
    calendar = DueCalendar(CONTENTS, TODAY - timedelta(days=500), days)
    for subject in on:
        for due, vials in pending_visits(subject, VISITS):
            calendar.add(subject.content, due, vials)
    for subject in on[:removed]:
        for due, vials in pending_visits(subject, VISITS):
            calendar.add(subject.content, due, -vials)
    for content in CONTENTS:
        assert calendar.total(content) == calendar.need(content, TODAY + timedelta(days=3000))
    assert calendar.pending() == any(calendar.total(c) for c in CONTENTS)


@PROPERTY
@given(subjects, st.integers(0, 60), st.integers(0, 6))
def test_next_due_after_is_the_day_the_need_grows(
    on: list[OnTreatment], offset: int, beyond: int
) -> None:
    calendar = DueCalendar(CONTENTS, TODAY - timedelta(days=500), 1500)
    for subject in on:
        for due, vials in pending_visits(subject, VISITS):
            calendar.add(subject.content, due, vials)
    day = TODAY + timedelta(days=offset)
    for content in CONTENTS:
        now = calendar.need(content, day)
        nxt = calendar.next_due_after(content, day, beyond)
        if nxt is None:
            assert calendar.need(content, day + timedelta(days=999)) <= now + beyond
            continue
        assert nxt > day
        assert calendar.need(content, nxt) > now + beyond
        assert calendar.need(content, nxt - timedelta(days=1)) <= now + beyond


@PROPERTY
@given(subjects, st.integers(-5, 80))
def test_first_over_is_the_day_the_need_passes_a_count(on: list[OnTreatment], vials: int) -> None:
    start = TODAY - timedelta(days=500)
    calendar = DueCalendar(CONTENTS, start, 1500)
    for subject in on:
        for due, n in pending_visits(subject, VISITS):
            calendar.add(subject.content, due, n)
    for content in CONTENTS:
        first = calendar.first_over(content, vials)
        if first is None:
            assert calendar.need(content, start + timedelta(days=1500)) <= vials
            continue
        assert calendar.need(content, first) > vials
        assert first == start or calendar.need(content, first - timedelta(days=1)) <= vials


def test_overdue_visits_count_and_later_ones_wait() -> None:
    subject = OnTreatment(CONTENTS[0], TODAY - timedelta(days=30), 1, 2)  # W4 two days overdue
    assert subject_need([subject], visits=VISITS, today=TODAY, horizon_days=0) == {CONTENTS[0]: 2}
    assert subject_need([subject], visits=VISITS, today=TODAY, horizon_days=25) == {CONTENTS[0]: 2}
    assert subject_need([subject], visits=VISITS, today=TODAY, horizon_days=26) == {
        CONTENTS[0]: 4
    }  # W8 on day 26
    finished = OnTreatment(CONTENTS[0], TODAY - timedelta(days=400), 13, 2)
    assert subject_need([finished], visits=VISITS, today=TODAY, horizon_days=365) == {}


def test_subjects_to_come_split_by_the_ratio_and_capped_by_the_places() -> None:
    enrolment = Enrolment(
        subjects_per_week=1.0, places_left=8, ratio={"A": 3, "B": 1}, vials_per_subject=2
    )
    need = enrolment_need(enrolment, VISITS, 28)
    # 4 subjects arriving over 4 weeks, each its day-1 visit (W4 falls inside only at day 0)
    assert need == pytest.approx({"A": 3 * 2.0, "B": 1 * 2.0})
    capped = enrolment_need(Enrolment(10.0, 2, {"A": 1, "B": 1}, 1), VISITS, 28)
    assert capped == pytest.approx({"A": 1.0, "B": 1.0})
    assert enrolment_need(Enrolment(1.0, 0, {"A": 1}, 1), VISITS, 28) == {}
    assert site_need(
        [], enrolment=enrolment, visits=VISITS, contents=("A", "B"), today=TODAY, horizon_days=28
    ) == {"A": 6, "B": 2}


@PROPERTY
@given(
    st.lists(st.tuples(st.integers(0, 200), st.sampled_from([(3, 1), (1, 1), (2, 1)])), max_size=5)
)
def test_places_shares_weigh_each_stage_by_its_places(
    stages: list[tuple[int, tuple[int, int]]],
) -> None:
    rows = [(places, {"A": a, "B": b}) for places, (a, b) in stages]
    shares = places_shares(rows)
    total = sum(places for places, _ in rows)
    if total == 0:
        assert all(v == 0 for v in shares.values())
        return
    assert sum(shares.values()) == pytest.approx(1.0)
    expected_a = sum(places * r["A"] / (r["A"] + r["B"]) for places, r in rows) / total
    assert shares["A"] == pytest.approx(expected_a)


def test_imc002_places_lean_only_slightly_to_the_active_arm() -> None:
    """Three 3:1 cohorts of 8 and a 1:1 phase II of 194: 115 : 103."""
    rows = [(s.cap, dict(s.allocation.ratio)) for s in STUDY.scopes()]
    shares = places_shares(rows)
    assert shares[STUDY.active_arm.code] == pytest.approx(115 / 218)


@PROPERTY
@given(
    subjects=subjects,
    offsets=st.lists(st.integers(0, 400), min_size=1, max_size=16),
    horizon=st.integers(0, 200),
    in_order=st.booleans(),
)
def test_the_bisected_need_is_the_walked_need(
    subjects: list[OnTreatment], offsets: list[int], horizon: int, in_order: bool
) -> None:
    """Counting a subject's due visits by bisection gives what walking its pending visits gives,
    for schedules in day order; any other schedule is walked."""
    days = sorted(offsets) if in_order else offsets
    visits = [Visit(code=f"V{i}", index=i, day_offset=d) for i, d in enumerate(days)]
    walked: dict[str, int] = {}
    for subject in subjects:
        for due, vials in pending_visits(subject, visits):
            if due > TODAY + timedelta(days=horizon):
                break
            walked[subject.content] = walked.get(subject.content, 0) + vials
    assert subject_need(subjects, visits=visits, today=TODAY, horizon_days=horizon) == walked
