"""`irt lists`: randomization lists, generated here or imported, with their commitments. Unblinded
work: run by an unblinded monitor account (the unblinded statistician's), never by a blinded
role. Generating and importing lists are signed."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import DatabaseUrl, command_group, fail, open_database, transact
from app.cli.identity import person, signature
from app.db.engine import Database
from app.domain import signatures as meanings
from app.domain.errors import DomainError
from app.domain.roles import UNBLINDED_MONITORS
from app.domain.signatures import Signature
from app.domain.study import PHASE_II_SCOPE
from app.services import lists as list_service
from app.services import signatures, unblinded_reads
from app.services.actor import Actor
from app.services.study_state import load_definition
from app.settings import get_settings

lists_app = command_group("Randomization lists (unblinded work).")


class ImportFormat(StrEnum):
    CANONICAL = "canonical"
    REDCAP = "redcap"
    SEALED_ENVELOPE = "sealed-envelope"


class ExportFormat(StrEnum):
    CANONICAL = "canonical"
    REDCAP = "redcap"
    SEALED_ENVELOPE = "sealed-envelope"


ListFormat = Annotated[
    ExportFormat,
    typer.Option("--format", help="canonical (all scopes), redcap or sealed-envelope."),
]
ListScope = Annotated[
    str | None, typer.Option(help="One scope only; redcap and sealed-envelope default P2.")
]


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    """`--column their_name=our_name` and `--dag GROUP_ID=SITE`, each given once or more."""
    out: dict[str, str] = {}
    for value in values or ():
        key, sep, target = value.partition("=")
        if not sep or not key.strip() or not target.strip():
            fail(
                f"{option} {value!r}: write it as FROM=TO, e.g. {option} sledai_strat=sledai_group"
            )
        out[key.strip()] = target.strip()
    return out


ScopeOption = Annotated[
    str | None,
    typer.Option(help="List scope (C1, C2, C3, P2); for redcap and sealed-envelope default P2."),
]


SeedFile = Annotated[
    Path | None,
    typer.Option(
        "--seed-file",
        help="File holding the secret seed, or - for stdin (a prompt on a terminal). Never give "
        "a seed on the command line: `ps` and the shell history show it.",
    ),
]
SEED_ENVELOPE = (
    "Put it in the sealed statistician's envelope now: it regenerates every list and is shown "
    "nowhere else (the database keeps only its SHA-256). `irt lists verify --seed-file -` "
    "checks the lists against it."
)


def _refuse_seed_value(seed: str | None) -> None:
    """The removed --seed (and IRT_LIST_SEED): refused, never used, since it is exposed."""
    if seed is not None:
        fail(
            "--seed and IRT_LIST_SEED are no longer accepted: a seed on the command line or in "
            "the environment shows in `ps` and the shell history. This seed was not used; do "
            "not use it, it is exposed. Give a seed with --seed-file PATH (or --seed-file - "
            "for stdin), or leave it out to have one generated."
        )


def _read_seed_text(path: Path) -> str:
    """The text of the seed file; `-` is stdin, read with a hidden prompt on a terminal."""
    if str(path) == "-":
        if sys.stdin.isatty():
            return str(typer.prompt("Seed", hide_input=True))
        return sys.stdin.read()
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"Cannot read the seed file {path}: {exc}")


def _seed(read: Callable[[str], str], path: Path) -> str:
    try:
        return read(_read_seed_text(path))
    except DomainError as exc:
        fail(exc.detail)


def _sign(db: Database, *, actor: Actor, meaning: str) -> Signature:
    """The signature of the list's generation or import, checked before any work starts."""
    try:
        return signatures.sign(
            db, settings=get_settings(), actor=actor, given=signature(meaning), meaning=meaning
        )
    except DomainError as exc:
        fail(exc.detail)


def _write_new_file(path: Path, text: str) -> None:
    """Create `path` for its owner only (0600); refuse to overwrite anything."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        fail(f"Cannot create the seed file {path} (it must not exist yet): {exc.strerror}")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


@lists_app.command("generate")
def lists_generate(
    seed_file: SeedFile = None,
    seed_out: Annotated[
        Path | None,
        typer.Option(
            "--seed-out",
            help="Write the generated seed to this new file (mode 0600) instead of showing it.",
        ),
    ] = None,
    seed: Annotated[str | None, typer.Option("--seed", envvar="IRT_LIST_SEED", hidden=True)] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Generate every scope's list from a secret seed and record the commitments.

    Without --seed-file a 256-bit seed is generated and shown once (or written to --seed-out);
    a supplied seed needs at least 32 random hex digits (128 bits)."""
    _refuse_seed_value(seed)
    if seed_file is not None and seed_out is not None:
        fail("--seed-out writes a generated seed; with --seed-file you hold the seed already.")
    db = open_database(database_url)
    actor = person(db, UNBLINDED_MONITORS)
    with db.read() as session:
        meaning = meanings.list_generation_meaning(load_definition(session).code)
    signed = _sign(db, actor=actor, meaning=meaning)
    secret = (
        list_service.new_seed()
        if seed_file is None
        else _seed(list_service.supplied_seed, seed_file)
    )
    if seed_out is not None:  # written first: lists whose seed is lost could never be checked
        _write_new_file(seed_out, secret + "\n")
    try:
        with typer.progressbar(length=1, label="Generating lists") as progress:
            scopes = transact(
                database_url,
                lambda s: list_service.generate(
                    s, study=load_definition(s), actor=actor, seed=secret, signature=signed
                ),
            )
            progress.update(1)
    except typer.Exit:  # refused, nothing stored; any other error keeps the file, to be safe
        if seed_out is not None:
            seed_out.unlink(missing_ok=True)
        raise
    typer.echo(f"Generated lists for {', '.join(scopes)}; see `irt lists show-commitment`.")
    if seed_out is not None:
        typer.echo(f"The seed is in {seed_out} (only there). {SEED_ENVELOPE}")
    elif seed_file is None:
        typer.echo("The seed (256 bits), shown this once:")
        typer.echo(f"  {secret}")
        typer.echo(SEED_ENVELOPE)


@lists_app.command("import")
def lists_import(
    file: Annotated[Path, typer.Argument(help="CSV in the chosen format (docs/randomization.md)")],
    file_format: Annotated[
        ImportFormat, typer.Option("--format", help="Layout of the file.")
    ] = ImportFormat.CANONICAL,
    scope: ScopeOption = None,
    column: Annotated[
        list[str] | None,
        typer.Option(
            metavar="THEIRS=OURS",
            help="A column of the file under its own name, e.g. sledai_strat=sledai_group "
            "(REDCap) or 'SLEDAI-2K score=SLEDAI' (Sealed Envelope); repeatable.",
        ),
    ] = None,
    dag: Annotated[
        list[str] | None,
        typer.Option(
            metavar="GROUP_ID=SITE",
            help="REDCap Data Access Group id -> site code, e.g. 1330=DE01; repeatable.",
        ),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Import an externally generated list: all rows valid, or nothing is imported. Signed
    under the file's SHA-256."""
    columns, dag_sites = _pairs(column, "--column"), _pairs(dag, "--dag")
    try:
        text = file.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"Cannot read {file}: {exc} (save the list as CSV in UTF-8)")
    db = open_database(database_url)
    actor = person(db, UNBLINDED_MONITORS)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    signed = _sign(db, actor=actor, meaning=meanings.list_import_meaning(digest))
    scopes = transact(
        database_url,
        lambda s: list_service.import_csv(
            s,
            study=load_definition(s),
            actor=actor,
            signature=signed,
            text=text,
            file_format=file_format.value,
            scope=scope or PHASE_II_SCOPE,
            columns=columns,
            dag_sites=dag_sites,
        ),
    )
    typer.echo(f"Imported lists for {', '.join(scopes)}.")


@lists_app.command("verify")
def lists_verify(seed_file: SeedFile = None, database_url: DatabaseUrl = None) -> None:
    """Check every list against its audited commitment; with --seed-file, also regenerate the
    generated lists from the seed (which must match its stored SHA-256)."""
    seed = None if seed_file is None else _seed(list_service.given_seed, seed_file)
    db = open_database(database_url)
    person(db, UNBLINDED_MONITORS)
    with db.read() as session:
        results = list_service.verify(session, study=load_definition(session), seed=seed)
    for result in results:
        status = "ok" if result.ok else "BROKEN"
        if result.ok and result.unchecked_seed:
            status += " (not regenerated: give the seed with --seed-file)"
        typer.echo(f"{result.scope}: {status}")
        for problem in result.problems:
            typer.echo(f"  {problem}")
    if not results or not all(r.ok for r in results):
        raise typer.Exit(1)


@lists_app.command("show-commitment")
def lists_show_commitment(database_url: DatabaseUrl = None) -> None:
    """Print each list's SHA-256 commitment."""
    db = open_database(database_url)
    person(db, UNBLINDED_MONITORS)
    with db.read() as session:
        for row in list_service.commitments(session):
            typer.echo(
                f"{row['scope']}  {row['sha256']}  {row['source']}, {row['slots']} slots, "
                f"{row['created_at']} by {row['created_by']}"
            )


@lists_app.command("export")
def lists_export(
    out: Annotated[Path, typer.Option(help="CSV file to write (unblinded!).")],
    file_format: ListFormat = ExportFormat.CANONICAL,
    scope: ListScope = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Write the stored lists: canonical CSV (the text the commitment hashes), REDCap's
    allocation table or Sealed Envelope's list of one scope (numbers that tell nothing of
    blocks)."""
    db = open_database(database_url)
    actor = person(db, UNBLINDED_MONITORS)
    try:
        with db.read() as session:
            study = load_definition(session)
        text = unblinded_reads.list_export(
            db=db, study=study, actor=actor, file_format=file_format.value, scope=scope
        )
    except DomainError as exc:
        fail(exc.detail)
    out.write_text(text, "utf-8")
    typer.echo(f"Wrote {out}.")
