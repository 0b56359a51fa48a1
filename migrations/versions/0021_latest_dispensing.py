"""Each randomization keeps the visit and vials of the subject's latest standing dispensing.

The resupply check after every randomization and dosing visit forecasts the site's need from
every subject on treatment there: the visit it is at and its vials, which were looked up in
`dispensings` twice per subject (migration 0018). At 625 subjects on treatment at one site
that read grew to most of the check's time. `randomizations.last_visit_index` and
`last_vials` are set when a visit is dispensed and when the latest one is marked entered in
error; this fills them from the standing dispensings an older database holds. No trigger: the
two places that change a subject's latest dispensing set them, and the monitor's check
compares them with `dispensings`.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LATEST = (
    "SELECT d.{column} FROM dispensings d WHERE d.subject_id = randomizations.subject_id"
    " AND d.entered_in_error_at IS NULL ORDER BY d.visit_index DESC LIMIT 1"
)


def upgrade() -> None:
    with op.batch_alter_table("randomizations") as batch:
        batch.add_column(sa.Column("last_visit_index", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("last_vials", sa.Integer(), nullable=True))
    op.execute(
        f"UPDATE randomizations SET last_visit_index = ({LATEST.format(column='visit_index')}),"
        f" last_vials = ({LATEST.format(column='vials')})"
    )


def downgrade() -> None:
    raise NotImplementedError("Migrations are never downgraded (docs/decisions.md).")
