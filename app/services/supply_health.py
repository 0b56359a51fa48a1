"""Which sites hold less than their resupply trigger right now: one yes or no per site, never per
content, for the operators' metrics (app/observability/metrics.py)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Site
from app.domain.resupply import order_quantities
from app.domain.study import StudyDefinition
from app.services.resupply import site_positions


def sites_below_trigger(
    session: Session, *, study: StudyDefinition, today: date
) -> dict[str, bool]:
    """Active site -> whether the resupply policy would request a shipment now. Reads only; the
    answer folds every content into one flag, so it names no arm (a due shipment is requested
    after the next event anyway, and shipments are seen by the blinded supply manager)."""
    sites = session.execute(
        select(Site).where(Site.active, Site.depot_id.is_not(None)).order_by(Site.id)
    ).scalars()
    result: dict[str, bool] = {}
    for site in sites:
        pools = site_positions(session, study=study, site=site, today=today)
        result[site.id] = any(
            order_quantities(p.positions, p.levels, p.floor) for p in pools.values()
        )
    return result
