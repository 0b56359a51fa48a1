"""Shipment receipt date: the day the kits arrived, as the pharmacist dates the receipt, apart
from `received_at` (when the receipt was recorded). Receipts recorded before this revision are
dated the UTC day they were recorded.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("shipments") as batch:
        batch.add_column(sa.Column("received_on", sa.Date, nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        day = "CAST(received_at AT TIME ZONE 'UTC' AS DATE)"
    else:  # SQLite keeps the UTC time as text, "YYYY-MM-DD HH:MM:SS[.ffffff]"
        day = "date(received_at)"
    op.execute(f"UPDATE shipments SET received_on = {day} WHERE received_at IS NOT NULL")


def downgrade() -> None:
    raise RuntimeError("schema changes of a regulated system are never downgraded")
