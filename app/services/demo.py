"""The IMC-002 demo study: depot, kits, sites, one user per role, lists, cohort C1 open."""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import date, timedelta

from app.db.engine import Database
from app.domain import password_policy
from app.domain.environment import Mode, mark_file
from app.domain.kits import generate_kit_list, kit_list_csv
from app.domain.roles import Role
from app.domain.study import StudyDefinition
from app.services import kits, lists, shipments, sites, stages, study_setup
from app.services.actor import job
from app.services.kit_counts import fold_kit_counts
from app.services.transaction import utcnow, writing

DEMO = job("demo")
"""The demo's set-up is the service's own job, recorded as `system:demo` (no prompt)."""
DEFAULT_PASSWORD = "imc002-demo-login"
"""Follows the password policy (app/domain/password_policy.py), as any other password must."""
DEMO_EXPIRY_OFFSETS_DAYS = (75, 180, 365, 540, 730)
"""Kit expiry dates relative to the day the demo is created: the first lot can be shipped for
two weeks and dispensed for six, so the supply windows matter from day one."""
DEMO_KITS_PER_CONTENT = 3000
"""Full enrolment (218) x 13 visits, most subjects needing 1 or 2 vials a visit."""


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: Role
    site_ids: tuple[str, ...]


def demo_users(study: StudyDefinition) -> list[DemoUser]:
    """One user per role; the site roles work at the first two sites, and a second coordinator
    at the last site shows that site staff never see another site's subjects."""
    codes = [s.code for s in study.demo_sites]
    home = tuple(codes[:2])
    users = [
        DemoUser("coordinator", Role.SITE_COORDINATOR, home),
        DemoUser("investigator", Role.INVESTIGATOR, home),
        DemoUser("pharmacist", Role.PHARMACIST, home),
        DemoUser("supply", Role.SUPPLY_MANAGER, ()),
        DemoUser("sponsor", Role.SPONSOR_ADMIN, ()),
        DemoUser("monitor", Role.UNBLINDED_MONITOR, ()),
    ]
    if len(codes) > 2:
        users.append(DemoUser("coordinator2", Role.SITE_COORDINATOR, (codes[-1],)))
    return users


def demo_kit_list(
    *,
    study: StudyDefinition,
    today: date,
    per_content: int,
    rng: random.Random | secrets.SystemRandom,
    depot: str | None = None,
) -> str:
    """A kit list for `depot` (default the demo depot), in the import's layout."""
    depot = depot or study.demo_depots[0].code
    expiries = [today + timedelta(days=d) for d in DEMO_EXPIRY_OFFSETS_DAYS]
    return kit_list_csv(
        generate_kit_list(
            study.contents, per_content=per_content, expiry_dates=expiries, depot=depot, rng=rng
        )
    )


def demo_password_problem(*, study: StudyDefinition, password: str) -> str | None:
    """Why `password` may not be the demo users' password (the policy, for every demo user
    name), or None; for the CLI to ask before it deletes anything."""
    for user in demo_users(study):
        message = password_policy.problem(password, username=user.username)
        if message is not None:
            return message
    return None


def set_up_demo(
    db: Database,
    *,
    study: StudyDefinition,
    password: str,
    seed: str | None = None,
    kits_per_content: int = DEMO_KITS_PER_CONTENT,
    site_levels: tuple[int, int] | None = None,
    in_transit_site: str | None = "DE02",
    mode: Mode = Mode.PRODUCTION,
) -> list[DemoUser]:
    """Load the study with demo data. Every site is activated; its initial shipment is shipped
    and received, except at `in_transit_site`, where it waits for the pharmacist's receipt.
    `site_levels` (trigger, target) overrides the study's resupply levels at every site; `mode`
    training (as `irt demo` sets it up) marks the database and its kit file as such."""
    users = demo_users(study)
    today = utcnow().date()
    rng = random.Random(seed) if seed else secrets.SystemRandom()
    with writing(db) as session:
        study_setup.load_study(session, study=study, actor=DEMO, mode=mode)
        for depot in study.demo_depots:
            sites.add_depot(
                session, actor=DEMO, depot_id=depot.code, name=depot.name, country=depot.country
            )
        for site in study.demo_sites:
            study_setup.add_site(
                session,
                actor=DEMO,
                site_id=site.code,
                name=site.name,
                country=site.country,
                depot_id=study.demo_depots[0].code,
            )
        for user in users:
            study_setup.add_user(
                session,
                actor=DEMO,
                username=user.username,
                password=password,
                role=user.role,
                site_ids=user.site_ids,
            )
        # tests and benchmarks give a fixed seed; otherwise a 256-bit one, discarded: the
        # demo's lists are throwaway, and a seed shown nowhere cannot leak
        lists.generate(session, study=study, actor=DEMO, seed=seed or lists.new_seed())
        session.flush()
        kits.import_kit_list(
            session,
            study=study,
            actor=DEMO,
            text=mark_file(
                mode,
                demo_kit_list(study=study, today=today, per_content=kits_per_content, rng=rng),
            ),
            today=today,
        )
        session.flush()
        # the first cohort opens before the sites, so that their initial shipments are sized
        # by the forecast of the subjects it will bring (3:1)
        stages.change_cohort(
            session,
            study=study,
            actor=DEMO,
            code=study.phase_ib.cohorts[0].code,
            action="open",
            reason="demo set-up: first phase Ib cohort opened",
        )
        for site in study.demo_sites:
            if site_levels is not None:
                trigger, target = site_levels
                sites.set_levels(
                    session,
                    study=study,
                    actor=DEMO,
                    site_id=site.code,
                    trigger=trigger,
                    target=target,
                )
            opened = sites.activate(
                session,
                study=study,
                actor=DEMO,
                site_id=site.code,
                depot_id=None,
                reason="demo set-up: site initiation visit done",
                today=today,
            )
            shipment_id = opened["initial_shipment_id"]
            if shipment_id is None:
                continue
            shipments.ship(session, study=study, actor=DEMO, shipment_id=shipment_id, today=today)
            if site.code != in_transit_site:
                shipments.receive(
                    session,
                    study=study,
                    actor=DEMO,
                    shipment_id=shipment_id,
                    receipt=shipments.Receipt(),
                )
    fold_kit_counts(db)  # the set-up's kit moves, as the daily job would fold them
    return users
