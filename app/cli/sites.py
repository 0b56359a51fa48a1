"""`irt depots` and `irt sites`: the places kits are stored and subjects are enrolled. A site
opens with `activate`, which requests its initial shipment from its depot."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import DatabaseUrl, Reason, command_group, open_database, run_command, transact
from app.cli.identity import person, person_or_setup
from app.domain.roles import SPONSOR_ADMINS
from app.services import admin_commands, sites, study_setup

depots_app = command_group("Depots.")
sites_app = command_group("Sites.")

Country = Annotated[str, typer.Option(help="ISO 3166 alpha-2 code.")]
DepotOption = Annotated[str | None, typer.Option("--depot", help="The supplying depot.")]
Timezone = Annotated[
    str | None,
    typer.Option(
        "--timezone", help="IANA time zone, e.g. Europe/Berlin (default: the country's first)."
    ),
]


@depots_app.command("add")
def depots_add(
    depot_id: str, name: str, country: Country, database_url: DatabaseUrl = None
) -> None:
    """Add a depot (a sponsor admin; anyone before the first account exists)."""
    actor = person_or_setup(open_database(database_url), SPONSOR_ADMINS)
    transact(
        database_url,
        lambda s: sites.add_depot(s, actor=actor, depot_id=depot_id, name=name, country=country),
    )
    typer.echo(f"Depot {depot_id} added.")


@sites_app.command("add")
def sites_add(
    site_id: str,
    name: str,
    country: Country,
    depot: DepotOption = None,
    timezone: Timezone = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Add a site (inactive until `irt sites activate`)."""
    actor = person_or_setup(open_database(database_url), SPONSOR_ADMINS)
    transact(
        database_url,
        lambda s: study_setup.add_site(
            s,
            actor=actor,
            site_id=site_id,
            name=name,
            country=country,
            depot_id=depot,
            timezone=timezone,
        ),
    )
    typer.echo(f"Site {site_id} added (inactive).")


@sites_app.command("activate")
def sites_activate(
    site_id: str, reason: Reason, depot: DepotOption = None, database_url: DatabaseUrl = None
) -> None:
    """Open a site for enrolment; its initial shipment is requested from its depot."""
    actor = person(open_database(database_url), SPONSOR_ADMINS)
    activated = run_command(
        database_url,
        lambda db, study: admin_commands.activate_site(
            db=db, study=study, actor=actor, site_id=site_id, depot_id=depot, reason=reason
        ),
    )
    shipment_id = activated.initial_shipment_id
    if shipment_id is None:
        typer.echo(f"Site {site_id} active; no initial shipment: the depot has no shippable kits.")
    else:
        typer.echo(f"Site {site_id} active; initial shipment {shipment_id} requested.")


@sites_app.command("set-timezone")
def sites_set_timezone(site_id: str, timezone: str, database_url: DatabaseUrl = None) -> None:
    """Set the site's IANA time zone (its local dates in the exports and pages)."""
    actor = person(open_database(database_url), SPONSOR_ADMINS)
    site = run_command(
        database_url,
        lambda db, _study: admin_commands.set_site_timezone(
            db=db, actor=actor, site_id=site_id, timezone=timezone
        ),
    )
    typer.echo(f"Site {site.site_id} is in time zone {site.timezone}.")


@sites_app.command("list")
def sites_list(database_url: DatabaseUrl = None) -> None:
    """List the sites with their depot and whether they are active."""
    db = open_database(database_url)
    actor = person(db, SPONSOR_ADMINS)
    with db.read() as session:
        for site in sites.list_sites(session, actor=actor):
            state = "active" if site["active"] else "inactive"
            typer.echo(
                f"{site['site_id']:<12} {site['country']}  {state:<8} "
                f"depot {site['depot_id'] or '-':<12} {site['timezone']:<20} {site['name']}"
            )
