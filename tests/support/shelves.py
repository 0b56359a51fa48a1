"""Hypothesis strategies for a site's shelf of kits in stage pools, shared by the domain tests
of the common-tier rule and of the pools."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date, timedelta

from hypothesis import strategies as st

from app.domain.common_expiry import choose_kits
from app.domain.kits import KitCandidate
from app.domain.stage_pools import stage_pools
from app.domain.study import load_study

STUDY = load_study()
CONTENTS = STUDY.contents
POOLS = stage_pools(s.stage for s in STUDY.scopes())
DAY = date(2031, 3, 15)
WINDOW = 30


@st.composite
def pooled_shelves(
    draw: st.DrawFn,
    *,
    days: Sequence[int] = (10, WINDOW + 1, 60, 200),
    shipments: tuple[int, int] = (1, 3),
    pools: Sequence[str | None] = POOLS,
) -> list[KitCandidate]:
    """Up to 40 kits of both contents at a few expiry dates (days after DAY), shipments and
    pools."""
    kits = []
    for i in range(draw(st.integers(0, 40))):
        content = draw(st.sampled_from(CONTENTS))
        expiry = DAY + timedelta(days=draw(st.sampled_from(list(days))))
        shipment = draw(st.integers(*shipments))
        pool = draw(st.sampled_from(list(pools)))
        kits.append(KitCandidate(f"K{i:04d}", content, expiry, shipment, pool))
    return kits


def choose(
    kits: list[KitCandidate],
    *,
    content: str,
    vials: int,
    seed: int,
    must_hold: int = 0,
    pool: str | None = None,
) -> list[KitCandidate] | None:
    """`choose_kits` on DAY, with the study's contents, the WINDOW and a seeded random pick."""
    return choose_kits(
        kits,
        contents=CONTENTS,
        content=content,
        vials=vials,
        day=DAY,
        window_days=WINDOW,
        rng=random.Random(seed),
        must_hold=must_hold,
        pool=pool,
    )
