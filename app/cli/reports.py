"""`irt report`: CSV reports for the study team. Blinded by default; only the unblindings report
adds the treatment, and only when asked."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import (
    DatabaseUrl,
    Out,
    SiteOption,
    command_group,
    fail,
    open_database,
    write_output,
)
from app.cli.identity import person
from app.domain.errors import DomainError
from app.domain.roles import EVERYONE, OVERSIGHT, PHARMACY, Role
from app.services import reports
from app.services.study_state import load_definition
from app.services.transaction import utcnow

report_app = command_group("Reports as CSV: enrolment, inventory and expiry, unblindings.")


@report_app.command("enrolment")
def report_enrolment(out: Out = None, database_url: DatabaseUrl = None) -> None:
    """Subjects per stage against caps, per stratum and per site (never per arm)."""
    db = open_database(database_url)
    actor = person(db, EVERYONE)
    with db.read() as session:
        report = reports.enrolment(session, study=load_definition(session), actor=actor)
    write_output(reports.enrolment_csv(report), out)


@report_app.command("inventory")
def report_inventory(
    site: SiteOption = None, out: Out = None, database_url: DatabaseUrl = None
) -> None:
    """Kits per status and stock per expiry window at each site and depot (no contents)."""
    db = open_database(database_url)
    actor = person(db, PHARMACY)
    try:
        with db.read() as session:
            report = reports.inventory(
                session,
                study=load_definition(session),
                actor=actor,
                today=utcnow().date(),
                site_id=site,
            )
    except DomainError as exc:
        fail(exc.detail)
    write_output(reports.inventory_csv(report), out)


@report_app.command("unblindings")
def report_unblindings(
    with_treatment: Annotated[
        bool, typer.Option(help="Add the treatment column (unblinded: for the monitor only).")
    ] = False,
    out: Out = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Every emergency unblinding: who, when, why; the treatment only with --with-treatment."""
    db = open_database(database_url)
    actor = person(db, OVERSIGHT)
    if with_treatment and actor.role != Role.UNBLINDED_MONITOR:
        fail("Only the unblinded monitor may see the treatments.")
    with db.read() as session:
        rows = reports.unblindings(
            session, study=load_definition(session), actor=actor, with_treatment=with_treatment
        )
    write_output(reports.unblindings_csv(rows, with_treatment=with_treatment), out)
