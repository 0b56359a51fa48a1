"""The `irt` command line."""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select

from app.db.engine import Database
from app.db.migrate import NotMigratedError, ensure_migrated, upgrade
from app.db.models import AuditEntry
from app.domain.audit_chain import verify_chain
from app.domain.roles import Role
from app.domain.study import StudyDefinitionError, load_study
from app.services import accounts, audit, outbox, setup, sites
from app.services import kits as kit_service
from app.services import lists as list_service
from app.services.actor import SYSTEM
from app.services.demo import DEFAULT_PASSWORD, DEMO_KITS_PER_CONTENT, demo_kit_list, set_up_demo
from app.services.errors import ServiceError
from app.services.locks import lock_site
from app.services.resupply import check_site
from app.services.study_state import load_definition
from app.services.transaction import utcnow, writing
from app.settings import get_settings

app = typer.Typer(
    help="IMC-002 IRT: randomization and trial supply management.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
lists_app = typer.Typer(help="Randomization lists (unblinded work).", no_args_is_help=True)
study_app = typer.Typer(help="The study definition.", no_args_is_help=True)
sites_app = typer.Typer(help="Sites.", no_args_is_help=True)
users_app = typer.Typer(help="User accounts.", no_args_is_help=True)
depots_app = typer.Typer(help="Depots.", no_args_is_help=True)
kits_app = typer.Typer(help="Kit lists (unblinded work).", no_args_is_help=True)
supply_app = typer.Typer(help="Supply jobs.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
outbox_app = typer.Typer(help="Notifications.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(lists_app, name="lists")
app.add_typer(study_app, name="study")
app.add_typer(sites_app, name="sites")
app.add_typer(users_app, name="users")
app.add_typer(depots_app, name="depots")
app.add_typer(kits_app, name="kits")
app.add_typer(supply_app, name="supply")
app.add_typer(audit_app, name="audit")
app.add_typer(outbox_app, name="outbox")

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="IRT_DATABASE_URL",
        help="SQLAlchemy URL; default sqlite:///./irt.db",
    ),
]


def _url(database_url: str | None) -> str:
    return database_url or get_settings().database_url


def _fail(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _database(database_url: str | None) -> Database:
    db = Database(_url(database_url))
    try:
        ensure_migrated(db.engine)
    except NotMigratedError as exc:
        _fail(str(exc))
    return db


def _serve(url: str, host: str, port: int, workers: int) -> None:
    import uvicorn

    os.environ["IRT_DATABASE_URL"] = url
    if not os.environ.get("IRT_SECRET_KEY"):
        os.environ["IRT_SECRET_KEY"] = secrets.token_urlsafe(32)
        typer.echo("IRT_SECRET_KEY not set: using a random key (tokens end with this process).")
    db = Database(url)
    try:
        ensure_migrated(db.engine)
    except NotMigratedError as exc:
        _fail(str(exc))
    db.dispose()
    typer.echo(f"Serving on http://{host}:{port} (API docs at /docs), {workers} worker(s).")
    uvicorn.run(
        "app.main:create_app", factory=True, host=host, port=port, workers=workers, log_level="info"
    )


@app.command()
def serve(
    database_url: DatabaseUrl = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes.")] = 1,
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
        typer.Option(
            "--database-url", help="Set up on this (empty) database instead of a SQLite file."
        ),
    ] = None,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve afterwards.")
    ] = True,
    if_empty: Annotated[
        bool, typer.Option(help="Skip set-up if a study is loaded already.")
    ] = False,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes.")] = 1,
) -> None:
    """Create the IMC-002 demo study (sites, users, lists, cohort C1 open) and serve it."""
    if database_url is None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{database.resolve()}"
    else:
        url = database_url
    upgrade(url)
    db = Database(url)
    study = load_study()
    with db.read() as session:
        from sqlalchemy import select

        from app.db.models import Study

        loaded = session.execute(select(Study.id)).first() is not None
    if loaded and not if_empty:
        _fail("A study is loaded in that database already; the demo needs an empty one.")
    if not loaded:
        users = set_up_demo(db, study, password)
        typer.echo(f"Demo study {study.code} ready in {url}")
        typer.echo(
            f"Users (password from --password / IRT_DEMO_PASSWORD, default {DEFAULT_PASSWORD!r}):"
        )
        for user in users:
            sites = ", ".join(user.site_ids) or "all sites"
            typer.echo(f"  {user.username:<14} {user.role:<18} {sites}")
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
    try:
        study = load_study(file)
    except StudyDefinitionError as exc:
        _fail(str(exc))
        return
    db = _database(database_url)
    try:
        with writing(db) as session:
            setup.load_study(session, study, SYSTEM)
    except ServiceError as exc:
        _fail(exc.detail)
    typer.echo(f"Study {study.code} loaded (definition {study.fingerprint()}).")


@study_app.command("check")
def study_check(file: Annotated[Path, typer.Argument(help="Definition TOML.")]) -> None:
    """Validate a study definition file without touching any database."""
    try:
        study = load_study(file)
    except StudyDefinitionError as exc:
        _fail(str(exc))
        return
    typer.echo(f"{study.code}: valid (definition {study.fingerprint()}).")


@sites_app.command("add")
def sites_add(
    site_id: str,
    name: str,
    country: Annotated[str, typer.Option(help="ISO 3166 alpha-2 code.")],
    depot: Annotated[str | None, typer.Option(help="The depot that supplies the site.")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Add a site (inactive until `irt sites activate`)."""
    db = _database(database_url)
    try:
        with writing(db) as session:
            setup.add_site(session, SYSTEM, site_id, name, country, depot)
    except ServiceError as exc:
        _fail(exc.detail)
    typer.echo(f"Site {site_id} added (inactive).")


@sites_app.command("activate")
def sites_activate(
    site_id: str,
    reason: Annotated[str, typer.Option(help="Why, for the audit trail.")],
    depot: Annotated[str | None, typer.Option(help="The depot that supplies the site.")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Open a site for enrolment; its initial shipment is requested from its depot."""
    db = _database(database_url)
    try:
        with writing(db) as session:
            study = load_definition(session)
            result = sites.activate(session, study, SYSTEM, site_id, depot, reason, utcnow().date())
    except ServiceError as exc:
        _fail(exc.detail)
        return
    shipment_id = result["initial_shipment_id"]
    if shipment_id is None:
        typer.echo(f"Site {site_id} active; no initial shipment: the depot has no shippable kits.")
    else:
        typer.echo(f"Site {site_id} active; initial shipment {shipment_id} requested.")


@depots_app.command("add")
def depots_add(
    depot_id: str,
    name: str,
    country: Annotated[str, typer.Option(help="ISO 3166 alpha-2 code.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Add a depot."""
    db = _database(database_url)
    try:
        with writing(db) as session:
            sites.add_depot(session, SYSTEM, depot_id, name, country)
    except ServiceError as exc:
        _fail(exc.detail)
    typer.echo(f"Depot {depot_id} added.")


@supply_app.command("check")
def supply_check(database_url: DatabaseUrl = None) -> None:
    """Expire kits inside the do-not-dispense window and resupply every active site (daily)."""
    db = _database(database_url)
    with writing(db) as session:
        study = load_definition(session)
        site_ids = [s["site_id"] for s in sites.list_sites(session, SYSTEM) if s["active"]]
    for site_id in site_ids:
        with writing(db) as session:
            site = lock_site(session, site_id)
            shipment = check_site(session, study, SYSTEM, site, utcnow().date())
        typer.echo(f"{site_id}: " + (f"shipment {shipment.id} requested" if shipment else "ok"))


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
    study = load_study(study_file)
    text = demo_kit_list(study, utcnow().date(), per_content, secrets.SystemRandom())
    if depot:
        text = text.replace(f",{study.demo_depots[0].code}\n", f",{depot}\n")
    with typer.progressbar(length=1, label="Writing kit list") as progress:
        out.write_text(text, "utf-8")
        progress.update(1)
    typer.echo(f"Wrote {per_content * len(study.contents)} kits to {out}.")


@kits_app.command("import")
def kits_import(
    file: Annotated[Path, typer.Argument(help="CSV: kit_number,content,lot,expiry_date,depot")],
    database_url: DatabaseUrl = None,
) -> None:
    """Import a kit list: every row valid or nothing is imported; the same file twice is a no-op."""
    db = _database(database_url)
    try:
        with writing(db) as session:
            study = load_definition(session)
            result = kit_service.import_kit_list(
                session, study, SYSTEM, file.read_text("utf-8"), utcnow().date()
            )
    except ServiceError as exc:
        for problem in exc.extra.get("problems", []):
            typer.echo(f"  {problem}", err=True)
        _fail(exc.detail)
        return
    if result["already_imported"]:
        typer.echo(
            f"This file was imported already (import {result['import_id']}); nothing changed."
        )
    else:
        typer.echo(f"Imported {result['kits']} kits (file SHA-256 {result['sha256']}).")


@users_app.command("create")
def users_create(
    username: str,
    role: Annotated[Role, typer.Option(help="The user's one role.")],
    site: Annotated[list[str] | None, typer.Option(help="A site the user works at.")] = None,
    email: Annotated[str | None, typer.Option(help="For notifications.")] = None,
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)
    ] = "",
    database_url: DatabaseUrl = None,
) -> None:
    """Create a user account."""
    if len(password) < 10:
        _fail("Passwords need at least 10 characters.")
    db = _database(database_url)
    try:
        with writing(db) as session:
            setup.add_user(session, SYSTEM, username, password, role, site or (), email)
    except ServiceError as exc:
        _fail(exc.detail)
    typer.echo(f"User {username} ({role}) created.")


@users_app.command("disable")
def users_disable(
    username: str,
    reason: Annotated[str, typer.Option(help="Why, for the audit trail.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Disable an account: its tokens stop working at once."""
    db = _database(database_url)
    try:
        with writing(db) as session:
            accounts.disable(session, SYSTEM, username, reason)
    except ServiceError as exc:
        _fail(exc.detail)
    typer.echo(f"User {username} disabled.")


@users_app.command("reset-password")
def users_reset_password(
    username: str,
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)
    ] = "",
    reason: Annotated[str, typer.Option(help="Why, for the audit trail.")] = "password reset",
    database_url: DatabaseUrl = None,
) -> None:
    """Set a new password (at least 10 characters); every token issued before stops working."""
    if len(password) < 10:
        _fail("Passwords need at least 10 characters.")
    db = _database(database_url)
    try:
        with writing(db) as session:
            accounts.reset_password(session, SYSTEM, username, password, reason)
    except ServiceError as exc:
        _fail(exc.detail)
    typer.echo(f"Password of {username} reset.")


@audit_app.command("verify")
def audit_verify(
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", help="Verify an exported JSON Lines file offline, without the database."
        ),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Recompute the hash chain and name the first broken entry."""
    if file is not None:
        with file.open(encoding="utf-8") as lines:
            report = verify_chain(json.loads(line) for line in lines if line.strip())
    else:
        db = _database(database_url)
        with db.read() as session:
            report = audit.verify(session)
    if report.ok:
        typer.echo(f"ok: {report.entries} entries, head {report.head_hash}")
        return
    _fail(f"BROKEN at entry {report.first_bad_seq} ({report.entries} entries verify before it)")


@audit_app.command("export")
def audit_export(
    out: Annotated[Path, typer.Option(help="JSON Lines file to write.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Write the whole audit trail as JSON Lines (one entry a line, with its hashes)."""
    db = _database(database_url)
    count = 0
    with db.read() as session, out.open("w", encoding="utf-8") as handle:
        for entry in session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars():
            handle.write(json.dumps(audit.entry_dict(entry), sort_keys=True) + "\n")
            count += 1
    typer.echo(f"Wrote {count} entries to {out}.")


@outbox_app.command("drain")
def outbox_drain(database_url: DatabaseUrl = None) -> None:
    """Deliver waiting notifications (IRT_OUTBOX_WEBHOOK_URL or IRT_SMTP_HOST); failures stay."""
    db = _database(database_url)
    try:
        send = outbox.sender_for(get_settings())
    except RuntimeError as exc:
        _fail(str(exc))
        return
    sent, failed = outbox.drain(db, send)
    typer.echo(f"{sent} sent, {failed} failed (kept for the next drain).")
    if failed:
        raise typer.Exit(1)


@lists_app.command("generate")
def lists_generate(
    seed: Annotated[
        str | None,
        typer.Option(envvar="IRT_LIST_SEED", help="Secret seed; default a fresh random one."),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Generate every scope's list from a secret seed and record the commitments."""
    db = _database(database_url)
    try:
        with writing(db) as session:
            study = load_definition(session)
            scopes = list_service.generate(session, study, SYSTEM, seed or secrets.token_hex(32))
    except ServiceError as exc:
        _fail(exc.detail)
        return
    typer.echo(f"Generated lists for {', '.join(scopes)}; see `irt lists show-commitment`.")


@lists_app.command("import")
def lists_import(
    file: Annotated[Path, typer.Argument(help="CSV: scope,stratum,sequence,block,block_size,arm")],
    database_url: DatabaseUrl = None,
) -> None:
    """Import an externally generated list: all rows valid, or nothing is imported."""
    db = _database(database_url)
    try:
        with writing(db) as session:
            study = load_definition(session)
            scopes = list_service.import_csv(session, study, SYSTEM, file.read_text("utf-8"))
    except ServiceError as exc:
        for problem in exc.extra.get("problems", []):
            typer.echo(f"  {problem}", err=True)
        _fail(exc.detail)
        return
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
    database_url: DatabaseUrl = None,
) -> None:
    """Write the stored lists in the canonical CSV (the text the commitment hashes)."""
    db = _database(database_url)
    with db.read() as session:
        text = list_service.export_csv(session)
    out.write_text(text, "utf-8")
    typer.echo(f"Wrote {out}.")


def main() -> None:
    try:
        app()
    except StudyDefinitionError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        sys.exit(1)
