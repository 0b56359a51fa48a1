"""The `irt` command line."""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.cli_simulation import simulate_command
from app.db.engine import Database
from app.db.migrate import NotMigratedError, ensure_migrated, upgrade
from app.db.models import AuditEntry, Study
from app.domain.audit_chain import verify_chain
from app.domain.roles import Role
from app.domain.study import PHASE_II_SCOPE, StudyDefinition, StudyDefinitionError, load_study
from app.services import accounts, audit, outbox, reports, setup, sites, stages
from app.services import exports as export_service
from app.services import kits as kit_service
from app.services import lists as list_service
from app.services import shipments as shipment_service
from app.services import unblinded as unblinded_service
from app.services.actor import SYSTEM
from app.services.demo import DEFAULT_PASSWORD, DEMO_KITS_PER_CONTENT, demo_kit_list, set_up_demo
from app.services.errors import ServiceError
from app.services.locks import lock_site
from app.services.resupply import check_site, request_manual
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
    except ServiceError as exc:
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
        users = set_up_demo(db, study, password)
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
    _transact(database_url, lambda s: setup.load_study(s, study, SYSTEM))
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
            lambda s: list_service.generate(s, load_definition(s), SYSTEM, secret),
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
            s, load_definition(s), SYSTEM, text, file_format.value, scope or PHASE_II_SCOPE
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
                session, load_definition(session), file_format.value, scope
            )
    except ServiceError as exc:
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
    _transact(database_url, lambda s: sites.add_depot(s, SYSTEM, depot_id, name, country))
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
    _transact(database_url, lambda s: setup.add_site(s, SYSTEM, site_id, name, country, depot))
    typer.echo(f"Site {site_id} added (inactive).")


@sites_app.command("activate")
def sites_activate(
    site_id: str, reason: Reason, depot: DepotOption = None, database_url: DatabaseUrl = None
) -> None:
    """Open a site for enrolment; its initial shipment is requested from its depot."""
    result = _transact(
        database_url,
        lambda s: sites.activate(
            s, load_definition(s), SYSTEM, site_id, depot, reason, utcnow().date()
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
        lambda s: setup.add_user(s, SYSTEM, username, password, role, site or (), email),
    )
    typer.echo(f"User {username} ({role}) created.")


@users_app.command("disable")
def users_disable(username: str, reason: Reason, database_url: DatabaseUrl = None) -> None:
    """Disable an account: its tokens stop working at once."""
    _transact(database_url, lambda s: accounts.disable(s, SYSTEM, username, reason))
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
        database_url, lambda s: accounts.reset_password(s, SYSTEM, username, password, reason)
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
        text = demo_kit_list(study, utcnow().date(), per_content, secrets.SystemRandom())
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
        lambda s: kit_service.import_kit_list(s, load_definition(s), SYSTEM, text, utcnow().date()),
    )
    if result["already_imported"]:
        typer.echo(
            f"This file was imported already (import {result['import_id']}); nothing changed."
        )
    else:
        typer.echo(f"Imported {result['kits']} kits (file SHA-256 {result['sha256']}).")


@supply_app.command("check")
def supply_check(database_url: DatabaseUrl = None) -> None:
    """Expire kits inside the do-not-dispense window and resupply every active site (daily)."""
    db = _database(database_url)
    with db.read() as session:
        study = load_definition(session)
        site_ids = [s["site_id"] for s in sites.list_sites(session, SYSTEM) if s["active"]]
    for site_id in site_ids:
        with writing(db) as session:
            shipment = check_site(
                session, study, SYSTEM, lock_site(session, site_id), utcnow().date()
            )
        typer.echo(f"{site_id}: " + (f"shipment {shipment.id} requested" if shipment else "ok"))


@audit_app.command("verify")
def audit_verify(
    file: Annotated[
        Path | None,
        typer.Option("--file", help="An exported JSON Lines file, verified without the database."),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Recompute the hash chain and name the first broken entry."""
    if file is not None:
        with file.open(encoding="utf-8") as lines:
            report = verify_chain(json.loads(line) for line in lines if line.strip())
    else:
        with _database(database_url).read() as session:
            report = audit.verify(session)
    if not report.ok:
        _fail(f"BROKEN at entry {report.first_bad_seq} ({report.entries} entries verify before it)")
    typer.echo(f"ok: {report.entries} entries, head {report.head_hash}")


@audit_app.command("export")
def audit_export(
    out: Annotated[Path, typer.Option(help="JSON Lines file to write.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Write the whole audit trail as JSON Lines (one entry a line, with its hashes)."""
    count = 0
    with _database(database_url).read() as session, out.open("w", encoding="utf-8") as handle:
        total = session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
        entries = session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars()
        with typer.progressbar(entries, length=total, label="Exporting audit trail") as bar:
            for entry in bar:
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
    sent, failed = outbox.drain(db, send)
    typer.echo(f"{sent} sent, {failed} failed (kept for the next drain).")
    if failed:
        raise typer.Exit(1)


# --- stages, shipments and reports ------------------------------------------

cohorts_app = _group("cohorts", "Phase Ib cohorts: open and close (sponsor decisions).")
phase2_app = _group("phase2-dose", "The phase II dose, recorded once (sponsor decision).")
shipments_app = _group("shipments", "Shipments from depots to sites (blinded: no contents).")
report_app = _group("report", "Reports as CSV: enrolment, inventory and expiry, unblindings.")

Out = Annotated[Path | None, typer.Option("--out", help="CSV file to write; default stdout.")]
SiteOption = Annotated[str | None, typer.Option("--site", help="One site only.")]


def _write(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, "utf-8")
        typer.echo(f"Wrote {out}.")


@sites_app.command("list")
def sites_list(database_url: DatabaseUrl = None) -> None:
    """List the sites with their depot and whether they are active."""
    with _database(database_url).read() as session:
        for site in sites.list_sites(session, SYSTEM):
            state = "active" if site["active"] else "inactive"
            typer.echo(
                f"{site['site_id']:<12} {site['country']}  {state:<8} "
                f"depot {site['depot_id'] or '-':<12} {site['name']}"
            )


def _cohort_line(row: dict[str, object]) -> str:
    return (
        f"{row['code']:<4} {row['dose_mg_per_kg']} mg/kg  {row['status']:<8} "
        f"{row['randomized']}/{row['cap']} randomized"
    )


@cohorts_app.command("list")
def cohorts_list(database_url: DatabaseUrl = None) -> None:
    """Every phase Ib cohort: dose level, status and subjects randomized against its cap."""
    with _database(database_url).read() as session:
        for row in stages.list_cohorts(session):
            typer.echo(_cohort_line(row))


def _change_cohort(code: str, action: str, reason: str, database_url: str | None) -> None:
    row = _transact(
        database_url,
        lambda s: stages.change_cohort(s, load_definition(s), SYSTEM, code, action, reason),
    )
    typer.echo(_cohort_line(row))


@cohorts_app.command("open")
def cohorts_open(code: str, reason: Reason, database_url: DatabaseUrl = None) -> None:
    """Open the next cohort (after the safety review of the previous one)."""
    _change_cohort(code, "open", reason, database_url)


@cohorts_app.command("close")
def cohorts_close(code: str, reason: Reason, database_url: DatabaseUrl = None) -> None:
    """Close the open cohort: no further subject is randomized into it."""
    _change_cohort(code, "close", reason, database_url)


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
    with _database(database_url).read() as session:
        typer.echo(_phase2_line(stages.phase2_view(session)))


@phase2_app.command("select")
def phase2_select(
    dose: Annotated[str, typer.Argument(help="mg/kg: one of the phase Ib cohorts' levels.")],
    reason: Reason,
    database_url: DatabaseUrl = None,
) -> None:
    """Record the phase II dose (once; every phase Ib cohort must be closed)."""
    try:
        level = Decimal(dose)
    except InvalidOperation:
        _fail(f"Not a number: {dose!r}.")
    row = _transact(
        database_url,
        lambda s: stages.select_phase2_dose(s, load_definition(s), SYSTEM, level, reason),
    )
    typer.echo(_phase2_line(row))


def _shipment_line(row: dict[str, object]) -> str:
    excursion = "  TEMPERATURE EXCURSION" if row["temperature_excursion"] else ""
    return (
        f"{row['shipment_id']:>5}  {row['depot_id']} -> {row['site_id']:<6} {row['kind']:<8} "
        f"{row['status']:<10} {row['kit_count']} kits{excursion}"
    )


ShipmentId = Annotated[int, typer.Argument(min=1, help="The shipment's number.")]
SUPPLY_SYSTEM = replace(SYSTEM, role=Role.SUPPLY_MANAGER)
"""The operator doing supply work: the supply manager's rights, audited as `system`."""


@shipments_app.command("list")
def shipments_list(site: SiteOption = None, database_url: DatabaseUrl = None) -> None:
    """Every shipment (or one site's) with its status and kit count."""
    with _database(database_url).read() as session:
        for row in shipment_service.list_shipments(session, SUPPLY_SYSTEM, site):
            typer.echo(_shipment_line(row))


@shipments_app.command("request")
def shipments_request(
    site_id: str,
    reason: Reason,
    kits_per_content: Annotated[int, typer.Option(min=1, help="Kits of each content.")] = 1,
    database_url: DatabaseUrl = None,
) -> None:
    """Request a manual shipment (the same number of kits of each content)."""

    def work(session: Session) -> dict[str, object]:
        shipment = request_manual(
            session,
            load_definition(session),
            SUPPLY_SYSTEM,
            site_id,
            kits_per_content,
            reason,
            utcnow().date(),
        )
        return shipment_service.shipment_view(session, shipment)

    typer.echo(_shipment_line(_transact(database_url, work)))


@shipments_app.command("ship")
def shipments_ship(shipment_id: ShipmentId, database_url: DatabaseUrl = None) -> None:
    """Send a requested shipment: its kits go in transit to the site."""
    row = _transact(
        database_url,
        lambda s: shipment_service.ship(
            s, load_definition(s), SUPPLY_SYSTEM, shipment_id, utcnow().date()
        ),
    )
    typer.echo(_shipment_line(row))


@shipments_app.command("cancel")
def shipments_cancel(
    shipment_id: ShipmentId, reason: Reason, database_url: DatabaseUrl = None
) -> None:
    """Cancel a shipment that has not been sent."""
    row = _transact(
        database_url, lambda s: shipment_service.cancel(s, SUPPLY_SYSTEM, shipment_id, reason)
    )
    typer.echo(_shipment_line(row))


@shipments_app.command("receive")
def shipments_receive(
    shipment_id: ShipmentId,
    damaged: Annotated[list[str] | None, typer.Option(help="A damaged kit number.")] = None,
    missing: Annotated[list[str] | None, typer.Option(help="A missing kit number.")] = None,
    temperature_excursion: Annotated[
        bool, typer.Option(help="Quarantine every received kit until release or rejection.")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Record the receipt at the site; every kit not named damaged or missing is received."""
    row = _transact(
        database_url,
        lambda s: shipment_service.receive(
            s,
            load_definition(s),
            SUPPLY_SYSTEM,
            shipment_id,
            damaged or [],
            missing or [],
            temperature_excursion,
        ),
    )
    typer.echo(_shipment_line(row))


def _resolve(shipment_id: int, release: bool, reason: str, database_url: str | None) -> None:
    row = _transact(
        database_url,
        lambda s: shipment_service.resolve_quarantine(
            s, load_definition(s), SUPPLY_SYSTEM, shipment_id, release, reason
        ),
    )
    typer.echo(_shipment_line(row))


@shipments_app.command("release")
def shipments_release(
    shipment_id: ShipmentId, reason: Reason, database_url: DatabaseUrl = None
) -> None:
    """Release a quarantined shipment's kits (they become available)."""
    _resolve(shipment_id, True, reason, database_url)


@shipments_app.command("reject")
def shipments_reject(
    shipment_id: ShipmentId, reason: Reason, database_url: DatabaseUrl = None
) -> None:
    """Reject a quarantined shipment's kits (they become damaged)."""
    _resolve(shipment_id, False, reason, database_url)


@report_app.command("enrolment")
def report_enrolment(out: Out = None, database_url: DatabaseUrl = None) -> None:
    """Subjects per stage against caps, per stratum and per site (never per arm)."""
    with _database(database_url).read() as session:
        report = reports.enrolment(session, load_definition(session), SYSTEM)
    _write(reports.enrolment_csv(report), out)


@report_app.command("inventory")
def report_inventory(
    site: SiteOption = None, out: Out = None, database_url: DatabaseUrl = None
) -> None:
    """Kits per status and stock per expiry window at each site and depot (no contents)."""
    try:
        with _database(database_url).read() as session:
            report = reports.inventory(
                session, load_definition(session), SYSTEM, utcnow().date(), site
            )
    except ServiceError as exc:
        _fail(exc.detail)
    _write(reports.inventory_csv(report), out)


@report_app.command("unblindings")
def report_unblindings(
    with_treatment: Annotated[
        bool, typer.Option(help="Add the treatment column (unblinded: for the monitor only).")
    ] = False,
    out: Out = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Every emergency unblinding: who, when, why; the treatment only with --with-treatment."""
    with _database(database_url).read() as session:
        rows = reports.unblindings(session, load_definition(session), SYSTEM, with_treatment)
    _write(reports.unblindings_csv(rows, with_treatment), out)


# --- data exports (docs/exports.md) ------------------------------------------

export_app = _group("export", "Data exports: allocations, lists, SDTM, ODM, FHIR.")
Output = Annotated[Path, typer.Option("--output", "--out", help="File to write.")]
Blinded = Annotated[
    bool,
    typer.Option(
        "--blinded/--unblinded",
        help="Blinded variant (no arm, treatment or lot), as the sponsor admin gets it.",
    ),
]


def _export_file(
    database_url: str | None, output: Path, label: str, build: Callable[[Session], str | bytes]
) -> None:
    """Read, build and write one export with a progress bar."""
    with typer.progressbar(length=3, label=label) as progress:
        db = _database(database_url)
        progress.update(1)
        try:
            with db.read() as session:
                body = build(session)
        except ServiceError as exc:
            _fail(exc.detail)
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
        output,
        "Exporting allocations",
        lambda s: unblinded_service.allocations_csv(s, load_definition(s)),
    )


@export_app.command("list")
def export_list(
    output: Output,
    file_format: Annotated[
        ExportFormat, typer.Option("--format", help="canonical (all scopes) or redcap.")
    ] = ExportFormat.CANONICAL,
    scope: Annotated[str | None, typer.Option(help="One scope only; redcap default P2.")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """The stored randomization lists, canonical or in REDCap's layout (unblinded!)."""
    _export_file(
        database_url,
        output,
        "Exporting list",
        lambda s: list_service.export_text(s, load_definition(s), file_format.value, scope),
    )


def _export(
    kind: export_service.ExportFormat, output: Path, blinded: bool, url: str | None
) -> None:
    label = f"Exporting {kind}{' (blinded)' if blinded else ''}"
    _export_file(
        url,
        output,
        label,
        lambda s: export_service.export_bytes(s, load_definition(s), kind, blinded, utcnow()),
    )


@export_app.command("sdtm")
def export_sdtm(output: Output, blinded: Blinded = False, database_url: DatabaseUrl = None) -> None:
    """A zip of SDTM-style DM, DS, EX and TA CSV datasets with define.csv."""
    _export("sdtm", output, blinded, database_url)


@export_app.command("odm")
def export_odm(output: Output, blinded: Blinded = False, database_url: DatabaseUrl = None) -> None:
    """CDISC ODM 1.3.2 XML: randomization number, date and arm per subject."""
    _export("odm", output, blinded, database_url)


@export_app.command("fhir")
def export_fhir(output: Output, blinded: Blinded = False, database_url: DatabaseUrl = None) -> None:
    """FHIR R5 Bundle (JSON): ResearchStudy with its arms and a ResearchSubject per subject."""
    _export("fhir", output, blinded, database_url)


app.command("simulate")(simulate_command)


def main() -> None:
    try:
        app()
    except StudyDefinitionError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        sys.exit(1)
