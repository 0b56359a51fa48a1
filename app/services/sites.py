"""Sites and depots: activation with its initial shipment, supply levels."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Depot, Site, SupplyLevel
from app.domain.dates import is_timezone
from app.domain.errors import Conflict, InvalidInput, not_found, validation_error
from app.domain.reasons import check_reason
from app.domain.study import StudyDefinition
from app.services import audit
from app.services.actor import Actor
from app.services.locks import lock_site
from app.services.resupply import check_site
from app.services.transaction import utcnow


def add_depot(session: Session, *, actor: Actor, depot_id: str, name: str, country: str) -> None:
    if session.get(Depot, depot_id) is not None:
        raise Conflict("depot_exists", f"Depot {depot_id} exists already.")
    session.add(Depot(id=depot_id, name=name, country=country, created_at=utcnow()))
    audit.record(
        session,
        actor=actor,
        action="depot.create",
        entity="depot",
        entity_id=depot_id,
        before=None,
        after={"name": name, "country": country},
    )


def site_view(site: Site) -> dict[str, Any]:
    return {
        "site_id": site.id,
        "name": site.name,
        "country": site.country,
        "active": site.active,
        "depot_id": site.depot_id,
        "timezone": site.timezone,
    }


def list_sites(session: Session, actor: Actor) -> list[dict[str, Any]]:
    return [
        site_view(s)
        for s in session.execute(select(Site).order_by(Site.id)).scalars()
        if actor.sees_site(s.id)
    ]


def activate(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    site_id: str,
    depot_id: str | None,
    reason: str,
    today: date,
) -> dict[str, Any]:
    """Open a site for enrolment; its initial shipment (to the target levels) is requested."""
    reason = check_reason(reason)
    site = lock_site(session, site_id)
    if site.active:
        raise Conflict("site_already_active", f"Site {site_id} is active already.")
    if depot_id is not None:
        if session.get(Depot, depot_id) is None:
            raise not_found(f"Depot {depot_id}")
        site.depot_id = depot_id
    if site.depot_id is None:
        raise InvalidInput(
            "validation_error",
            "Name the depot that supplies this site.",
            errors=[{"field": "depot_id", "message": "a depot is required"}],
        )
    before = site_view(site)
    site.active = True
    audit.record(
        session,
        actor=actor,
        action="site.activate",
        entity="site",
        entity_id=site_id,
        before=before,
        after=site_view(site),
        reason=reason,
    )
    session.flush()
    shipment = check_site(session, study=study, actor=actor, site=site, today=today, kind="initial")
    return {**site_view(site), "initial_shipment_id": shipment.id if shipment else None}


def check_timezone(timezone: str) -> str:
    """An IANA zone name, as the time zone database spells it, or a refusal that says so."""
    if not is_timezone(timezone):
        raise validation_error(
            "timezone",
            f"Unknown time zone {timezone!r}: use an IANA name such as Europe/Berlin or "
            "America/New_York.",
        )
    return timezone


def set_timezone(session: Session, *, actor: Actor, site_id: str, timezone: str) -> dict[str, Any]:
    """The site's time zone: its local dates in the exports and pages follow it from now on
    (the stored moments are UTC, so nothing recorded changes)."""
    zone = check_timezone(timezone)
    site = lock_site(session, site_id)
    before = site_view(site)
    site.timezone = zone
    audit.record(
        session,
        actor=actor,
        action="site.timezone",
        entity="site",
        entity_id=site_id,
        before=before,
        after=site_view(site),
    )
    return site_view(site)


def set_levels(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    site_id: str,
    trigger: int,
    target: int,
) -> dict[str, Any]:
    """A site's own trigger and target, the same for every content (so they reveal nothing)."""
    if target <= trigger:
        raise InvalidInput(
            "validation_error",
            "The target must be above the trigger.",
            errors=[{"field": "target", "message": "must be above trigger"}],
        )
    lock_site(session, site_id)
    for content in study.contents:
        level = session.get(SupplyLevel, (site_id, content))
        if level is None:
            session.add(
                SupplyLevel(site_id=site_id, content=content, trigger=trigger, target=target)
            )
        else:
            level.trigger, level.target = trigger, target
    audit.record(
        session,
        actor=actor,
        action="site.supply_levels",
        entity="site",
        entity_id=site_id,
        before=None,
        after={"trigger": trigger, "target": target},
    )
    return {"site_id": site_id, "trigger": trigger, "target": target}


def levels_view(session: Session, *, study: StudyDefinition, actor: Actor) -> list[dict[str, Any]]:
    """Each visible site with its trigger and target: its own (`set_levels` gives every content
    the same), else the study's. Never one per content."""
    own = {
        site_id: (int(trigger), int(target))
        for site_id, trigger, target in session.execute(
            select(
                SupplyLevel.site_id, func.max(SupplyLevel.trigger), func.max(SupplyLevel.target)
            ).group_by(SupplyLevel.site_id)
        ).all()
    }
    default = (study.supply.resupply_trigger, study.supply.resupply_target)
    views = []
    for site in list_sites(session, actor):
        trigger, target = own.get(site["site_id"], default)
        views.append(
            {**site, "trigger": trigger, "target": target, "own_levels": site["site_id"] in own}
        )
    return views


def timezones(session: Session) -> dict[str, str]:
    """Each site's IANA time zone, to show its times in (not sensitive: every site's)."""
    return {site_id: zone for site_id, zone in session.execute(select(Site.id, Site.timezone))}
