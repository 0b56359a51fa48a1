"""The `irt` command line."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cli_simulation import simulate_command
from app.db.engine import Database
from app.db.migrate import NotMigratedError, ensure_migrated, upgrade
from app.db.models import Study
from app.domain.errors import DomainError
from app.domain.roles import Role
from app.domain.study import PHASE_II_SCOPE, StudyDefinition, StudyDefinitionError, load_study
from app.services import accounts, sites, study_setup
from app.services import kits as kit_service
from app.services import lists as list_service
from app.services.actor import SYSTEM
from app.services.demo import DEFAULT_PASSWORD, DEMO_KITS_PER_CONTENT, demo_kit_list, set_up_demo
from app.services.study_state import load_definition
from app.services.transaction import utcnow, writing
from app.settings import get_settings

T = TypeVar("T")

app = typer.Typer(
    help="IMC-002 IRT: randomization and trial supply management.", no_args_is_help=True
)


def _group(name: str, help_text: str) -> typer.Typer:
    group = typer.Typer(help=help_text, no_args_is_help=True)
    app.add_typer(group, name=name)
    return group


db_app = _group("db", "Database schema.")
study_app = _group("study", "The study definition.")
lists_app = _group("lists", "Randomization lists (unblinded work).")
depots_app = _group("depots", "Depots.")
sites_app = _group("sites", "Sites.")
users_app = _group("users", "User accounts.")
kits_app = _group("kits", "Kit lists (unblinded work).")
supply_app = _group("supply", "Supply jobs.")
audit_app = _group("audit", "The audit trail.")
outbox_app = _group("outbox", "Notifications.")

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="IRT_DATABASE_URL",
        help="SQLAlchemy URL; default sqlite:///./irt.db",
    ),
]
Reason = Annotated[str, typer.Option(help="Why, for the audit trail.")]


def _url(database_url: str | None) -> str:
    return database_url or get_settings().database_url


def _fail(message: str) -> NoReturn:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _database(database_url: str | None) -> Database:
    db = Database(_url(database_url))
    try:
        ensure_migrated(db.engine)
    except NotMigratedError as exc:
        _fail(str(exc))
    return db


def _transact(database_url: str | None, work: Callable[[Session], T]) -> T:
    """Run `work` in one audited transaction; print a refusal (and its problems) and exit 1."""
    db = _database(database_url)
    try:
        with writing(db) as session:
            return work(session)
    except DomainError as exc:
        for problem in exc.extra.get("problems", []):
            typer.echo(f"  {problem}", err=True)
        _fail(exc.detail)


def _study_file(file: Path | None) -> StudyDefinition:
    try:
        return load_study(file)
    except StudyDefinitionError as exc:
        _fail(str(exc))


def _serve(url: str, host: str, port: int, workers: int) -> None:
    import uvicorn

    os.environ["IRT_DATABASE_URL"] = url
    if not os.environ.get("IRT_SECRET_KEY"):
        os.environ["IRT_SECRET_KEY"] = secrets.token_urlsafe(32)
        typer.echo("IRT_SECRET_KEY not set: using a random key (tokens end with this process).")
    db = _database(url)
    with db.read() as session:
        loaded = session.execute(select(Study.id)).first() is not None
    db.dispose()
    if not loaded:
        _fail(
            "No study is loaded in this database. Load one first: `irt study load` (then sites, "
            "users, lists and kits), or `irt demo --database-url URL --no-serve` for the demo."
        )
    typer.echo(f"Serving on http://{host}:{port} (API docs at /docs), {workers} worker(s).")
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        server_header=False,
    )


Host = Annotated[str, typer.Option(help="Interface to listen on.")]
Port = Annotated[int, typer.Option(help="TCP port.")]
Workers = Annotated[int, typer.Option(help="Server processes.")]


@app.command()
def serve(
    database_url: DatabaseUrl = None,
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: Workers = 1,
) -> None:
    """Serve the API on a migrated database with a study loaded."""
    _serve(_url(database_url), host, port, workers)


@app.command()
def demo(
    password: Annotated[
        str, typer.Option(envvar="IRT_DEMO_PASSWORD", help="Password of every demo user.")
    ] = DEFAULT_PASSWORD,
    database: Annotated[Path, typer.Option(help="SQLite file, recreated.")] = Path("irt-demo.db"),
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="Set up on this (empty) database instead."),
    ] = None,
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve afterwards.")] = (
        True
    ),
    if_empty: Annotated[bool, typer.Option(help="Skip set-up if a study is loaded.")] = False,
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: Workers = 1,
) -> None:
    """Create the IMC-002 demo study (depot, kits, sites, users, lists, cohort C1 open); serve."""
    if database_url is None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{database.resolve()}"
    else:
        url = database_url
    upgrade(url)
    db = Database(url)
    with db.read() as session:
        loaded = session.execute(select(Study.id)).first() is not None
    if loaded and not if_empty:
        _fail("A study is loaded in that database already; the demo needs an empty one.")
    if not loaded:
        study = load_study()
        users = set_up_demo(db, study=study, password=password)
        typer.echo(f"Demo study {study.code} ready in {url}")
        typer.echo(
            f"Users (password from --password / IRT_DEMO_PASSWORD, default {DEFAULT_PASSWORD!r}):"
        )
        for user in users:
            where = ", ".join(user.site_ids) or "all sites"
            typer.echo(f"  {user.username:<14} {user.role:<18} {where}")
    db.dispose()
    if serve_after:
        _serve(url, host, port, workers)


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None) -> None:
    """Migrate the database to the current schema."""
    upgrade(_url(database_url))
    typer.echo("Database is at the current schema.")


@study_app.command("load")
def study_load(
    file: Annotated[Path | None, typer.Argument(help="Definition TOML; default IMC-002.")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Load the study definition (once per database)."""
    study = _study_file(file)
    _transact(database_url, lambda s: study_setup.load_study(s, study=study, actor=SYSTEM))
    typer.echo(f"Study {study.code} loaded (definition {study.fingerprint()}).")


@study_app.command("check")
def study_check(file: Annotated[Path, typer.Argument(help="Definition TOML.")]) -> None:
    """Validate a study definition file without touching any database."""
    study = _study_file(file)
    typer.echo(f"{study.code}: valid (definition {study.fingerprint()}).")


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
        scopes = _transact(
            database_url,
            lambda s: list_service.generate(s, study=load_definition(s), actor=SYSTEM, seed=secret),
        )
        progress.update(1)
    typer.echo(f"Generated lists for {', '.join(scopes)}; see `irt lists show-commitment`.")


class ImportFormat(StrEnum):
    CANONICAL = "canonical"
    REDCAP = "redcap"
    SEALED_ENVELOPE = "sealed-envelope"


class ExportFormat(StrEnum):
    CANONICAL = "canonical"
    REDCAP = "redcap"


ScopeOption = Annotated[
    str | None,
    typer.Option(help="List scope (C1, C2, C3, P2); for redcap and sealed-envelope default P2."),
]


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
    scopes = _transact(
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
    db = _database(database_url)
    with db.read() as session:
        results = list_service.verify(session, load_definition(session))
    for result in results:
        typer.echo(f"{result.scope}: {'ok' if result.ok else 'BROKEN'}")
        for problem in result.problems:
            typer.echo(f"  {problem}")
    if not results or not all(r.ok for r in results):
        raise typer.Exit(1)


@lists_app.command("show-commitment")
def lists_show_commitment(database_url: DatabaseUrl = None) -> None:
    """Print each list's SHA-256 commitment."""
    db = _database(database_url)
    with db.read() as session:
        for row in list_service.commitments(session):
            typer.echo(
                f"{row['scope']}  {row['sha256']}  {row['source']}, {row['slots']} slots, "
                f"{row['created_at']} by {row['created_by']}"
            )


@lists_app.command("export")
def lists_export(
    out: Annotated[Path, typer.Option(help="CSV file to write (unblinded!).")],
    file_format: Annotated[
        ExportFormat, typer.Option("--format", help="canonical (all scopes) or redcap.")
    ] = ExportFormat.CANONICAL,
    scope: Annotated[str | None, typer.Option(help="One scope only; redcap default P2.")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Write the stored lists: canonical CSV (the text the commitment hashes) or REDCap's
    allocation table of one scope."""
    db = _database(database_url)
    try:
        with db.read() as session:
            text = list_service.export_text(
                session, study=load_definition(session), file_format=file_format.value, scope=scope
            )
    except DomainError as exc:
        _fail(exc.detail)
    out.write_text(text, "utf-8")
    typer.echo(f"Wrote {out}.")


Country = Annotated[str, typer.Option(help="ISO 3166 alpha-2 code.")]
DepotOption = Annotated[str | None, typer.Option("--depot", help="The supplying depot.")]


@depots_app.command("add")
def depots_add(
    depot_id: str, name: str, country: Country, database_url: DatabaseUrl = None
) -> None:
    """Add a depot."""
    _transact(
        database_url,
        lambda s: sites.add_depot(s, actor=SYSTEM, depot_id=depot_id, name=name, country=country),
    )
    typer.echo(f"Depot {depot_id} added.")


@sites_app.command("add")
def sites_add(
    site_id: str,
    name: str,
    country: Country,
    depot: DepotOption = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Add a site (inactive until `irt sites activate`)."""
    _transact(
        database_url,
        lambda s: study_setup.add_site(
            s, actor=SYSTEM, site_id=site_id, name=name, country=country, depot_id=depot
        ),
    )
    typer.echo(f"Site {site_id} added (inactive).")


@sites_app.command("activate")
def sites_activate(
    site_id: str, reason: Reason, depot: DepotOption = None, database_url: DatabaseUrl = None
) -> None:
    """Open a site for enrolment; its initial shipment is requested from its depot."""
    result = _transact(
        database_url,
        lambda s: sites.activate(
            s,
            study=load_definition(s),
            actor=SYSTEM,
            site_id=site_id,
            depot_id=depot,
            reason=reason,
            today=utcnow().date(),
        ),
    )
    shipment_id = result["initial_shipment_id"]
    if shipment_id is None:
        typer.echo(f"Site {site_id} active; no initial shipment: the depot has no shippable kits.")
    else:
        typer.echo(f"Site {site_id} active; initial shipment {shipment_id} requested.")


Password = Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)]


def _check_password(password: str) -> None:
    if len(password) < 10:
        _fail("Passwords need at least 10 characters.")


@users_app.command("create")
def users_create(
    username: str,
    role: Annotated[Role, typer.Option(help="The user's one role.")],
    site: Annotated[list[str] | None, typer.Option(help="A site the user works at.")] = None,
    email: Annotated[str | None, typer.Option(help="For notifications.")] = None,
    password: Password = "",
    database_url: DatabaseUrl = None,
) -> None:
    """Create a user account."""
    _check_password(password)
    _transact(
        database_url,
        lambda s: study_setup.add_user(
            s,
            actor=SYSTEM,
            username=username,
            password=password,
            role=role,
            site_ids=site or (),
            email=email,
        ),
    )
    typer.echo(f"User {username} ({role}) created.")


@users_app.command("disable")
def users_disable(username: str, reason: Reason, database_url: DatabaseUrl = None) -> None:
    """Disable an account: its tokens stop working at once."""
    _transact(
        database_url, lambda s: accounts.disable(s, actor=SYSTEM, username=username, reason=reason)
    )
    typer.echo(f"User {username} disabled.")


@users_app.command("reset-password")
def users_reset_password(
    username: str,
    password: Password = "",
    reason: Reason = "password reset",
    database_url: DatabaseUrl = None,
) -> None:
    """Set a new password (at least 10 characters); every token issued before stops working."""
    _check_password(password)
    _transact(
        database_url,
        lambda s: accounts.reset_password(
            s, actor=SYSTEM, username=username, password=password, reason=reason
        ),
    )
    typer.echo(f"Password of {username} reset.")


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
    study = _study_file(study_file)
    with typer.progressbar(length=2, label="Writing kit list") as progress:
        text = demo_kit_list(
            study=study, today=utcnow().date(), per_content=per_content, rng=secrets.SystemRandom()
        )
        if depot:
            text = text.replace(f",{study.demo_depots[0].code}\n", f",{depot}\n")
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
    result = _transact(
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


# The commands for running the trial (cohorts, phase II dose, shipments, the supply job, reports,
# exports, audit, outbox) live in app/cli_operations.py; importing it registers them on `app`.
from app import cli_operations  # noqa: E402, F401

app.command("simulate")(simulate_command)


def main() -> None:
    try:
        app()
    except StudyDefinitionError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        sys.exit(1)
