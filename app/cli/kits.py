"""`irt kits`: write a kit list and import one into the depots. Unblinded work: the list names
each kit's content."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import DatabaseUrl, command_group, load_study_file, transact
from app.services import kits as kit_service
from app.services.actor import SYSTEM
from app.services.demo import DEMO_KITS_PER_CONTENT, demo_kit_list
from app.services.study_state import load_definition
from app.services.transaction import utcnow

kits_app = command_group("Kit lists (unblinded work).")


@kits_app.command("generate")
def kits_generate(
    out: Annotated[Path, typer.Option(help="CSV file to write (unblinded!).")],
    per_content: Annotated[int, typer.Option(help="Kits of each content.")] = (
        DEMO_KITS_PER_CONTENT
    ),
    depot: Annotated[str | None, typer.Option(help="Depot code; default the demo depot.")] = None,
    study_file: Annotated[Path | None, typer.Option(help="Study definition TOML.")] = None,
) -> None:
    """Write a kit list: random non-sequential kit numbers, several lots and expiry dates."""
    study = load_study_file(study_file)
    with typer.progressbar(length=2, label="Writing kit list") as progress:
        text = demo_kit_list(
            study=study,
            today=utcnow().date(),
            per_content=per_content,
            rng=secrets.SystemRandom(),
            depot=depot,
        )
        progress.update(1)
        out.write_text(text, "utf-8")
        progress.update(1)
    typer.echo(f"Wrote {per_content * len(study.contents)} kits to {out}.")


@kits_app.command("import")
def kits_import(
    file: Annotated[Path, typer.Argument(help="CSV: kit_number,content,lot,expiry_date,depot")],
    database_url: DatabaseUrl = None,
) -> None:
    """Import a kit list: every row valid or nothing is imported; the same file twice is a no-op."""
    text = file.read_text("utf-8")
    result = transact(
        database_url,
        lambda s: kit_service.import_kit_list(
            s, study=load_definition(s), actor=SYSTEM, text=text, today=utcnow().date()
        ),
    )
    if result["already_imported"]:
        typer.echo(
            f"This file was imported already (import {result['import_id']}); nothing changed."
        )
    else:
        typer.echo(f"Imported {result['kits']} kits (file SHA-256 {result['sha256']}).")
