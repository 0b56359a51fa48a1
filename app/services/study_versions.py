"""Versions of the study definition in the database: the first one (loaded with the study),
protocol amendments loaded later with their effective date, and which one an act follows.

Every randomization and dispensing records the version in effect on its visit date
(`version_on`); a version is refused if it would take effect before an act already done."""

from __future__ import annotations

import json
from datetime import date, datetime

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Dispensing, Randomization, StudyVersion
from app.domain import caps as cap_rules
from app.domain import study_versions as rules
from app.domain.errors import Conflict, InvalidInput
from app.domain.reasons import check_reason
from app.domain.signatures import Signature, with_signature
from app.domain.study import StudyDefinition
from app.services import audit, caps
from app.services.actor import Actor
from app.services.blinded_views import iso_utc
from app.services.definitions import definition, rows
from app.services.study_state import lock_study_exclusive
from app.services.transaction import utcnow


class VersionOut(BaseModel):
    """One version as admins see it (no arm-dependent data: a definition names no allocation)."""

    version: int
    effective_date: date
    definition_sha256: str
    loaded_at: str
    loaded_by: str
    reason: str | None
    total_cap: int
    changes: list[str]
    """The top-level fields it changes from the version before (empty for version 1)."""
    in_effect_today: bool


def add_first(
    session: Session, *, study: StudyDefinition, actor: Actor, loaded_at: datetime
) -> None:
    """Version 1: the definition the study is loaded with, in effect from the first day."""
    session.add(
        StudyVersion(
            version=1,
            definition_json=json.dumps(study.model_dump(mode="json"), sort_keys=True),
            definition_sha256=study.fingerprint(),
            effective_date=loaded_at.date(),
            loaded_at=loaded_at,
            loaded_by=actor.username,
            reason=None,
        )
    )


def list_versions(session: Session, *, today: date) -> list[VersionOut]:
    versions = rows(session)
    current = rules.version_on([(r.version, r.effective_date) for r in versions], today)
    out = []
    for previous, row in zip([None, *versions[:-1]], versions, strict=True):
        changes = rules.changed_fields(definition(previous), definition(row)) if previous else []
        out.append(
            VersionOut(
                version=row.version,
                effective_date=row.effective_date,
                definition_sha256=row.definition_sha256,
                loaded_at=iso_utc(row.loaded_at),
                loaded_by=row.loaded_by,
                reason=row.reason,
                total_cap=definition(row).total_cap,
                changes=changes,
                in_effect_today=row.version == current,
            )
        )
    return out


def latest_act_date(session: Session) -> date | None:
    """The latest visit date of any randomization or dispensing."""
    dates = [
        session.execute(select(func.max(Randomization.visit_date))).scalar(),
        session.execute(select(func.max(Dispensing.visit_date))).scalar(),
    ]
    known = [d for d in dates if d is not None]
    return max(known) if known else None


def load_version(
    session: Session,
    *,
    actor: Actor,
    new: StudyDefinition,
    effective_date: date,
    reason: str,
    signature: Signature | None,
) -> VersionOut:
    """Add a version (a protocol amendment). The caps in force change by exactly what the
    amendment changes, so places the sponsor moved stay moved; refused, with nothing written,
    if it changes what it may not, takes effect before an act already done, or leaves a cap
    below what is randomized."""
    reason = check_reason(reason)
    study_row = lock_study_exclusive(session)  # waits for acts in progress; they wait for it
    previous = rows(session)[-1]
    old = definition(previous)
    try:
        rules.check_amendment(old, new)
        rules.check_effective_date(
            effective_date,
            latest_act=latest_act_date(session),
            previous_effective=previous.effective_date,
        )
    except rules.VersionRuleError as exc:
        kind = InvalidInput if exc.code == "amendment_not_allowed" else Conflict
        raise kind(exc.code, str(exc)) from None
    states = caps.scope_caps(session, study=old)
    carried = cap_rules.carry_caps(
        {s.scope: s.cap for s in states}, old=rules.caps_of(old), new=rules.caps_of(new)
    )
    try:
        cap_rules.check_caps_hold(states, carried, target=new.total_cap)
    except cap_rules.CapRuleError as exc:
        raise Conflict(exc.code, str(exc)) from None
    before = caps.caps_record(states)
    caps.apply(session, study_row=study_row, caps=carried)
    number = previous.version + 1
    row = StudyVersion(
        version=number,
        definition_json=json.dumps(new.model_dump(mode="json"), sort_keys=True),
        definition_sha256=new.fingerprint(),
        effective_date=effective_date,
        loaded_at=utcnow(),
        loaded_by=actor.username,
        reason=reason,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="study.load_version",
        entity="study",
        entity_id=study_row.code,
        before={"version": previous.version, "caps": before},
        after=with_signature(
            {
                "version": number,
                "effective_date": effective_date.isoformat(),
                "definition_sha256": new.fingerprint(),
                "changes": rules.changed_fields(old, new),
                "caps": carried,
                "total_cap": new.total_cap,
                "definition": new.model_dump(mode="json"),
            },
            signature,
        ),
        reason=reason,
    )
    return next(v for v in list_versions(session, today=utcnow().date()) if v.version == number)
