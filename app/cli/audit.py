"""`irt audit`: verify the hash-chained audit trail, in the database or in an exported file, so
an auditor can check a copy without access to the service."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import func, select

from app.cli.common import DatabaseUrl, command_group, fail, open_database
from app.cli.identity import person
from app.db.models import AuditEntry, AuditHead
from app.domain.audit_chain import verify_chain
from app.domain.audit_replay import ReplayReport
from app.domain.roles import UNBLINDED_MONITORS
from app.services import attempts, audit, audit_integrity, checkpoints

audit_app = command_group("The audit trail.")


@audit_app.command("verify")
def audit_verify(
    file: Annotated[
        Path | None,
        typer.Option("--file", help="An exported JSON Lines file, verified without the database."),
    ] = None,
    database_url: DatabaseUrl = None,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            min=1,
            help="Processes verifying the chain in parts (a long trail); default: the CPUs.",
        ),
    ] = os.cpu_count() or 1,
) -> None:
    """Recompute the hash chain and name the first broken entry. Against the database it acts
    as a named unblinded monitor (`irt --user NAME audit verify`, or IRT_TOKEN); a file needs
    no user."""
    if file is not None:
        with file.open(encoding="utf-8") as lines:
            report = verify_chain(_file_entries(file, lines))
    else:
        db = open_database(database_url)
        person(db, UNBLINDED_MONITORS)  # the trail is unblinded data: its readers only
        with db.read() as session:
            # the head's seq is the length the chain should have, known before reading it; the
            # bar goes to stderr, and only on a terminal: stdout stays the report scripts read
            total = session.execute(select(AuditHead.seq).where(AuditHead.id == 1)).scalar()
            with typer.progressbar(
                length=total or 0,
                label="Verifying audit trail",
                file=sys.stderr,
                hidden=not sys.stderr.isatty(),
            ) as bar:
                full = audit_integrity.verify_all(
                    session, checkpoint_log=checkpoints.log_of(db), progress=bar.update, jobs=jobs
                )
        _print_integrity(full)
        return
    if not report.ok:
        fail(f"BROKEN at entry {report.first_bad_seq} ({report.entries} entries verify before it)")
    typer.echo(f"ok: {report.entries} entries, head {report.head_hash}")


def _print_integrity(report: audit_integrity.IntegrityReport) -> None:
    """Chain, checkpoints, replay: one line each, then every discrepancy; exit 1 unless ok."""
    chain, points = report.chain, report.checkpoints
    if chain.ok:  # the first line as for an exported file: `ok: N entries, head H`
        typer.echo(f"ok: {chain.entries} entries, head {chain.head_hash}")
    else:
        typer.echo(
            f"BROKEN at entry {chain.first_bad_seq} ({chain.entries} entries verify before it)"
        )
    if points is None:
        typer.echo("checkpoints: none configured (IRT_CHECKPOINT_FILE)")
    elif points.ok:
        typer.echo(f"checkpoints: ok, {points.detail}")
    else:
        typer.echo(f"checkpoints: CONTRADICTED at entry {points.first_bad_seq}: {points.detail}")
    for line in report.bad_checkpoint_lines:
        typer.echo(f"checkpoints: FORGED {line}")
    _print_replay(report.replay)
    if not report.ok:  # the first line speaks of the chain alone: the verdict comes last
        fail("audit verify: FAILED, the audit evidence does not hold (see above)")


def _print_replay(replayed: ReplayReport) -> None:
    if replayed.ok:
        typer.echo(f"replay: ok, {replayed.entries} entries explain {replayed.rows} rows")
        return
    count = len(replayed.discrepancies)
    typer.echo(f"replay: {count} {'difference' if count == 1 else 'differences'} found")
    for d in replayed.discrepancies:
        typer.echo(f"  {d.line}")


@audit_app.command("replay")
def audit_replay(database_url: DatabaseUrl = None) -> None:
    """Replay the trail against the business tables; name every row it does not explain."""
    db = open_database(database_url)
    person(db, UNBLINDED_MONITORS)
    with db.read() as session:
        replayed = audit_integrity.replay_trail(session)
    _print_replay(replayed)
    if not replayed.ok:
        raise typer.Exit(1)


@audit_app.command("keygen")
def audit_keygen(
    key_file: Annotated[
        Path, typer.Option("--key-file", help="Where to write the Ed25519 private key (PEM).")
    ],
) -> None:
    """Create the checkpoint signing key (owner-only) and its public key (`KEY_FILE.pub`)."""
    if key_file.exists():
        fail(f"{key_file} exists already; a signing key is never overwritten.")
    public = checkpoints.keygen(key_file)
    typer.echo(f"Private key: {key_file} (IRT_CHECKPOINT_KEY_FILE; never on the database host)")
    typer.echo(f"Public key: {public} (give it to the auditors; IRT_CHECKPOINT_PUBLIC_KEY_FILE)")


@audit_app.command("checkpoint")
def audit_checkpoint(
    why: Annotated[str, typer.Option(help="Why this checkpoint is taken.")] = "operator request",
    database_url: DatabaseUrl = None,
) -> None:
    """Sign the chain head now (e.g. to anchor a trail written before checkpoints were on)."""
    db = open_database(database_url)
    person(db, UNBLINDED_MONITORS)
    point = audit_integrity.checkpoint_head(db, why=why)
    if point is None:
        fail("No checkpoint written: no signing key configured, or the trail is empty.")
    typer.echo(f"Checkpoint at entry {point.seq}, hash {point.hash}.")


@audit_app.command("export")
def audit_export(
    out: Annotated[Path, typer.Option(help="JSON Lines file to write.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Write the whole audit trail as JSON Lines (one entry a line, with its hashes)."""
    count = 0
    db = open_database(database_url)
    actor = person(db, UNBLINDED_MONITORS)
    # recorded first, so the export holds its own entry and ends at the chain head
    attempts.record_unblinded_read(db, actor=actor, what="audit_trail")
    with db.read() as session, out.open("w", encoding="utf-8") as handle:
        total = session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
        entries = session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars()
        with typer.progressbar(entries, length=total, label="Exporting audit trail") as bar:
            for entry in bar:
                handle.write(json.dumps(audit.entry_dict(entry), sort_keys=True) + "\n")
                count += 1
    typer.echo(f"Wrote {count} entries to {out}.")


def _file_entries(file: Path, lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The entries of an exported file; a line that is not a JSON object is named."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            fail(f"{file}: line {number} is not JSON ({exc.msg}).")
        if not isinstance(entry, dict):
            fail(f"{file}: line {number} is not an audit entry (a JSON object).")
        yield entry
