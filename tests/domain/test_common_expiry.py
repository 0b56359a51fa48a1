"""The common-tier rule: whatever the subject's arm, the same tiers, or the same refusal."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.common_expiry import choose_kits, common_tiers, tally, usable_stock
from app.domain.kits import KitCandidate
from app.domain.study import load_study
from tests.support.shelves import choose

CONTENTS = load_study().contents
DAY = date(2031, 3, 15)
WINDOW = 30
PROPERTY = settings(max_examples=300, deadline=None)


@st.composite
def shelves(draw: st.DrawFn) -> list[KitCandidate]:
    """A site's kits: a few expiry dates (some inside the window) and shipments, both contents."""
    kits = []
    for i in range(draw(st.integers(0, 30))):
        content = draw(st.sampled_from(CONTENTS))
        expiry = DAY + timedelta(days=draw(st.sampled_from([10, 31, 60, 200, 400])))
        shipment = draw(st.integers(1, 4))
        kits.append(KitCandidate(f"K{i:04d}", content, expiry, shipment))
    return kits


@PROPERTY
@given(shelves(), st.integers(0, 4), st.integers(0, 5), st.integers(0, 2**32))
def test_both_arms_get_the_same_tiers_or_the_same_refusal(
    kits: list[KitCandidate], vials: int, must_hold: int, seed: int
) -> None:
    chosen = {
        content: choose(kits, content=content, vials=vials, seed=seed, must_hold=must_hold)
        for content in CONTENTS
    }
    outcomes = {c: k is None for c, k in chosen.items()}
    assert len(set(outcomes.values())) == 1, "refused for one arm and served for the other"
    served = [k for k in chosen.values() if k is not None]
    if not served:
        return
    tiers = [Counter((k.expiry_date, k.shipment) for k in handed) for handed in served]
    assert all(t == tiers[0] for t in tiers), "the tiers handed out follow the arm"
    for content, handed in chosen.items():
        assert handed is not None and len(handed) == vials
        assert {k.content for k in handed} <= {content}
        assert len({k.kit_number for k in handed}) == vials
        assert all(k.expiry_date > DAY + timedelta(days=WINDOW) for k in handed)


@PROPERTY
@given(shelves(), st.integers(1, 6))
def test_earliest_common_tiers_first(kits: list[KitCandidate], vials: int) -> None:
    shelf = tally(kits, DAY, WINDOW)
    tiers = common_tiers(shelf, CONTENTS, vials)
    common = sorted(
        t for t in shelf.get(CONTENTS[0], {}) if all(shelf.get(c, {}).get(t, 0) for c in CONTENTS)
    )
    capacity = sum(min(shelf[c][t] for c in CONTENTS) for t in common)
    if capacity < vials:
        assert tiers is None
        return
    assert tiers is not None and tiers == sorted(tiers)
    # every tier before the last one used is used to the full
    for tier in common:
        if tier < tiers[-1]:
            assert tiers.count(tier) == min(shelf[c][tier] for c in CONTENTS)


def test_a_tier_one_content_lacks_is_never_used() -> None:
    early = DAY + timedelta(days=100)
    late = DAY + timedelta(days=300)
    kits = [
        KitCandidate("A1", CONTENTS[0], early, 1),
        KitCandidate("A2", CONTENTS[0], early, 1),
        KitCandidate("A3", CONTENTS[0], late, 2),
        KitCandidate("P1", CONTENTS[1], late, 2),
    ]
    for content in CONTENTS:
        got = choose_kits(
            kits,
            contents=CONTENTS,
            content=content,
            vials=1,
            day=DAY,
            window_days=WINDOW,
            rng=random.Random(1),
        )
        assert got is not None and [(k.expiry_date, k.shipment) for k in got] == [(late, 2)]
    # two vials: the late tier offers one, the early tier none: refused for both arms alike
    for content in CONTENTS:
        assert (
            choose_kits(
                kits,
                contents=CONTENTS,
                content=content,
                vials=2,
                day=DAY,
                window_days=WINDOW,
                rng=random.Random(1),
            )
            is None
        )
    shelf = tally(kits, DAY, WINDOW)
    assert usable_stock(
        shelf, contents=CONTENTS, shares=dict.fromkeys(CONTENTS, 0.5)
    ) == dict.fromkeys(CONTENTS, 1)


def test_randomization_needs_a_heaviest_visit_of_every_content() -> None:
    expiry = DAY + timedelta(days=200)
    kits = [KitCandidate(f"A{i}", CONTENTS[0], expiry, 1) for i in range(5)] + [
        KitCandidate(f"P{i}", CONTENTS[1], expiry, 1) for i in range(2)
    ]
    for content in CONTENTS:
        assert choose_kits(
            kits,
            contents=CONTENTS,
            content=content,
            vials=1,
            day=DAY,
            window_days=WINDOW,
            rng=random.Random(0),
            must_hold=2,
        )
        assert (
            choose_kits(
                kits,
                contents=CONTENTS,
                content=content,
                vials=1,
                day=DAY,
                window_days=WINDOW,
                rng=random.Random(0),
                must_hold=3,
            )
            is None
        )


@PROPERTY
@given(shelves(), st.floats(0.05, 0.95))
def test_usable_stock_counts_what_a_tier_can_give(kits: list[KitCandidate], share: float) -> None:
    shelf = tally(kits, DAY, WINDOW)
    shares = {CONTENTS[0]: share, CONTENTS[1]: 1 - share}
    usable = usable_stock(shelf, contents=CONTENTS, shares=shares)
    for content in CONTENTS:
        held = sum(shelf.get(content, {}).values())
        assert 0 <= usable[content] <= held
    # a shelf holding one content only can give nothing
    only = {CONTENTS[0]: shelf.get(CONTENTS[0], Counter())}
    assert usable_stock(only, contents=CONTENTS, shares=shares) == dict.fromkeys(CONTENTS, 0)
