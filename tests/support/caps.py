"""Set-up for the tests of caps and versions: subjects randomized in bulk through the service
layer (one command per subject, as the API calls it), stage changes, the sponsor's signature."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from app.db.engine import Database
from app.domain.roles import Role
from app.domain.study import load_study
from app.services import randomization, stages, subjects
from app.services.actor import SYSTEM, Actor
from app.services.signatures import SignatureInput
from app.services.transaction import utcnow, writing
from app.settings import Settings
from tests.support.builders import eligible_answers
from tests.support.demo import DEMO_PASSWORD
from tests.support.pools import stock_stage_pools

STUDY = load_study()
SPONSOR = Actor("sponsor", Role.SPONSOR_ADMIN, frozenset())
SIGNATURE = SignatureInput(password=DEMO_PASSWORD)
SITES = ("DE01", "DE02", "US01")


def coordinator(site: str) -> Actor:
    name = "coordinator2" if site == "US01" else "coordinator"
    return Actor(name, Role.SITE_COORDINATOR, frozenset({site}))


def settings(db: Database) -> Settings:
    return Settings(database_url=str(db.engine.url))


def randomize_many(db: Database, count: int, *, prefix: str, on: date | None = None) -> list[str]:
    """`count` subjects registered and randomized through the session-level use cases (the
    commands' own work), spread over the three sites, in one transaction per 50: a fast set-up
    that still runs every rule. Their randomization numbers."""
    numbers: list[str] = []
    day = on or utcnow().date()
    for start in range(0, count, 50):
        with writing(db) as session:
            for i in range(start, min(start + 50, count)):
                site = SITES[i % len(SITES)]
                actor = coordinator(site)
                subject = subjects.register(
                    session,
                    actor=actor,
                    site_id=site,
                    screening_number=f"{prefix}-{i:03d}",
                    sex="F",
                    year_of_birth=1980,
                )
                done = randomization.randomize(
                    session,
                    study=STUDY,
                    actor=actor,
                    subject_id=subject["subject_id"],
                    visit_date=day,
                    weight_kg=Decimal(50),
                    answers=eligible_answers(screening_date=day),
                )
                numbers.append(done["randomization_number"])
    return numbers


def stage(db: Database, *changes: tuple[str, str]) -> None:
    """Cohort changes by the service's own job (no signature needed in set-up)."""
    with writing(db) as session:
        for code, action in changes:
            stages.change_cohort(
                session, study=STUDY, actor=SYSTEM, code=code, action=action, reason="test set-up"
            )


def select_dose(db: Database, dose: str = "0.8") -> None:
    with writing(db) as session:
        stages.select_phase2_dose(
            session, study=STUDY, actor=SYSTEM, dose=Decimal(dose), reason="test set-up"
        )
    stock_stage_pools(db)
