"""The commands of app/services/commands.py called directly, as the API, the pages and the CLI
call them, on both engines: typed results, one allocation per key, the same answer on a retry,
and typed refusals that leave nothing behind."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.db.engine import Database
from app.db.models import Dispensing, IdempotencyKey, Randomization, Subject
from app.domain.errors import Conflict, InvalidInput, MalformedRequest, NotPermitted
from app.domain.kits import KitStatus
from app.domain.roles import Role
from app.domain.study import load_study
from app.services import commands
from app.services.actor import Actor
from app.services.results import DispenseOut, RandomizeOut, ReplaceResultOut, SubjectOut
from app.services.signatures import SignatureInput
from app.settings import Settings
from tests.support.builders import eligible_answers
from tests.support.demo import DEMO_PASSWORD

STUDY = load_study()
COORDINATOR = Actor("coordinator", Role.SITE_COORDINATOR, frozenset({"DE01"}))
PHARMACIST = Actor("pharmacist", Role.PHARMACIST, frozenset({"DE01"}))
INVESTIGATOR = Actor("investigator", Role.INVESTIGATOR, frozenset({"DE01"}))


def _retry(key: str | None) -> commands.Retry:
    return commands.Retry(key=key, lease_seconds=30)


def _today() -> date:
    return date.today()


def _register(db: Database, number: str, site: str = "DE01") -> SubjectOut:
    return commands.register_subject(
        db=db,
        actor=COORDINATOR,
        retry=_retry(None),
        site_id=site,
        screening_number=number,
        sex="F",
        year_of_birth=1985,
    ).result


def _randomize(db: Database, subject_id: int, key: str) -> commands.Done[RandomizeOut]:
    return commands.randomize(
        db=db,
        study=STUDY,
        actor=COORDINATOR,
        retry=_retry(key),
        subject_id=subject_id,
        visit_date=_today() - timedelta(days=28),  # day 1 four weeks ago: week 4 is due today
        weight_kg=Decimal("70.0"),
        answers=eligible_answers(screening_date=_today() - timedelta(days=31)),
    )


def _count(db: Database, model: type) -> int:
    with db.read() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_randomize_once_per_key_and_the_retry_gets_the_same_typed_answer(
    demo_db: Database,
) -> None:
    subject = _register(demo_db, "UC-001")
    first = _randomize(demo_db, subject.subject_id, "key-1")
    again = _randomize(demo_db, subject.subject_id, "key-1")
    assert isinstance(first.result, RandomizeOut) and not first.replayed
    assert isinstance(again.result, RandomizeOut) and again.replayed
    assert again.result == first.result
    assert first.result.kits and first.result.dose.vials == len(first.result.kits)
    assert _count(demo_db, Randomization) == 1


def test_an_allocating_command_needs_a_key_and_refuses_without_writing(
    demo_db: Database,
) -> None:
    subject = _register(demo_db, "UC-002")
    with pytest.raises(MalformedRequest) as refused:
        _randomize(demo_db, subject.subject_id, "")
    assert refused.value.code == "idempotency_key_required"
    assert _count(demo_db, Randomization) == 0
    assert _count(demo_db, IdempotencyKey) == 0


def test_a_refused_command_releases_its_key(demo_db: Database) -> None:
    subject = _register(demo_db, "UC-003")
    with pytest.raises(InvalidInput):
        commands.randomize(
            db=demo_db,
            study=STUDY,
            actor=COORDINATOR,
            retry=_retry("key-3"),
            subject_id=subject.subject_id,
            visit_date=_today(),
            weight_kg=Decimal("70.0"),
            answers=eligible_answers(screening_date=_today() + timedelta(days=1)),
        )
    assert _count(demo_db, IdempotencyKey) == 0
    # the same key works once the input is right
    assert not _randomize(demo_db, subject.subject_id, "key-3").replayed


def test_dispense_replace_and_unblind(demo_db: Database) -> None:
    subject = _register(demo_db, "UC-004")
    randomized = _randomize(demo_db, subject.subject_id, "key-4").result
    dosed = commands.dispense(
        db=demo_db,
        study=STUDY,
        actor=PHARMACIST,
        retry=_retry("key-5"),
        subject_id=subject.subject_id,
        visit_code="W4",
        visit_date=_today(),
        weight_kg=Decimal("71.0"),
    )
    assert isinstance(dosed.result, DispenseOut) and dosed.result.visit == "W4"
    assert not set(dosed.result.kits) & set(randomized.kits)
    replaced = commands.replace_kit(
        db=demo_db,
        study=STUDY,
        actor=PHARMACIST,
        retry=_retry("key-6"),
        subject_id=subject.subject_id,
        kit_number=dosed.result.kits[0],
        status=KitStatus.DAMAGED,
        reason="vial cracked on opening",
    ).result
    assert isinstance(replaced, ReplaceResultOut)
    assert replaced.replaced_kit == dosed.result.kits[0] and replaced.kit != replaced.replaced_kit
    unblinded = commands.unblind(
        db=demo_db,
        study=STUDY,
        actor=INVESTIGATOR,
        subject_id=subject.subject_id,
        reason_category="adverse_event",
        reason="serious adverse event needing the treatment",
        settings=Settings(),
        signature=SignatureInput(password=DEMO_PASSWORD),
    )
    assert unblinded.subject_id == subject.subject_id
    assert unblinded.treatment  # the one place a treatment is shown, on purpose
    with pytest.raises(Conflict):
        commands.unblind(
            db=demo_db,
            study=STUDY,
            actor=INVESTIGATOR,
            subject_id=subject.subject_id,
            reason_category="adverse_event",
            reason="serious adverse event needing the treatment",
            settings=Settings(),
            signature=SignatureInput(password=DEMO_PASSWORD),
        )
    assert _count(demo_db, Dispensing) == 2


def test_another_sites_subject_is_refused(demo_db: Database) -> None:
    with pytest.raises(NotPermitted):
        _register(demo_db, "UC-005", site="US01")
    assert _count(demo_db, Subject) == 0
