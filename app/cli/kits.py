"""`irt kits`: write a kit list and import one into the depots. Unblinded work: the list names
each kit's content."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import (
    DatabaseUrl,
    command_group,
    load_study_file,
    open_database,
    run_command,
)
from app.cli.identity import person, signature
from app.domain import signatures as meanings
from app.domain.environment import Mode, mark_file
from app.domain.roles import KIT_IMPORTERS
from app.services import admin_commands
from app.services.demo import DEMO_KITS_PER_CONTENT, demo_kit_list
from app.services.transaction import utcnow
from app.settings import get_settings

kits_app = command_group("Kit lists (unblinded work).")


@kits_app.command("generate")
def kits_generate(
    out: Annotated[Path, typer.Option(help="CSV file to write (unblinded!).")],
    per_content: Annotated[int, typer.Option(help="Kits of each content.")] = (
        DEMO_KITS_PER_CONTENT
    ),
    depot: Annotated[str | None, typer.Option(help="Depot code; default the demo depot.")] = None,
    study_file: Annotated[Path | None, typer.Option(help="Study definition TOML.")] = None,
    training: Annotated[
        bool, typer.Option(help="Dummy kits for a training database (marked as such).")
    ] = False,
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
        out.write_text(mark_file(Mode.TRAINING if training else Mode.PRODUCTION, text), "utf-8")
        progress.update(1)
    typer.echo(f"Wrote {per_content * len(study.contents)} kits to {out}.")


@kits_app.command("import")
def kits_import(
    file: Annotated[Path, typer.Argument(help="CSV: kit_number,content,lot,expiry_date,depot")],
    database_url: DatabaseUrl = None,
) -> None:
    """Import a kit list (unblinded monitor, signed): every row valid or nothing is imported;
    the same file twice is a no-op."""
    text = file.read_text("utf-8")
    actor = person(open_database(database_url), KIT_IMPORTERS)
    given = signature(meanings.kit_list_meaning(hashlib.sha256(text.encode("utf-8")).hexdigest()))
    result = run_command(
        database_url,
        lambda db, study: admin_commands.import_kit_list(
            db=db, study=study, actor=actor, text=text, settings=get_settings(), signature=given
        ),
    )
    if result["already_imported"]:
        typer.echo(
            f"This file was imported already (import {result['import_id']}); nothing changed."
        )
    else:
        typer.echo(f"Imported {result['kits']} kits (file SHA-256 {result['sha256']}).")
