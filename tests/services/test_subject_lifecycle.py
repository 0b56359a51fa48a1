"""The lifecycle use cases on both engines: acts and undos chain newest first with both rows
kept (the table refuses edits), a kit replacement is refused off treatment, dates before the
last dose are refused, and the audit replay explains every status."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db.engine import Database
from app.db.models import DispensedKit, Dispensing, SubjectStatusChange
from app.domain.errors import Conflict, InvalidInput
from app.domain.kits import KitStatus
from app.domain.lifecycle import Act
from app.domain.roles import Role
from app.domain.study import load_study
from app.services import audit_integrity, commands, lifecycle_commands, subject_lifecycle
from app.services.actor import Actor
from app.services.commands import Retry
from app.services.signatures import SignatureInput
from app.settings import Settings
from tests.support.builders import eligible_answers
from tests.support.demo import DEMO_PASSWORD

STUDY = load_study()
COORDINATOR = Actor("coordinator", Role.SITE_COORDINATOR, frozenset({"DE01", "DE02"}))
PHARMACIST = Actor("pharmacist", Role.PHARMACIST, frozenset({"DE01", "DE02"}))
NO_KEY = Retry(key=None, lease_seconds=30)
REASON = "Recorded in the source documents"


def _randomized(db: Database, number: str) -> int:
    subject = commands.register_subject(
        db=db,
        actor=COORDINATOR,
        retry=NO_KEY,
        site_id="DE01",
        screening_number=number,
        sex="F",
        year_of_birth=1980,
    ).result
    commands.randomize(
        db=db,
        study=STUDY,
        actor=COORDINATOR,
        retry=Retry(key=f"lc-{number}", lease_seconds=30),
        subject_id=subject.subject_id,
        visit_date=date.today(),
        weight_kg=Decimal("70.0"),
        answers=eligible_answers(screening_date=date.today() - timedelta(days=3)),
    )
    return subject.subject_id


def _act(db: Database, subject_id: int, act: Act, category: str, day: date | None = None):
    return lifecycle_commands.record_status_change(
        db=db,
        study=STUDY,
        actor=COORDINATOR,
        retry=NO_KEY,
        subject_id=subject_id,
        act=act,
        effective_date=day or date.today(),
        reason_category=category,
        reason=REASON,
    ).result


def _undo(db: Database, subject_id: int, change_id: int):
    return lifecycle_commands.undo_status_change(
        db=db,
        study=STUDY,
        actor=COORDINATOR,
        retry=NO_KEY,
        settings=Settings(),
        subject_id=subject_id,
        change_id=change_id,
        reason="Entered for the wrong subject",
        signature=SignatureInput(password=DEMO_PASSWORD),
    ).result


def test_acts_and_undos_chain_newest_first_and_keep_every_row(demo_db: Database) -> None:
    subject_id = _randomized(demo_db, "LC-1")
    discontinued = _act(demo_db, subject_id, Act.DISCONTINUE, "adverse_event")
    withdrawn = _act(demo_db, subject_id, Act.WITHDRAW, "withdrawal_by_subject")
    with pytest.raises(Conflict) as refused:
        _undo(demo_db, subject_id, discontinued.change_id)
    assert refused.value.code == "not_latest_change"
    assert _undo(demo_db, subject_id, withdrawn.change_id).status == "discontinued"
    back = _undo(demo_db, subject_id, discontinued.change_id)
    assert (back.status, back.corrects) == ("randomized", discontinued.change_id)
    assert back.signature is not None and "dosing discontinuation" in back.signature.meaning
    with demo_db.read() as session:
        history = subject_lifecycle.history(session, actor=PHARMACIST, subject_id=subject_id)
        report = audit_integrity.replay_trail(session)
    assert [(c.act, c.status, c.undone_by is not None) for c in history.changes] == [
        ("discontinue", "discontinued", True),
        ("withdraw", "withdrawn", True),
        (None, "discontinued", False),
        (None, "randomized", False),
    ]
    assert history.status == "randomized" and history.undoable_change_id is None
    assert report.ok, report.discrepancies
    # the history cannot be edited in place, on either engine
    with pytest.raises(Exception, match="append-only"), demo_db.write() as session:
        session.execute(update(SubjectStatusChange).values(reason="edited afterwards"))


def test_off_treatment_no_replacement_and_no_date_before_the_last_dose(demo_db: Database) -> None:
    subject_id = _randomized(demo_db, "LC-2")
    with pytest.raises(InvalidInput) as early:
        _act(demo_db, subject_id, Act.DISCONTINUE, "other", date.today() - timedelta(days=1))
    assert early.value.extra["errors"][0]["field"] == "effective_date"
    _act(demo_db, subject_id, Act.DISCONTINUE, "lack_of_efficacy")
    with demo_db.read() as session:
        history = subject_lifecycle.history(session, actor=PHARMACIST, subject_id=subject_id)
        day_one = _day_one_kit(session, subject_id)
    assert history.status == "discontinued"
    with pytest.raises(Conflict) as refused:
        commands.replace_kit(
            db=demo_db,
            study=STUDY,
            actor=PHARMACIST,
            retry=Retry(key="lc-2-replace", lease_seconds=30),
            subject_id=subject_id,
            kit_number=day_one,
            status=KitStatus.DAMAGED,
            reason="Vial dropped at preparation",
        )
    assert refused.value.code == "subject_not_on_treatment"


def _day_one_kit(session: Session, subject_id: int) -> str:
    return str(
        session.execute(
            select(DispensedKit.kit_number)
            .join(Dispensing, Dispensing.id == DispensedKit.dispensing_id)
            .where(Dispensing.subject_id == subject_id)
        ).scalar_one()
    )
