"""Locks (PostgreSQL row and advisory locks; SQLite's BEGIN IMMEDIATE already serializes
writers). Work on one site's or one depot's stock locks its row; a randomization locks its
stratum. Lock order: study, subject, site, stratum, depot, audit chain head (always last); a row
locked once is not asked for again in the same transaction (app/services/unit_reads.py). The kit
count fold's lock is taken only in a transaction of its own (app/services/kit_counts.py)."""

from __future__ import annotations

import zlib
from typing import Any, TypeVar

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import Session

from app.db.models import Depot, Site
from app.domain.errors import not_found
from app.services.unit_reads import held, hold

Row = TypeVar("Row")
_LOCKING: dict[tuple[type, str], Select[Any]] = {}
"""The locking statement of each table and key, built once."""


def lock_row(session: Session, *, model: type[Row], key_column: Any, key: object, what: str) -> Row:
    """The row whose `key_column` equals `key`, locked until commit; 404 naming `what`. A row
    this transaction has locked already is not asked for again (the lock holds until the end)."""
    kept: Row | None = held(session, ("locked", model, key))
    if kept is not None:
        return kept
    statement = _LOCKING.get((model, key_column.key))
    if statement is None:
        statement = select(model).where(key_column == bindparam("key")).with_for_update()
        _LOCKING[(model, key_column.key)] = statement
    row: Row | None = session.execute(statement, {"key": key}).scalar_one_or_none()
    if row is None:
        raise not_found(f"{what} {key}")
    return hold(session, ("locked", model, key), row)


def lock_site(session: Session, site_id: str) -> Site:
    return lock_row(session, model=Site, key_column=Site.id, key=site_id, what="Site")


def lock_depot(session: Session, depot_id: str) -> Depot:
    return lock_row(session, model=Depot, key_column=Depot.id, key=depot_id, what="Depot")


STRATUM_LOCK_SPACE = 0x1A7
"""The first key of the stratum advisory locks, so that no other use of advisory locks collides."""


def lock_stratum(session: Session, *, scope: str, stratum: str) -> None:
    """Serialize the randomizations of one stratum until commit (its slots are used strictly in
    sequence); other strata go on in parallel. A hash collision between two strata only makes
    them wait for each other."""
    if session.get_bind().dialect.name != "postgresql":
        return
    key = zlib.crc32(f"{scope}/{stratum}".encode()) - 2**31
    session.execute(select(func.pg_advisory_xact_lock(STRATUM_LOCK_SPACE, key)))
