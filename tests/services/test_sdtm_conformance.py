"""The SDTM export (SAS XPT v5 with Define-XML 2.1) of a demo trial passes the SDTMIG 3.4
conformance check (tests/support/sdtm_conformance.py) unblinded and blinded, on both engines:
randomizations at a German and an American site, dosing visits, a discontinuation, a screen
failure and an emergency unblinding. The XPT files are read back with pyreadstat; the define
validates against the Define-XML 2.1 schema. (Defects that fail the check: tests/domain/
test_sdtm.py.)"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import cache

import pytest
import xmlschema

from app.db.engine import Database
from app.domain.dates import local_date
from app.domain.lifecycle import Act
from app.domain.roles import Role
from app.domain.study import load_study
from app.services import commands, exports, lifecycle_commands
from app.services.actor import Actor
from app.services.signatures import SignatureInput
from app.services.transaction import utcnow
from app.settings import Settings
from tests.support.builders import eligible_answers
from tests.support.demo import DEMO_PASSWORD
from tests.support.sdtm_conformance import Package, check_package, define_schema, read_package

STUDY = load_study()
COORDINATOR = Actor("coordinator", Role.SITE_COORDINATOR, frozenset({"DE01", "DE02"}))
US_COORDINATOR = Actor("coordinator2", Role.SITE_COORDINATOR, frozenset({"US01"}))
PHARMACIST = Actor("pharmacist", Role.PHARMACIST, frozenset({"DE01", "DE02"}))
INVESTIGATOR = Actor("investigator", Role.INVESTIGATOR, frozenset({"DE01", "DE02"}))


@cache
def _schema() -> xmlschema.XMLSchema:
    return define_schema()


@dataclass(frozen=True)
class Trial:
    day_one: date
    us_day_one: date


def _retry(key: str | None = None) -> commands.Retry:
    return commands.Retry(key=key, lease_seconds=30)


def _subject(db: Database, actor: Actor, site: str, number: str) -> int:
    return commands.register_subject(
        db=db,
        actor=actor,
        retry=_retry(),
        site_id=site,
        screening_number=number,
        sex="F",
        year_of_birth=1985,
    ).result.subject_id


def _randomize(db: Database, actor: Actor, subject_id: int, day: date) -> None:
    commands.randomize(
        db=db,
        study=STUDY,
        actor=actor,
        retry=_retry(f"rand-{subject_id}"),
        subject_id=subject_id,
        visit_date=day,
        weight_kg=Decimal("70.0"),
        answers=eligible_answers(screening_date=day - timedelta(days=3)),
    )


@pytest.fixture
def trial(demo_db: Database) -> Trial:
    """DE01-001 randomized four weeks ago (entered today: backdated), dosed at week 4 and
    unblinded; US01-001 randomized today at its site's date and discontinued for an adverse
    event; DE02-001 a screen failure."""
    today = utcnow().date()
    day_one = today - timedelta(days=28)
    backdated = _subject(demo_db, COORDINATOR, "DE01", "DE01-001")
    _randomize(demo_db, COORDINATOR, backdated, day_one)
    commands.dispense(
        db=demo_db,
        study=STUDY,
        actor=PHARMACIST,
        retry=_retry("w4"),
        subject_id=backdated,
        visit_code="W4",
        visit_date=today,
        weight_kg=Decimal("71.0"),
    )
    commands.unblind(
        db=demo_db,
        study=STUDY,
        actor=INVESTIGATOR,
        subject_id=backdated,
        reason_category="adverse_event",
        reason="serious adverse event needing the treatment",
        settings=Settings(),
        signature=SignatureInput(password=DEMO_PASSWORD),
    )
    us_day_one = local_date(utcnow(), "America/New_York")
    american = _subject(demo_db, US_COORDINATOR, "US01", "001")
    _randomize(demo_db, US_COORDINATOR, american, us_day_one)
    for actor, subject_id, act, category, reason, day in (
        (
            US_COORDINATOR,
            american,
            Act.DISCONTINUE,
            "adverse_event",
            "infusion reaction after the first dose",
            us_day_one,
        ),
        (
            COORDINATOR,
            _subject(demo_db, COORDINATOR, "DE02", "001"),
            Act.SCREEN_FAIL,
            "eligibility_not_met",
            "SLEDAI-2K below six at screening",
            today,
        ),
    ):
        lifecycle_commands.record_status_change(
            db=demo_db,
            study=STUDY,
            actor=actor,
            retry=_retry(),
            subject_id=subject_id,
            act=act,
            effective_date=day,
            reason_category=category,
            reason=reason,
        )
    return Trial(day_one, us_day_one)


def _export(db: Database, *, blinded: bool) -> Package:
    with db.read() as session:
        body = exports.export_bytes(
            session, study=STUDY, kind="sdtm-xpt", blinded=blinded, now=utcnow()
        )
    return read_package(body)


def test_the_xpt_export_conforms_to_sdtmig_3_4(demo_db: Database, trial: Trial) -> None:
    for blinded in (False, True):
        _conforms(_export(demo_db, blinded=blinded), trial, blinded=blinded)


def _conforms(package: Package, trial: Trial, *, blinded: bool) -> None:
    assert check_package(package, _schema()) == []
    dm = {r["USUBJID"]: r for r in package.rows["DM"]}
    assert set(dm) == {"IMC-002-DE01-001", "IMC-002-US01-001", "IMC-002-DE02-001"}
    assert dm["IMC-002-DE02-001"]["ARMNRS"] == "SCREEN FAILURE"
    assert dm["IMC-002-DE01-001"]["AGEU"] == "YEARS" and dm["IMC-002-DE01-001"]["AGETXT"]
    ds = {(r["USUBJID"], r["DSDECOD"]): r for r in package.rows["DS"]}
    assert set(ds) == {
        ("IMC-002-DE01-001", "RANDOMIZED"),
        ("IMC-002-DE01-001", "TREATMENT UNBLINDED"),
        ("IMC-002-US01-001", "RANDOMIZED"),
        ("IMC-002-US01-001", "ADVERSE EVENT"),
        ("IMC-002-DE02-001", "SCREEN FAILURE"),
    }
    # entered after the day 1 visit: the visit's date, the IRT's own (local) time in DSDTC
    backdated = ds[("IMC-002-DE01-001", "RANDOMIZED")]
    assert backdated["DSSTDTC"] == trial.day_one.isoformat()
    assert backdated["DSDTC"][:10] == local_date(utcnow(), "Europe/Berlin").isoformat()
    american = ds[("IMC-002-US01-001", "RANDOMIZED")]["DSSTDTC"]
    assert american.startswith(f"{trial.us_day_one.isoformat()}T")
    assert dm["IMC-002-US01-001"]["RFSTDTC"] == trial.us_day_one.isoformat()
    arms = {r["ARMCD"] for r in package.rows["TA"]}
    assert (arms == {"BLINDED"}) is blinded
    if blinded:
        assert {r["EXTRT"] for r in package.rows["EX"]} == {"BLINDED"}
        assert "placebo" not in package.define.lower()
