"""Login throttling per source, per source and user name, per user name from unknown devices and
per known device, with exponential backoff (one row per key, locked while an attempt is
reserved); login sessions ended by logout (every token of the session is refused). The
per-user-name failure log `login_failures` is dropped: its rows only mattered for 15 minutes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", TS, nullable=False, index=True),
        sa.Column("blocked_until", TS, nullable=True),
        sa.Column("refusals", sa.Integer, nullable=False),
    )
    op.create_table(
        "revoked_tokens",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("expires_at", TS, nullable=False, index=True),
    )
    op.drop_table("login_failures")


def downgrade() -> None:
    raise RuntimeError("schema changes of a regulated system are never downgraded")
