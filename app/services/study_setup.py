"""Setting a study up: load the definition, sites, users; used by the CLI and the tests."""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Cohort, Site, Study, User, UserSite
from app.domain.dates import country_timezone
from app.domain.environment import Mode
from app.domain.errors import Conflict, InvalidInput, NotFound
from app.domain.password_policy import check_password
from app.domain.roles import Role
from app.domain.study import StudyDefinition
from app.services import audit, study_versions
from app.services.actor import Actor
from app.services.passwords import hash_password
from app.services.sites import check_timezone
from app.services.transaction import utcnow


def load_study(
    session: Session, *, study: StudyDefinition, actor: Actor, mode: Mode = Mode.PRODUCTION
) -> None:
    """Store the definition snapshot (version 1), the phase Ib cohorts (all planned) and the
    database's mode, production or training, for good."""
    if session.execute(select(Study.id)).first():
        raise Conflict("study_exists", "A study is already loaded in this database.")
    definition = study.model_dump(mode="json")
    now = utcnow()
    session.add(
        Study(
            code=study.code,
            definition_json=json.dumps(definition, sort_keys=True),
            definition_sha256=study.fingerprint(),
            created_at=now,
            mode=str(mode),
            phase2_cap=study.phase_ii.cap,
        )
    )
    study_versions.add_first(session, study=study, actor=actor, loaded_at=now)
    for position, cohort in enumerate(study.phase_ib.cohorts, start=1):
        session.add(
            Cohort(
                code=cohort.code,
                position=position,
                dose_mg_per_kg=cohort.dose_mg_per_kg,
                cap=cohort.cap,
                status="planned",
            )
        )
    audit.record(
        session,
        actor=actor,
        action="study.load",
        entity="study",
        entity_id=study.code,
        before=None,
        after={
            "definition_sha256": study.fingerprint(),
            "definition": definition,
            "mode": str(mode),
        },
    )


def add_site(
    session: Session,
    *,
    actor: Actor,
    site_id: str,
    name: str,
    country: str,
    depot_id: str | None = None,
    timezone: str | None = None,
) -> None:
    """A new site, inactive until the sponsor activates it (which ships its first kits); in
    `timezone`, by default the first zone of its country (app/domain/dates.py)."""
    if session.get(Site, site_id) is not None:
        raise Conflict("site_exists", f"Site {site_id} exists already.")
    zone = check_timezone(timezone) if timezone is not None else country_timezone(country)
    session.add(
        Site(
            id=site_id,
            name=name,
            country=country,
            active=False,
            depot_id=depot_id,
            created_at=utcnow(),
            timezone=zone,
        )
    )
    audit.record(
        session,
        actor=actor,
        action="site.create",
        entity="site",
        entity_id=site_id,
        before=None,
        after={
            "name": name,
            "country": country,
            "active": False,
            "depot_id": depot_id,
            "timezone": zone,
        },
    )


def add_user(
    session: Session,
    *,
    actor: Actor,
    username: str,
    password: str,
    role: Role,
    site_ids: Iterable[str] = (),
    email: str | None = None,
    full_name: str | None = None,
) -> None:
    if ":" in username:  # `system:<job>` names the service's own jobs in the trail
        raise InvalidInput("validation_error", "A user name may not contain a colon.")
    if username.casefold() in ("anonymous", "system"):  # who the trail names when nobody acts
        raise InvalidInput("validation_error", f"The user name {username!r} is reserved.")
    if session.execute(select(User.id).where(User.username == username)).first():
        raise Conflict("user_exists", f"User {username} exists already.")
    sites = sorted(set(site_ids))
    for site_id in sites:
        if session.get(Site, site_id) is None:
            raise NotFound("not_found", f"Site {site_id} was not found.")
    user = User(
        username=username,
        password_hash=hash_password(check_password(password, username=username)),
        role=str(role),
        active=True,
        created_at=utcnow(),
        email=email,
        token_version=0,
        full_name=full_name,
    )
    session.add(user)
    session.flush()
    for site_id in sites:
        session.add(UserSite(user_id=user.id, site_id=site_id))
    audit.record(
        session,
        actor=actor,
        action="user.create",
        entity="user",
        entity_id=username,
        before=None,
        after={"role": str(role), "site_ids": sites, "active": True, "email": email},
    )
