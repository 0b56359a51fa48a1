"""Randomize a subject: eligibility, stage, caps, stratum, slot, dose, audit; one transaction."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from app.db.models import Randomization as RandomizationRow
from app.db.models import RandomizationList
from app.db.models import Slot as SlotRow
from app.db.randomization_counts import RandomizationCount
from app.domain import lifecycle
from app.domain.dosing import calculate_dose, heaviest_visit_vials
from app.domain.eligibility import EligibilityAnswers, check_eligibility
from app.domain.errors import Conflict, InvalidInput, validation_error
from app.domain.stages import StageRuleError, Target, check_caps, route
from app.domain.stratification import stratum_of
from app.domain.study import NO_STRATUM, PHASE_IB, StudyDefinition
from app.services import audit, caps, confirmations
from app.services.actor import Actor
from app.services.blinded_views import randomization_view
from app.services.dispensing import allocate_visit_kits, refuse_weight_out_of_range
from app.services.locks import lock_site, lock_stratum
from app.services.study_state import (
    cohort_statuses,
    counts_in,
    lock_study_shared,
    randomized_by_scope_and_stage,
)
from app.services.subjects import get_visible_subject
from app.services.transaction import utcnow


def randomize(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    subject_id: int,
    visit_date: date,
    weight_kg: Decimal,
    answers: EligibilityAnswers,
) -> dict[str, Any]:
    """Randomize in the caller's transaction; any refusal raises before anything is written.
    The rules are those of the study definition version in effect on the visit date, with the
    caps in force (app/services/caps.py); the row records that version."""
    if answers.screening_date > visit_date:
        raise validation_error(
            "eligibility.screening_date", "The screening date must not be after the visit date."
        )
    study_row = lock_study_shared(session)
    # read before the locks: the caps in force and a first refusal of a full stage
    counted = randomized_by_scope_and_stage(session)
    version, study = caps.effective_definition(session, on=visit_date, randomized=counted)
    refuse_weight_out_of_range(study, weight_kg)
    subject = get_visible_subject(session, actor=actor, subject_id=subject_id, lock=True)
    site = lock_site(session, subject.site_id)  # allocating the day 1 kits locks it anyway
    if not site.active:
        raise Conflict(
            "site_not_active",
            f"Site {subject.site_id} is not active: no subject can be randomized there yet.",
        )
    if session.execute(_RANDOMIZED, {"subject_id": subject.id}).first():
        raise Conflict("already_randomized", "This subject is already randomized.")
    if subject.status not in lifecycle.RANDOMIZABLE:
        raise Conflict(
            "subject_not_randomizable",
            f"This subject's status is {lifecycle.label(subject.status).lower()}: it cannot be "
            "randomized. If the status is wrong, undo the change on the subject's page first.",
            subject_status=subject.status,
        )
    failed = check_eligibility(
        study.eligibility,
        answers,
        year_of_birth=subject.year_of_birth,
        randomization_date=visit_date,
    )
    if failed:
        raise InvalidInput(
            "ineligible",
            "The subject is not eligible: " + "; ".join(f.message for f in failed) + ".",
            failed_criteria=[asdict(f) for f in failed],
        )
    try:
        target = route(study, cohort_statuses(session), study_row.phase2_dose_mg_per_kg)
    except StageRuleError as exc:
        raise Conflict(exc.code, str(exc)) from None
    # a full stage is refused before any kit is looked at (no urgent resupply for it); the
    # exact check is repeated at the end, under the audit chain's lock
    _check_caps(study=study, target=target, randomized=counted)
    stratum = NO_STRATUM if target.stage == PHASE_IB else stratum_of(study.phase_ii, answers)
    lock_stratum(session, scope=target.scope, stratum=stratum)
    slot = _next_slot(session, scope=target.scope, stratum=stratum)
    dose = calculate_dose(
        weight_kg,
        dose_level_mg_per_kg=target.dose_level_mg_per_kg,
        drug=study.drug,
        accepted=study.weight,
    )
    row = RandomizationRow(
        subject_id=subject.id,
        slot_id=slot.id,
        stage=target.stage,
        scope=target.scope,
        stratum=stratum,
        visit_date=visit_date,
        weight_kg=weight_kg,
        dose_level_mg_per_kg=dose.dose_level_mg_per_kg,
        dose_mg=dose.dose_mg,
        vials=dose.vials,
        drug_volume_ml=dose.drug_volume_ml,
        eligibility_json=json.dumps(_answers_json(answers), sort_keys=True),
        study_version=version,
    )
    day_one = allocate_visit_kits(
        session,
        study=study,
        actor=actor,
        subject=subject,
        randomization=row,
        content=slot.arm,
        visit=study.schedule.visits()[0],
        visit_date=visit_date,
        measured_weight=weight_kg,
        # whether a site can randomize depends on neither the next slot's arm nor the weight:
        # it must hold one heaviest-weight visit of every content at common expiry dates
        must_hold=heaviest_visit_vials(target.dose_level_mg_per_kg, study.drug, study.weight),
    )
    # The caps and the randomization number count every randomization of the study: from here
    # to the commit this one holds the audit chain's lock, which every other randomization
    # takes at the same point, so the counts are exact and the numbers consecutive.
    audit.lock_head(session)
    in_total = _check_caps(
        study=study, target=target, randomized=randomized_by_scope_and_stage(session)
    )
    row.randomization_number = f"{study.randomization_number_prefix}-{in_total + 1:04d}"
    row.randomized_at = utcnow()
    row.randomized_by = actor.username
    session.add(row)
    subject.status = "randomized"
    session.flush()
    response = randomization_view(row, day_one["kits"])
    audit.record(
        session,
        actor=actor,
        action="subject.randomize",
        entity="subject",
        entity_id=subject.id,
        before={"status": "registered"},
        after={**response, "slot_id": slot.id, "slot_sequence": slot.sequence},
    )
    return confirmations.record(
        session,
        study=study,
        actor=actor,
        kind="randomization",
        subject_id=subject.id,
        result=response,
        randomized=(row, slot.arm),
    )


def _check_caps(
    *, study: StudyDefinition, target: Target, randomized: Mapping[tuple[str, str], int]
) -> int:
    """Refuse a randomization over the cohort's, stage's or study's cap; the study's count."""
    in_scope, in_stage, in_total = counts_in(randomized, scope=target.scope, stage=target.stage)
    try:
        check_caps(study, target=target, in_scope=in_scope, in_stage=in_stage, in_total=in_total)
    except StageRuleError as exc:
        raise Conflict(exc.code, str(exc)) from None
    return in_total


_NEXT_SLOT = (
    select(SlotRow)
    .join(RandomizationList, RandomizationList.id == SlotRow.list_id)
    .where(
        RandomizationList.scope == bindparam("scope"),
        SlotRow.stratum == bindparam("stratum"),
        SlotRow.sequence
        == select(func.coalesce(func.sum(RandomizationCount.randomized), 0) + 1)
        .where(
            RandomizationCount.scope == bindparam("scope"),
            RandomizationCount.stratum == bindparam("stratum"),
        )
        .scalar_subquery(),
    )
)
"""The stratum's slot after those used (its kept count), in one statement built once."""
_RANDOMIZED = select(RandomizationRow.id).where(
    RandomizationRow.subject_id == bindparam("subject_id")
)


def _next_slot(session: Session, *, scope: str, stratum: str) -> SlotRow:
    """Slots are used strictly in sequence: the next one is count + 1 (the stratum is locked)."""
    slot = session.execute(_NEXT_SLOT, {"scope": scope, "stratum": stratum}).scalar_one_or_none()
    if slot is None:
        raise Conflict(
            "list_exhausted",
            f"The randomization list for {scope} / {stratum} has no slot left (or none was "
            "loaded). Contact the sponsor.",
        )
    return slot


def _answers_json(answers: EligibilityAnswers) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(answers), default=str))  # type: ignore[no-any-return]
