"""The login use case on both engines: parallel wrong passwords get at most the allowed number of
password checks (the attempt is reserved under lock first), and unknown, disabled and real users
cost the same work (one Argon2 check of the same parameters, the same SQL statements)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from app.db.engine import Database
from app.domain.errors import NotAuthenticated, TooManyAttempts
from app.services import accounts, auth, passwords
from app.services.actor import SYSTEM
from app.services.transaction import writing
from app.settings import Settings
from tests.support.demo import DEMO_PASSWORD

PARALLEL = 50


def _settings(db: Database) -> Settings:
    return Settings(database_url=str(db.engine.url), login_backoff_base_seconds=600)


@contextmanager
def _counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """Every password check: (the hash's parameters, the password)."""
    calls: list[tuple[str, str]] = []
    lock = threading.Lock()

    def counting(password_hash: str, password: str) -> bool:
        with lock:
            calls.append((password_hash.split("$")[3], password))
        return passwords.verify_password(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", counting)
    yield calls


def _attempt(db: Database, settings: Settings, *, username: str, password: str, source: str) -> str:
    try:
        auth.login(db, settings=settings, username=username, password=password, source=source)
    except NotAuthenticated:
        return "401"
    except TooManyAttempts:
        return "429"
    return "200"


def test_parallel_wrong_passwords_get_at_most_the_allowed_checks(
    demo_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(demo_db)
    barrier = threading.Barrier(PARALLEL)

    def one(n: int) -> str:
        barrier.wait()
        return _attempt(
            demo_db, settings, username="investigator", password=f"wrong-{n}", source="10.1.1.1"
        )

    with _counted(monkeypatch) as calls, ThreadPoolExecutor(PARALLEL) as pool:
        answers = Counter(pool.map(one, range(PARALLEL)))
    free = settings.login_free_failures
    assert answers == {"401": free, "429": PARALLEL - free}, answers
    assert len(calls) == free


@contextmanager
def _statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.split()[0].upper())

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def test_unknown_disabled_and_real_users_cost_the_same(
    demo_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(demo_db)
    with writing(demo_db) as session:
        accounts.disable(session, actor=SYSTEM, username="supply", reason="left the study team")
    cases = {
        "unknown user": ("nobody-at-all", "wrong-password"),
        "disabled user, right password": ("supply", DEMO_PASSWORD),
        "real user, wrong password": ("pharmacist", "wrong-password"),
    }
    work: dict[str, tuple[list[str], list[tuple[str, str]]]] = {}
    for n, (case, (username, password)) in enumerate(cases.items()):
        for attempt in range(2):  # a new key, then a known one
            source = f"10.2.0.{n}"
            with _counted(monkeypatch) as calls, _statements(demo_db) as statements:
                answer = _attempt(
                    demo_db, settings, username=username, password=password, source=source
                )
            assert answer == "401", case
            work[f"{case} {attempt}"] = (statements, calls)
    parameters = {params for _, calls in work.values() for params, _ in calls}
    assert all(len(calls) == 1 for _, calls in work.values()), work  # one Argon2 check each
    assert len(parameters) == 1, parameters  # the dummy hash has the real hashes' parameters
    for attempt in range(2):
        shapes = {tuple(work[f"{case} {attempt}"][0]) for case in cases}
        assert len(shapes) == 1, shapes  # the same statements, in the same order
