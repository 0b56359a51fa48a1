"""Security and unblinding: user e-mail and token version, subject unblinded flag,
unblindings, the notification outbox and failed logins.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email", sa.String(200), nullable=True))
        batch.add_column(
            sa.Column("token_version", sa.Integer, nullable=False, server_default="0")
        )
    with op.batch_alter_table("subjects") as batch:
        batch.add_column(sa.Column("unblinded_at", TS, nullable=True))
    op.create_table(
        "unblindings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subject_id", sa.Integer, sa.ForeignKey("subjects.id"), nullable=False,
                  unique=True),
        sa.Column("unblinded_at", TS, nullable=False),
        sa.Column("unblinded_by", sa.String(80), nullable=False),
        sa.Column("reason_category", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.CheckConstraint(
            "reason_category IN ('adverse_event', 'overdose', 'pregnancy', 'other')",
            name="ck_unblindings_category",
        ),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("recipients", sa.Text, nullable=False),
        sa.Column("subject_line", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(80), nullable=False, index=True),
        sa.Column("failed_at", TS, nullable=False),
    )


def downgrade() -> None:
    raise RuntimeError("schema changes of a regulated system are never downgraded")
