"""Stage pools: a subject draws only on its own stage's kits, the arms stay indistinguishable
within a pool, and the resupply reckons with exactly the pools that can still be drawn on."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.kits import KitCandidate
from app.domain.stage_pools import (
    live_pools,
    pool_level,
    recruiting_pool,
    shipment_by_pool,
)
from app.domain.stages import CohortStatus
from app.domain.study import PHASE_IB, PHASE_II
from tests.support.shelves import CONTENTS, POOLS, STUDY, choose, pooled_shelves

PROPERTY = settings(max_examples=300, deadline=None)


def _choose(
    kits: list[KitCandidate], content: str, vials: int, seed: int, pool: str | None
) -> list[KitCandidate] | None:
    return choose(kits, content=content, vials=vials, seed=seed, must_hold=2, pool=pool)


def test_the_pools_are_the_stages_in_the_order_they_open() -> None:
    assert POOLS == (PHASE_IB, PHASE_II)


@PROPERTY
@given(pooled_shelves(), st.sampled_from(POOLS), st.integers(0, 4), st.integers(0, 2**32))
def test_a_subject_gets_kits_of_its_own_pool_only(
    kits: list[KitCandidate], pool: str, vials: int, seed: int
) -> None:
    for content in CONTENTS:
        handed = _choose(kits, content, vials, seed, pool)
        if handed is not None:
            assert {k.pool for k in handed} <= {pool}
            assert {k.content for k in handed} <= {content} and len(handed) == vials


@PROPERTY
@given(pooled_shelves(), pooled_shelves(), st.sampled_from(POOLS), st.integers(0, 4))
def test_the_other_pool_changes_nothing(
    kits: list[KitCandidate], others: list[KitCandidate], pool: str, vials: int
) -> None:
    """Whatever the other stage's pool holds, a subject is served, or refused, alike."""
    mine = [k for k in kits if k.pool == pool]
    foreign = [
        KitCandidate(f"X{k.kit_number}", k.content, k.expiry_date, k.shipment, k.pool)
        for k in others
        if k.pool != pool
    ]
    for content in CONTENTS:
        alone = _choose(mine, content, vials, 7, pool)
        mixed = _choose(mine + foreign, content, vials, 7, pool)
        assert alone == mixed


@PROPERTY
@given(pooled_shelves(), st.sampled_from(POOLS), st.integers(0, 4), st.integers(0, 2**32))
def test_within_a_pool_both_arms_get_the_same_tiers_or_the_same_refusal(
    kits: list[KitCandidate], pool: str, vials: int, seed: int
) -> None:
    chosen = {c: _choose(kits, c, vials, seed, pool) for c in CONTENTS}
    assert len({k is None for k in chosen.values()}) == 1, "refused for one arm only"
    served = [k for k in chosen.values() if k is not None]
    tiers = [Counter((k.expiry_date, k.shipment, k.pool) for k in handed) for handed in served]
    assert all(t == tiers[0] for t in tiers), "the tiers handed out follow the arm"


@given(
    st.sampled_from([None, *POOLS]),
    st.dictionaries(st.sampled_from(POOLS), st.integers(0, 5)),
)
def test_the_live_pools_are_the_recruiting_one_and_those_with_subjects(
    recruiting: str | None, treated: dict[str, int]
) -> None:
    live = live_pools(POOLS, recruiting=recruiting, on_treatment=treated)
    assert live == [p for p in POOLS if p in set(live)]  # in the order the stages open
    for pool in POOLS:
        assert (pool in live) == (pool == recruiting or treated.get(pool, 0) > 0)


@given(
    st.dictionaries(
        st.sampled_from(POOLS), st.dictionaries(st.sampled_from(CONTENTS), st.integers(1, 50))
    )
)
def test_a_shipment_tops_up_exactly_the_short_pools(orders: dict[str, dict[str, int]]) -> None:
    shipment = shipment_by_pool(orders)
    assert shipment == {p: q for p, q in orders.items() if q}


def test_the_recruiting_pool_is_the_open_stage_else_the_next_to_open() -> None:
    cohorts = [c.code for c in STUDY.phase_ib.cohorts]
    closed = dict.fromkeys(cohorts, CohortStatus.CLOSED)
    assert recruiting_pool(STUDY, {}, PHASE_IB) == PHASE_IB
    assert recruiting_pool(STUDY, closed, PHASE_II) == PHASE_II
    # a safety review between cohorts: the next cohort is phase Ib
    assert recruiting_pool(STUDY, {**closed, cohorts[-1]: CohortStatus.PLANNED}, None) == PHASE_IB
    # every cohort closed, phase II dose not yet chosen: phase II opens next
    assert recruiting_pool(STUDY, closed, None) == PHASE_II


def test_a_pool_floor_is_reckoned_at_its_stage_highest_level() -> None:
    highest = max(c.dose_mg_per_kg for c in STUDY.phase_ib.cohorts)
    assert pool_level(STUDY, PHASE_IB, None) == highest
    assert pool_level(STUDY, PHASE_II, None) == highest
    assert pool_level(STUDY, PHASE_II, highest / 2) == highest / 2
