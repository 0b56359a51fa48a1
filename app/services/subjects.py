"""Subjects: registration and blinded views, scoped to the user's sites."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import DispensedKit, Dispensing, Randomization, Site, Subject
from app.domain.errors import Conflict, NotPermitted, not_found
from app.domain.exports.records import subject_spellings
from app.services import audit
from app.services.actor import Actor
from app.services.blinded_views import dispensing_view, subject_view
from app.services.transaction import utcnow


def get_visible_subject(
    session: Session, *, actor: Actor, subject_id: int, lock: bool = False
) -> Subject:
    """The subject, or 404 for one that does not exist or is at a site the user cannot see;
    with `lock`, its row stays locked until commit."""
    subject = session.get(Subject, subject_id, with_for_update=lock)
    if subject is None or not actor.sees_site(subject.site_id):
        raise not_found(f"Subject {subject_id}")
    return subject


def register(
    session: Session,
    *,
    actor: Actor,
    site_id: str,
    screening_number: str,
    sex: str,
    year_of_birth: int,
) -> dict[str, Any]:
    if not actor.sees_site(site_id):
        raise NotPermitted("not_your_site", f"You are not assigned to site {site_id}.")
    site = session.get(Site, site_id)
    if site is None:
        raise not_found(f"Site {site_id}")
    if not site.active:
        raise Conflict(
            "site_not_active",
            f"Site {site_id} is not active yet: subjects cannot be registered.",
        )
    duplicate = session.execute(
        select(Subject.id).where(
            Subject.site_id == site_id,
            Subject.screening_number.in_(subject_spellings(site_id, screening_number)),
        )
    ).first()
    if duplicate:  # "001" and "DE01-001" at DE01 would share one USUBJID (docs/exports.md)
        raise Conflict(
            "duplicate_subject",
            f"Screening number {screening_number} is already registered at site {site_id}.",
        )
    subject = Subject(
        site_id=site_id,
        screening_number=screening_number,
        sex=sex,
        year_of_birth=year_of_birth,
        status="registered",
        created_at=utcnow(),
        created_by=actor.username,
    )
    session.add(subject)
    session.flush()
    view = subject_view(subject=subject, randomization=None)
    audit.record(
        session,
        actor=actor,
        action="subject.register",
        entity="subject",
        entity_id=subject.id,
        before=None,
        after=view,
    )
    return view


def list_visible(
    session: Session, *, actor: Actor, site_id: str | None = None
) -> list[dict[str, Any]]:
    query = select(Subject).order_by(Subject.id)
    if site_id is not None:
        query = query.where(Subject.site_id == site_id)
    subjects = [s for s in session.execute(query).scalars() if actor.sees_site(s.site_id)]
    randomizations = {
        r.subject_id: r
        for r in session.execute(
            select(Randomization).where(Randomization.subject_id.in_([s.id for s in subjects]))
        ).scalars()
    }
    return [
        subject_view(
            subject=s, randomization=randomizations.get(s.id), visits=visits_of(session, s.id)
        )
        for s in subjects
    ]


def randomization_of(session: Session, subject: Subject) -> Randomization | None:
    return session.execute(
        select(Randomization).where(Randomization.subject_id == subject.id)
    ).scalar_one_or_none()


def subject_detail(session: Session, *, actor: Actor, subject_id: int) -> dict[str, Any]:
    subject = get_visible_subject(session, actor=actor, subject_id=subject_id)
    return subject_view(
        subject=subject,
        randomization=randomization_of(session, subject),
        visits=visits_of(session, subject.id),
    )


def visits_of(session: Session, subject_id: int) -> list[dict[str, Any]]:
    """The subject's dosing visits with the kits in use (replaced kits left out)."""
    result = []
    for dispensing in session.execute(
        select(Dispensing)
        .where(Dispensing.subject_id == subject_id, Dispensing.entered_in_error_at.is_(None))
        .order_by(Dispensing.visit_index)
    ).scalars():
        numbers = (
            session.execute(
                select(DispensedKit.kit_number)
                .where(
                    DispensedKit.dispensing_id == dispensing.id, DispensedKit.replaced_at.is_(None)
                )
                .order_by(DispensedKit.kit_number)
            )
            .scalars()
            .all()
        )
        result.append(dispensing_view(dispensing, list(numbers)))
    return result
