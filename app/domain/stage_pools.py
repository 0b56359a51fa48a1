"""Stage pools: each stage's subjects are served from kits shipped for that stage's ratio.

Phase Ib (IMC-002:placebo 3:1) and phase II (1:1) subjects are dosed at a site at the same time
for months. Drawing on the same common tiers, the phase Ib subjects take more of a tier's IMC-002
kits, so when IMC-002 runs out in a tier the subject who took the last kit is a phase Ib subject
more often, and a phase II subject seen emptying a tier is on placebo a little more often: a
blinded pharmacist could read that. So every kit shipped to a site belongs to the *pool* of one
stage (the stage key of the study definition), chosen when the shipment is built; a kit's tier is
its expiry date, shipment and pool; a subject draws only on its own stage's pool, and the
forecast, the position and the shipment are reckoned per pool and content. Within a pool every
subject is randomized in the same ratio, which is what the shares of need and the common tiers
assume.

The stage is not blinded (sites know the dose level and the phase), so a pool a pharmacist sees
tells nothing about the arm.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from app.domain.stages import CohortStatus
from app.domain.study import PHASE_IB, PHASE_II, StudyDefinition

ALL = "all"
"""The one pool of a policy without stage pools (the simulator's naive control)."""


def stage_pools(stages: Iterable[str]) -> tuple[str, ...]:
    """The pools of a study: its stage keys, in the order the stages open."""
    return tuple(dict.fromkeys(stages))


def live_pools(
    pools: Iterable[str], *, recruiting: str | None, on_treatment: Mapping[str, int]
) -> list[str]:
    """The pools the resupply reckons with at a site: the pool of the stage that recruits (or
    will recruit next) and every pool with subjects still on treatment. A pool with neither
    needs nothing, and its kits are left to expire."""
    return [p for p in pools if p == recruiting or on_treatment.get(p, 0) > 0]


def shipment_by_pool(plans: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    """The kits per pool and content of one shipment, from each pool's order quantities (empty
    for a pool whose position is above its safety level): a shipment is due when any pool is
    short, and it brings every short pool up to its level. A pool that is not short gets nothing,
    so that its tiers stay few."""
    return {pool: dict(q) for pool, q in plans.items() if q}


def recruiting_pool(
    study: StudyDefinition, statuses: Mapping[str, CohortStatus], open_stage: str | None
) -> str | None:
    """The pool of the stage that recruits now (`open_stage`) or, during a safety review, of
    the stage that opens next: phase Ib while a cohort is not closed, else phase II. The pool
    is stocked for the subjects to come before they come."""
    if open_stage is not None:
        return open_stage
    if any(statuses.get(c.code) != CohortStatus.CLOSED for c in study.phase_ib.cohorts):
        return PHASE_IB
    return PHASE_II


def pool_level(study: StudyDefinition, pool: str, phase2_dose: Decimal | None) -> Decimal:
    """The highest dose level a pool's subjects can be on: what its floor (one visit at the
    heaviest weight, of every content) is reckoned at while it serves no randomization. The
    phase II dose, not yet chosen, is taken as the highest phase Ib level."""
    levels = [c.dose_mg_per_kg for c in study.phase_ib.cohorts]
    if pool == PHASE_II and phase2_dose is not None:
        return phase2_dose
    return max(levels)
