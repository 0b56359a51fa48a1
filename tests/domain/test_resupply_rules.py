"""Resupply rules: how many kits to ship, which visits count as need, the visit schedule."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.resupply import Stock, next_visit, predicted_need, resupply_quantity
from app.domain.study import Schedule, load_study

STUDY = load_study()
SCHEDULE = STUDY.schedule
TODAY = date(2031, 3, 15)
PROPERTY = settings(max_examples=200, deadline=None)

stocks = st.builds(
    Stock,
    available=st.integers(0, 50),
    in_transit=st.integers(0, 50),
    predicted_need=st.integers(0, 50),
)


@st.composite
def levels(draw: st.DrawFn) -> tuple[int, int]:
    trigger = draw(st.integers(0, 30))
    return trigger, draw(st.integers(trigger + 1, trigger + 30))


# --- resupply_quantity --------------------------------------------------------------------


@PROPERTY
@given(stocks)
def test_effective_stock(stock: Stock) -> None:
    assert stock.effective == stock.available + stock.in_transit - stock.predicted_need


@PROPERTY
@given(stocks, levels())
def test_quantity(stock: Stock, trigger_target: tuple[int, int]) -> None:
    trigger, target = trigger_target
    quantity = resupply_quantity(stock, trigger, target)
    if stock.effective >= trigger:
        assert quantity == 0
    else:
        assert quantity == target - stock.effective
        assert quantity > 0
        assert stock.effective + quantity == target


@PROPERTY
@given(levels())
def test_quantity_at_the_trigger_edge(trigger_target: tuple[int, int]) -> None:
    trigger, target = trigger_target
    assert resupply_quantity(Stock(trigger, 0, 0), trigger, target) == 0
    if trigger > 0:
        assert resupply_quantity(Stock(trigger - 1, 0, 0), trigger, target) == target - trigger + 1


def test_study_levels_example() -> None:
    trigger, target = STUDY.supply.resupply_trigger, STUDY.supply.resupply_target
    assert (trigger, target) == (2, 6)
    assert resupply_quantity(Stock(2, 0, 0), trigger, target) == 0
    assert resupply_quantity(Stock(1, 0, 0), trigger, target) == 5
    assert resupply_quantity(Stock(1, 1, 0), trigger, target) == 0
    assert resupply_quantity(Stock(3, 0, 2), trigger, target) == 5
    assert resupply_quantity(Stock(0, 0, 3), trigger, target) == 9


# --- predicted_need -----------------------------------------------------------------------

dues = st.lists(st.tuples(st.integers(-60, 60), st.integers(1, 4)), max_size=20)


@PROPERTY
@given(dues, st.integers(0, 30))
def test_predicted_need_counts_due_by_the_horizon(
    raw: list[tuple[int, int]], lead_days: int
) -> None:
    due = [(TODAY + timedelta(days=offset), vials) for offset, vials in raw]
    expected = sum(vials for offset, vials in raw if offset <= lead_days)
    assert predicted_need(due, TODAY, lead_days) == expected


def test_predicted_need_edges() -> None:
    lead = 7
    overdue = (TODAY - timedelta(days=20), 2)
    today_due = (TODAY, 1)
    on_horizon = (TODAY + timedelta(days=lead), 3)
    after_horizon = (TODAY + timedelta(days=lead + 1), 5)
    assert predicted_need([overdue], TODAY, lead) == 2
    assert predicted_need([today_due], TODAY, lead) == 1
    assert predicted_need([on_horizon], TODAY, lead) == 3
    assert predicted_need([after_horizon], TODAY, lead) == 0
    assert predicted_need([overdue, today_due, on_horizon, after_horizon], TODAY, lead) == 6
    assert predicted_need([], TODAY, lead) == 0
    assert predicted_need(iter([overdue, after_horizon]), TODAY, lead) == 2


# --- next_visit ---------------------------------------------------------------------------

IMC002_VISITS = ["D1", *(f"W{w}" for w in range(4, 49, 4))]


def test_imc002_schedule_has_13_visits() -> None:
    visits = SCHEDULE.visits()
    assert [v.code for v in visits] == IMC002_VISITS
    assert len(visits) == 13
    assert [v.index for v in visits] == list(range(13))
    assert [v.day_offset for v in visits] == [28 * i for i in range(13)]


def test_next_visit_walks_the_whole_schedule() -> None:
    day_one = date(2031, 1, 6)
    walked = []
    last = -1
    while (upcoming := next_visit(SCHEDULE, day_one, last)) is not None:
        visit, due = upcoming
        assert visit.index == last + 1
        assert due == day_one + timedelta(days=visit.day_offset)
        walked.append((visit.code, due))
        last = visit.index
    assert [code for code, _ in walked] == IMC002_VISITS
    assert walked[0] == ("D1", day_one)
    assert walked[1] == ("W4", day_one + timedelta(weeks=4))
    assert walked[-1] == ("W48", day_one + timedelta(weeks=48))
    assert last == 12


@pytest.mark.parametrize("last_index", [12, 13, 50])
def test_no_visit_after_w48(last_index: int) -> None:
    assert next_visit(SCHEDULE, date(2031, 1, 6), last_index) is None


@pytest.mark.parametrize(
    ("last_index", "code", "weeks"), [(-1, "D1", 0), (0, "W4", 4), (5, "W24", 24), (11, "W48", 48)]
)
def test_next_visit_examples(last_index: int, code: str, weeks: int) -> None:
    day_one = date(2031, 12, 20)
    visit, due = next_visit(SCHEDULE, day_one, last_index)  # type: ignore[misc]
    assert visit.code == code
    assert due == day_one + timedelta(weeks=weeks)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 8).flatmap(lambda i: st.tuples(st.just(i), st.integers(0, 6))))
def test_next_visit_on_other_schedules(interval_and_count: tuple[int, int]) -> None:
    interval, count = interval_and_count
    schedule = Schedule(visit_interval_weeks=interval, last_week=interval * count)
    day_one = date(2030, 5, 1)
    codes = []
    last = -1
    while (upcoming := next_visit(schedule, day_one, last)) is not None:
        codes.append(upcoming[0].code)
        last = upcoming[0].index
    assert codes == ["D1", *(f"W{interval * k}" for k in range(1, count + 1))]
