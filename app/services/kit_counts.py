"""The kept kit counts (app/db/kit_counts.py): what the stock report reads, the fold that moves
the triggers' changes into the kept rows, and the monitor's check that the two together still
equal the kits they count."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session

from app.db.engine import Database
from app.db.kit_counts import KitCount, KitCountChange
from app.db.models import Kit
from app.domain.audit_replay import Discrepancy
from app.domain.reports import StockKit
from app.services.transaction import writing

FOLD_LOCK_SPACE = 0x1A8
"""The advisory lock that serializes folds on PostgreSQL (next to the strata's, 0x1A7)."""

_UPSERT = text(
    "INSERT INTO kit_counts (site_id, depot_id, status, expiry_date, kits) "
    "VALUES (:site_id, :depot_id, :status, :expiry_date, :kits) "
    "ON CONFLICT (site_id, depot_id, status, expiry_date) "
    "DO UPDATE SET kits = kit_counts.kits + excluded.kits"
)


def _both(where: Any = None) -> Any:
    """Kept rows and pending changes as one relation (one statement reads both: one snapshot)."""
    parts = []
    for table in (KitCount, KitCountChange):
        part = select(table.site_id, table.depot_id, table.status, table.expiry_date, table.kits)
        parts.append(part if where is None else part.where(where(table)))
    return union_all(*parts).subquery()


def _at(names: Sequence[str]) -> Any:
    def where(table: type[KitCount] | type[KitCountChange]) -> ColumnElement[bool]:
        return or_(
            table.site_id.in_(bindparam("names", expanding=True)),
            and_(table.site_id == "", table.depot_id.in_(bindparam("names", expanding=True))),
        )

    return where


def stock(session: Session, *, names: Sequence[str] | None) -> list[StockKit]:
    """Kits per place (site, or depot for a kit at no site), status and expiry date at the
    places `names` (None: everywhere, without naming each place in the statement)."""
    if names is not None and not names:
        return []
    both = _both(None if names is None else _at(names))
    key = (both.c.site_id, both.c.depot_id, both.c.status, both.c.expiry_date)
    statement = select(*key, func.sum(both.c.kits)).group_by(*key)
    values = {} if names is None else {"names": list(names)}
    rows = session.connection().execute(statement, values)
    return [
        StockKit(site or depot, status, expiry, int(n))
        for site, depot, status, expiry, n in rows
        if n
    ]


def fold(session: Session) -> int:
    """Move every committed change into the kept counts; the number of changes folded. Folds
    wait for each other (PostgreSQL: an advisory lock; SQLite: its one writer), so the kept rows
    have one writer at a time and no change is folded twice: each is deleted as it is read."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(FOLD_LOCK_SPACE, 0)))
    changes = session.execute(
        text("DELETE FROM kit_count_changes RETURNING site_id, depot_id, status, expiry_date, kits")
    ).all()
    net: Counter[tuple[Any, ...]] = Counter()
    for site, depot, status, expiry, n in changes:
        net[(site, depot, status, expiry)] += n
    moved = [
        {"site_id": k[0], "depot_id": k[1], "status": k[2], "expiry_date": k[3], "kits": n}
        for k, n in sorted(net.items())
        if n
    ]
    if moved:
        session.execute(_UPSERT, moved)
        session.execute(text("DELETE FROM kit_counts WHERE kits = 0"))
    return len(changes)


def fold_kit_counts(db: Database) -> int:
    """`fold` in a transaction of its own: the fold's lock is never taken while the audit chain
    head is held (app/services/locks.py), so no writer waits for it in the other order."""
    with writing(db) as session:
        return fold(session)


def drift(session: Session) -> list[Discrepancy]:
    """Every key whose kept count (folded and pending) differs from a count of the kits, in one
    statement (one snapshot, whatever moves meanwhile). An edited count would misreport stock to
    the supply manager."""
    kit_key = (
        func.coalesce(Kit.site_id, ""),
        func.coalesce(Kit.depot_id, ""),
        Kit.status,
        Kit.expiry_date,
    )
    kept = _both()
    counted = select(*kit_key, func.count()).group_by(*kit_key).subquery()
    tagged = union_all(
        select(*kept.c, literal(1).label("kept")),
        select(*counted.c, literal(0).label("kept")),
    ).subquery()
    key = (tagged.c.site_id, tagged.c.depot_id, tagged.c.status, tagged.c.expiry_date)
    have = func.sum(case((tagged.c.kept == 1, tagged.c.kits), else_=0))
    count = func.sum(case((tagged.c.kept == 0, tagged.c.kits), else_=0))
    statement = select(*key, have, count).group_by(*key).having(have != count).order_by(*key)
    rows = session.execute(statement)
    return [
        Discrepancy(
            "kit_counts",
            f"{site}/{depot}/{status}/{expiry}",
            "kits",
            str(int(found)),
            str(int(counted_)),
            None,
            "the kept count differs from the kits it counts",
        )
        for site, depot, status, expiry, found, counted_ in rows
    ]
