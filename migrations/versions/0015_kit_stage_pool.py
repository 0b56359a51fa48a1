"""Stage pools: each kit shipped to a site belongs to the pool of one stage.

`shipment_kits.pool` holds the stage key ("phase_ib" or "phase_ii") a kit is shipped for,
decided when the shipment is requested; `kits.pool` takes it when the kit leaves the depot
(kits at a depot have none). Kits already at a site or in an open shipment when this runs go to
the pool of the stage that recruits: phase II once a subject was randomized in phase II or its
dose was recorded, else phase Ib. Phase Ib subjects still on treatment then draw on new phase Ib
shipments, which the resupply requests at its next check (app/domain/stage_pools.py).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("kits") as batch:
        batch.add_column(sa.Column("pool", sa.String(10), nullable=True))
    with op.batch_alter_table("shipment_kits") as batch:
        batch.add_column(sa.Column("pool", sa.String(10), nullable=True))
    in_phase_ii = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT (SELECT count(*) FROM randomizations WHERE stage = 'phase_ii')"
                " + (SELECT count(*) FROM study WHERE phase2_dose_mg_per_kg IS NOT NULL)"
            )
        )
        .scalar_one()
    )
    pool = "phase_ii" if in_phase_ii else "phase_ib"
    op.execute(
        sa.text("UPDATE kits SET pool = :pool WHERE site_id IS NOT NULL").bindparams(pool=pool)
    )
    op.execute(
        sa.text(
            "UPDATE shipment_kits SET pool = :pool WHERE shipment_id IN"
            " (SELECT id FROM shipments WHERE status IN ('requested', 'shipped'))"
        ).bindparams(pool=pool)
    )


def downgrade() -> None:
    with op.batch_alter_table("shipment_kits") as batch:
        batch.drop_column("pool")
    with op.batch_alter_table("kits") as batch:
        batch.drop_column("pool")
