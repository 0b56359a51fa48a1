"""Drug supply: depots, kit imports, kits, site supply levels, shipments, dispensings.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
DEC = sa.String(32)
KIT_STATUSES = (
    "at_depot", "in_transit", "available", "dispensed", "damaged", "lost", "quarantined",
    "expired", "returned", "destroyed",
)


def upgrade() -> None:
    op.create_table(
        "depots",
        sa.Column("id", sa.String(12), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    with op.batch_alter_table("sites") as batch:
        batch.add_column(sa.Column("depot_id", sa.String(12), nullable=True))
    op.create_table(
        "kit_imports",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("kit_count", sa.Integer, nullable=False),
        sa.Column("imported_at", TS, nullable=False),
        sa.Column("imported_by", sa.String(80), nullable=False),
    )
    statuses = ", ".join(f"'{s}'" for s in KIT_STATUSES)
    op.create_table(
        "kits",
        sa.Column("kit_number", sa.String(16), primary_key=True),
        sa.Column("content", sa.String(20), nullable=False),
        sa.Column("lot", sa.String(40), nullable=False),
        sa.Column("expiry_date", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("depot_id", sa.String(12), sa.ForeignKey("depots.id"), nullable=True),
        sa.Column("site_id", sa.String(12), sa.ForeignKey("sites.id"), nullable=True),
        sa.Column("import_id", sa.Integer, sa.ForeignKey("kit_imports.id"), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint(f"status IN ({statuses})", name="ck_kits_status"),
    )
    op.create_index("ix_kits_site_stock", "kits", ["site_id", "status", "content", "expiry_date"])
    op.create_index(
        "ix_kits_depot_stock", "kits", ["depot_id", "status", "content", "expiry_date"]
    )
    op.create_table(
        "site_supply_levels",
        sa.Column("site_id", sa.String(12), sa.ForeignKey("sites.id"), primary_key=True),
        sa.Column("content", sa.String(20), primary_key=True),
        sa.Column("trigger", sa.Integer, nullable=False),
        sa.Column("target", sa.Integer, nullable=False),
        sa.CheckConstraint("trigger >= 0 AND target > trigger", name="ck_supply_levels"),
    )
    op.create_table(
        "shipments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("depot_id", sa.String(12), sa.ForeignKey("depots.id"), nullable=False),
        sa.Column("site_id", sa.String(12), sa.ForeignKey("sites.id"), nullable=False,
                  index=True),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("requested_by", sa.String(80), nullable=False),
        sa.Column("shipped_at", TS, nullable=True),
        sa.Column("received_at", TS, nullable=True),
        sa.Column("received_by", sa.String(80), nullable=True),
        sa.Column("temperature_excursion", sa.Boolean, nullable=False),
    )
    op.create_table(
        "shipment_kits",
        sa.Column("shipment_id", sa.Integer, sa.ForeignKey("shipments.id"), primary_key=True),
        sa.Column("kit_number", sa.String(16), sa.ForeignKey("kits.kit_number"),
                  primary_key=True),
        sa.Column("outcome", sa.String(12), nullable=True),
    )
    op.create_table(
        "dispensings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subject_id", sa.Integer, sa.ForeignKey("subjects.id"), nullable=False,
                  index=True),
        sa.Column("visit", sa.String(8), nullable=False),
        sa.Column("visit_index", sa.Integer, nullable=False),
        sa.Column("visit_date", sa.Date, nullable=False),
        sa.Column("weight_measured_kg", DEC, nullable=False),
        sa.Column("weight_kg", DEC, nullable=False),
        sa.Column("dose_level_mg_per_kg", DEC, nullable=False),
        sa.Column("dose_mg", DEC, nullable=False),
        sa.Column("vials", sa.Integer, nullable=False),
        sa.Column("infusion_volume_ml", DEC, nullable=False),
        sa.Column("dispensed_at", TS, nullable=False),
        sa.Column("dispensed_by", sa.String(80), nullable=False),
        sa.UniqueConstraint("subject_id", "visit"),
    )
    op.create_table(
        "dispensed_kits",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dispensing_id", sa.Integer, sa.ForeignKey("dispensings.id"), nullable=False,
                  index=True),
        sa.Column("kit_number", sa.String(16), sa.ForeignKey("kits.kit_number"),
                  nullable=False, unique=True),
        sa.Column("replaced_at", TS, nullable=True),
        sa.Column("replaced_by_kit", sa.String(16), nullable=True),
        sa.Column("replacement_reason", sa.Text, nullable=True),
    )


def downgrade() -> None:
    raise RuntimeError("schema changes of a regulated system are never downgraded")
