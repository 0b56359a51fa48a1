"""`irt export`: data exports to files (docs/exports.md). Allocations and lists are unblinded;
SDTM, ODM and FHIR come blinded with --blinded, as the sponsor admin gets them."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import DatabaseUrl, command_group, fail, open_database
from app.cli.identity import person
from app.cli.lists import ExportFormat, ListFormat, ListScope
from app.db.engine import Database
from app.domain.errors import DomainError
from app.domain.roles import OVERSIGHT, UNBLINDED_MONITORS, Role
from app.domain.study import StudyDefinition
from app.services import exports as export_service
from app.services import unblinded_reads
from app.services.actor import Actor
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
    database_url: str | None,
    *,
    output: Path,
    label: str,
    roles: frozenset[Role] | tuple[Role, ...],
    build: Callable[[Database, StudyDefinition, Actor], str | bytes],
) -> None:
    """Read, build and write one export with a progress bar: large trials take a while. The
    export is made as the named user running the command, who needs one of `roles`; the
    unblinded ones are recorded in the audit trail under that user by the service."""
    db = open_database(database_url)
    actor = person(db, roles)
    with typer.progressbar(length=3, label=label) as progress:
        progress.update(1)
        try:
            with db.read() as session:
                study = load_definition(session)
            body = build(db, study, actor)
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
        roles=UNBLINDED_MONITORS,
        build=lambda db, study, actor: unblinded_reads.allocations_csv(
            db=db, study=study, actor=actor
        ),
    )


@export_app.command("list")
def export_list(
    output: Output,
    file_format: ListFormat = ExportFormat.CANONICAL,
    scope: ListScope = None,
    database_url: DatabaseUrl = None,
) -> None:
    """The stored randomization lists: canonical, REDCap or Sealed Envelope layout (unblinded!)."""
    _export_file(
        database_url,
        output=output,
        label="Exporting list",
        roles=UNBLINDED_MONITORS,
        build=lambda db, study, actor: unblinded_reads.list_export(
            db=db, study=study, actor=actor, file_format=file_format.value, scope=scope
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
        roles=OVERSIGHT if blinded else UNBLINDED_MONITORS,
        build=lambda db, study, actor: unblinded_reads.export(
            db=db, study=study, actor=actor, kind=kind, blinded=blinded, now=utcnow()
        ),
    )


class SdtmFileFormat(StrEnum):
    CSV = "csv"
    XPT = "xpt"


SdtmFormat = Annotated[
    SdtmFileFormat,
    typer.Option(
        "--format",
        help="xpt: SAS XPT v5 with define.xml (for Pinnacle 21 and CORE); csv: CSV with "
        "define.csv.",
    ),
]


@export_app.command("sdtm")
def export_sdtm(
    output: Output,
    blinded: Blinded = False,
    file_format: SdtmFormat = SdtmFileFormat.CSV,
    database_url: DatabaseUrl = None,
) -> None:
    """A zip of the SDTM datasets DM, DS, EX, TA, TE and TV, as XPT or CSV."""
    kind: export_service.ExportFormat = "sdtm-xpt" if file_format is SdtmFileFormat.XPT else "sdtm"
    _export(kind, output=output, blinded=blinded, url=database_url)


@export_app.command("odm")
def export_odm(
    output: Output,
    blinded: Blinded = False,
    subject_key: Annotated[
        str,
        typer.Option(
            help="SubjectKey: usubjid, or subject-label (the screening number the EDC shows)."
        ),
    ] = "usubjid",
    database_url: DatabaseUrl = None,
) -> None:
    """CDISC ODM 1.3.2 XML: randomization number, date and arm per subject."""
    _export_file(
        database_url,
        output=output,
        label=f"Exporting odm{' (blinded)' if blinded else ''}",
        roles=OVERSIGHT if blinded else UNBLINDED_MONITORS,
        build=lambda db, study, actor: unblinded_reads.odm(
            db=db, study=study, actor=actor, blinded=blinded, now=utcnow(), subject_key=subject_key
        ),
    )


@export_app.command("fhir")
def export_fhir(output: Output, blinded: Blinded = False, database_url: DatabaseUrl = None) -> None:
    """FHIR R5 Bundle (JSON): ResearchStudy with its arms and a ResearchSubject per subject."""
    _export("fhir", output=output, blinded=blinded, url=database_url)
