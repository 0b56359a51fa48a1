"""Resupply rules: when a shipment is due, how many kits of each content, which depot dates."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.resupply import (
    Levels,
    Position,
    depot_shippable,
    need_shares,
    order_quantities,
    pick_depot_dates,
    plan,
    plan_in_shares,
    safety_levels,
    shipment_due,
    split,
)
from app.domain.study import load_study

STUDY = load_study()
CONTENTS = STUDY.contents
PROPERTY = settings(max_examples=200, deadline=None)
DAY = date(2031, 3, 15)

positions = st.builds(
    lambda stock, transit, lead, more: Position(stock, transit, lead, lead + more),
    st.integers(0, 60),
    st.integers(0, 30),
    st.integers(0, 20),
    st.integers(0, 40),
)
"""Need over the cover includes the need within the lead time."""


@st.composite
def site_levels(draw: st.DrawFn) -> Levels:
    trigger = draw(st.integers(0, 10))
    return Levels(trigger, draw(st.integers(trigger, 30)), draw(st.integers(0, 14)), 42)


@PROPERTY
@given(st.integers(0, 200), st.lists(st.floats(0.01, 1), min_size=2, max_size=2))
def test_split_is_fair_to_every_content(total: int, weights: list[float]) -> None:
    shares = {"A": weights[0] / sum(weights), "B": weights[1] / sum(weights)}
    parts = split(total, shares)
    assert abs(sum(parts.values()) - total) <= 1
    for content, share in shares.items():
        assert abs(parts[content] - total * share) <= 0.5
    swapped = split(total, {"A": shares["B"], "B": shares["A"]})
    assert (swapped["A"], swapped["B"]) == (parts["B"], parts["A"])


@PROPERTY
@given(positions, positions, site_levels(), st.integers(0, 4))
def test_order_brings_every_content_to_its_target(
    a: Position, b: Position, levels: Levels, floor: int
) -> None:
    state = dict(zip(CONTENTS, (a, b), strict=True))
    quantities = order_quantities(state, levels, floor)
    assert bool(quantities) == shipment_due(state, levels, floor)
    if not quantities:
        return
    safety = safety_levels(state, levels, floor)
    assert set(quantities) == set(CONTENTS)
    for content, p in state.items():
        assert quantities[content] >= 1, "never a shipment without one of the contents"
        after = p.stock + p.in_transit + quantities[content]
        assert after - p.need_lead >= safety[content], "the shipment clears the safety level"
        assert after >= p.need_cover + safety[content]


@PROPERTY
@given(positions, positions, site_levels(), st.integers(0, 4))
def test_plan_in_shares_decides_as_plan(
    a: Position, b: Position, levels: Levels, floor: int
) -> None:
    """The variant the simulator calls, given the shares `plan` splits in, is `plan`."""
    state = dict(zip(CONTENTS, (a, b), strict=True))
    shares = need_shares({c: p.need_cover for c, p in state.items()}, floor)
    assert plan_in_shares(state, levels, floor, shares) == plan(state, levels, floor)


@PROPERTY
@given(
    st.lists(st.integers(0, 6), min_size=2, max_size=2),
    st.integers(0, 40),
    st.integers(0, 10),
    site_levels(),
)
def test_shipment_size_does_not_follow_the_arms(
    visits: list[int], stock_each: int, transit: int, levels: Levels
) -> None:
    """Two sites alike but for which arm their subjects are on: the same total is ordered
    whenever no content is over its target (the clipping the simulator measures)."""
    need_a, need_b = (v * 2 for v in visits)
    one = {
        CONTENTS[0]: Position(stock_each, transit, need_a // 2, need_a),
        CONTENTS[1]: Position(stock_each, transit, need_b // 2, need_b),
    }
    swapped = {
        CONTENTS[0]: Position(stock_each, transit, need_b // 2, need_b),
        CONTENTS[1]: Position(stock_each, transit, need_a // 2, need_a),
    }
    first, second = order_quantities(one, levels, 0), order_quantities(swapped, levels, 0)
    assert bool(first) == bool(second)
    if first and min(first.values()) > 1 and min(second.values()) > 1:
        assert sum(first.values()) == sum(second.values())


def test_order_examples() -> None:
    levels = Levels(trigger=2, target=6, lead_days=7, cover_days=42)
    idle = {c: Position(20, 0, 2, 8) for c in CONTENTS}
    assert order_quantities(idle, levels, floor=2) == {}
    # one content short: every content comes, in the shares of the need (3:1 here)
    short = {CONTENTS[0]: Position(3, 0, 3, 12), CONTENTS[1]: Position(3, 0, 1, 4)}
    quantities = order_quantities(short, levels, floor=2)
    # shares of need, each padded by one heaviest visit (2): 14:6. Buffers: 12 kits -> 8 and 4;
    # safety: trigger 4 -> 3 and 1, at least the floor 2 -> 3 and 2
    assert quantities == {CONTENTS[0]: 12 + 8 - 3, CONTENTS[1]: 4 + 4 - 3}


def test_floor_is_a_heaviest_visit_of_each_content() -> None:
    levels = Levels(trigger=0, target=0, lead_days=7, cover_days=0)
    holding = {c: Position(3, 0, 0, 0) for c in CONTENTS}
    assert not shipment_due(holding, levels, floor=3)
    assert shipment_due(holding, levels, floor=4)


dates = st.sampled_from([DAY + timedelta(days=30 * i) for i in range(5)])
depots = st.dictionaries(
    st.sampled_from(CONTENTS), st.dictionaries(dates, st.integers(0, 20), max_size=5)
)


@PROPERTY
@given(depots, st.integers(0, 30), st.integers(0, 30))
def test_depot_picks_dates_that_hold_every_content(
    depot: dict[str, dict[date, int]], qa: int, qb: int
) -> None:
    quantities = dict(zip(CONTENTS, (qa, qb), strict=True))
    wanted = [c for c in CONTENTS if quantities[c]]
    picked, short = pick_depot_dates(depot, quantities, CONTENTS)
    matched = {
        d
        for d in {x for row in depot.values() for x in row}
        if all(depot.get(c, {}).get(d, 0) > 0 for c in CONTENTS)
    }
    for content in CONTENTS:
        taken = picked[content]
        assert set(taken) <= matched
        for day, n in taken.items():
            assert 0 < n <= depot[content][day]
        assert sum(taken.values()) + short.get(content, 0) == quantities[content]
        assert sum(taken.values()) <= depot_shippable(depot, CONTENTS)[content]
    days = sorted({d for c in CONTENTS for d in picked[c]})
    for day in days:
        # up to every date, each content has had the same fraction of its quantity (within
        # half a kit each): a date's kits arrive in the shares of the shipment
        done = [sum(n for d, n in picked[c].items() if d <= day) / quantities[c] for c in wanted]
        assert max(done) - min(done) <= sum(1 / (2 * quantities[c]) for c in wanted) + 1e-9
    # earliest first: a date earlier than the last picked, or any date when the depot falls
    # short, gives up everything one of the contents holds there
    for day in sorted(matched):
        if (days and day < days[-1]) or short:
            assert any(picked[c][day] == depot[c][day] for c in wanted)


def test_depot_ships_a_date_in_the_shares_of_the_shipment() -> None:
    """The depot's stock of a date is lopsided (IMC-002 runs faster at 3:1): the earliest date
    gives both contents the same fraction of their quantities, not all it holds of one."""
    early, late = DAY, DAY + timedelta(days=180)
    active, placebo = CONTENTS
    depot = {active: {early: 27, late: 500}, placebo: {early: 500, late: 1}}
    picked, short = pick_depot_dates(depot, {active: 93, placebo: 80}, CONTENTS)
    assert picked[active] == Counter({early: 27, late: 1})
    assert picked[placebo] == Counter({early: 23, late: 1})
    assert short == {active: 65, placebo: 56}


def test_depot_skips_a_date_one_content_lacks() -> None:
    early, late = DAY, DAY + timedelta(days=90)
    depot = {CONTENTS[0]: {early: 5, late: 5}, CONTENTS[1]: {late: 5}}
    picked, short = pick_depot_dates(depot, dict.fromkeys(CONTENTS, 3), CONTENTS)
    assert picked == {c: Counter({late: 3}) for c in CONTENTS}
    assert short == {}
