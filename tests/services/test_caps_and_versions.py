"""Caps in force, versions of the study definition and training files, on both engines."""

from __future__ import annotations

from datetime import timedelta
from importlib import resources

import pytest
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import AuditEntry, Dispensing, Randomization
from app.domain.environment import MARKER
from app.domain.errors import Conflict, DomainError, InvalidInput
from app.services import amendment_commands, caps, kits
from app.services.commands import Retry
from app.services.transaction import utcnow, writing
from app.settings import Settings
from tests.support.caps import (
    SIGNATURE,
    SPONSOR,
    STUDY,
    randomize_many,
    select_dose,
    stage,
)

SHIPPED = resources.files("app.studies").joinpath("imc002.toml").read_text("utf-8")


def _change(db: Database, key: str, asked: dict[str, int]) -> caps.CapsOut:
    return amendment_commands.change_caps(
        db=db,
        actor=SPONSOR,
        retry=Retry(key=key, lease_seconds=30),
        caps_asked=asked,
        reason="DSMB: C3 stopped early, places to phase II",
        settings=Settings(),
        signature=SIGNATURE,
    ).result


def _caps(db: Database) -> dict[str, int]:
    with db.read() as session:
        return {s.scope: s.cap for s in caps.caps_view(session).scopes}


def _refused(db: Database, action: str) -> list[AuditEntry]:
    with db.read() as session:
        return list(
            session.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars()
        )


def test_unused_places_of_a_closed_cohort_move_to_phase_ii_once_per_key(demo_db: Database) -> None:
    randomize_many(demo_db, 3, prefix="C1")
    stage(demo_db, ("C1", "close"))
    moved = _change(demo_db, "move-1", {"C1": 3, "P2": 199})
    assert (moved.total, moved.target) == (218, 218)
    again = _change(demo_db, "move-1", {"C1": 3, "P2": 199})  # a retry: same answer, no 2nd move
    assert again == moved
    assert _caps(demo_db) == {"C1": 3, "C2": 8, "C3": 8, "P2": 199}
    with demo_db.read() as session:
        entries = list(
            session.execute(select(AuditEntry).where(AuditEntry.action == "caps.change")).scalars()
        )
    assert len(entries) == 1 and "signature" in entries[0].after and entries[0].reason


@pytest.mark.parametrize(
    ("asked", "code"),
    [
        ({"C1": 1}, "cap_below_randomized"),  # 2 randomized there
        ({"C1": 9, "C2": 7}, "cohort_closed"),  # a closed cohort gains no place
        ({"P2": 195}, "over_target"),  # 8 + 8 + 8 + 195 = 219 > 218
        ({"C1": 8}, "no_change"),
    ],
)
def test_refused_cap_changes_change_nothing_and_are_audited(
    demo_db: Database, asked: dict[str, int], code: str
) -> None:
    randomize_many(demo_db, 2, prefix="C1")
    stage(demo_db, ("C1", "close"))
    before = _caps(demo_db)
    with pytest.raises(Conflict) as refused:
        _change(demo_db, f"k-{code}", asked)
    assert refused.value.code == code
    assert _caps(demo_db) == before
    assert [e.entity_id for e in _refused(demo_db, "caps.change_refused")] == ["caps"]


def test_a_moved_cap_is_exact_and_the_study_never_passes_its_target(demo_db: Database) -> None:
    randomize_many(demo_db, 2, prefix="C1")
    stage(demo_db, ("C1", "close"), ("C2", "open"), ("C2", "close"))
    select_dose(demo_db)
    _change(demo_db, "shrink", {"C1": 2, "P2": 3})  # 6 places released, phase II only 3
    numbers = randomize_many(demo_db, 3, prefix="P2")
    assert numbers[-1] == "IMC-0005"
    with pytest.raises(DomainError) as full:
        randomize_many(demo_db, 1, prefix="P2-more")
    assert full.value.code == "stage_full"


def _amended(total: int, phase2: int) -> str:
    return SHIPPED.replace("total_cap = 218", f"total_cap = {total}").replace(
        "cap = 194", f"cap = {phase2}"
    )


def _load(db: Database, text: str, days: int) -> amendment_commands.VersionOut:
    return amendment_commands.load_study_version(
        db=db,
        actor=SPONSOR,
        definition_toml=text,
        effective_date=utcnow().date() + timedelta(days=days),
        reason="Protocol amendment 2: 12 more subjects",
        settings=Settings(),
        signature=SIGNATURE,
    )


def test_a_version_raises_the_target_keeps_moved_places_and_is_recorded_by_acts(
    demo_db: Database,
) -> None:
    randomize_many(demo_db, 2, prefix="C1")
    stage(demo_db, ("C1", "close"))
    _change(demo_db, "move", {"C1": 2, "P2": 200})
    version = _load(demo_db, _amended(230, 206), days=0)
    assert (version.version, version.total_cap, version.changes) == (
        2,
        230,
        ["total_cap", "phase_ii"],
    )
    assert _caps(demo_db)["P2"] == 212  # 200 in force + 12 from the amendment
    stage(demo_db, ("C2", "open"))
    randomize_many(demo_db, 1, prefix="C2")
    with demo_db.read() as session:
        used = {
            number: version
            for number, version in session.execute(
                select(Randomization.randomization_number, Randomization.study_version)
            )
        }
        dispensed = set(session.execute(select(Dispensing.study_version)).scalars())
    assert used == {"IMC-0001": 1, "IMC-0002": 1, "IMC-0003": 2}
    assert dispensed == {1, 2}
    listed = amendment_commands.list_versions(db=demo_db)
    assert [(v.version, v.in_effect_today) for v in listed] == [(1, False), (2, True)]


def test_a_version_cannot_change_the_past_or_what_the_lists_depend_on(demo_db: Database) -> None:
    randomize_many(demo_db, 1, prefix="C1", on=utcnow().date())
    with pytest.raises(Conflict) as past:
        _load(demo_db, _amended(230, 206), days=-1)
    assert past.value.code == "changes_the_past"
    with pytest.raises(InvalidInput) as frozen:
        _load(demo_db, SHIPPED.replace("block_sizes = [4, 6]", "block_sizes = [4]"), days=1)
    assert frozen.value.code == "amendment_not_allowed"
    assert len(_refused(demo_db, "study.load_version_refused")) == 2
    assert [v.version for v in amendment_commands.list_versions(db=demo_db)] == [1]


def test_a_production_database_refuses_a_training_kit_list(demo_db: Database) -> None:
    text = f"{MARKER}\nkit_number,content,lot,expiry_date,depot\n"
    with writing(demo_db) as session, pytest.raises(InvalidInput) as refused:
        kits.import_kit_list(session, study=STUDY, actor=SPONSOR, text=text, today=utcnow().date())
    assert refused.value.code == "wrong_environment"
