"""Row locks (PostgreSQL FOR UPDATE; SQLite's BEGIN IMMEDIATE already serializes writers).
Work on one site's or one depot's stock locks its row. Lock order: study, site, depot."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Depot, Site
from app.services.errors import not_found

Row = TypeVar("Row")


def lock_row(session: Session, model: type[Row], key_column: Any, key: object, what: str) -> Row:
    """The row whose `key_column` equals `key`, locked until commit; 404 naming `what`."""
    row = session.execute(
        select(model).where(key_column == key).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise not_found(f"{what} {key}")
    return row


def lock_site(session: Session, site_id: str) -> Site:
    return lock_row(session, Site, Site.id, site_id, "Site")


def lock_depot(session: Session, depot_id: str) -> Depot:
    return lock_row(session, Depot, Depot.id, depot_id, "Depot")
