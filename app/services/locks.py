"""Row locks that serialize work on one site's or one depot's stock (PostgreSQL FOR UPDATE;
SQLite's BEGIN IMMEDIATE already serializes writers). Lock order: study, site, depot."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Depot, Site
from app.services.errors import not_found


def lock_site(session: Session, site_id: str) -> Site:
    site = session.execute(
        select(Site).where(Site.id == site_id).with_for_update()
    ).scalar_one_or_none()
    if site is None:
        raise not_found(f"Site {site_id}")
    return site


def lock_depot(session: Session, depot_id: str) -> Depot:
    depot = session.execute(
        select(Depot).where(Depot.id == depot_id).with_for_update()
    ).scalar_one_or_none()
    if depot is None:
        raise not_found(f"Depot {depot_id}")
    return depot
