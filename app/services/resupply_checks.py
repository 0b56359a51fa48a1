"""The resupply check of every active site, each site in a transaction of its own: the daily job
(`irt supply check`), and the moments when what every site needs changes at once: a cohort
opens or the phase II dose is chosen, so the stage pool that now recruits is stocked for its
subjects to come before they arrive, not after the first of them is refused."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Site
from app.domain.study import StudyDefinition
from app.services.actor import Actor
from app.services.kit_counts import fold_kit_counts
from app.services.locks import lock_site
from app.services.resupply import check_site
from app.services.transaction import utcnow, writing


@dataclass(frozen=True)
class SiteCheck:
    site_id: str
    shipment_id: int | None
    """The shipment the check requested, if any."""


@dataclass(frozen=True)
class SupplyCheck:
    sites: list[SiteCheck]
    kit_changes_folded: int
    """Kit count changes moved into the kept counts the stock report reads."""


def check_every_site(*, db: Database, study: StudyDefinition, actor: Actor) -> SupplyCheck:
    """Check every active site (expire what may no longer be dispensed, request what is short),
    committing site by site; then fold the kit count changes (app/services/kit_counts.py)."""
    with db.read() as session:
        site_ids = list(
            session.execute(select(Site.id).where(Site.active).order_by(Site.id)).scalars()
        )
    checks = []
    for site_id in site_ids:
        with writing(db) as session:
            shipment = check_site(
                session,
                study=study,
                actor=actor,
                site=lock_site(session, site_id),
                today=utcnow().date(),
            )
            checks.append(SiteCheck(site_id, shipment.id if shipment else None))
    folded = fold_kit_counts(db)  # the day's kit moves into the kept counts the report reads
    return SupplyCheck(checks, folded)
