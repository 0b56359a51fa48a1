"""`irt users`: accounts for the people using the API and the pages, one role each."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import DatabaseUrl, Reason, command_group, fail, open_database, transact
from app.cli.identity import person, person_or_setup
from app.domain import password_policy
from app.domain.roles import SPONSOR_ADMINS, Role
from app.services import accounts, study_setup

users_app = command_group("User accounts.")

Password = Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)]


def _check_password(password: str, username: str) -> None:
    """Refuse a weak password (app/domain/password_policy.py) before touching the database."""
    message = password_policy.problem(password, username=username)
    if message is not None:
        fail(message)


@users_app.command("create")
def users_create(
    username: str,
    role: Annotated[Role, typer.Option(help="The user's one role.")],
    site: Annotated[list[str] | None, typer.Option(help="A site the user works at.")] = None,
    email: Annotated[str | None, typer.Option(help="For notifications.")] = None,
    full_name: Annotated[
        str | None, typer.Option(help="Printed name shown with the user's signatures.")
    ] = None,
    password: Password = "",
    database_url: DatabaseUrl = None,
) -> None:
    """Create a user account (a sponsor admin's; the first one while there is none)."""
    _check_password(password, username)
    actor = person_or_setup(open_database(database_url), SPONSOR_ADMINS)
    transact(
        database_url,
        lambda s: study_setup.add_user(
            s,
            actor=actor,
            full_name=full_name,
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
    actor = person(open_database(database_url), SPONSOR_ADMINS)
    transact(
        database_url, lambda s: accounts.disable(s, actor=actor, username=username, reason=reason)
    )
    typer.echo(f"User {username} disabled.")


@users_app.command("reset-password")
def users_reset_password(
    username: str,
    password: Password = "",
    reason: Reason = "password reset",
    database_url: DatabaseUrl = None,
) -> None:
    """Set a new password (the password policy applies); every token issued before stops working."""
    _check_password(password, username)
    actor = person(open_database(database_url), SPONSOR_ADMINS)
    transact(
        database_url,
        lambda s: accounts.reset_password(
            s, actor=actor, username=username, password=password, reason=reason
        ),
    )
    typer.echo(f"Password of {username} reset.")
