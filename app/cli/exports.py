"""`irt export`: data exports to files (docs/exports.md). Allocations and lists are unblinded;
SDTM, ODM and FHIR come blinded with --blinded, as the sponsor admin gets them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from app.cli.common import DatabaseUrl, command_group, fail, open_database
from app.cli.lists import ExportFormat, ListFormat, ListScope
from app.domain.errors import DomainError
from app.services import exports as export_service
from app.services import lists as list_service
from app.services import unblinded_allocations as unblinded_service
from app.services.study_state import load_definition
from app.services.transaction import utcnow

export_app = command_group("Data exports: allocations, lists, SDTM, ODM, FHIR.")

Output = Annotated[Path, typer.Option("--output", "--out", help="File to write.")]
Blinded = Annotated[
    bool,
    typer.Option(
        "--blinded/--unblinded",
        help="Blinded variant (no arm, treatment or lot), as the sponsor admin gets it.",
    ),
]


def _export_file(
    database_url: str | None, *, output: Path, label: str, build: Callable[[Session], str | bytes]
) -> None:
    """Read, build and write one export with a progress bar: large trials take a while."""
    with typer.progressbar(length=3, label=label) as progress:
        db = open_database(database_url)
        progress.update(1)
        try:
            with db.read() as session:
                body = build(session)
        except DomainError as exc:
            fail(exc.detail)
        progress.update(1)
        if isinstance(body, str):
            output.write_text(body, "utf-8")
        else:
            output.write_bytes(body)
        progress.update(1)
    typer.echo(f"Wrote {output}.")


@export_app.command("allocations")
def export_allocations(output: Output, database_url: DatabaseUrl = None) -> None:
    """Allocations CSV: one row per randomized subject with arm and treatment (unblinded!)."""
    _export_file(
        database_url,
        output=output,
        label="Exporting allocations",
        build=lambda s: unblinded_service.allocations_csv(s, study=load_definition(s)),
    )


@export_app.command("list")
def export_list(
    output: Output,
    file_format: ListFormat = ExportFormat.CANONICAL,
    scope: ListScope = None,
    database_url: DatabaseUrl = None,
) -> None:
    """The stored randomization lists, canonical or in REDCap's layout (unblinded!)."""
    _export_file(
        database_url,
        output=output,
        label="Exporting list",
        build=lambda s: list_service.export_text(
            s, study=load_definition(s), file_format=file_format.value, scope=scope
        ),
    )


def _export(
    kind: export_service.ExportFormat, *, output: Path, blinded: bool, url: str | None
) -> None:
    """SDTM, ODM and FHIR share one service entry point; only the format differs."""
    label = f"Exporting {kind}{' (blinded)' if blinded else ''}"
    _export_file(
        url,
        output=output,
        label=label,
        build=lambda s: export_service.export_bytes(
            s, study=load_definition(s), kind=kind, blinded=blinded, now=utcnow()
        ),
    )


@export_app.command("sdtm")
def export_sdtm(output: Output, blinded: Blinded = False, database_url: DatabaseUrl = None) -> None:
    """A zip of SDTM-style DM, DS, EX and TA CSV datasets with define.csv."""
    _export("sdtm", output=output, blinded=blinded, url=database_url)


@export_app.command("odm")
def export_odm(output: Output, blinded: Blinded = False, database_url: DatabaseUrl = None) -> None:
    """CDISC ODM 1.3.2 XML: randomization number, date and arm per subject."""
    _export("odm", output=output, blinded=blinded, url=database_url)


@export_app.command("fhir")
def export_fhir(output: Output, blinded: Blinded = False, database_url: DatabaseUrl = None) -> None:
    """FHIR R5 Bundle (JSON): ResearchStudy with its arms and a ResearchSubject per subject."""
    _export("fhir", output=output, blinded=blinded, url=database_url)
