"""Reads that a unit of work makes more than once, made once per transaction.

A randomization asks for the study row, the definition versions and the cohorts' statuses in
several rules, and locks its site in two; each ask was a statement. Both kinds live in
`session.info` until the transaction ends or anything rolls back (a lock taken inside a
savepoint that rolls back is released with it):
- rows the transaction locked or loaded (`hold`, `held`): ORM objects, which show the
  session's own changes, and which no other transaction can change while the lock is held;
- values read from rows (`once`): dropped as soon as the session flushes a change, or holds
  an unflushed change to an object of a class the value was read from.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

T = TypeVar("T")

_KEPT = "irt_unit_reads"
_HELD = "irt_unit_rows"


def once(session: Session, key: object, read: Callable[[], T], *, of: tuple[type, ...]) -> T:
    """`read()` the first time in this transaction, its value again after, while no object of
    the classes `of` is pending, changed or deleted in the session."""
    kept: dict[object, Any] = session.info.setdefault(_KEPT, {})
    if of and _touches(session, of):
        kept.clear()
        return read()
    if key in kept:
        return kept[key]  # type: ignore[no-any-return]
    value = kept[key] = read()
    return value


def hold(session: Session, key: object, row: T) -> T:
    """Keep a row the caller locked or loaded, for this transaction."""
    session.info.setdefault(_HELD, {})[key] = row
    return row


def held(session: Session, key: object) -> Any:
    """The row kept under `key` in this transaction, or None."""
    return session.info.get(_HELD, {}).get(key)


def _touches(session: Session, classes: tuple[type, ...]) -> bool:
    return any(isinstance(o, classes) for o in chain(session.new, session.dirty, session.deleted))


def _forget(session: Session) -> None:
    session.info.pop(_KEPT, None)
    session.info.pop(_HELD, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_at_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the transaction itself, not a flush's or a savepoint's
        _forget(session)


@event.listens_for(Session, "after_soft_rollback")
def _forget_on_rollback(session: Session, _previous: SessionTransaction) -> None:
    _forget(session)  # a savepoint rolled back releases what was locked inside it


@event.listens_for(Session, "before_flush")
def _forget_on_write(session: Session, _context: Any, _instances: Any) -> None:
    if session.new or session.dirty or session.deleted:
        session.info.pop(_KEPT, None)
