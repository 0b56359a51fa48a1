"""Data corrections of a subject (use cases): plan one (what it changes, the meaning signed),
apply it in the caller's transaction, list a subject's corrections, and the mis-stratification
report. The rules are in app/domain/corrections.py; the command that signs and owns the
transaction is app/services/correction_commands.py.

A correction writes the corrected value where the subject's data lives (sex, year of birth),
or only into `data_corrections` (eligibility answers, a visit's measured weight): the answers
as randomized and every dose given stay as they were. The stratum the corrected answers give is
kept beside the stratum as randomized; the slot and the arm never move."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import DataCorrection, Dispensing, Randomization, Slot, Subject
from app.domain import corrections as rules
from app.domain.csv_cells import csv_text
from app.domain.eligibility import check_eligibility
from app.domain.errors import Conflict, InvalidInput, not_found
from app.domain.signatures import Signature, correction_meaning
from app.domain.study import PHASE_II, StudyDefinition
from app.services import audit
from app.services.actor import Actor
from app.services.blinded_views import iso_utc
from app.services.results import SignatureOut
from app.services.subjects import get_visible_subject, randomization_of
from app.services.transaction import utcnow

DAY_ONE = "D1"


class CorrectionOut(BaseModel):
    """A correction as the site and the data manager see it: never an arm."""

    correction_id: int
    subject_id: int
    screening_number: str
    field: str
    label: str
    visit: str | None
    old_value: str
    new_value: str
    reason: str
    stratum_randomized: str | None
    stratum_actual: str | None
    criteria_missed_after: list[str]
    """Eligibility criteria the corrected data misses (the subject stays randomized)."""
    corrected_at: str
    corrected_by: str
    signature: SignatureOut


@dataclass(frozen=True)
class Plan:
    """What a correction will do, read before it is signed."""

    subject_id: int
    screening_number: str
    site_id: str
    field: str
    label: str
    visit: str | None
    old_value: str
    new_value: str
    meaning: str


def plan(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    subject_id: int,
    field: str,
    visit: str | None,
    new_value: str,
    today: date,
) -> Plan:
    """The correction the user asks for, checked (404 for another site's subject, 422 for a
    value or field that cannot be used, 409 when the data to correct does not exist yet)."""
    subject = get_visible_subject(session, actor=actor, subject_id=subject_id)
    spec = rules.CORRECTABLE.get(field)
    if spec is None:
        raise _invalid("field", f"{field!r} cannot be corrected; choose one of the listed fields")
    try:
        value = rules.parse_value(study, field, new_value, this_year=today.year)
    except rules.CorrectionRefused as exc:
        raise _invalid("new_value", f"{spec.label}: {exc}") from None
    visit = (visit or DAY_ONE) if spec.where == "visit" else None
    old = current_value(session, subject=subject, field=field, visit=visit)
    new = rules.value_text(value)
    what = f'"{spec.label}"' + (f" at visit {visit}" if visit else "")
    meaning = correction_meaning(
        entity=f"{what} of subject", entity_id=f"{subject.screening_number} to {new}"
    )
    return Plan(
        subject.id, subject.screening_number, subject.site_id, field, spec.label, visit, old, new,
        meaning,
    )  # fmt: skip


def current_value(session: Session, *, subject: Subject, field: str, visit: str | None) -> str:
    """The value as it stands: the subject's row, else the last correction, else as recorded."""
    if field in ("sex", "year_of_birth"):
        return rules.value_text(getattr(subject, field))
    last = session.execute(
        select(DataCorrection.new_value)
        .where(
            DataCorrection.subject_id == subject.id,
            DataCorrection.field == field,
            DataCorrection.visit.is_(None) if visit is None else DataCorrection.visit == visit,
        )
        .order_by(DataCorrection.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if last is not None:
        return last
    if field == "weight_kg":
        dispensing = _dispensing(session, subject.id, visit or DAY_ONE)
        return rules.value_text(dispensing.weight_measured_kg)
    typed = rules.answers_from_json(json.loads(_randomization(session, subject).eligibility_json))
    parts = field.split(".")[1:]
    answer = getattr(typed.exclusions, parts[1]) if len(parts) == 2 else getattr(typed, parts[0])
    return rules.value_text(answer)


def apply(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    planned: Plan,
    reason: str,
    signature: Signature,
) -> dict[str, Any]:
    """Record the planned correction under the subject's lock; refused if the value changed
    since it was planned (409 `correction_conflict`) or already is the new one (409
    `no_change`). Audited as `subject.correct` with the signature."""
    subject = get_visible_subject(session, actor=actor, subject_id=planned.subject_id, lock=True)
    old = current_value(session, subject=subject, field=planned.field, visit=planned.visit)
    if old == planned.new_value:
        raise Conflict("no_change", f"{planned.label} is already {old}: nothing to correct.")
    if old != planned.old_value:
        raise Conflict(
            "correction_conflict",
            f"{planned.label} was changed to {old} meanwhile; review the correction again.",
        )
    randomization = randomization_of(session, subject)
    before_stratum = after_stratum = None
    if planned.field == "sex":
        subject.sex = planned.new_value
    elif planned.field == "year_of_birth":
        subject.year_of_birth = int(planned.new_value)
    answers = _answers_now(session, subject, randomization)
    if planned.field.startswith("eligibility.") and randomization is not None:
        answers = rules.with_answer(
            answers, planned.field, _stored(planned.field, planned.new_value)
        )
        factors = {f"eligibility.{f.field}" for f in study.phase_ii.strata_factors}
        if randomization.stage == PHASE_II and planned.field in factors:
            before_stratum = randomization.actual_stratum or randomization.stratum
            after_stratum = rules.actual_stratum(study, stage=randomization.stage, answers=answers)
            randomization.actual_stratum = after_stratum
    row = DataCorrection(
        subject_id=subject.id,
        field=planned.field,
        visit=planned.visit,
        old_value=old,
        new_value=planned.new_value,
        reason=reason,
        stratum_before=before_stratum,
        stratum_after=after_stratum,
        signature_json=json.dumps(signature.as_record(), sort_keys=True),
        corrected_at=utcnow(),
        corrected_by=actor.username,
        corrected_by_role=str(actor.role),
    )
    session.add(row)
    session.flush()
    view = _view(row, subject=subject, randomization=randomization)
    view["criteria_missed_after"] = _missed(study, subject, randomization, answers)
    change = {"field": planned.field, "visit": planned.visit}
    after: dict[str, Any] = {**change, "value": planned.new_value, "signature": view["signature"]}
    if after_stratum is not None:
        after |= {"stratum": before_stratum, "actual_stratum": after_stratum}
    audit.record(
        session,
        actor=actor,
        action="subject.correct",
        entity="subject",
        entity_id=subject.id,
        before={**change, "value": old},
        after=after,
        reason=reason,
    )
    return view


def list_for_subject(session: Session, *, actor: Actor, subject_id: int) -> list[dict[str, Any]]:
    """A subject's corrections, oldest first (404 for another site's subject)."""
    subject = get_visible_subject(session, actor=actor, subject_id=subject_id)
    randomization = randomization_of(session, subject)
    rows = session.execute(
        select(DataCorrection)
        .where(DataCorrection.subject_id == subject.id)
        .order_by(DataCorrection.id)
    ).scalars()
    return [_view(row, subject=subject, randomization=randomization) for row in rows]


# --- the mis-stratification report -------------------------------------------------------------

MISSTRATIFIED_COLUMNS = (
    "subject_id",
    "site_id",
    "screening_number",
    "randomization_number",
    "stratum_randomized",
    "stratum_actual",
    "corrected_at",
    "corrected_by",
)


def misstratified(
    session: Session, *, study: StudyDefinition, actor: Actor, with_arm: bool
) -> list[dict[str, Any]]:
    """Every subject of the reader's sites whose actual stratum differs from the stratum as
    randomized, with the last correction that moved it; the arm and treatment only when asked
    for (the unblinded monitor's variant, app/services/unblinded_reads.py)."""
    rows = session.execute(
        select(Subject, Randomization, Slot.arm)
        .join(Randomization, Randomization.subject_id == Subject.id)
        .join(Slot, Slot.id == Randomization.slot_id)
        .where(
            Randomization.actual_stratum.is_not(None),
            Randomization.actual_stratum != Randomization.stratum,
        )
        .order_by(Subject.site_id, Randomization.randomization_number)
    ).all()
    report = []
    for subject, randomization, arm in rows:
        if not actor.sees_site(subject.site_id):
            continue
        last = session.execute(
            select(DataCorrection)
            .where(
                DataCorrection.subject_id == subject.id,
                DataCorrection.stratum_after.is_not(None),
            )
            .order_by(DataCorrection.id.desc())
            .limit(1)
        ).scalar_one()
        line: dict[str, Any] = {
            "subject_id": subject.id,
            "site_id": subject.site_id,
            "screening_number": subject.screening_number,
            "randomization_number": randomization.randomization_number,
            "stratum_randomized": randomization.stratum,
            "stratum_actual": randomization.actual_stratum,
            "corrected_at": iso_utc(last.corrected_at),
            "corrected_by": last.corrected_by,
        }
        if with_arm:
            line["arm"] = arm
            line["treatment"] = study.treatment_label(arm, randomization.dose_level_mg_per_kg)
        report.append(line)
    return report


def misstratified_csv(rows: list[dict[str, Any]], *, with_arm: bool) -> str:
    header = (*MISSTRATIFIED_COLUMNS, "arm", "treatment") if with_arm else MISSTRATIFIED_COLUMNS
    return csv_text(header, ([row[c] for c in header] for row in rows))


# --- helpers -----------------------------------------------------------------------------------


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput("validation_error", message, errors=[{"field": field, "message": message}])


def _randomization(session: Session, subject: Subject) -> Randomization:
    randomization = randomization_of(session, subject)
    if randomization is None:
        raise Conflict(
            "not_randomized",
            "This subject is not randomized: there are no eligibility answers to correct yet.",
        )
    return randomization


def _dispensing(session: Session, subject_id: int, visit: str) -> Dispensing:
    row = session.execute(
        select(Dispensing).where(Dispensing.subject_id == subject_id, Dispensing.visit == visit)
    ).scalar_one_or_none()
    if row is None:
        raise not_found(f"Dosing visit {visit} of this subject")
    return row


def _answers_now(
    session: Session, subject: Subject, randomization: Randomization | None
) -> dict[str, Any]:
    """The answers as randomized with every correction of them applied, in order."""
    if randomization is None:
        return {}
    answers: dict[str, Any] = json.loads(randomization.eligibility_json)
    for field, value in session.execute(
        select(DataCorrection.field, DataCorrection.new_value)
        .where(DataCorrection.subject_id == subject.id, DataCorrection.field.like("eligibility.%"))
        .order_by(DataCorrection.id)
    ).all():
        answers = rules.with_answer(answers, field, _stored(field, value))
    return answers


def _stored(field: str, text: str) -> Any:
    """A corrected value's text in the stored answers' JSON types."""
    kind = rules.CORRECTABLE[field].kind
    if kind == "yes_no":
        return text == "yes"
    if kind == "count":
        return int(text)
    return text


def _missed(
    study: StudyDefinition,
    subject: Subject,
    randomization: Randomization | None,
    answers: dict[str, Any],
) -> list[str]:
    if randomization is None:
        return []
    failed = check_eligibility(
        study.eligibility,
        rules.answers_from_json(answers),
        year_of_birth=subject.year_of_birth,
        randomization_date=randomization.visit_date,
    )
    return [f.criterion for f in failed]


def _view(
    row: DataCorrection, *, subject: Subject, randomization: Randomization | None
) -> dict[str, Any]:
    return {
        "correction_id": row.id,
        "subject_id": subject.id,
        "screening_number": subject.screening_number,
        "field": row.field,
        "label": rules.CORRECTABLE[row.field].label
        if row.field in rules.CORRECTABLE
        else row.field,
        "visit": row.visit,
        "old_value": row.old_value,
        "new_value": row.new_value,
        "reason": row.reason,
        "stratum_randomized": randomization.stratum if randomization else None,
        "stratum_actual": (randomization.actual_stratum or randomization.stratum)
        if randomization
        else None,
        "criteria_missed_after": [],
        "corrected_at": iso_utc(row.corrected_at),
        "corrected_by": row.corrected_by,
        "signature": json.loads(row.signature_json),
    }


def _label(field: str) -> str:
    spec = rules.CORRECTABLE.get(field)
    return field if spec is None else spec.label
