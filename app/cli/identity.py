"""Who runs an `irt` command: every command that changes or reveals trial data acts as a named
user, checked like an API request (the same role groups), never as an anonymous operator.

The user is given once, before the command group: `irt --user NAME [--password-file F|-] ...`
(or IRT_USER), with the password prompted for (getpass) unless a file or stdin gives it; or a
personal token in IRT_TOKEN (`irt tokens create`). A signed decision asks for the password again
(the same file or stdin for scripts). The service's own jobs (`irt supply check`, `irt outbox
drain`, `irt demo`, the first set-up before any user exists) are recorded as `system:<job>`."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import fail
from app.db.engine import Database
from app.domain.errors import DomainError
from app.domain.roles import Role
from app.services import personal_tokens
from app.services.actor import Actor, job
from app.services.signatures import SignatureInput

UserOption = Annotated[
    str | None,
    typer.Option(
        "--user",
        envvar="IRT_USER",
        help="Act as this user (password prompted for).",
        show_default=False,
    ),
]
PasswordFileOption = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        help="Read the password (also for signing) from this file's first line, or - for stdin.",
    ),
]


@dataclass
class _Credentials:
    user: str | None = None
    password_file: Path | None = None
    password: str | None = None  # read once from a file or stdin, used again to sign


_given = _Credentials()


def set_credentials(*, user: str | None, password_file: Path | None) -> None:
    """Called by the root command (app/cli/__init__.py) before every command."""
    global _given
    _given = _Credentials(user=user, password_file=password_file)


def _password(prompt: str) -> str:
    if _given.password_file is None:
        return getpass.getpass(f"{prompt}: ")
    if _given.password is None:
        path = _given.password_file
        try:
            text = sys.stdin.read() if str(path) == "-" else path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"Cannot read the password file {path}: {exc}")
        lines = text.splitlines()
        _given.password = lines[0] if lines else ""
    return _given.password


def person(db: Database, roles: Iterable[Role]) -> Actor:
    """The authenticated user running the command, refused (exit 1) unless their role is one
    of `roles`."""
    token = os.environ.get("IRT_TOKEN")
    try:
        if token:
            actor = personal_tokens.actor_by_token(db, token=token)
        elif _given.user:
            actor = personal_tokens.actor_by_password(
                db, username=_given.user, password=_password(f"Password of {_given.user}")
            )
        else:
            fail(
                "This command acts as a named user: give `irt --user NAME ...` (the password is "
                "asked for, or read with --password-file), or set IRT_TOKEN to a personal token."
            )
        return personal_tokens.check_role(actor, roles)
    except DomainError as exc:
        fail(exc.detail)


def person_or_setup(db: Database, roles: Iterable[Role]) -> Actor:
    """`person`, except while the database has no user at all: the first set-up (study, sites,
    the first accounts) is then the service's own job, `system:setup`."""
    if not personal_tokens.has_users(db):
        return job("setup")
    return person(db, roles)


def signature(meaning: str) -> SignatureInput:
    """Show what the signature means and take the password again (or from the same file)."""
    typer.echo(f"Your electronic signature means: {meaning}", err=True)
    return SignatureInput(password=_password("Your password, to sign"), meaning=meaning)
