"""The PostgreSQL role the service runs as: no DDL, and the audit trail append-only by
privilege, not only by trigger. Migrations run as the owner; the owner grants this role
(`irt db grant-app-role`, docs/deployment.md). Run again after every `irt db upgrade`."""

from __future__ import annotations

import re

from sqlalchemy import Connection, text

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
AUDIT_TABLE = "audit_log"
HEAD_TABLE = "audit_head"
OWNER_ONLY = ("alembic_version",)


def grant_statements(role: str, *, database: str) -> list[str]:
    """The SQL, in order: every table readable and writable except the audit trail (insert
    and read only), its head (read and move on, never insert or delete) and the schema
    version (read only); no CREATE on the schema, so no table, view or function of its own;
    the triggers stay the owner's, which alone may drop them."""
    if not ROLE_NAME.match(role):
        raise ValueError(f"{role!r} is not a plain lower-case role name")
    quoted_db = '"' + database.replace('"', '""') + '"'
    return [
        f"GRANT CONNECT ON DATABASE {quoted_db} TO {role}",
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        f"REVOKE CREATE ON SCHEMA public FROM {role}",
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
        f"REVOKE UPDATE, DELETE, TRUNCATE ON {AUDIT_TABLE} FROM {role}",
        f"REVOKE INSERT, DELETE, TRUNCATE ON {HEAD_TABLE} FROM {role}",
        *(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {t} FROM {role}" for t in OWNER_ONLY),
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
    ]


def grant_app_role(
    connection: Connection, *, role: str, password: str | None = None, create: bool = True
) -> list[str]:
    """Create the login role if missing (with `password`, if given) and grant it; returns the
    statements run. `connection` must be the owner's (who ran the migrations)."""
    database = connection.execute(text("SELECT current_database()")).scalar_one()
    statements = grant_statements(role, database=str(database))
    exists = connection.execute(
        text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}
    ).first()
    if create and not exists:
        statements.insert(0, f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
    run = list(statements)
    if password is not None:
        literal = "'" + password.replace("'", "''") + "'"
        run.append(f"ALTER ROLE {role} PASSWORD {literal}")
        statements.append(f"ALTER ROLE {role} PASSWORD '***'")
    for statement in run:
        connection.exec_driver_sql(statement)
    return statements
