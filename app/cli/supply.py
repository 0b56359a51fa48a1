"""`irt supply`: the daily supply job, run by a scheduler: one transaction per site, so a refusal
at one site does not hold back the others."""

from __future__ import annotations

import typer

from app.cli.common import DatabaseUrl, command_group, open_database
from app.services import sites
from app.services.actor import job
from app.services.locks import lock_site
from app.services.resupply import check_site
from app.services.study_state import load_definition
from app.services.transaction import utcnow, writing

supply_app = command_group("Supply jobs.")

RESUPPLY = job("resupply")
"""The daily job is the service's own, recorded as `system:resupply`."""


@supply_app.command("check")
def supply_check(database_url: DatabaseUrl = None) -> None:
    """Expire kits inside the do-not-dispense window and resupply every active site (daily)."""
    db = open_database(database_url)
    with db.read() as session:
        study = load_definition(session)
        site_ids = [s["site_id"] for s in sites.list_sites(session, actor=RESUPPLY) if s["active"]]
    for site_id in site_ids:
        with writing(db) as session:
            shipment = check_site(
                session,
                study=study,
                actor=RESUPPLY,
                site=lock_site(session, site_id=site_id),
                today=utcnow().date(),
            )
        typer.echo(f"{site_id}: " + (f"shipment {shipment.id} requested" if shipment else "ok"))
