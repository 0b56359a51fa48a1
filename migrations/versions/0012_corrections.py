"""Data corrections and the stratum as randomized beside the actual stratum.

`data_corrections` is append-only (refused by triggers, as the audit trail): every signed
correction of a subject's data with the old and the new value, the reason and the signature.
`randomizations.actual_stratum` is the stratum the corrected answers give (NULL: no correction
touched a stratification factor); `stratum` stays the stratum as randomized. The dose's
`infusion_volume_ml` becomes `drug_volume_ml` in `randomizations` and `dispensings`: it is the
drug drawn up from the vials, not the volume infused.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
TABLE = "data_corrections"


def upgrade() -> None:
    # the volume drawn up into the syringe, named for what it is (not the infusion bag's volume)
    for table in ("randomizations", "dispensings"):
        op.execute(f"ALTER TABLE {table} RENAME COLUMN infusion_volume_ml TO drug_volume_ml")
    with op.batch_alter_table("randomizations") as batch:
        batch.add_column(sa.Column("actual_stratum", sa.String(64), nullable=True))
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "subject_id", sa.Integer, sa.ForeignKey("subjects.id"), nullable=False, index=True
        ),
        sa.Column("field", sa.String(80), nullable=False),
        sa.Column("visit", sa.String(8), nullable=True),
        sa.Column("old_value", sa.Text, nullable=False),
        sa.Column("new_value", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("stratum_before", sa.String(64), nullable=True),
        sa.Column("stratum_after", sa.String(64), nullable=True),
        sa.Column("signature_json", sa.Text, nullable=False),
        sa.Column("corrected_at", TS, nullable=False),
        sa.Column("corrected_by", sa.String(80), nullable=False),
        sa.Column("corrected_by_role", sa.String(32), nullable=False),
    )
    _append_only()


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
