"""Visit windows: overrides, missed visits and corrected dispensings.

A dispensing records the investigator's window override (who, why) and, when it was entered in
error, who said so, when and why. A dispensing entered in error no longer counts for its visit,
so the one-dispensing-per-visit rule becomes a unique index over the dispensings that stand.
Missed visits are recorded by site staff with a reason.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
STANDING = "entered_in_error_at IS NULL"
# the unnamed UNIQUE (subject_id, visit) of 0002, as SQLite's batch mode and PostgreSQL name it
SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
PG_UNIQUE = "dispensings_subject_id_visit_key"


def upgrade() -> None:
    columns = (
        sa.Column("window_override_by", sa.String(80), nullable=True),
        sa.Column("window_override_reason", sa.Text, nullable=True),
        sa.Column("entered_in_error_at", TS, nullable=True),
        sa.Column("entered_in_error_by", sa.String(80), nullable=True),
        sa.Column("entered_in_error_reason", sa.Text, nullable=True),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(PG_UNIQUE, "dispensings", type_="unique")
        for column in columns:
            op.add_column("dispensings", column)
    else:
        with op.batch_alter_table("dispensings", naming_convention=SQLITE_NAMES) as batch:
            batch.drop_constraint("uq_dispensings_subject_id", type_="unique")
            for column in columns:
                batch.add_column(column)
    op.create_index(
        "uq_dispensings_standing_visit",
        "dispensings",
        ["subject_id", "visit"],
        unique=True,
        sqlite_where=sa.text(STANDING),
        postgresql_where=sa.text(STANDING),
    )
    op.create_table(
        "missed_visits",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "subject_id", sa.Integer, sa.ForeignKey("subjects.id"), nullable=False, index=True
        ),
        sa.Column("visit", sa.String(8), nullable=False),
        sa.Column("visit_index", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("recorded_by", sa.String(80), nullable=False),
        sa.UniqueConstraint("subject_id", "visit", name="uq_missed_visits_subject_visit"),
    )


def downgrade() -> None:
    raise NotImplementedError("Migrations are never downgraded (docs/decisions.md).")
