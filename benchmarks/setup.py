"""A fresh, migrated database on either engine, loaded with the bench study, phase II open."""

from __future__ import annotations

import math
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from app.db.engine import Database
from app.db.migrate import upgrade
from app.domain.roles import Role
from app.domain.study import StudyDefinition
from app.services import shipments, stages, study_setup
from app.services.actor import SYSTEM
from app.services.demo import set_up_demo
from app.services.kit_counts import fold_kit_counts
from app.services.locks import lock_site
from app.services.resupply import check_site
from app.services.transaction import utcnow, writing
from benchmarks.study import bench_study

PG_URL = os.environ.get("IRT_BENCH_POSTGRES_URL") or os.environ.get(
    "IRT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
PASSWORD = "bench-password-0123"
SEED = "benchmark-fixed-seed"


@dataclass(frozen=True)
class BenchDatabase:
    engine: str
    url: str
    study: StudyDefinition
    sites: tuple[str, ...]

    def coordinator(self, site: str) -> str:
        return f"coord-{site.lower()}"

    def pharmacist(self, site: str) -> str:
        return f"pharm-{site.lower()}"


def _pg_admin() -> psycopg.Connection[Any]:
    return psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)


def pg_url(name: str) -> str:
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def create_database(engine: str, workdir: Path, label: str = "bench") -> str:
    """A fresh migrated database; its URL."""
    name = f"irt_{label}_{uuid.uuid4().hex[:10]}"
    if engine == "sqlite":
        workdir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{workdir / (name + '.db')}"
    else:
        with _pg_admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
            # SSD storage, as docs/deployment.md asks production to be configured
            admin.execute(f'ALTER DATABASE "{name}" SET random_page_cost = 1.1')
        url = pg_url(name)
    upgrade(url)
    return url


def drop_database(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)
        return
    with _pg_admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')


def kit_levels(
    randomizations: int, sites: int, kits_per_subject: float = 4.0
) -> tuple[int, int, int]:
    """(trigger, target, kits per content): each site starts with `kits_per_subject` kits of
    each content per subject of its share (day 1 and week 4 take 2 to 4 vials of the subject's
    content; 4.0 covers any draw of the arms, and the kits a shipment split over two expiry dates
    strands when one content of a date runs out first), plus its forecast; the depot holds
    enough for every site's initial shipment of each stage pool (phase Ib at activation, phase II
    when it opens: app/domain/stage_pools.py)."""
    per_site = math.ceil(randomizations / sites)
    target = math.ceil(per_site * kits_per_subject) + 10
    return 2, target, 2 * sites * (target + 30) + 100


def set_up(
    engine: str,
    workdir: Path,
    randomizations: int,
    sites: int,
    kits_per_subject: float = 4.0,
    cap_room: int = 0,
) -> BenchDatabase:
    """Create, migrate and load: demo set-up of the bench study, phase II open at 1.2 mg/kg,
    one coordinator and one pharmacist per site. `cap_room` widens the phase II cap (and its
    list) for subjects the bulk loader adds without the service (benchmarks/scale.py)."""
    os.environ.setdefault("IRT_PASSWORD_HASH_PROFILE", "fast")
    study = bench_study(randomizations + cap_room, sites)
    url = create_database(engine, workdir)
    db = Database(url)
    try:
        trigger, target, per_content = kit_levels(randomizations, sites, kits_per_subject)
        set_up_demo(
            db,
            study=study,
            password=PASSWORD,
            seed=SEED,
            kits_per_content=per_content,
            site_levels=(trigger, target),
            in_transit_site=None,
        )
        open_phase_ii(db, study)
        bench = BenchDatabase(engine, url, study, tuple(s.code for s in study.demo_sites))
        analyze(url)
        with writing(db) as session:
            for site in bench.sites:
                study_setup.add_user(
                    session,
                    actor=SYSTEM,
                    username=bench.coordinator(site),
                    password=PASSWORD,
                    role=Role.SITE_COORDINATOR,
                    site_ids=[site],
                )
                study_setup.add_user(
                    session,
                    actor=SYSTEM,
                    username=bench.pharmacist(site),
                    password=PASSWORD,
                    role=Role.PHARMACIST,
                    site_ids=[site],
                )
        return bench
    finally:
        db.dispose()


def analyze(url: str) -> None:
    """Planner statistics for the freshly loaded tables, as a live database's autovacuum keeps
    them. Without them (this project's PostgreSQL runs with autovacuum off) the planner takes
    the empty-table estimates, and the site stock read with its shipments became a nested loop
    of 428 x 214 rows: 20 to 75 ms a statement instead of under 1 ms."""
    if make_url(url).get_backend_name() != "postgresql":
        return
    with psycopg.connect(_plain(url), autocommit=True) as conn:
        conn.execute("ANALYZE")


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def open_phase_ii(db: Database, study: StudyDefinition) -> None:
    """Close C1, open and close C2, select C2's dose for phase II (sponsor decisions)."""
    with writing(db) as session:
        for code, action in (("C1", "close"), ("C2", "open"), ("C2", "close")):
            stages.change_cohort(
                session,
                study=study,
                actor=SYSTEM,
                code=code,
                action=action,
                reason="benchmark set-up",
            )
    with writing(db) as session:
        stages.select_phase2_dose(
            session,
            study=study,
            actor=SYSTEM,
            dose=study.cohort("C2").dose_mg_per_kg,
            reason="benchmark set-up",
        )
    # phase II subjects draw only on kits shipped for phase II (app/domain/stage_pools.py): the
    # shipments a site gets during the safety review, shipped and received here
    with writing(db) as session:
        today = utcnow().date()
        for site in study.demo_sites:
            shipment = check_site(
                session, study=study, actor=SYSTEM, site=lock_site(session, site.code), today=today
            )
            if shipment is not None:
                shipments.ship(
                    session, study=study, actor=SYSTEM, shipment_id=shipment.id, today=today
                )
                shipments.receive(
                    session,
                    study=study,
                    actor=SYSTEM,
                    shipment_id=shipment.id,
                    receipt=shipments.Receipt(),
                )
    fold_kit_counts(db)  # the set-up's kit moves folded, as the daily supply job does
