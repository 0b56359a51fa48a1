"""Supply forecast: a site's lead time, cover and recruitment rate (else the study's defaults).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.add_column(sa.Column("lead_days", sa.Integer, nullable=True))
        batch.add_column(sa.Column("cover_weeks", sa.Integer, nullable=True))
        batch.add_column(sa.Column("subjects_per_week", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("subjects_per_week")
        batch.drop_column("cover_weeks")
        batch.drop_column("lead_days")
