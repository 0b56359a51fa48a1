"""The reason rule in the service layer, on both engines: every use case that takes a reason
refuses one with fewer than 10 visible characters before it reads or writes anything, so the
API, the pages and the CLI (and any other caller) get the same refusal, and nothing is written."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.engine import Database
from app.db.models import AuditEntry
from app.domain.errors import InvalidInput
from app.domain.kits import KitStatus
from app.domain.reasons import TOO_SHORT
from app.domain.roles import Role
from app.domain.study import load_study
from app.services import (
    accounts,
    dispensing,
    emergency_unblinding,
    inventory,
    resupply,
    shipments,
    sites,
    stages,
)
from app.services.actor import SYSTEM, Actor
from app.services.transaction import writing
from tests.support.databases import assert_unchanged, snapshot

STUDY = load_study()
TODAY = date(2026, 1, 5)
INVESTIGATOR = Actor("investigator", Role.INVESTIGATOR, frozenset({"DE01"}))
PHARMACIST = Actor("pharmacist", Role.PHARMACIST, frozenset({"DE01"}))
SUPPLY = Actor("supply", Role.SUPPLY_MANAGER, frozenset())
SHORT = "\u200b  SRC  \u200b\ufeff" * 3  # nine visible characters, padded

UseCase = Callable[[Session, str], object]
USE_CASES: dict[str, UseCase] = {
    "unblind": lambda s, r: emergency_unblinding.unblind(
        s, study=STUDY, actor=INVESTIGATOR, subject_id=1, reason_category="other", reason=r
    ),
    "cohort": lambda s, r: stages.change_cohort(
        s, study=STUDY, actor=SYSTEM, code="C1", action="close", reason=r
    ),
    "phase II dose": lambda s, r: stages.select_phase2_dose(
        s, study=STUDY, actor=SYSTEM, dose=Decimal("0.8"), reason=r
    ),
    "site activation": lambda s, r: sites.activate(
        s, study=STUDY, actor=SYSTEM, site_id="DE01", depot_id=None, reason=r, today=TODAY
    ),
    "manual shipment": lambda s, r: resupply.request_manual(
        s, study=STUDY, actor=SUPPLY, site_id="DE01", kits_per_content=1, reason=r, today=TODAY
    ),
    "shipment cancel": lambda s, r: shipments.cancel(s, actor=SUPPLY, shipment_id=1, reason=r),
    "shipment release": lambda s, r: shipments.resolve_quarantine(
        s, study=STUDY, actor=SUPPLY, shipment_id=1, release=True, reason=r
    ),
    "kit status": lambda s, r: inventory.change_status(
        s,
        study=STUDY,
        actor=PHARMACIST,
        kit_number="ACDE3479",
        target=KitStatus.QUARANTINED,
        reason=r,
        today=TODAY,
    ),
    "kit replacement": lambda s, r: dispensing.replace_kit(
        s,
        study=STUDY,
        actor=PHARMACIST,
        subject_id=1,
        kit_number="ACDE3479",
        status=KitStatus.DAMAGED,
        reason=r,
        today=TODAY,
    ),
    "user disable": lambda s, r: accounts.disable(
        s, actor=SYSTEM, username="coordinator", reason=r
    ),
    "password reset": lambda s, r: accounts.reset_password(
        s, actor=SYSTEM, username="coordinator", password="a new password 123", reason=r
    ),
}


def test_every_use_case_refuses_a_short_reason_first(demo_db: Database) -> None:
    before = snapshot(demo_db)
    for reason in ("", "too short", SHORT, "\u3164" * 20):
        for name, use_case in USE_CASES.items():
            with pytest.raises(InvalidInput) as refused, writing(demo_db) as session:
                use_case(session, reason)
            error = refused.value
            assert (error.code, error.detail) == ("validation_error", TOO_SHORT), name
            assert error.extra["errors"] == [{"field": "reason", "message": TOO_SHORT}], name
    assert_unchanged(demo_db, before)


def test_an_accepted_reason_is_stored_cleaned(demo_db: Database) -> None:
    with writing(demo_db) as session:
        USE_CASES["user disable"](session, "\ufeff\u200b left the study team \u00a0")
    with demo_db.read() as session:
        entry = session.execute(
            select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)
        ).scalar_one()
    assert entry.action == "user.disable"
    assert entry.reason == "left the study team"
