"""Confirmations: each randomization, dispensing, kit replacement and emergency unblinding
produces one, stored, audited and sent through the outbox in the event's own transaction.

The stored body is the blinded variant (study, mode, site, subject, visit, dose, kit numbers,
UTC time, performed by). The treatment is kept beside it and shown only to the unblinded monitor
and, for an unblinding, to the investigator who performed it (`may_see_treatment`). The outbox
never carries the treatment: the site's users get the blinded variant, and the unblinding
investigator a notice that the unblinded confirmation waits for them behind their login."""

from __future__ import annotations

import json
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Confirmation, Randomization, Site, Slot, Subject, User
from app.domain.date_display import format_moment
from app.domain.environment import LABEL
from app.domain.errors import not_found
from app.domain.roles import SITE_ROLES, Role
from app.domain.study import PHASE_IB, StudyDefinition
from app.services import audit, environment, outbox
from app.services.actor import Actor
from app.services.blinded_views import iso_utc
from app.services.transaction import utcnow

Kind = Literal[
    "randomization", "dispensing", "replacement", "unblinding", "status_change", "status_correction"
]
TITLES: dict[str, str] = {
    "randomization": "Randomization confirmation",
    "dispensing": "Dosing visit confirmation",
    "replacement": "Kit replacement confirmation",
    "unblinding": "Emergency unblinding confirmation",
    "status_change": "Subject status change confirmation",
    "status_correction": "Subject status correction confirmation",
}
NOT_RANDOMIZED = "Not randomized"
"""The treatment kept with the confirmation of a subject that was never randomized (a screen
failure, a withdrawal before randomization)."""


def record(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    kind: Kind,
    subject_id: int,
    result: dict[str, Any],
    randomized: tuple[Randomization, str] | None = None,
) -> dict[str, Any]:
    """Store the confirmation of the event whose response is `result`, audit it, queue its
    messages; returns `result` with its `confirmation_id`. `randomized`: the subject's
    randomization and arm when the caller has just made them (not read again)."""
    subject = session.get(Subject, subject_id)
    assert subject is not None
    site = session.get(Site, subject.site_id)
    row = (
        randomized
        or session.execute(
            select(Randomization, Slot.arm)
            .join(Slot, Slot.id == Randomization.slot_id)
            .where(Randomization.subject_id == subject.id)
        ).first()
    )
    randomization, arm = row if row is not None else (None, None)
    now = utcnow()
    body = {
        "kind": kind,
        "title": TITLES[kind],
        "study_code": study.code,
        "study_name": study.name,
        **_randomization_fields(randomization),
        "site_id": subject.site_id,
        "site_name": site.name if site else subject.site_id,
        "subject_id": subject.id,
        "screening_number": subject.screening_number,
        "performed_at": iso_utc(now),
        "performed_by": actor.username,
        "performed_by_role": actor.audit_role,
        **_event_fields(kind=kind, randomization=randomization, result=result),
    }
    if environment.is_training(session):  # printed, sent and exported with the confirmation
        body["environment"] = LABEL
    confirmation = Confirmation(
        kind=kind,
        subject_id=subject.id,
        site_id=subject.site_id,
        visit=body["visit"],
        created_at=now,
        created_by=actor.username,
        created_by_role=actor.audit_role,
        body=json.dumps(body, sort_keys=True),
        treatment=NOT_RANDOMIZED
        if randomization is None or arm is None
        else study.treatment_label(arm, randomization.dose_level_mg_per_kg),
    )
    session.add(confirmation)
    session.flush()
    view = {"confirmation_id": confirmation.id, **body}
    recipients = outbox.site_users(session, subject.site_id)
    when = format_moment(now, site.timezone if site else None)  # as the site reads it
    line = f"{TITLES[kind]}: subject {subject.screening_number} at site {subject.site_id}, {when}"
    outbox.enqueue(
        session, kind=f"confirmation.{kind}", recipients=recipients, subject_line=line, body=view
    )
    if kind == "unblinding":
        outbox.enqueue(
            session,
            kind="confirmation.unblinded_notice",
            recipients=[_address(session, actor.username)],
            subject_line=f"Unblinded confirmation {confirmation.id} is ready for you",
            body={
                "confirmation_id": confirmation.id,
                "subject_id": subject.id,
                "site_id": subject.site_id,
                "note": "Log in to the IRT and open this confirmation to read the treatment; "
                "it is not sent by message.",
            },
        )
    audit.record(
        session,
        actor=actor,
        action="confirmation.create",
        entity="confirmation",
        entity_id=confirmation.id,
        before=None,
        after={**view, "recipients": sorted(set(recipients))},
    )
    return {**result, "confirmation_id": confirmation.id}


def _mode(randomization: Randomization) -> str:
    if randomization.stage == PHASE_IB:
        return f"Phase Ib, cohort {randomization.scope}"
    return "Phase II"


def _randomization_fields(randomization: Randomization | None) -> dict[str, Any]:
    """Stage, cohort, mode, number and stratum; all None for a subject never randomized."""
    if randomization is None:
        keys = ("stage", "cohort", "mode", "randomization_number", "stratum")
        return dict.fromkeys(keys)
    return {
        "stage": randomization.stage,
        "cohort": randomization.scope if randomization.stage == PHASE_IB else None,
        "mode": _mode(randomization),
        "randomization_number": randomization.randomization_number,
        "stratum": randomization.stratum,
    }


def _event_fields(
    *, kind: Kind, randomization: Randomization | None, result: dict[str, Any]
) -> dict[str, Any]:
    """What the event adds: visit, dose and kits; the replaced kit; the unblinding category."""
    fields: dict[str, Any] = {
        "visit": None,
        "visit_date": None,
        "dose": None,
        "kits": [],
        "replaced_kit": None,
        "reason_category": None,
        "signature": result.get("signature"),
    }
    if kind in ("status_change", "status_correction"):
        fields.update(
            reason_category=result.get("reason_category"),
            status=result["status"],
            from_status=result["from_status"],
            effective_date=result.get("effective_date"),
        )
    elif kind == "randomization":
        assert randomization is not None
        fields.update(
            visit="D1",
            visit_date=randomization.visit_date.isoformat(),
            dose=result["dose"],
            kits=list(result["kits"]),
        )
    elif kind == "dispensing":
        fields.update(
            visit=result["visit"],
            visit_date=result["visit_date"],
            dose=result["dose"],
            kits=list(result["kits"]),
        )
    elif kind == "replacement":
        fields.update(
            visit=result["visit"], kits=[result["kit"]], replaced_kit=result["replaced_kit"]
        )
    else:
        fields.update(reason_category=result["reason_category"])
    return fields


def _address(session: Session, username: str) -> str:
    email = session.execute(select(User.email).where(User.username == username)).scalar()
    return email or username


# --- reading ------------------------------------------------------------------------------------


def may_see_treatment(actor: Actor, confirmation: Confirmation) -> bool:
    """The unblinded monitor, and the investigator who unblinded this very subject."""
    if actor.role == Role.UNBLINDED_MONITOR:
        return True
    return (
        confirmation.kind == "unblinding"
        and actor.role == Role.INVESTIGATOR
        and confirmation.created_by == actor.username
    )


def view(confirmation: Confirmation, with_treatment: bool = False) -> dict[str, Any]:
    """The blinded variant; `with_treatment` adds the treatment (the unblinded variant)."""
    result: dict[str, Any] = {"confirmation_id": confirmation.id, **json.loads(confirmation.body)}
    if with_treatment:
        result["treatment"] = confirmation.treatment
    return result


def get_visible(session: Session, *, actor: Actor, confirmation_id: int) -> Confirmation:
    """The confirmation, or 404 when it does not exist or is of a site the user cannot see."""
    confirmation = session.get(Confirmation, confirmation_id)
    if confirmation is None or not actor.sees_site(confirmation.site_id):
        raise not_found(f"Confirmation {confirmation_id}")
    return confirmation


def list_visible(
    session: Session,
    *,
    actor: Actor,
    site_id: str | None = None,
    subject_id: int | None = None,
    limit: int = 500,
) -> list[Confirmation]:
    """The newest confirmations of the user's sites first."""
    query = select(Confirmation).order_by(Confirmation.id.desc())
    if site_id is not None:
        query = query.where(Confirmation.site_id == site_id)
    if subject_id is not None:
        query = query.where(Confirmation.subject_id == subject_id)
    if actor.role in SITE_ROLES:
        query = query.where(Confirmation.site_id.in_(sorted(actor.site_ids)))
    return list(session.execute(query.limit(limit)).scalars())
