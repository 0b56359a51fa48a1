"""`irt lists`: randomization lists, generated here or imported, with their commitments. Unblinded
work: run by the unblinded statistician, never by a blinded role."""

from __future__ import annotations

import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import DatabaseUrl, command_group, fail, open_database, transact
from app.domain.errors import DomainError
from app.domain.study import PHASE_II_SCOPE
from app.services import lists as list_service
from app.services.actor import SYSTEM
from app.services.study_state import load_definition

lists_app = command_group("Randomization lists (unblinded work).")


class ImportFormat(StrEnum):
    CANONICAL = "canonical"
    REDCAP = "redcap"
    SEALED_ENVELOPE = "sealed-envelope"


class ExportFormat(StrEnum):
    CANONICAL = "canonical"
    REDCAP = "redcap"


ListFormat = Annotated[
    ExportFormat, typer.Option("--format", help="canonical (all scopes) or redcap.")
]
ListScope = Annotated[str | None, typer.Option(help="One scope only; redcap default P2.")]


ScopeOption = Annotated[
    str | None,
    typer.Option(help="List scope (C1, C2, C3, P2); for redcap and sealed-envelope default P2."),
]


@lists_app.command("generate")
def lists_generate(
    seed: Annotated[
        str | None,
        typer.Option(envvar="IRT_LIST_SEED", help="Secret seed; default a fresh random one."),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Generate every scope's list from a secret seed and record the commitments."""
    secret = seed or secrets.token_hex(32)
    with typer.progressbar(length=1, label="Generating lists") as progress:
        scopes = transact(
            database_url,
            lambda s: list_service.generate(s, study=load_definition(s), actor=SYSTEM, seed=secret),
        )
        progress.update(1)
    typer.echo(f"Generated lists for {', '.join(scopes)}; see `irt lists show-commitment`.")


@lists_app.command("import")
def lists_import(
    file: Annotated[Path, typer.Argument(help="CSV in the chosen format (docs/randomization.md)")],
    file_format: Annotated[
        ImportFormat, typer.Option("--format", help="Layout of the file.")
    ] = ImportFormat.CANONICAL,
    scope: ScopeOption = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Import an externally generated list: all rows valid, or nothing is imported."""
    text = file.read_text("utf-8")
    scopes = transact(
        database_url,
        lambda s: list_service.import_csv(
            s,
            study=load_definition(s),
            actor=SYSTEM,
            text=text,
            file_format=file_format.value,
            scope=scope or PHASE_II_SCOPE,
        ),
    )
    typer.echo(f"Imported lists for {', '.join(scopes)}.")


@lists_app.command("verify")
def lists_verify(database_url: DatabaseUrl = None) -> None:
    """Check every list against its audited commitment (and its seed, if generated here)."""
    db = open_database(database_url)
    with db.read() as session:
        results = list_service.verify(session, study=load_definition(session))
    for result in results:
        typer.echo(f"{result.scope}: {'ok' if result.ok else 'BROKEN'}")
        for problem in result.problems:
            typer.echo(f"  {problem}")
    if not results or not all(r.ok for r in results):
        raise typer.Exit(1)


@lists_app.command("show-commitment")
def lists_show_commitment(database_url: DatabaseUrl = None) -> None:
    """Print each list's SHA-256 commitment."""
    db = open_database(database_url)
    with db.read() as session:
        for row in list_service.commitments(session):
            typer.echo(
                f"{row['scope']}  {row['sha256']}  {row['source']}, {row['slots']} slots, "
                f"{row['created_at']} by {row['created_by']}"
            )


@lists_app.command("export")
def lists_export(
    out: Annotated[Path, typer.Option(help="CSV file to write (unblinded!).")],
    file_format: ListFormat = ExportFormat.CANONICAL,
    scope: ListScope = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Write the stored lists: canonical CSV (the text the commitment hashes) or REDCap's
    allocation table of one scope."""
    db = open_database(database_url)
    try:
        with db.read() as session:
            text = list_service.export_text(
                session, study=load_definition(session), file_format=file_format.value, scope=scope
            )
    except DomainError as exc:
        fail(exc.detail)
    out.write_text(text, "utf-8")
    typer.echo(f"Wrote {out}.")
