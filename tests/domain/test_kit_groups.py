"""Counted kits (what the service reads of a site's stock) give the rule the same shelf, the same
tiers and, with the same seed, the same kits as the kits themselves."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.common_expiry import (
    KitGroup,
    Tier,
    draw,
    tally,
    tally_groups,
    tier_of,
    visit_tiers,
)
from app.domain.kits import KitCandidate
from tests.support.shelves import CONTENTS, DAY, POOLS, WINDOW, choose
from tests.support.shelves import pooled_shelves as shelves

PROPERTY = settings(max_examples=300, deadline=None)


def pooled_shelves() -> st.SearchStrategy[list[KitCandidate]]:
    """Kits of both pools and of none, expiry dates about the window's edge, shipment 0 (a kit
    no shipment brought) too."""
    return shelves(days=(10, WINDOW, WINDOW + 1, 60, 200), shipments=(0, 3), pools=(*POOLS, None))


def groups_of(kits: list[KitCandidate]) -> list[KitGroup]:
    counted = Counter((k.content, k.expiry_date, k.shipment, k.pool) for k in kits)
    return [KitGroup(c, e, s, p, n) for (c, e, s, p), n in counted.items()]


@PROPERTY
@given(pooled_shelves(), st.sampled_from((*POOLS, None)))
def test_counted_kits_tally_as_the_kits(kits: list[KitCandidate], pool: str | None) -> None:
    own = [k for k in kits if pool is None or k.pool == pool]
    assert tally_groups(groups_of(kits), DAY, WINDOW, pool=pool) == tally(own, DAY, WINDOW)


@PROPERTY
@given(
    pooled_shelves(),
    st.sampled_from((*POOLS, None)),
    st.sampled_from(CONTENTS),
    st.integers(0, 4),
    st.integers(0, 5),
    st.integers(0, 2**32),
)
def test_counted_kits_choose_as_the_kits(
    kits: list[KitCandidate], pool: str | None, content: str, vials: int, must_hold: int, seed: int
) -> None:
    """The service's way (tiers from counts, then the chosen tiers' kit numbers) and
    `choose_kits` refuse alike and, with one seed, hand out the same kits."""
    expected = choose(kits, content=content, vials=vials, seed=seed, must_hold=must_hold, pool=pool)
    shelf = tally_groups(groups_of(kits), DAY, WINDOW, pool=pool)
    tiers = visit_tiers(shelf, contents=CONTENTS, vials=vials, must_hold=must_hold)
    if expected is None:
        assert tiers is None
        return
    assert tiers is not None
    numbers: defaultdict[Tier, list[str]] = defaultdict(list)
    for kit in sorted(kits, key=lambda k: k.kit_number):
        if kit.content == content and (pool is None or kit.pool == pool) and tier_of(kit) in tiers:
            numbers[tier_of(kit)].append(kit.kit_number)
    got = draw(tiers, numbers, random.Random(seed))
    assert got == [k.kit_number for k in expected]
