"""Kits counted per place, status and expiry date: kept counts and the changes not yet folded.

The supply manager's stock report counts every kit by place, status and expiry date. Counting
`kits` grows with the study (600,000 kits read per report at 100 times IMC-002); `kit_counts`
holds one row per site (or depot), status and expiry date, whatever the number of kits.

Kits move under many locks (a site's, a depot's, a shipment's, none for a kit list import), so
a trigger that updated the kept rows in place would make two of those transactions wait for
each other's count rows in opposite orders. The triggers therefore only append: every statement
that inserts, moves or deletes kits writes its net change per key to `kit_count_changes`, which
nothing else writes. A fold (the daily supply job) moves the changes into `kit_counts` under a
lock of its own. The report reads both, in one statement. Filled here from the kits there.

Keys use '' for no site or no depot, as a primary key admits no null.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS, CHANGES = "kit_counts", "kit_count_changes"
KEY = "site_id, depot_id, status, expiry_date"


def _key_columns(primary: bool) -> list[sa.Column[object]]:
    return [
        sa.Column("site_id", sa.String(12), primary_key=primary, nullable=False),
        sa.Column("depot_id", sa.String(12), primary_key=primary, nullable=False),
        sa.Column("status", sa.String(16), primary_key=primary, nullable=False),
        sa.Column("expiry_date", sa.Date, primary_key=primary, nullable=False),
        sa.Column("kits", sa.Integer, nullable=False),
    ]


def _keyed(row: str = "") -> str:
    """The key of a kit: of `row` (NEW or OLD) in a SQLite trigger, else named as the key."""
    if row:
        return (
            f"coalesce({row}.site_id, ''), coalesce({row}.depot_id, ''), {row}.status, "
            f"{row}.expiry_date"
        )
    return (
        "coalesce(site_id, '') AS site_id, coalesce(depot_id, '') AS depot_id, status, expiry_date"
    )


def upgrade() -> None:
    op.create_table(COUNTS, *_key_columns(primary=True))
    op.create_table(
        CHANGES,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        *_key_columns(primary=False),
    )
    op.execute(
        f"INSERT INTO {COUNTS} ({KEY}, kits) SELECT {_keyed()}, count(*) FROM kits "
        "GROUP BY 1, 2, 3, 4"
    )
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_triggers()
    else:
        _postgresql_triggers()


def _sqlite_triggers() -> None:
    def note(row: str, step: str) -> str:
        return f"INSERT INTO {CHANGES} ({KEY}, kits) VALUES ({_keyed(row)}, {step});"

    op.execute(f"CREATE TRIGGER {COUNTS}_insert AFTER INSERT ON kits BEGIN {note('NEW', '1')} END")
    op.execute(f"CREATE TRIGGER {COUNTS}_delete AFTER DELETE ON kits BEGIN {note('OLD', '-1')} END")
    moved = " OR ".join(
        f"OLD.{c} IS NOT NEW.{c}" for c in ("site_id", "depot_id", "status", "expiry_date")
    )
    op.execute(
        f"CREATE TRIGGER {COUNTS}_update AFTER UPDATE OF {KEY} ON kits WHEN {moved} "
        f"BEGIN {note('OLD', '-1')} {note('NEW', '1')} END"
    )


def _postgresql_triggers() -> None:
    """Statement triggers over the transition tables: a COPY of 600,000 kits writes one change
    per key, not one per kit; an update that moves no kit (a pool set) writes none."""
    bodies = {
        "insert": f"SELECT {_keyed()}, count(*) FROM new_rows GROUP BY 1, 2, 3, 4",
        "delete": f"SELECT {_keyed()}, -count(*) FROM old_rows GROUP BY 1, 2, 3, 4",
        "update": (
            f"SELECT {KEY}, sum(step) FROM (SELECT {_keyed()}, -1 AS step FROM old_rows "
            f"UNION ALL SELECT {_keyed()}, 1 FROM new_rows) moved "
            f"GROUP BY 1, 2, 3, 4 HAVING sum(step) <> 0"
        ),
    }
    tables = {
        "insert": "NEW TABLE AS new_rows",
        "delete": "OLD TABLE AS old_rows",
        "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
    }
    for event, body in bodies.items():
        op.execute(
            f"CREATE FUNCTION {COUNTS}_note_{event}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN INSERT INTO {CHANGES} ({KEY}, kits) {body}; RETURN NULL; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {COUNTS}_{event} AFTER {event.upper()} ON kits "
            f"REFERENCING {tables[event]} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION {COUNTS}_note_{event}()"
        )


def downgrade() -> None:
    raise NotImplementedError("Migrations are never downgraded (docs/decisions.md).")
