"""The test databases: which engines, how to reach PostgreSQL, and a snapshot of every row to
prove that a refused request changed nothing but the audit trail, where the attempt is recorded
(`assert_unchanged`, `assert_attempt_recorded`)."""

from __future__ import annotations

import json
import os
from typing import Any

import psycopg
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from app.db.engine import Database
from app.services import audit

PG_URL = os.environ.get("IRT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
ENGINES = ["sqlite", "postgresql"]


def pg_admin() -> psycopg.Connection[Any]:
    """An autocommit connection for CREATE/DROP DATABASE, which cannot run in a transaction."""
    return psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)


def pg_url(dbname: str) -> str:
    """The URL of another database on the test PostgreSQL server."""
    return make_url(PG_URL).set(database=dbname).render_as_string(hide_password=False)


def snapshot(db: Database, *, ordered: bool = True) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order: compare two to prove nothing changed.
    `ordered=False` skips the sort, for callers that compare multisets (Counter) anyway."""
    with db.engine.connect() as conn:
        tables = sorted(inspect(conn).get_table_names())
        result = {}
        for table in tables:
            rows = [tuple(r) for r in conn.execute(text(f'SELECT * FROM "{table}"'))]
            result[table] = sorted(rows, key=repr) if ordered else rows
        return result


AUDIT_TABLES = ("audit_log", "audit_head")
"""The audit trail: the only tables a refused request, a forbidden one or a read may grow."""


ATTEMPTS = frozenset(
    {"request.forbidden", "unblinded.read", "signature.refused", "auth.login_failed"}
    | {"auth.login_throttled"}
)
LOGIN_TABLES = frozenset({"login_throttle", "revoked_tokens"})
"""Login bookkeeping (the throttle's counters, logged-out sessions): a login in a test changes
them, and they hold no trial data."""


def is_attempt(action: str) -> bool:
    """An entry that records an attempt, not a change: a refusal, a forbidden request, or a
    read of unblinded data (app/services/attempts.py)."""
    return action.endswith("_refused") or action in ATTEMPTS


def assert_unchanged(
    db: Database, before: dict[str, list[tuple[Any, ...]]]
) -> list[dict[str, Any]]:
    """Since `before`, no business row changed and no audit entry changed or vanished; the only
    new rows are audit entries of attempts, chained onto the old ones. Returns them, oldest
    first (their `after` parsed)."""
    after = snapshot(db)
    for table in sorted(before.keys() | after.keys()):
        if table not in AUDIT_TABLES and table not in LOGIN_TABLES:
            assert after.get(table) == before.get(table), f"{table} changed"
    old = set(before["audit_log"])
    assert old <= set(after["audit_log"]), "an audit entry changed or vanished"
    with db.read() as session:
        report = audit.verify(session)
        assert report.ok, report
        entries = audit.entries_after(session, after_seq=len(old))
    assert len(entries) == len(after["audit_log"]) - len(old), "entries out of sequence"
    assert (after["audit_head"] == before["audit_head"]) == (not entries)
    for entry in entries:
        assert is_attempt(entry["action"]), f"a refused request recorded {entry['action']}"
        entry["after"] = json.loads(entry["after"])
    return entries


def assert_attempt_recorded(
    db: Database,
    before: dict[str, list[tuple[Any, ...]]],
    *,
    action: str,
    username: str,
    code: str | None = None,
) -> dict[str, Any]:
    """Nothing changed but the audit trail (`assert_unchanged`), where exactly one new entry
    records this attempt by this user (with this refusal code); returns that entry."""
    entries = assert_unchanged(db, before)
    found = [e for e in entries if e["action"] == action and e["username"] == username]
    assert len(found) == 1, (action, username, entries)
    if code is not None:
        assert found[0]["after"]["code"] == code, found[0]
    return found[0]


def unlock_audit_log(db: Database) -> None:
    """Drop the triggers that keep the audit table append-only, as an insider with the owner's
    rights could: the tests that tamper with the trail start here."""
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_update_delete ON audit_log"))


def delete_randomization(db: Database, randomization_id: int) -> None:
    """Remove a randomization by hand with the rows that must go first (every dispensing and
    confirmation of the database): what an owner's repair or a bulk load could do."""
    with db.engine.begin() as conn:
        conn.execute(
            text("DELETE FROM dispensed_kits WHERE dispensing_id IN (SELECT id FROM dispensings)")
        )
        conn.execute(text("DELETE FROM dispensings"))
        conn.execute(text("DELETE FROM confirmations"))
        conn.execute(text("DELETE FROM randomizations WHERE id = :id"), {"id": randomization_id})


def forget_kit_shipment(db: Database, site_id: str) -> tuple[str, int]:
    """Clear the kept shipment of the site's first available kit by hand, as an insider could
    (the kit drops into a tier of its own): its number and the shipment it had."""
    with db.engine.begin() as conn:
        number, shipment = conn.execute(
            text(
                "SELECT kit_number, shipment_id FROM kits WHERE site_id = :site "
                "AND status = 'available' ORDER BY kit_number LIMIT 1"
            ),
            {"site": site_id},
        ).one()
        conn.execute(
            text("UPDATE kits SET shipment_id = NULL WHERE kit_number = :n"), {"n": number}
        )
    return str(number), int(shipment)
