"""Randomized subjects counted per scope and stratum, kept by triggers.

Caps, the next slot of a stratum, the randomization number and the enrolment forecast all ask
how many subjects were randomized in a scope, a stratum, a stage or the study. Counting the
`randomizations` table grows with the study (a scan of every row at 20,000 subjects);
`randomization_counts` holds one row per scope and stratum, so each question reads a handful of
rows. Triggers on `randomizations` keep it (insert, delete and update alike), so nothing that
writes a randomization, the service or a bulk load, can leave it behind. Filled here from the
rows already there.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "randomization_counts"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("scope", sa.String(8), primary_key=True),
        sa.Column("stratum", sa.String(64), primary_key=True),
        sa.Column("stage", sa.String(10), nullable=False),
        sa.Column("randomized", sa.Integer, nullable=False),
    )
    op.execute(
        f"INSERT INTO {TABLE} (scope, stratum, stage, randomized) "
        "SELECT scope, stratum, min(stage), count(*) FROM randomizations GROUP BY scope, stratum"
    )
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_triggers()
    else:
        _postgresql_triggers()


def _add(row: str, step: str) -> str:
    return (
        f"INSERT INTO {TABLE} (scope, stratum, stage, randomized) "
        f"VALUES ({row}.scope, {row}.stratum, {row}.stage, {step}) "
        f"ON CONFLICT (scope, stratum) DO UPDATE SET randomized = {TABLE}.randomized + {step};"
    )


def _sqlite_triggers() -> None:
    op.execute(
        f"CREATE TRIGGER {TABLE}_insert AFTER INSERT ON randomizations BEGIN {_add('NEW', '1')} END"
    )
    op.execute(
        f"CREATE TRIGGER {TABLE}_delete AFTER DELETE ON randomizations "
        f"BEGIN {_add('OLD', '-1')} END"
    )
    op.execute(
        f"CREATE TRIGGER {TABLE}_update AFTER UPDATE OF scope, stratum, stage ON randomizations "
        f"BEGIN {_add('OLD', '-1')} {_add('NEW', '1')} END"
    )


def _postgresql_triggers() -> None:
    op.execute(
        f"CREATE FUNCTION {TABLE}_keep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP IN ('DELETE', 'UPDATE') THEN {_add('OLD', '-1')} END IF; "
        f"IF TG_OP IN ('INSERT', 'UPDATE') THEN {_add('NEW', '1')} END IF; "
        "RETURN NULL; END $$"
    )
    op.execute(
        f"CREATE TRIGGER {TABLE}_keep AFTER INSERT OR DELETE OR UPDATE OF scope, stratum, stage "
        f"ON randomizations FOR EACH ROW EXECUTE FUNCTION {TABLE}_keep()"
    )


def downgrade() -> None:
    raise NotImplementedError("Migrations are never downgraded (docs/decisions.md).")
