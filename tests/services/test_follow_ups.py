"""The server's follow-up thread: the answer does not wait for the resupply check, checks of a
site that wait coalesce, none is lost at shutdown; on both engines."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from app.db.engine import Database
from app.db.models import AuditEntry, Kit, Shipment
from app.main import create_app
from app.services import audit, follow_ups
from app.services.actor import SYSTEM
from app.services.transaction import after_commit, writing
from app.settings import Settings
from tests.support.helpers import randomize, register
from tests.support.supply import CONTENTS, Users

WAIT = 30.0


def _event(db: Database, *follow: tuple[follow_ups.FollowUp, object]) -> None:
    with writing(db) as session:
        audit.record(
            session,
            actor=SYSTEM,
            action="test.event",
            entity="test",
            entity_id=1,
            before=None,
            after=None,
        )
        for follow_up, key in follow:
            after_commit(session, follow_up, key=key)


def _entries(db: Database, action: str) -> int:
    with db.read() as session:
        return int(
            session.execute(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
            ).scalar_one()
        )


@pytest.fixture
def runner(db: Database) -> Iterator[follow_ups.Background]:
    background = follow_ups.Background()
    follow_ups.attach(db, background)
    yield background
    background.close(WAIT)
    follow_ups.attach(db, None)


def test_the_transaction_returns_before_its_follow_up_runs(
    db: Database, runner: follow_ups.Background
) -> None:
    release, seen = threading.Event(), []

    def check(database: Database) -> None:
        release.wait(WAIT)
        seen.append(_entries(database, "test.event"))  # the event is committed by then

    _event(db, (check, "site-A"))
    assert seen == []  # `writing` returned while the follow-up waits
    release.set()
    assert runner.drain(WAIT)
    assert seen == [1]


def test_waiting_checks_of_one_site_coalesce_into_the_newest(
    db: Database, runner: follow_ups.Background
) -> None:
    release, ran = threading.Event(), []
    _event(db, (lambda database: release.wait(WAIT), "busy"))  # holds the thread
    for n in range(3):
        _event(db, (lambda database, n=n: ran.append(("A", n)), "site-A"))
    _event(db, (lambda database: ran.append(("B", 0)), "site-B"))
    release.set()
    assert runner.drain(WAIT)
    assert ran == [("A", 2), ("B", 0)]  # A's place in the queue, its newest event's check
    assert runner.coalesced == 2


def test_a_check_that_started_is_not_merged_with_a_later_event(
    db: Database, runner: follow_ups.Background
) -> None:
    started, release, ran = threading.Event(), threading.Event(), []

    def first(database: Database) -> None:
        started.set()
        release.wait(WAIT)
        ran.append(1)

    _event(db, (first, "site-A"))
    assert started.wait(WAIT)
    _event(db, (lambda database: ran.append(2), "site-A"))  # committed after the check read
    release.set()
    assert runner.drain(WAIT)
    assert ran == [1, 2]
    assert runner.coalesced == 0


def test_a_failing_follow_up_is_logged_and_the_thread_goes_on(
    db: Database, runner: follow_ups.Background, caplog: pytest.LogCaptureFixture
) -> None:
    ran = []

    def broken(database: Database) -> None:
        raise RuntimeError("resupply check failed")

    with caplog.at_level(logging.ERROR):
        _event(db, (broken, "site-A"))
        _event(db, (lambda database: ran.append(True), "site-B"))
        assert runner.drain(WAIT)
    assert ran == [True]
    assert "follow-up after commit failed" in caplog.text
    assert _entries(db, "test.event") == 2


def test_closing_runs_what_is_queued(db: Database) -> None:
    background = follow_ups.Background()
    follow_ups.attach(db, background)
    release, ran = threading.Event(), []
    _event(db, (lambda database: release.wait(WAIT), "busy"))
    _event(db, (lambda database: ran.append("A"), "site-A"))
    release.set()
    assert background.close(WAIT)
    assert ran == ["A"]
    _event(db, (lambda database: ran.append("late"), "site-A"))  # after close: inline
    assert ran == ["A", "late"]
    follow_ups.attach(db, None)


def test_the_server_requests_the_shipment_on_its_follow_up_thread(
    demo_db: Database, db_url: str
) -> None:
    """A randomization that takes a site below its trigger: the check after it runs on the
    server's thread, once, and requests the site's resupply; its audit entry carries the
    randomization's request id, as when it ran inside the request."""
    with demo_db.write() as session:  # DE01 keeps 6 kits of each content, below its trigger
        for content in CONTENTS:
            kept = (
                select(Kit.kit_number)
                .where(Kit.site_id == "DE01", Kit.status == "available", Kit.content == content)
                .order_by(Kit.kit_number)
                .limit(6)
            )
            session.execute(
                update(Kit)
                .where(Kit.site_id == "DE01", Kit.status == "available", Kit.content == content)
                .where(Kit.kit_number.not_in(kept))
                .values(status="quarantined")
            )
    app = create_app(Settings(database_url=db_url, follow_ups="background"))
    runner = app.state.follow_ups
    assert isinstance(runner, follow_ups.Background)
    with TestClient(app) as client:
        coordinator = Users(client)["coordinator"]
        assert _resupplies(demo_db) == 0
        subject_id = register(client, coordinator, site_id="DE01")
        answer = randomize(client, coordinator, subject_id)
        assert answer.status_code == 201, answer.text
        assert runner.drain(WAIT)
        assert runner.ran == 1
        assert _resupplies(demo_db) == 1
    with demo_db.read() as session:
        resupply = session.execute(
            select(AuditEntry.after)
            .where(AuditEntry.action == "site.resupply", AuditEntry.entity_id == "DE01")
            .order_by(AuditEntry.seq.desc())
            .limit(1)
        ).scalar_one()
    assert json.loads(resupply)["request_id"] == answer.headers["x-request-id"]


def _resupplies(db: Database) -> int:
    with db.read() as session:
        return int(
            session.execute(
                select(func.count())
                .select_from(Shipment)
                .where(Shipment.site_id == "DE01", Shipment.kind == "resupply")
            ).scalar_one()
        )
