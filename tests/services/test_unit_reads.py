"""Reads made once per transaction (app/services/unit_reads.py): a row locked again, the study
row, the cohorts and the definition versions are not asked for twice, and nothing kept
outlives its transaction or a change to what it was read from."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from app.db.engine import Database
from app.db.models import Cohort
from app.services import definitions
from app.services.locks import lock_site
from app.services.study_state import cohort_statuses, current_study, lock_study_shared
from app.services.transaction import utcnow, writing


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def test_a_row_locked_twice_in_a_transaction_is_locked_once(demo_db: Database) -> None:
    with statements(demo_db) as seen, writing(demo_db) as session:
        first = lock_site(session, "DE01")
        again = lock_site(session, "DE01")
        other = lock_site(session, "US01")
        assert again is first and other is not first
        assert sum("FROM sites" in s for s in seen) == 2
    with statements(demo_db) as seen, writing(demo_db) as session:
        lock_site(session, "DE01")
        assert sum("FROM sites" in s for s in seen) == 1  # a new transaction locks anew


def test_the_study_row_locked_serves_later_reads(demo_db: Database) -> None:
    with statements(demo_db) as seen, writing(demo_db) as session:
        locked = lock_study_shared(session)
        assert current_study(session) is locked
        assert sum("FROM study" in s for s in seen) == 1
        assert "definition_json" not in seen[0]  # the definition is read on its own


def test_a_changed_cohort_is_read_again(demo_db: Database) -> None:
    with statements(demo_db) as seen, writing(demo_db) as session:
        before = cohort_statuses(session)
        assert cohort_statuses(session) == before
        assert sum("FROM cohorts" in s for s in seen) == 1
        code = next(iter(before))
        session.get(Cohort, code).status = "closed"  # type: ignore[union-attr]
        assert cohort_statuses(session)[code] == "closed"  # pending: not the kept value
        session.flush()
        assert cohort_statuses(session)[code] == "closed"
        session.rollback()


def test_versions_are_read_once_and_again_after_a_rollback(demo_db: Database) -> None:
    today = utcnow().date()
    with statements(demo_db) as seen, writing(demo_db) as session:
        first = definitions.in_effect(session, on=today)
        assert definitions.in_effect(session, on=today) == first
        assert sum("study_versions.effective_date" in s for s in seen) == 1
        session.begin_nested().rollback()  # what was read or locked may be gone with it
        assert definitions.in_effect(session, on=today) == first
        assert sum("study_versions.effective_date" in s for s in seen) == 2
