"""`irt db`: bring the schema up to date (every other command refuses an old one)."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import DatabaseUrl, command_group, fail, resolve_url
from app.db.app_role import grant_app_role
from app.db.engine import make_engine
from app.db.migrate import upgrade

db_app = command_group("Database schema.")


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None) -> None:
    """Migrate the database to the current schema."""
    before, after = upgrade(resolve_url(database_url))
    if before == after:
        typer.echo(f"Database is at the current schema ({after}): nothing to migrate.")
    else:
        typer.echo(f"Database migrated from schema {before or 'none (empty)'} to {after}.")


@db_app.command("grant-app-role")
def db_grant_app_role(
    role: Annotated[str, typer.Option(help="The login role the service runs as.")] = "irt_app",
    password: Annotated[
        str | None,
        typer.Option(envvar="IRT_APP_ROLE_PASSWORD", help="Set the role's password."),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """PostgreSQL: create the service's role (no DDL, audit trail insert-only) and grant it.
    Run as the owner who ran the migrations, again after every `irt db upgrade`."""
    engine = make_engine(resolve_url(database_url))
    if engine.dialect.name != "postgresql":
        fail("grant-app-role is for PostgreSQL; SQLite has no roles (protect the file instead).")
    try:
        with engine.begin() as connection:
            statements = grant_app_role(connection, role=role, password=password)
    except ValueError as exc:
        fail(str(exc))
    finally:
        engine.dispose()
    for statement in statements:
        typer.echo(statement + ";")
    typer.echo(f"Role {role} granted; point the service's IRT_DATABASE_URL at it.")
