"""`irt supply`: the daily supply job, run by a scheduler: one transaction per site, so a refusal
at one site does not hold back the others."""

from __future__ import annotations

import typer

from app.cli.common import DatabaseUrl, command_group, open_database
from app.services.actor import job
from app.services.resupply_checks import check_every_site
from app.services.study_state import load_definition

supply_app = command_group("Supply jobs.")

RESUPPLY = job("resupply")
"""The daily job is the service's own, recorded as `system:resupply`."""


@supply_app.command("check")
def supply_check(database_url: DatabaseUrl = None) -> None:
    """Expire kits inside the do-not-dispense window, resupply every active site, fold the kit
    counts the stock report reads (daily)."""
    db = open_database(database_url)
    with db.read() as session:
        study = load_definition(session)
    done = check_every_site(db=db, study=study, actor=RESUPPLY)
    for check in done.sites:
        outcome = f"shipment {check.shipment_id} requested" if check.shipment_id else "ok"
        typer.echo(f"{check.site_id}: {outcome}")
    folded = done.kit_changes_folded
    typer.echo(f"kit counts: {folded} {'change' if folded == 1 else 'changes'} folded")
