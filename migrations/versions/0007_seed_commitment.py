"""Seed commitment: a generated list keeps the SHA-256 of its seed, never the seed. The column
`randomization_lists.seed` becomes `seed_sha256`, and every plain seed stored before is replaced
by the hex SHA-256 of its UTF-8 text (the statistician's copy in the sealed envelope is then the
only one; docs/randomization.md, "Seeds").

The old values are not left on disk either: SQLite zeroes the space an updated row frees
(secure_delete); on PostgreSQL, shortening the column to VARCHAR(64) rewrites the table after
the update, in the same transaction, so the dead row versions holding the seeds are dropped.
Backups and PostgreSQL WAL archives made before this revision still hold the plain seeds.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    postgresql = bind.dialect.name == "postgresql"
    if not postgresql:
        op.execute("PRAGMA secure_delete = ON")
    # a plain rename on both engines (SQLite >= 3.25): no batch copy of the table
    op.execute("ALTER TABLE randomization_lists RENAME COLUMN seed TO seed_sha256")
    rows = bind.execute(
        sa.text("SELECT id, seed_sha256 FROM randomization_lists WHERE seed_sha256 IS NOT NULL")
    ).all()
    for row_id, seed in rows:
        bind.execute(
            sa.text("UPDATE randomization_lists SET seed_sha256 = :digest WHERE id = :id"),
            {"digest": hashlib.sha256(seed.encode("utf-8")).hexdigest(), "id": row_id},
        )
    if postgresql:  # SQLite ignores a VARCHAR's length
        op.alter_column(
            "randomization_lists",
            "seed_sha256",
            type_=sa.String(64),
            existing_type=sa.String(128),
            existing_nullable=True,
        )


def downgrade() -> None:
    raise RuntimeError("schema changes of a regulated system are never downgraded")
