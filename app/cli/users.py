"""`irt users`: accounts for the people using the API and the pages, one role each."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import DatabaseUrl, Reason, command_group, fail, transact
from app.domain.roles import Role
from app.services import accounts, study_setup
from app.services.actor import SYSTEM

users_app = command_group("User accounts.")

Password = Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)]


def _check_password(password: str) -> None:
    """Refuse short passwords before touching the database."""
    if len(password) < 10:
        fail("Passwords need at least 10 characters.")


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
    transact(
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
    transact(
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
    transact(
        database_url,
        lambda s: accounts.reset_password(
            s, actor=SYSTEM, username=username, password=password, reason=reason
        ),
    )
    typer.echo(f"Password of {username} reset.")
