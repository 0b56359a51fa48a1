"""What the resupply reads of the study's stages for a site: its levels, the subjects still to
come (in the open stage) and the stage pool they will draw on (app/domain/stage_pools.py)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app.db.models import Site, Study, SupplyLevel
from app.domain.dosing import calculate_dose, heaviest_visit_vials
from app.domain.forecast import NO_ENROLMENT, Enrolment, places_shares
from app.domain.resupply import Levels
from app.domain.stage_pools import recruiting_pool
from app.domain.stages import CohortStatus, StageRuleError, route
from app.domain.study import PHASE_IB, StudyDefinition
from app.services.study_state import (
    cohort_statuses,
    counts_in,
    per_scope,
    randomized_by_scope_and_stage,
)

_LEVELS = select(SupplyLevel.trigger, SupplyLevel.target).where(
    SupplyLevel.site_id == bindparam("site_id")
)


def site_levels(session: Session, *, study: StudyDefinition, site: Site) -> Levels:
    """The site's levels: its own trigger and target (the same for every content), lead time
    and cover, else the study's."""
    own = session.execute(_LEVELS, {"site_id": site.id}).first()
    trigger, target = own if own else (study.supply.resupply_trigger, study.supply.resupply_target)
    lead = site.lead_days if site.lead_days is not None else study.supply.shipping_lead_days
    cover = site.cover_weeks if site.cover_weeks is not None else study.supply.cover_weeks
    return Levels(trigger, target, lead, cover * 7)


@dataclass(frozen=True)
class StageState:
    """What a resupply check reads of the study's stages, once per check: cohort statuses, the
    phase II dose and subjects randomized per scope and stage (the kept counts)."""

    statuses: dict[str, CohortStatus]
    phase2_dose: Decimal | None
    randomized: dict[tuple[str, str], int]

    def counts(self, *, scope: str, stage: str) -> tuple[int, int, int]:
        """Randomized in the scope, in the stage and in all (`randomized_counts`)."""
        return counts_in(self.randomized, scope=scope, stage=stage)

    def by_scope(self) -> dict[str, int]:
        return per_scope(self.randomized)


def stage_state(session: Session) -> StageState:
    return StageState(
        cohort_statuses(session),
        session.execute(select(Study.phase2_dose_mg_per_kg)).scalar_one_or_none(),
        randomized_by_scope_and_stage(session),
    )


def site_enrolment(
    session: Session, *, study: StudyDefinition, site: Site, state: StageState | None = None
) -> tuple[Enrolment, int]:
    """Subjects still to come at the site in the open stage, and the vials of one visit at the
    heaviest weight (what the site must hold of every content to randomize)."""
    stages = state or stage_state(session)
    phase2_dose = stages.phase2_dose
    try:
        target = route(study, stages.statuses, phase2_dose)
    except StageRuleError:
        levels = [c.dose_mg_per_kg for c in study.phase_ib.cohorts]
        highest = max([*levels, phase2_dose] if phase2_dose is not None else levels)
        return NO_ENROLMENT, heaviest_visit_vials(highest, study.drug, study.weight)
    in_scope, in_stage, in_total = stages.counts(scope=target.scope, stage=target.stage)
    stage_cap = target.cap if target.stage == PHASE_IB else study.phase_ii.cap
    places = min(target.cap - in_scope, stage_cap - in_stage, study.total_cap - in_total)
    rate = site.subjects_per_week
    if rate is None:
        rate = study.supply.subjects_per_site_per_week
    level = target.dose_level_mg_per_kg
    typical = calculate_dose(
        study.supply.forecast_weight_kg,
        dose_level_mg_per_kg=level,
        drug=study.drug,
        accepted=study.weight,
    )
    shares = places_shares(_places_left(stages, study))
    enrolment = Enrolment(float(rate), max(places, 0), shares, typical.vials)
    return enrolment, heaviest_visit_vials(level, study.drug, study.weight)


def _places_left(stages: StageState, study: StudyDefinition) -> list[tuple[int, dict[str, int]]]:
    """Each stage's places still open (none in a closed cohort) with its ratio."""
    used = stages.by_scope()
    return [
        (
            0
            if stages.statuses.get(scope.code) == CohortStatus.CLOSED
            else scope.cap - int(used.get(scope.code, 0)),
            dict(scope.allocation.ratio),
        )
        for scope in study.scopes()
    ]


def recruiting(
    session: Session, *, study: StudyDefinition, state: StageState | None = None
) -> str | None:
    """The stage pool of the subjects to come (app/domain/stage_pools.py)."""
    stages = state or stage_state(session)
    try:
        stage: str | None = route(study, stages.statuses, stages.phase2_dose).stage
    except StageRuleError:
        stage = None
    return recruiting_pool(study, stages.statuses, stage)
