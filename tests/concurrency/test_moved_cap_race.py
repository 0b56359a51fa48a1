"""Two randomizations racing for the last place of a moved cap: exactly one gets it, on both
engines. The racers are in different phase II strata, so no stratum lock orders them: only the
caps' own check (under the audit chain's lock, with the study row shared against cap changes)
does."""

from __future__ import annotations

import threading
from decimal import Decimal

from sqlalchemy import func, select

from app.db.engine import Database
from app.db.models import Randomization
from app.domain.errors import DomainError
from app.services import amendment_commands, commands
from app.services.commands import Retry
from app.services.transaction import utcnow
from app.settings import Settings
from tests.support.builders import eligible_answers
from tests.support.caps import (
    SIGNATURE,
    SPONSOR,
    STUDY,
    coordinator,
    randomize_many,
    select_dose,
    stage,
)

STRATA = ((8, "5"), (12, "15"))
"""(SLEDAI-2K, prednisone mg/day) of the two racers: two different strata."""


def _set_caps(db: Database, key: str, asked: dict[str, int]) -> None:
    amendment_commands.change_caps(
        db=db,
        actor=SPONSOR,
        retry=Retry(key=key, lease_seconds=30),
        caps_asked=asked,
        reason="DSMB decision on the caps",
        settings=Settings(),
        signature=SIGNATURE,
    )


def _race(url: str, subjects: list[int]) -> list[str]:
    """Both randomizations at once, each on its own engine; the outcome codes."""
    barrier = threading.Barrier(len(subjects))
    outcomes: list[str] = []
    actor = coordinator("DE01")
    today = utcnow().date()

    def run(index: int) -> None:
        db = Database(url)
        sledai, pred = STRATA[index]
        answers = eligible_answers(
            screening_date=today,
            sledai_2k_score=sledai,
            prednisone_equivalent_mg_per_day=Decimal(pred),
        )
        barrier.wait()
        try:
            commands.randomize(
                db=db,
                study=STUDY,
                actor=actor,
                retry=Retry(key=f"race-{subjects[index]}", lease_seconds=60),
                subject_id=subjects[index],
                visit_date=today,
                weight_kg=Decimal(50),
                answers=answers,
            )
            outcomes.append("randomized")
        except DomainError as exc:
            outcomes.append(exc.code)
        finally:
            db.dispose()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(subjects))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return sorted(outcomes)


def test_racing_randomizations_never_pass_a_moved_cap(demo_db: Database, db_url: str) -> None:
    randomize_many(demo_db, 2, prefix="C1")
    stage(demo_db, ("C1", "close"), ("C2", "open"), ("C2", "close"))
    select_dose(demo_db)
    _set_caps(demo_db, "start", {"C1": 2, "P2": 0})  # phase II gets places only as they move
    for round_ in range(3):
        _set_caps(demo_db, f"move-{round_}", {"C3": 7 - round_, "P2": round_ + 1})  # one place
        subjects = [
            commands.register_subject(
                db=demo_db,
                actor=coordinator("DE01"),
                retry=Retry(key=None, lease_seconds=30),
                site_id="DE01",
                screening_number=f"RACE-{round_}-{i}",
                sex="F",
                year_of_birth=1980,
            ).result.subject_id
            for i in range(2)
        ]
        assert _race(db_url, subjects) == ["randomized", "stage_full"]
        with demo_db.read() as session:
            in_phase2 = session.execute(
                select(func.count()).where(Randomization.scope == "P2")
            ).scalar_one()
        assert in_phase2 == round_ + 1
