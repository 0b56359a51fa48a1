"""`irt audit`: verify the hash-chained audit trail, in the database or in an exported file, so
an auditor can check a copy without access to the service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import func, select

from app.cli.common import DatabaseUrl, command_group, fail, open_database
from app.db.models import AuditEntry
from app.domain.audit_chain import verify_chain
from app.services import audit

audit_app = command_group("The audit trail.")


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
        with open_database(database_url).read() as session:
            report = audit.verify(session)
    if not report.ok:
        fail(f"BROKEN at entry {report.first_bad_seq} ({report.entries} entries verify before it)")
    typer.echo(f"ok: {report.entries} entries, head {report.head_hash}")


@audit_app.command("export")
def audit_export(
    out: Annotated[Path, typer.Option(help="JSON Lines file to write.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Write the whole audit trail as JSON Lines (one entry a line, with its hashes)."""
    count = 0
    with open_database(database_url).read() as session, out.open("w", encoding="utf-8") as handle:
        total = session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
        entries = session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars()
        with typer.progressbar(entries, length=total, label="Exporting audit trail") as bar:
            for entry in bar:
                handle.write(json.dumps(audit.entry_dict(entry), sort_keys=True) + "\n")
                count += 1
    typer.echo(f"Wrote {count} entries to {out}.")
