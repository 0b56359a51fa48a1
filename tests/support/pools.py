"""Set-up after a stage change: a new stage's subjects draw only on kits shipped for it
(app/domain/stage_pools.py), which a real site lays in during the safety review. Tests that
open phase II and randomize at once do that review's shipping here."""

from __future__ import annotations

from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Shipment, Site
from app.domain.study import load_study
from app.services import shipments
from app.services.actor import job
from app.services.locks import lock_site
from app.services.resupply import check_site
from app.services.transaction import utcnow, writing


def stock_stage_pools(db: Database, *, except_site: str | None = None) -> None:
    """Every active site's resupply check, and every shipment requested for the site (by this
    check, or by the one that ran when the stage opened) shipped and received (none at
    `except_site`)."""
    study, actor, today = load_study(), job("resupply"), utcnow().date()
    with writing(db) as session:
        codes = session.execute(
            select(Site.id).where(Site.active, Site.depot_id.is_not(None)).order_by(Site.id)
        ).scalars()
        for code in list(codes):
            if code == except_site:
                continue
            check_site(
                session, study=study, actor=actor, site=lock_site(session, code), today=today
            )
            requested = session.execute(
                select(Shipment.id)
                .where(Shipment.site_id == code, Shipment.status == "requested")
                .order_by(Shipment.id)
            ).scalars()
            for shipment_id in list(requested):
                shipments.ship(
                    session, study=study, actor=actor, shipment_id=shipment_id, today=today
                )
                shipments.receive(
                    session,
                    study=study,
                    actor=actor,
                    shipment_id=shipment_id,
                    receipt=shipments.Receipt(),
                )
