"""Each site's time zone, for local dates in exports and pages.

`sites.timezone` holds an IANA name ("Europe/Berlin"). Sites that exist get the zone of their
country as the time zone database lists it first (Germany: Europe/Berlin, United States:
America/New_York, the demo's countries); any other country gets UTC until the sponsor sets the
site's zone (`irt sites set-timezone`, the API or the sites page).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTRY_ZONES = {"DE": "Europe/Berlin", "US": "America/New_York"}
"""Frozen here: a migration never follows later changes of the application's defaults."""


def upgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.add_column(sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"))
    sites = sa.table("sites", sa.column("country", sa.String), sa.column("timezone", sa.String))
    for country, zone in COUNTRY_ZONES.items():
        op.execute(sites.update().where(sites.c.country == country).values(timezone=zone))


def downgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("timezone")
