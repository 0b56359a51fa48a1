"""Confirmations of randomizations, dispensings, kit replacements and unblindings.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "confirmations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column(
            "subject_id", sa.Integer, sa.ForeignKey("subjects.id"), nullable=False, index=True
        ),
        sa.Column("site_id", sa.String(12), sa.ForeignKey("sites.id"), nullable=False, index=True),
        sa.Column("visit", sa.String(8), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(80), nullable=False),
        sa.Column("created_by_role", sa.String(32), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("treatment", sa.String(80), nullable=False),
        sa.CheckConstraint(
            "kind IN ('randomization', 'dispensing', 'replacement', 'unblinding')",
            name="ck_confirmations_kind",
        ),
    )


def downgrade() -> None:
    raise RuntimeError("schema changes of a regulated system are never downgraded")
