"""Subjects counted per site, status, scope and stratum, kept by triggers.

The enrolment report counts every subject of the reader's sites by status and, once
randomized, by list scope and stratum. Counting `subjects` joined with `randomizations` grows
with the study (20,000 rows of each read per report at 100 times IMC-002); `subject_counts`
holds one row per site, status, scope and stratum, so the report reads a few rows per site.
Triggers on both tables keep it (insert, delete and update alike), so nothing that writes a
subject or a randomization, the service or a bulk load, can leave it behind. An unrandomized
subject counts under scope and stratum ''. Filled here from the rows already there.

On PostgreSQL an update moves a subject between two rows of the table; the trigger takes the
two in key order, so two transactions moving subjects in opposite directions (a status change
and its undo) cannot each hold the row the other waits for.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "subject_counts"
KEY = "site_id, status, scope, stratum"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("site_id", sa.String(12), primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("scope", sa.String(8), primary_key=True),
        sa.Column("stratum", sa.String(64), primary_key=True),
        sa.Column("subjects", sa.Integer, nullable=False),
    )
    op.execute(
        f"INSERT INTO {TABLE} ({KEY}, subjects) "
        "SELECT s.site_id, s.status, coalesce(r.scope, ''), coalesce(r.stratum, ''), count(*) "
        "FROM subjects s LEFT JOIN randomizations r ON r.subject_id = s.id "
        "GROUP BY s.site_id, s.status, coalesce(r.scope, ''), coalesce(r.stratum, '')"
    )
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_triggers()
    else:
        _postgresql_triggers()


def _upsert(site: str, status: str, scope: str, stratum: str, step: str) -> str:
    return (
        f"INSERT INTO {TABLE} ({KEY}, subjects) VALUES ({site}, {status}, {scope}, {stratum}, "
        f"{step}) ON CONFLICT ({KEY}) DO UPDATE SET subjects = {TABLE}.subjects + {step};"
    )


def _randomized(subject: str, column: str) -> str:
    return f"coalesce((SELECT {column} FROM randomizations WHERE subject_id = {subject}.id), '')"


def _subject(row: str, column: str) -> str:
    return f"(SELECT {column} FROM subjects WHERE id = {row}.subject_id)"


def _sqlite_triggers() -> None:
    def subject(row: str, step: str) -> str:
        return _upsert(
            f"{row}.site_id",
            f"{row}.status",
            _randomized(row, "scope"),
            _randomized(row, "stratum"),
            step,
        )

    def randomization(row: str, step: str) -> str:
        site, status = _subject(row, "site_id"), _subject(row, "status")
        return _upsert(site, status, "''", "''", f"-({step})") + _upsert(
            site, status, f"{row}.scope", f"{row}.stratum", step
        )

    for table, body in (("subjects", subject), ("randomizations", randomization)):
        columns = "site_id, status" if table == "subjects" else "subject_id, scope, stratum"
        op.execute(
            f"CREATE TRIGGER {TABLE}_{table}_insert AFTER INSERT ON {table} "
            f"BEGIN {body('NEW', '1')} END"
        )
        op.execute(
            f"CREATE TRIGGER {TABLE}_{table}_delete AFTER DELETE ON {table} "
            f"BEGIN {body('OLD', '-1')} END"
        )
        op.execute(
            f"CREATE TRIGGER {TABLE}_{table}_update AFTER UPDATE OF {columns} ON {table} "
            f"BEGIN {body('OLD', '-1')} {body('NEW', '1')} END"
        )


def _postgresql_triggers() -> None:
    op.execute(
        f"CREATE FUNCTION {TABLE}_move(a text[], b text[], step integer) RETURNS void "
        "LANGUAGE plpgsql AS $$ BEGIN "
        # a loses `step`, b gains it, in key order; a null key (no row) is skipped
        "IF b IS NOT NULL AND (a IS NULL OR b < a) THEN "
        f"{_upsert('b[1]', 'b[2]', 'b[3]', 'b[4]', 'step')} b := NULL; END IF; "
        f"IF a IS NOT NULL THEN {_upsert('a[1]', 'a[2]', 'a[3]', 'a[4]', '-step')} END IF; "
        f"IF b IS NOT NULL THEN {_upsert('b[1]', 'b[2]', 'b[3]', 'b[4]', 'step')} END IF; "
        "END $$"
    )

    # one lookup of the subject's randomization; none for a new subject, which no
    # randomization can reference yet (the foreign key is checked at once)
    op.execute(
        f"CREATE FUNCTION {TABLE}_keep_subjects() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "DECLARE a text[]; b text[]; v_scope text; v_stratum text; BEGIN "
        "IF TG_OP = 'UPDATE' AND OLD.site_id = NEW.site_id AND OLD.status = NEW.status THEN "
        "RETURN NULL; END IF; "
        "IF TG_OP <> 'INSERT' THEN "
        "SELECT r.scope, r.stratum INTO v_scope, v_stratum FROM randomizations r "
        "WHERE r.subject_id = OLD.id; "
        "a := ARRAY[OLD.site_id, OLD.status, coalesce(v_scope, ''), coalesce(v_stratum, '')]; "
        "END IF; "
        "IF TG_OP <> 'DELETE' THEN "
        "b := ARRAY[NEW.site_id, NEW.status, coalesce(v_scope, ''), coalesce(v_stratum, '')]; "
        "END IF; "
        f"PERFORM {TABLE}_move(a, b, 1); RETURN NULL; END $$"
    )
    # a randomization moves its subject from scope and stratum '' to its own, and back
    op.execute(
        f"CREATE FUNCTION {TABLE}_keep_randomizations() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "DECLARE v_site text; v_status text; BEGIN "
        "IF TG_OP IN ('DELETE', 'UPDATE') THEN "
        "SELECT s.site_id, s.status INTO v_site, v_status FROM subjects s "
        "WHERE s.id = OLD.subject_id; "
        f"PERFORM {TABLE}_move(ARRAY[v_site, v_status, OLD.scope, OLD.stratum], "
        "ARRAY[v_site, v_status, '', ''], 1); END IF; "
        "IF TG_OP IN ('INSERT', 'UPDATE') THEN "
        "SELECT s.site_id, s.status INTO v_site, v_status FROM subjects s "
        "WHERE s.id = NEW.subject_id; "
        f"PERFORM {TABLE}_move(ARRAY[v_site, v_status, '', ''], "
        "ARRAY[v_site, v_status, NEW.scope, NEW.stratum], 1); END IF; "
        "RETURN NULL; END $$"
    )
    op.execute(
        f"CREATE TRIGGER {TABLE}_keep AFTER INSERT OR DELETE OR UPDATE OF site_id, status "
        f"ON subjects FOR EACH ROW EXECUTE FUNCTION {TABLE}_keep_subjects()"
    )
    op.execute(
        f"CREATE TRIGGER {TABLE}_keep AFTER INSERT OR DELETE OR UPDATE OF subject_id, scope, "
        f"stratum ON randomizations FOR EACH ROW EXECUTE FUNCTION {TABLE}_keep_randomizations()"
    )


def downgrade() -> None:
    raise NotImplementedError("Migrations are never downgraded (docs/decisions.md).")
