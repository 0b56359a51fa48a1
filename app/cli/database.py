"""`irt db`: bring the schema up to date (every other command refuses an old one)."""

from __future__ import annotations

import typer

from app.cli.common import DatabaseUrl, command_group, resolve_url
from app.db.migrate import upgrade

db_app = command_group("Database schema.")


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None) -> None:
    """Migrate the database to the current schema."""
    upgrade(resolve_url(database_url))
    typer.echo("Database is at the current schema.")
