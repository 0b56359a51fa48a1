"""`irt tokens`: personal tokens, so that scripts run `irt` as a named user (IRT_TOKEN) without
a password on disk. A token is shown once; only its SHA-256 is kept; revoke it when done."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import DatabaseUrl, Reason, command_group, open_database, transact
from app.cli.identity import person
from app.domain.roles import EVERYONE
from app.services import personal_tokens

tokens_app = command_group("Personal tokens for scripts (IRT_TOKEN).")


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. nightly-report.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Make a personal token of the user running the command; it is shown once."""
    actor = person(open_database(database_url), EVERYONE)
    token_id, text = transact(
        database_url, lambda s: personal_tokens.create_token(s, actor=actor, name=name)
    )
    typer.echo(f"Token {token_id} for {actor.username} ({name}), shown this once:")
    typer.echo(f"  {text}")
    typer.echo("Set IRT_TOKEN to it in the script's environment; `irt tokens revoke` ends it.")


@tokens_app.command("revoke")
def tokens_revoke(token_id: int, reason: Reason, database_url: DatabaseUrl = None) -> None:
    """Revoke one of your tokens (a sponsor admin may revoke anyone's): it stops at once."""
    actor = person(open_database(database_url), EVERYONE)
    transact(
        database_url,
        lambda s: personal_tokens.revoke_token(s, actor=actor, token_id=token_id, reason=reason),
    )
    typer.echo(f"Token {token_id} revoked.")
