"""`irt` commands for running the trial: cohorts, the phase II dose, shipments, the daily supply
job, reports, data exports, the audit trail and notifications. They register on the `irt`
application of app/cli.py, which imports this module."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.cli import (
    DatabaseUrl,
    ExportFormat,
    Reason,
    _database,
    _fail,
    _group,
    _transact,
    audit_app,
    outbox_app,
    sites_app,
    supply_app,
)
from app.db.models import AuditEntry
from app.domain.audit_chain import verify_chain
from app.domain.errors import DomainError
from app.domain.roles import Role
from app.services import audit, outbox, reports, sites, stages
from app.services import exports as export_service
from app.services import lists as list_service
from app.services import shipments as shipment_service
from app.services import unblinded_allocations as unblinded_service
from app.services.actor import SYSTEM
from app.services.locks import lock_site
from app.services.resupply import check_site, request_manual
from app.services.study_state import load_definition
from app.services.transaction import utcnow, writing
from app.settings import get_settings

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
        lambda s: stages.change_cohort(
            s, study=load_definition(s), actor=SYSTEM, code=code, action=action, reason=reason
        ),
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
        lambda s: stages.select_phase2_dose(
            s, study=load_definition(s), actor=SYSTEM, dose=level, reason=reason
        ),
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
        for row in shipment_service.list_shipments(session, actor=SUPPLY_SYSTEM, site_id=site):
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
            study=load_definition(session),
            actor=SUPPLY_SYSTEM,
            site_id=site_id,
            kits_per_content=kits_per_content,
            reason=reason,
            today=utcnow().date(),
        )
        return shipment_service.shipment_view(session, shipment)

    typer.echo(_shipment_line(_transact(database_url, work)))


@shipments_app.command("ship")
def shipments_ship(shipment_id: ShipmentId, database_url: DatabaseUrl = None) -> None:
    """Send a requested shipment: its kits go in transit to the site."""
    row = _transact(
        database_url,
        lambda s: shipment_service.ship(
            s,
            study=load_definition(s),
            actor=SUPPLY_SYSTEM,
            shipment_id=shipment_id,
            today=utcnow().date(),
        ),
    )
    typer.echo(_shipment_line(row))


@shipments_app.command("cancel")
def shipments_cancel(
    shipment_id: ShipmentId, reason: Reason, database_url: DatabaseUrl = None
) -> None:
    """Cancel a shipment that has not been sent."""
    row = _transact(
        database_url,
        lambda s: shipment_service.cancel(
            s, actor=SUPPLY_SYSTEM, shipment_id=shipment_id, reason=reason
        ),
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
            study=load_definition(s),
            actor=SUPPLY_SYSTEM,
            shipment_id=shipment_id,
            damaged=damaged or [],
            missing=missing or [],
            temperature_excursion=temperature_excursion,
        ),
    )
    typer.echo(_shipment_line(row))


def _resolve(shipment_id: int, release: bool, reason: str, database_url: str | None) -> None:
    row = _transact(
        database_url,
        lambda s: shipment_service.resolve_quarantine(
            s,
            study=load_definition(s),
            actor=SUPPLY_SYSTEM,
            shipment_id=shipment_id,
            release=release,
            reason=reason,
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
        report = reports.enrolment(session, study=load_definition(session), actor=SYSTEM)
    _write(reports.enrolment_csv(report), out)


@report_app.command("inventory")
def report_inventory(
    site: SiteOption = None, out: Out = None, database_url: DatabaseUrl = None
) -> None:
    """Kits per status and stock per expiry window at each site and depot (no contents)."""
    try:
        with _database(database_url).read() as session:
            report = reports.inventory(
                session,
                study=load_definition(session),
                actor=SYSTEM,
                today=utcnow().date(),
                site_id=site,
            )
    except DomainError as exc:
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
        rows = reports.unblindings(
            session, study=load_definition(session), actor=SYSTEM, with_treatment=with_treatment
        )
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
        except DomainError as exc:
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
        lambda s: list_service.export_text(
            s, study=load_definition(s), file_format=file_format.value, scope=scope
        ),
    )


def _export(
    kind: export_service.ExportFormat, output: Path, blinded: bool, url: str | None
) -> None:
    label = f"Exporting {kind}{' (blinded)' if blinded else ''}"
    _export_file(
        url,
        output,
        label,
        lambda s: export_service.export_bytes(
            s, study=load_definition(s), kind=kind, blinded=blinded, now=utcnow()
        ),
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


# --- supply jobs, the audit trail, notifications -------------------------------------


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
                session,
                study=study,
                actor=SYSTEM,
                site=lock_site(session, site_id),
                today=utcnow().date(),
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
    sent, failed = outbox.drain(db, send=send)
    typer.echo(f"{sent} sent, {failed} failed (kept for the next drain).")
    if failed:
        raise typer.Exit(1)
