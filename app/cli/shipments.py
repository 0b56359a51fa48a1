"""`irt shipments`: shipments from depots to sites, done by a supply manager (a pharmacist may
list and receive their sites' shipments, as in the API). Blinded: lines name
kit counts and statuses, never contents."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import (
    DatabaseUrl,
    Reason,
    SiteOption,
    command_group,
    open_database,
    run_command,
)
from app.cli.identity import person
from app.domain.roles import PHARMACY, SUPPLY_MANAGERS
from app.services import commands, supply_commands
from app.services import shipments as shipment_service
from app.services.actor import Actor
from app.services.results import ShipmentOut
from app.services.shipments import Receipt

shipments_app = command_group("Shipments from depots to sites (blinded: no contents).")

ShipmentId = Annotated[int, typer.Argument(min=1, help="The shipment's number.")]


def _supply_manager(database_url: str | None) -> Actor:
    return person(open_database(database_url), SUPPLY_MANAGERS)


def _shipment_line(shipment: ShipmentOut) -> str:
    excursion = "  TEMPERATURE EXCURSION" if shipment.temperature_excursion else ""
    return (
        f"{shipment.shipment_id:>5}  {shipment.depot_id} -> {shipment.site_id:<6} "
        f"{shipment.kind:<8} {shipment.status:<10} {shipment.kit_count} kits{excursion}"
    )


@shipments_app.command("list")
def shipments_list(site: SiteOption = None, database_url: DatabaseUrl = None) -> None:
    """Every shipment (or one site's) with its status and kit count."""
    db = open_database(database_url)
    actor = person(db, PHARMACY)
    with db.read() as session:
        for row in shipment_service.list_shipments(session, actor=actor, site_id=site):
            typer.echo(_shipment_line(ShipmentOut.model_validate(row)))


@shipments_app.command("request")
def shipments_request(
    site_id: str,
    reason: Reason,
    kits_per_content: Annotated[int, typer.Option(min=1, help="Kits of each content.")] = 1,
    database_url: DatabaseUrl = None,
) -> None:
    """Request a manual shipment (the same number of kits of each content)."""
    actor = _supply_manager(database_url)
    shipment = run_command(
        database_url,
        lambda db, study: supply_commands.request_shipment(
            db=db,
            study=study,
            actor=actor,
            site_id=site_id,
            kits_per_content=kits_per_content,
            reason=reason,
        ),
    )
    typer.echo(_shipment_line(shipment))


@shipments_app.command("ship")
def shipments_ship(shipment_id: ShipmentId, database_url: DatabaseUrl = None) -> None:
    """Send a requested shipment: its kits go in transit to the site."""
    actor = _supply_manager(database_url)
    shipment = run_command(
        database_url,
        lambda db, study: supply_commands.ship_shipment(
            db=db, study=study, actor=actor, shipment_id=shipment_id
        ),
    )
    typer.echo(_shipment_line(shipment))


@shipments_app.command("cancel")
def shipments_cancel(
    shipment_id: ShipmentId, reason: Reason, database_url: DatabaseUrl = None
) -> None:
    """Cancel a shipment that has not been sent."""
    actor = _supply_manager(database_url)
    shipment = run_command(
        database_url,
        lambda db, _: supply_commands.cancel_shipment(
            db=db, actor=actor, shipment_id=shipment_id, reason=reason
        ),
    )
    typer.echo(_shipment_line(shipment))


@shipments_app.command("receive")
def shipments_receive(
    shipment_id: ShipmentId,
    damaged: Annotated[list[str] | None, typer.Option(help="A damaged kit number.")] = None,
    missing: Annotated[list[str] | None, typer.Option(help="A missing kit number.")] = None,
    temperature_excursion: Annotated[
        bool, typer.Option(help="Quarantine every received kit until release or rejection.")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Record the receipt at the site; every kit not named damaged or missing is received."""
    actor = person(open_database(database_url), PHARMACY)
    shipment = run_command(
        database_url,
        lambda db, study: commands.receive_shipment(
            db=db,
            study=study,
            actor=actor,
            shipment_id=shipment_id,
            receipt=Receipt(
                damaged=tuple(damaged or ()),
                missing=tuple(missing or ()),
                temperature_excursion=temperature_excursion,
            ),
        ),
    )
    typer.echo(_shipment_line(shipment))


def _resolve(shipment_id: int, *, release: bool, reason: str, database_url: str | None) -> None:
    """`release` and `reject` are one quarantine decision with opposite outcomes."""
    actor = _supply_manager(database_url)
    shipment = run_command(
        database_url,
        lambda db, study: supply_commands.resolve_quarantine(
            db=db,
            study=study,
            actor=actor,
            shipment_id=shipment_id,
            release=release,
            reason=reason,
        ),
    )
    typer.echo(_shipment_line(shipment))


@shipments_app.command("release")
def shipments_release(
    shipment_id: ShipmentId, reason: Reason, database_url: DatabaseUrl = None
) -> None:
    """Release a quarantined shipment's kits (they become available)."""
    _resolve(shipment_id, release=True, reason=reason, database_url=database_url)


@shipments_app.command("reject")
def shipments_reject(
    shipment_id: ShipmentId, reason: Reason, database_url: DatabaseUrl = None
) -> None:
    """Reject a quarantined shipment's kits (they become damaged)."""
    _resolve(shipment_id, release=False, reason=reason, database_url=database_url)
