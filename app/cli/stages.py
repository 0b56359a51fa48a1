"""`irt cohorts` and `irt phase2-dose`: the sponsor's stage decisions, each audited with a reason.
Phase Ib cohorts open one after another; the phase II dose is chosen once they are all closed."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

import typer

from app.cli.common import DatabaseUrl, Reason, command_group, fail, open_database, run_command
from app.cli.identity import person, signature
from app.domain import signatures as meanings
from app.domain.roles import SPONSOR_ADMINS
from app.services import admin_commands, stages
from app.settings import get_settings

cohorts_app = command_group("Phase Ib cohorts: open and close (sponsor decisions).")
phase2_app = command_group("The phase II dose, recorded once (sponsor decision).")


def _cohort_line(row: dict[str, object]) -> str:
    return (
        f"{row['code']:<4} {row['dose_mg_per_kg']} mg/kg  {row['status']:<8} "
        f"{row['randomized']}/{row['cap']} randomized"
    )


@cohorts_app.command("list")
def cohorts_list(database_url: DatabaseUrl = None) -> None:
    """Every phase Ib cohort: dose level, status and subjects randomized against its cap."""
    with open_database(database_url).read() as session:
        for row in stages.list_cohorts(session):
            typer.echo(_cohort_line(row))


def _change_cohort(
    code: str, *, action: Literal["open", "close"], reason: str, database_url: str | None
) -> None:
    """`open` and `close` differ only in the action the service is asked for. Signed."""
    actor = person(open_database(database_url), SPONSOR_ADMINS)
    signed = signature(meanings.cohort_meaning(code=code, action=action))
    cohort = run_command(
        database_url,
        lambda db, study: admin_commands.change_cohort(
            db=db,
            study=study,
            actor=actor,
            code=code,
            action=action,
            reason=reason,
            settings=get_settings(),
            signature=signed,
        ),
    )
    typer.echo(_cohort_line(cohort.model_dump()))


@cohorts_app.command("open")
def cohorts_open(code: str, reason: Reason, database_url: DatabaseUrl = None) -> None:
    """Open the next cohort (after the safety review of the previous one)."""
    _change_cohort(code, action="open", reason=reason, database_url=database_url)


@cohorts_app.command("close")
def cohorts_close(code: str, reason: Reason, database_url: DatabaseUrl = None) -> None:
    """Close the open cohort: no further subject is randomized into it."""
    _change_cohort(code, action="close", reason=reason, database_url=database_url)


def _phase2_line(row: dict[str, object]) -> str:
    if row["dose_mg_per_kg"] is None:
        return "Phase II dose: not selected yet."
    return (
        f"Phase II dose: {row['dose_mg_per_kg']} mg/kg, selected {row['selected_at']}; "
        f"{row['randomized']} randomized."
    )


@phase2_app.command("show")
def phase2_show(database_url: DatabaseUrl = None) -> None:
    """The recorded phase II dose, if any."""
    with open_database(database_url).read() as session:
        typer.echo(_phase2_line(stages.phase2_view(session)))


@phase2_app.command("select")
def phase2_select(
    dose: Annotated[str, typer.Argument(help="mg/kg: one of the phase Ib cohorts' levels.")],
    reason: Reason,
    database_url: DatabaseUrl = None,
) -> None:
    """Record the phase II dose (once; the level of a closed cohort, while none is open)."""
    try:
        level = Decimal(dose)
    except InvalidOperation:
        fail(f"Not a number: {dose!r}.")
    actor = person(open_database(database_url), SPONSOR_ADMINS)
    signed = signature(meanings.phase2_dose_meaning(level))
    phase2 = run_command(
        database_url,
        lambda db, study: admin_commands.select_phase2_dose(
            db=db,
            study=study,
            actor=actor,
            dose_mg_per_kg=level,
            reason=reason,
            settings=get_settings(),
            signature=signed,
        ),
    )
    typer.echo(_phase2_line(phase2.model_dump()))
