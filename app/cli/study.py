"""`irt study`: check a study definition file and load it, once, into a database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli import amendments
from app.cli.common import DatabaseUrl, command_group, load_study_file, open_database, transact
from app.cli.identity import person_or_setup
from app.domain.environment import LABEL, Mode
from app.domain.roles import SPONSOR_ADMINS
from app.services import study_setup

study_app = command_group("The study definition.")


@study_app.command("load")
def study_load(
    file: Annotated[Path | None, typer.Argument(help="Definition TOML; default IMC-002.")] = None,
    training: Annotated[
        bool, typer.Option(help="A training database: dummy lists and kits only, for good.")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Load the study definition (once per database), in production or training mode."""
    study = load_study_file(file)
    mode = Mode.TRAINING if training else Mode.PRODUCTION
    actor = person_or_setup(open_database(database_url), SPONSOR_ADMINS)
    transact(database_url, lambda s: study_setup.load_study(s, study=study, actor=actor, mode=mode))
    label = f"{LABEL} " if training else ""
    typer.echo(f"{label}Study {study.code} loaded (definition {study.fingerprint()}, {mode}).")


study_app.command("load-version")(amendments.study_load_version)
study_app.command("versions")(amendments.study_versions)


@study_app.command("check")
def study_check(file: Annotated[Path, typer.Argument(help="Definition TOML.")]) -> None:
    """Validate a study definition file without touching any database."""
    study = load_study_file(file)
    typer.echo(f"{study.code}: valid (definition {study.fingerprint()}).")
