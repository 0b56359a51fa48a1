"""Study definition versions, moved caps and training mode.

- `study_versions`: every version of the study definition (version 1 is the one loaded first,
  later ones are protocol amendments), with the date from which it is in effect.
- `randomizations.study_version`, `dispensings.study_version`: the version each act used.
- `study.phase2_cap`: phase II's cap as the sponsor last set it (the phase Ib cohorts' caps
  already live in `cohorts.cap`); places moved from closed cohorts land here.
- `study.mode`: `production` or `training`, written when the study is loaded and never changed:
  a training database says so itself, whatever the server's settings.

An existing study gets version 1 (its stored definition), production mode, its definition's
phase II cap, and every act is marked as done under version 1.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "study_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False, unique=True),
        sa.Column("definition_json", sa.Text, nullable=False),
        sa.Column("definition_sha256", sa.String(64), nullable=False),
        sa.Column("effective_date", sa.Date, nullable=False),
        sa.Column("loaded_at", TS, nullable=False),
        sa.Column("loaded_by", sa.String(80), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
    )
    with op.batch_alter_table("study") as batch:
        batch.add_column(
            sa.Column("mode", sa.String(12), nullable=False, server_default="production")
        )
        batch.add_column(sa.Column("phase2_cap", sa.Integer, nullable=True))
    for table in ("randomizations", "dispensings"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("study_version", sa.Integer, nullable=True))
    _existing_study_is_version_1()


def _existing_study_is_version_1() -> None:
    bind = op.get_bind()
    study = bind.execute(sa.text("SELECT definition_json, created_at FROM study")).first()
    if study is None:
        return
    definition_json, created_at = study
    # shown as the day version 1 took effect (the first act, else the day the study was
    # loaded); version 1 is in effect before any later one anyway
    first_act = bind.execute(
        sa.text(
            "SELECT min(d) FROM (SELECT min(visit_date) AS d FROM randomizations "
            "UNION ALL SELECT min(visit_date) FROM dispensings) AS acts"
        )
    ).scalar()
    bind.execute(
        sa.text(
            "INSERT INTO study_versions (version, definition_json, definition_sha256, "
            "effective_date, loaded_at, loaded_by) SELECT 1, definition_json, "
            "definition_sha256, :effective, created_at, 'system:migration' FROM study"
        ).bindparams(sa.bindparam("effective", type_=sa.Date)),
        {"effective": _as_date(first_act) or _as_date(created_at) or datetime.now(UTC).date()},
    )
    phase2_cap = int(json.loads(definition_json)["phase_ii"]["cap"])
    bind.execute(sa.text("UPDATE study SET phase2_cap = :cap"), {"cap": phase2_cap})
    for table in ("randomizations", "dispensings"):
        bind.execute(sa.text(f"UPDATE {table} SET study_version = 1"))


def _as_date(value: object) -> date | None:
    """SQLite answers a date or a timestamp as text."""
    if isinstance(value, datetime):
        return value.date()
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def downgrade() -> None:
    raise NotImplementedError("Migrations are never downgraded (docs/decisions.md).")
