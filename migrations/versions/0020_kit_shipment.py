"""Each kit keeps the shipment that took it to its site.

A kit's tier for the common-tier rule is its expiry date and the shipment that brought it
(app/domain/common_expiry.py). Every randomization and dosing visit read the site's stock with
that shipment found by joining the kits with the site's shipments, grouped per kit: most of a
randomization's database time. `kits.shipment_id` is set when the kit leaves the depot, as its
stage pool is; kits already shipped get the last shipped or received shipment that carried them
(a kit leaves a depot once, so there is at most one). No foreign key: the column is a kept copy
of `shipment_kits`, which holds the keys, and the monitor's check compares the two.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("kits") as batch:
        batch.add_column(sa.Column("shipment_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE kits SET shipment_id = ("
        "SELECT max(sk.shipment_id) FROM shipment_kits sk"
        " JOIN shipments s ON s.id = sk.shipment_id"
        " WHERE sk.kit_number = kits.kit_number AND s.site_id = kits.site_id"
        " AND s.status NOT IN ('requested', 'cancelled'))"
        " WHERE site_id IS NOT NULL"
    )


def downgrade() -> None:
    raise NotImplementedError("Migrations are never downgraded (docs/decisions.md).")
