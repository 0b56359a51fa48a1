"""`irt caps` and `irt study load-version | versions`: the sponsor's amendments to how many
subjects the study takes (unused places of closed cohorts moved to phase II) and under which
version of the study definition. Signed; the same use cases as the API and the pages."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import DatabaseUrl, Reason, command_group, fail, open_database, run_command
from app.cli.identity import person, signature
from app.domain import signatures as meanings
from app.domain.errors import DomainError
from app.domain.roles import OVERSIGHT, SPONSOR_ADMINS
from app.services import amendment_commands, caps
from app.services.caps import CapsOut
from app.services.commands import Retry
from app.settings import get_settings

caps_app = command_group("Caps of the cohorts and phase II (sponsor decisions, signed).")


def _print_caps(view: CapsOut) -> None:
    for s in view.scopes:
        typer.echo(
            f"{s.scope:<4} {s.status:<8} cap {s.cap:>4}  randomized {s.randomized:>4}  "
            f"unused {s.unused:>4}"
        )
    typer.echo(
        f"Total {view.total} of the target {view.target} (definition version {view.version})."
    )


@caps_app.command("show")
def caps_show(database_url: DatabaseUrl = None) -> None:
    """Every scope's cap, randomized count and unused places."""
    db = open_database(database_url)
    person(db, SPONSOR_ADMINS)
    with db.read() as session:
        _print_caps(caps.caps_view(session))


def _set(asked: dict[str, int], *, reason: str, database_url: str | None) -> None:
    db = open_database(database_url)
    actor = person(db, SPONSOR_ADMINS)
    signed = signature(meanings.caps_meaning(asked))
    done = run_command(
        database_url,
        lambda db, study: amendment_commands.change_caps(
            db=db,
            actor=actor,
            retry=Retry(key=f"cli-{uuid.uuid4().hex}", lease_seconds=60),
            caps_asked=asked,
            reason=reason,
            settings=get_settings(),
            signature=signed,
        ),
    )
    _print_caps(done.result)


@caps_app.command("move")
def caps_move(
    cohort: Annotated[str, typer.Argument(help="A closed phase Ib cohort, e.g. C3.")],
    reason: Reason,
    places: Annotated[int | None, typer.Option(help="How many; default all unused.")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Move unused places of a closed cohort to phase II."""
    with open_database(database_url).read() as session:
        try:
            asked = caps.moved_unused(session, source=cohort, places=places)
        except DomainError as exc:
            fail(exc.detail)
    _set(asked, reason=reason, database_url=database_url)


@caps_app.command("set")
def caps_set(
    caps_asked: Annotated[list[str], typer.Argument(help="SCOPE=CAP, e.g. C3=5 P2=197.")],
    reason: Reason,
    database_url: DatabaseUrl = None,
) -> None:
    """Set caps; they may add up to the study's target at most."""
    asked: dict[str, int] = {}
    for item in caps_asked:
        scope, _, value = item.partition("=")
        if not value.isdigit():
            fail(f"{item!r}: write SCOPE=CAP, e.g. P2=197.")
        asked[scope.strip().upper()] = int(value)
    _set(asked, reason=reason, database_url=database_url)


def study_load_version(
    file: Annotated[Path, typer.Argument(help="The amended study definition (TOML).")],
    effective_date: Annotated[str, typer.Option(help="YYYY-MM-DD, the day it takes effect.")],
    reason: Reason,
    database_url: DatabaseUrl = None,
) -> None:
    """Load a protocol amendment as a new version of the study definition (signed)."""
    try:
        effective = date.fromisoformat(effective_date)
    except ValueError:
        fail(f"--effective-date {effective_date!r}: write YYYY-MM-DD.")
    text = file.read_text("utf-8")
    db = open_database(database_url)
    actor = person(db, SPONSOR_ADMINS)
    try:
        new = amendment_commands.parse_definition(text)
    except DomainError as exc:
        fail(exc.detail)
    signed = signature(
        meanings.study_version_meaning(sha256=new.fingerprint(), effective_date=effective_date)
    )
    version = run_command(
        database_url,
        lambda db, study: amendment_commands.load_study_version(
            db=db,
            actor=actor,
            definition_toml=text,
            effective_date=effective,
            reason=reason,
            settings=get_settings(),
            signature=signed,
        ),
    )
    typer.echo(
        f"Version {version.version} loaded, in effect from {version.effective_date}: "
        f"changes {', '.join(version.changes)}."
    )


def study_versions(database_url: DatabaseUrl = None) -> None:
    """Every version of the study definition."""
    db = open_database(database_url)
    person(db, OVERSIGHT)
    for v in amendment_commands.list_versions(db=db):
        now = "  (in effect)" if v.in_effect_today else ""
        typer.echo(
            f"{v.version:>3}  from {v.effective_date}  total {v.total_cap}  "
            f"{v.definition_sha256[:12]}  {', '.join(v.changes) or 'first version'}{now}"
        )
