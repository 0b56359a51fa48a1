"""select_kits: only usable kits of the asked content, first expiry first, ties at random."""

from __future__ import annotations

import random
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.kits import KitCandidate, select_kits

BASE = date(2030, 1, 1)
CONTENTS = ("IMC002", "PLACEBO")


@st.composite
def kit_pools(draw: st.DrawFn) -> list[KitCandidate]:
    """Kits with unique numbers, two contents and expiry dates close together (many ties)."""
    numbers = draw(
        st.lists(
            st.text("ACDEFGHJK3479", min_size=1, max_size=6), unique=True, min_size=0, max_size=25
        )
    )
    return [
        KitCandidate(
            number,
            draw(st.sampled_from(CONTENTS)),
            BASE + timedelta(days=draw(st.integers(0, 40))),
        )
        for number in numbers
    ]


def eligible(pool: list[KitCandidate], content: str, day: date, window: int) -> list[KitCandidate]:
    horizon = day + timedelta(days=window)
    return [k for k in pool if k.content == content and k.expiry_date > horizon]


selection_args = st.tuples(
    kit_pools(),
    st.sampled_from(CONTENTS),
    st.integers(0, 12),  # count
    st.integers(-5, 25).map(lambda d: BASE + timedelta(days=d)),  # day
    st.integers(0, 15),  # window days
    st.integers(0, 2**32),  # rng seed
)

PROPERTY = settings(max_examples=300, deadline=None)


@PROPERTY
@given(selection_args)
def test_only_the_asked_content_and_only_usable_kits(args: tuple) -> None:
    pool, content, count, day, window, seed = args
    chosen = select_kits(pool, content, count, day, window, random.Random(seed))
    for kit in chosen or []:
        assert kit.content == content
        assert kit.expiry_date > day + timedelta(days=window)
        assert kit in pool


@PROPERTY
@given(selection_args)
def test_exactly_count_or_none_when_too_few(args: tuple) -> None:
    pool, content, count, day, window, seed = args
    chosen = select_kits(pool, content, count, day, window, random.Random(seed))
    enough = len(eligible(pool, content, day, window)) >= count
    if enough:
        assert chosen is not None
        assert len(chosen) == count
    else:
        assert chosen is None


@PROPERTY
@given(selection_args)
def test_no_duplicates(args: tuple) -> None:
    pool, content, count, day, window, seed = args
    chosen = select_kits(pool, content, count, day, window, random.Random(seed)) or []
    numbers = [k.kit_number for k in chosen]
    assert len(numbers) == len(set(numbers))


@PROPERTY
@given(selection_args)
def test_first_expiry_first(args: tuple) -> None:
    pool, content, count, day, window, seed = args
    chosen = select_kits(pool, content, count, day, window, random.Random(seed)) or []
    if not chosen:
        return
    chosen_numbers = {k.kit_number for k in chosen}
    latest_chosen = max(k.expiry_date for k in chosen)
    for kit in eligible(pool, content, day, window):
        if kit.kit_number not in chosen_numbers:
            assert kit.expiry_date >= latest_chosen, (kit, chosen)


@PROPERTY
@given(selection_args, st.randoms(use_true_random=False))
def test_order_of_candidates_does_not_matter(args: tuple, shuffler: random.Random) -> None:
    """The same seed picks the same kits whatever order the database returned them in."""
    pool, content, count, day, window, seed = args
    reordered = list(pool)
    shuffler.shuffle(reordered)
    first = select_kits(pool, content, count, day, window, random.Random(seed))
    second = select_kits(reordered, content, count, day, window, random.Random(seed))
    assert first == second


def test_does_not_mutate_the_candidates() -> None:
    pool = [KitCandidate(f"K{i}", "IMC002", BASE + timedelta(days=60)) for i in range(8)]
    before = list(pool)
    select_kits(pool, "IMC002", 3, BASE, 30, random.Random(1))
    assert pool == before


def test_expiry_exactly_at_day_plus_window_is_not_usable() -> None:
    day, window = BASE, 30
    on_edge = KitCandidate("EDGE", "IMC002", day + timedelta(days=window))
    one_later = KitCandidate("LATER", "IMC002", day + timedelta(days=window + 1))
    assert select_kits([on_edge], "IMC002", 1, day, window, random.Random(0)) is None
    assert select_kits([on_edge, one_later], "IMC002", 1, day, window, random.Random(0)) == [
        one_later
    ]


def test_earlier_expiry_always_taken_before_a_tie_group() -> None:
    early = [KitCandidate(f"E{i}", "PLACEBO", BASE + timedelta(days=40)) for i in range(2)]
    tie = [KitCandidate(f"T{i}", "PLACEBO", BASE + timedelta(days=90)) for i in range(6)]
    for seed in range(50):
        chosen = select_kits(tie + early, "PLACEBO", 4, BASE, 30, random.Random(seed))
        assert chosen is not None
        assert set(early) <= set(chosen)
        assert len(set(chosen) & set(tie)) == 2


def test_ties_are_broken_at_random() -> None:
    """Over fixed seeds, a tie group yields several distinct choices (and each kit is chosen
    sometimes), yet one seed always gives the same choice."""
    tie = [KitCandidate(f"K{i:02d}", "IMC002", BASE + timedelta(days=100)) for i in range(10)]
    choices = []
    for seed in range(200):
        chosen = select_kits(tie, "IMC002", 2, BASE, 30, random.Random(seed))
        assert chosen is not None
        choices.append(frozenset(k.kit_number for k in chosen))
    assert len(set(choices)) > 1
    assert len(set(choices)) >= 20  # 45 possible pairs; a fair shuffle reaches most of them
    picked = set().union(*choices)
    assert picked == {k.kit_number for k in tie}
    again = select_kits(tie, "IMC002", 2, BASE, 30, random.Random(7))
    assert again == select_kits(tie, "IMC002", 2, BASE, 30, random.Random(7))


def test_single_kit_from_a_tie_is_not_always_the_first_by_number() -> None:
    tie = [KitCandidate(n, "IMC002", BASE + timedelta(days=100)) for n in ("AAA", "CCC", "DDD")]
    firsts = {
        select_kits(tie, "IMC002", 1, BASE, 30, random.Random(seed))[0].kit_number  # type: ignore[index]
        for seed in range(60)
    }
    assert firsts == {"AAA", "CCC", "DDD"}
