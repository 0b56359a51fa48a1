"""The kits due at a site (app/services/kits_due.py) on both engines: a subject's next visit is
due 28 days after day 1 and counted in the week it falls in (and while overdue), never before;
another site's user is told it does not exist, as in the other reports; nothing in the report
names an arm or a content."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date, timedelta
from decimal import Decimal

import pytest

from app.db.engine import Database
from app.domain.errors import NotFound
from app.domain.roles import Role
from app.domain.study import load_study
from app.services import commands
from app.services.actor import Actor
from app.services.kits_due import KitsDue, kits_due
from tests.support.builders import eligible_answers

STUDY = load_study()
COORDINATOR = Actor("coordinator", Role.SITE_COORDINATOR, frozenset({"DE01"}))
PHARMACIST = Actor("pharmacist", Role.PHARMACIST, frozenset({"DE01"}))


def _randomized(db: Database, number: str, weight: str) -> tuple[int, int]:
    """(subject id, vials of day 1)."""
    subject = commands.register_subject(
        db=db,
        actor=COORDINATOR,
        retry=commands.Retry(key=None, lease_seconds=30),
        site_id="DE01",
        screening_number=number,
        sex="M",
        year_of_birth=1979,
    ).result
    randomized = commands.randomize(
        db=db,
        study=STUDY,
        actor=COORDINATOR,
        retry=commands.Retry(key=f"due-{number}", lease_seconds=30),
        subject_id=subject.subject_id,
        visit_date=date.today(),
        weight_kg=Decimal(weight),
        answers=eligible_answers(screening_date=date.today() - timedelta(days=2)),
    ).result
    return subject.subject_id, randomized.dose.vials


def _due(db: Database, day: date, actor: Actor = PHARMACIST) -> KitsDue:
    with db.read() as session:
        return kits_due(session, study=STUDY, actor=actor, site_id="DE01", today=day, days=7)


def test_the_next_visit_is_due_in_its_week_and_while_overdue(demo_db: Database) -> None:
    light, light_vials = _randomized(demo_db, "DUE-1", "45.0")
    heavy, heavy_vials = _randomized(demo_db, "DUE-2", "130.0")
    today = date.today()
    assert _due(demo_db, today).visits == ()
    week_four = today + timedelta(days=28)
    for day in (week_four - timedelta(days=6), week_four, week_four + timedelta(days=7)):
        report = _due(demo_db, day)
        assert [(v.subject_id, v.visit, v.due_on) for v in report.visits] == sorted(
            [(light, "W4", week_four), (heavy, "W4", week_four)], key=lambda v: v[0]
        )
        by_subject = {v.subject_id: v.vials for v in report.visits}
        # each visit at the subject's last dose (it changes only with a 10 % weight change)
        assert by_subject == {light: light_vials, heavy: heavy_vials}
        assert report.vials == sum(by_subject.values())
    assert _due(demo_db, week_four - timedelta(days=7)).visits == ()


def test_blinded_and_only_for_the_sites_users(demo_db: Database) -> None:
    _randomized(demo_db, "DUE-3", "72.0")
    report = _due(demo_db, date.today() + timedelta(days=28))
    text = json.dumps(asdict(report), default=str).lower()
    assert not any(word in text for word in ("imc002", "placebo", "arm", "content", "lot"))
    stranger = Actor("pharmacist-us", Role.PHARMACIST, frozenset({"US01"}))
    with pytest.raises(NotFound):
        _due(demo_db, date.today(), actor=stranger)
