"""Whether this database is production or training, read from its study row (written when the
study is loaded, never changed), and the checks and marks that follow from it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.engine import Database
from app.db.models import Study
from app.domain.environment import Mode, WrongEnvironment, accept_file
from app.domain.errors import InvalidInput
from app.services.unit_reads import held

_MODE = "irt_mode"
"""session.info key: the mode read once per session (a confirmation and its outbox message
both ask; the study row's mode never changes once written)."""


def mode_of(session: Session) -> Mode:
    """The database's mode; production until a study is loaded (nothing to mark yet)."""
    known: Mode | None = session.info.get(_MODE)
    if known is not None:
        return known
    study: Study | None = held(session, Study)
    mode = (
        study.mode
        if study is not None
        else session.execute(select(Study.mode)).scalar_one_or_none()
    )
    if not mode:
        return Mode.PRODUCTION  # not kept: a study may be loaded in this session
    session.info[_MODE] = Mode(mode)
    return Mode(mode)


def database_mode(db: Database) -> Mode:
    with db.read() as session:
        return mode_of(session)


def is_training(session: Session) -> bool:
    return mode_of(session) == Mode.TRAINING


def accept(session: Session, text: str, *, what: str) -> str:
    """A list or kit file's text to parse, refused (`wrong_environment`, nothing imported) when
    it is marked for the other kind of database."""
    try:
        return accept_file(mode_of(session), text, what=what)
    except WrongEnvironment as exc:
        raise InvalidInput("wrong_environment", str(exc)) from None
