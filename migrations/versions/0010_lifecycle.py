"""Subject lifecycle: screen failure, discontinuation, withdrawal, completion.

One append-only table, the history of every subject's status changes: the acts (with their
effective date, coded and free-text reason, who recorded them) and the signed corrections that
undo them. A correction is a new row naming the act it undoes; no row is ever updated or
deleted (refused by triggers, as for the audit trail). Confirmations gain two kinds,
`status_change` and `status_correction`. The subject's own `status` column keeps
its String(16): the new states' codes fit ("screen_failed", "discontinued", ...).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
TABLE = "subject_status_changes"
KINDS = ", ".join(
    f"'{kind}'"
    for kind in (
        "randomization",
        "dispensing",
        "replacement",
        "unblinding",
        "status_change",
        "status_correction",
    )
)
"""Confirmation kinds: a status change and its correction are confirmed like the others."""


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "subject_id", sa.Integer, sa.ForeignKey("subjects.id"), nullable=False, index=True
        ),
        sa.Column("act", sa.String(16), nullable=True),
        sa.Column("from_status", sa.String(16), nullable=False),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("effective_date", sa.Date, nullable=True),
        sa.Column("reason_category", sa.String(40), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column(
            "corrects_id",
            sa.Integer,
            sa.ForeignKey(f"{TABLE}.id"),
            nullable=True,
            unique=True,
        ),
        sa.Column("signature_json", sa.Text, nullable=True),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("recorded_by", sa.String(80), nullable=False),
        sa.Column("recorded_by_role", sa.String(32), nullable=False),
        sa.CheckConstraint(
            "(act IS NULL) <> (corrects_id IS NULL)", name="ck_status_change_act_or_correction"
        ),
    )
    _append_only()
    with op.batch_alter_table("confirmations") as batch:
        batch.drop_constraint("ck_confirmations_kind", type_="check")
        batch.create_check_constraint("ck_confirmations_kind", f"kind IN ({KINDS})")


def _append_only() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {TABLE}_no_{event.lower()} BEFORE {event} ON {TABLE} "
                f"BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only'); END"
            )
        return
    op.execute(
        f"CREATE FUNCTION {TABLE}_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN RAISE EXCEPTION '{TABLE} is append-only'; END $$"
    )
    op.execute(
        f"CREATE TRIGGER {TABLE}_no_update_delete BEFORE UPDATE OR DELETE ON {TABLE} "
        f"FOR EACH ROW EXECUTE FUNCTION {TABLE}_refuse()"
    )


def downgrade() -> None:
    raise NotImplementedError("Migrations are never downgraded (docs/decisions.md).")
