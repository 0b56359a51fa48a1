"""What every `irt` command group shares: the database option, opening a migrated database, one
audited transaction per change, and refusals printed in red with exit code 1."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session

from app.db.engine import Database
from app.db.migrate import NotMigratedError, ensure_migrated
from app.domain.environment import LABEL, Mode
from app.domain.errors import DomainError
from app.domain.study import StudyDefinition, StudyDefinitionError, load_study
from app.services import checkpoints, environment
from app.services.study_state import load_definition
from app.services.transaction import writing
from app.settings import get_settings

T = TypeVar("T")

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="IRT_DATABASE_URL",
        help="SQLAlchemy URL; default sqlite:///./irt.db",
    ),
]
Reason = Annotated[
    str, typer.Option(help="Why, for the audit trail: at least 10 visible characters.")
]
Out = Annotated[Path | None, typer.Option("--out", help="CSV file to write; default stdout.")]
SiteOption = Annotated[str | None, typer.Option("--site", help="One site only.")]


def command_group(help_text: str) -> typer.Typer:
    """A group that prints its help when called bare; app/cli/__init__.py names and mounts it."""
    return typer.Typer(help=help_text, no_args_is_help=True)


def resolve_url(database_url: str | None) -> str:
    """The option (or IRT_DATABASE_URL) wins; otherwise the settings' default database. One
    that cannot be read is refused in a line (not echoed: it may hold a password)."""
    url = database_url or get_settings().database_url
    try:
        make_url(url)
    except ArgumentError:
        fail(
            "The database URL (--database-url or IRT_DATABASE_URL) cannot be read. Write it "
            "as sqlite:///path/to/file.db or postgresql+psycopg://user@host/database."
        )
    return url


def fail(message: str) -> NoReturn:
    """A refusal: red on stderr and exit 1, so scripts stop."""
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def open_database(database_url: str | None) -> Database:
    """The database, refused unless migrated: commands never run against an old schema. A
    SQLite file that is not there is named, not created empty (a wrong path or no
    --database-url is the usual cause; `irt db upgrade` makes a new one)."""
    url = resolve_url(database_url)
    path = make_url(url).database if make_url(url).get_backend_name() == "sqlite" else None
    if path not in (None, "", ":memory:") and not Path(str(path)).exists():
        fail(
            f"No database at {Path(str(path)).absolute()}. Name the study's database with "
            "--database-url or IRT_DATABASE_URL (the demo's is sqlite:///irt-demo.db, in the "
            "folder `make demo` ran in); `irt db upgrade` creates a new one."
        )
    db = Database(url)
    try:
        ensure_migrated(db.engine)
        checkpoints.attach(db, checkpoints.log_for(get_settings(), database_url=url))
        if environment.database_mode(db) == Mode.TRAINING:  # on every command's output
            typer.secho(f"{LABEL}: this is a training database.", fg=typer.colors.YELLOW, err=True)
    except NotMigratedError as exc:
        fail(str(exc))
    except DBAPIError as exc:  # wrong host, user or password: the driver's reason, in a line
        reason = str(exc.orig).strip().splitlines()[-1] if exc.orig else type(exc).__name__
        fail(f"Cannot open the database: {reason}")
    except (ValueError, OSError) as exc:
        fail(f"Audit checkpoints: {exc}")
    return db


def transact(database_url: str | None, work: Callable[[Session], T]) -> T:
    """Run `work` in one audited transaction; print a refusal (and its problems) and exit 1."""
    db = open_database(database_url)
    try:
        with writing(db) as session:
            return work(session)
    except DomainError as exc:
        for problem in exc.extra.get("problems", []):
            typer.echo(f"  {problem}", err=True)
        fail(exc.detail)


def run_command(database_url: str | None, command: Callable[[Database, StudyDefinition], T]) -> T:
    """Call a use case that owns its transaction (app/services/*commands.py) with the database
    and the study it holds; print a refusal (and its problems) and exit 1."""
    db = open_database(database_url)
    try:
        with db.read() as session:
            study = load_definition(session)
        return command(db, study)
    except DomainError as exc:
        for problem in exc.extra.get("problems", []):
            typer.echo(f"  {problem}", err=True)
        fail(exc.detail)


def load_study_file(file: Path | None) -> StudyDefinition:
    """The study definition TOML (default IMC-002); a bad file is a refusal, not a traceback."""
    try:
        return load_study(file)
    except StudyDefinitionError as exc:
        fail(str(exc))


def write_output(text: str, out: Path | None) -> None:
    """Reports go to stdout unless --out names a file."""
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, "utf-8")
        typer.echo(f"Wrote {out}.")
