"""The IMC-002 demo study: sites, one user per role, lists from a secret seed, cohort C1 open."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from app.db.engine import Database
from app.domain.roles import Role
from app.domain.study import StudyDefinition
from app.services import lists, setup, stages
from app.services.actor import SYSTEM
from app.services.transaction import writing

DEFAULT_PASSWORD = "imc002-demo"


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: Role
    site_ids: tuple[str, ...]


def demo_users(study: StudyDefinition) -> list[DemoUser]:
    """One user per role; the site roles work at the first two sites, and a second coordinator
    at the last site shows that site staff never see another site's subjects."""
    sites = [s.code for s in study.demo_sites]
    home = tuple(sites[:2])
    users = [
        DemoUser("coordinator", Role.SITE_COORDINATOR, home),
        DemoUser("investigator", Role.INVESTIGATOR, home),
        DemoUser("pharmacist", Role.PHARMACIST, home),
        DemoUser("supply", Role.SUPPLY_MANAGER, ()),
        DemoUser("sponsor", Role.SPONSOR_ADMIN, ()),
        DemoUser("monitor", Role.UNBLINDED_MONITOR, ()),
    ]
    if len(sites) > 2:
        users.append(DemoUser("coordinator2", Role.SITE_COORDINATOR, (sites[-1],)))
    return users


def set_up_demo(
    db: Database,
    study: StudyDefinition,
    password: str,
    seed: str | None = None,
    open_first_cohort: bool = True,
) -> list[DemoUser]:
    """Load the study and its demo data in one transaction; return the users created."""
    users = demo_users(study)
    with writing(db) as session:
        setup.load_study(session, study, SYSTEM)
        for site in study.demo_sites:
            setup.add_site(session, SYSTEM, site.code, site.name, site.country, active=True)
        for user in users:
            setup.add_user(session, SYSTEM, user.username, password, user.role, user.site_ids)
        lists.generate(session, study, SYSTEM, seed or secrets.token_hex(32))
        if open_first_cohort:
            session.flush()
            stages.change_cohort(
                session,
                study,
                SYSTEM,
                study.phase_ib.cohorts[0].code,
                "open",
                "demo set-up: first phase Ib cohort opened",
            )
    return users
