"""The caps in force: phase Ib cohorts' in `cohorts.cap`, phase II's in `study.phase2_cap`, as
the sponsor sets them (signed, audited), and the study definition a randomization runs under.

A randomization holds the study row in share mode from its first read of the caps to its
commit; a cap change (`change_caps`) and a new version lock it exclusively. So a change waits
for the randomizations in progress and later ones see the new caps: two racing randomizations
can never both take a cap's last place, and none can take a place just moved away."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Cohort, RandomizationList, Slot, Study
from app.domain import caps as rules
from app.domain.errors import Conflict, NotFound
from app.domain.reasons import check_reason
from app.domain.signatures import Signature, with_signature
from app.domain.stages import CohortStatus
from app.domain.study import PHASE_II_SCOPE, StudyDefinition
from app.services import audit, definitions
from app.services.actor import Actor
from app.services.study_state import (
    cohorts,
    current_study,
    lock_study_exclusive,
    per_scope,
    randomized_by_scope,
)


class ScopeCapOut(BaseModel):
    scope: str
    label: str
    status: str
    cap: int
    randomized: int
    unused: int


class CapsOut(BaseModel):
    """The caps in force against the study's target (the newest version's total_cap)."""

    version: int
    target: int
    total: int
    scopes: list[ScopeCapOut]


def _label(scope: str) -> str:
    return "Phase II" if scope == PHASE_II_SCOPE else f"Cohort {scope}"


def scope_caps(
    session: Session,
    *,
    study: StudyDefinition,
    randomized: Mapping[tuple[str, str], int] | None = None,
) -> list[rules.ScopeCap]:
    """Every scope's cap in force, randomized count and status, cohorts first; `randomized`:
    the counts per scope and stage if the caller has read them."""
    counts = randomized_by_scope(session) if randomized is None else per_scope(randomized)
    states = [
        rules.ScopeCap(c.code, _label(c.code), c.cap, int(counts.get(c.code, 0)), c.status)
        for c in cohorts(session)
    ]
    study_row = current_study(session)
    phase2_cap = study_row.phase2_cap
    states.append(
        rules.ScopeCap(
            PHASE_II_SCOPE,
            _label(PHASE_II_SCOPE),
            study.phase_ii.cap if phase2_cap is None else phase2_cap,
            int(counts.get(PHASE_II_SCOPE, 0)),
            str(CohortStatus.OPEN if study_row.phase2_dose_mg_per_kg else CohortStatus.PLANNED),
        )
    )
    return states


def caps_record(states: list[rules.ScopeCap]) -> dict[str, int]:
    return {s.scope: s.cap for s in states}


def apply(session: Session, *, study_row: Study, caps: Mapping[str, int]) -> None:
    """Write the caps (the caller holds the study row exclusively)."""
    for cohort in session.execute(select(Cohort)).scalars():
        if cohort.code in caps:
            cohort.cap = caps[cohort.code]
    if PHASE_II_SCOPE in caps:
        study_row.phase2_cap = caps[PHASE_II_SCOPE]
    session.flush()


def effective_definition(
    session: Session, *, on: date, randomized: Mapping[tuple[str, str], int] | None = None
) -> tuple[int, StudyDefinition]:
    """The version in effect on `on`, with the caps in force: what a randomization or a
    dispensing dated `on` runs under (its total_cap stays the version's). `randomized`: the
    counts per scope and stage if the caller has read them."""
    number, study = definitions.in_effect(session, on=on)
    caps = caps_record(scope_caps(session, study=study, randomized=randomized))
    cohorts = tuple(c.model_copy(update={"cap": caps[c.code]}) for c in study.phase_ib.cohorts)
    return number, study.model_copy(
        update={
            "phase_ib": study.phase_ib.model_copy(update={"cohorts": cohorts}),
            "phase_ii": study.phase_ii.model_copy(update={"cap": caps[PHASE_II_SCOPE]}),
        }
    )


def caps_view(session: Session) -> CapsOut:
    number, study = definitions.latest(session)
    states = scope_caps(session, study=study)
    return CapsOut(
        version=number,
        target=study.total_cap,
        total=sum(s.cap for s in states),
        scopes=[
            ScopeCapOut(
                scope=s.scope,
                label=s.label,
                status=s.status,
                cap=s.cap,
                randomized=s.randomized,
                unused=s.unused,
            )
            for s in states
        ],
    )


def _refuse_short_lists(session: Session, *, raised: Mapping[str, int]) -> None:
    """A raised cap must fit every stratum of its scope's list (a stratum may take them all);
    a scope whose list is not loaded yet is checked when it is."""
    for scope, cap in raised.items():
        shortest = session.execute(
            select(func.count(Slot.id))
            .join(RandomizationList, RandomizationList.id == Slot.list_id)
            .where(RandomizationList.scope == scope)
            .group_by(Slot.stratum)
            .order_by(func.count(Slot.id))
            .limit(1)
        ).scalar()
        if shortest is not None and shortest < cap:
            raise Conflict(
                "list_too_short",
                f"The randomization list of {_label(scope).lower()} holds {shortest} places in "
                f"its shortest stratum, fewer than the cap of {cap} asked: every stratum must "
                "be able to take the whole cap. Load a longer list first.",
            )


def change_caps(
    session: Session,
    *,
    actor: Actor,
    caps: Mapping[str, int],
    reason: str,
    signature: Signature | None,
) -> CapsOut:
    """Set the caps of the scopes named in `caps` (a move is two: the closed cohort's lowered,
    phase II's raised by as much), signed and audited; refused with nothing changed if a cap
    would fall below its randomized count, a closed cohort would gain places, or the caps would
    add up to more than the study's target."""
    reason = check_reason(reason)
    study_row = lock_study_exclusive(session)
    _, study = definitions.latest(session)
    states = scope_caps(session, study=study)
    try:
        new = rules.plan_caps(states, caps, target=study.total_cap)
    except rules.CapRuleError as exc:
        raise (NotFound if exc.code == "not_found" else Conflict)(exc.code, str(exc)) from None
    before = caps_record(states)
    _refuse_short_lists(session, raised={s: c for s, c in new.items() if c > before[s]})
    apply(session, study_row=study_row, caps=new)
    after = caps_view(session)
    audit.record(
        session,
        actor=actor,
        action="caps.change",
        entity="study",
        entity_id=study_row.code,
        before={"caps": before, "total": sum(before.values())},
        after=with_signature(
            {"caps": new, "total": after.total, "target": after.target}, signature
        ),
        reason=reason,
    )
    return after


def moved_unused(session: Session, *, source: str, places: int | None = None) -> dict[str, int]:
    """The caps that move `places` (default all) unused places of the closed cohort `source` to
    phase II: what the page and the CLI offer as a move, checked again when it is submitted."""
    _, study = definitions.latest(session)
    try:
        return rules.move_unused(
            scope_caps(session, study=study), source=source, to=PHASE_II_SCOPE, places=places
        )
    except rules.CapRuleError as exc:
        raise (NotFound if exc.code == "not_found" else Conflict)(exc.code, str(exc)) from None
