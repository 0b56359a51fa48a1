"""Where the work that follows a commit runs: inline, or on a thread of the server process.

A follow-up (`transaction.after_commit`) is work that may lag its event without harm and is
redone by the next event or by a periodic command: the resupply check after a randomization
or a dosing visit. Inline (the default: the CLI, scripts, a service called directly) it runs
before `writing` returns. The server attaches a `Background` runner: the request answers as
soon as its own transaction has committed, and one thread per process runs the follow-ups in
arrival order, each in a transaction of its own.

Follow-ups with the same key (one site's resupply check) coalesce while they wait: a check
that has not started yet reads the site as it is when it starts, so it covers every event
that committed before then, and only the newest event's follow-up is kept (its user, its day
and its request id, which the check's audit entries carry as they did inline).
One that has started is never merged with a later event: that event queues a check of its
own. A process that dies loses what it had queued, as it lost a check between commit and
answer before; the next event at the site or the daily `irt supply check` makes it up
(docs/decisions.md).
"""

from __future__ import annotations

import contextvars
import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable

from app.db.engine import Database

log = logging.getLogger(__name__)

FollowUp = Callable[[Database], None]


def run(db: Database, follow_up: FollowUp) -> None:
    """Run one follow-up now; a failure is logged, never raised (the event stands)."""
    try:
        follow_up(db)
    except Exception:
        log.exception("A follow-up after commit failed; the next event or a periodic run redoes it")


class Background:
    """One worker thread; follow-ups queued in order, those with a waiting key coalesced."""

    def __init__(self) -> None:
        self._waiting: OrderedDict[Hashable, tuple[Database, FollowUp, contextvars.Context]] = (
            OrderedDict()
        )
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self.ran = 0
        self.coalesced = 0

    def submit(self, db: Database, follow_up: FollowUp, key: Hashable | None) -> None:
        with self._cond:
            closed = self._closed
            if not closed:
                self._queue(db, follow_up, key)
        if closed:  # shutting down: nobody would pick it up; run it here, outside the lock
            run(db, follow_up)

    def _queue(self, db: Database, follow_up: FollowUp, key: Hashable | None) -> None:
        """Under the lock: queue, or replace the waiting follow-up of the same key."""
        if key is None:
            key = object()  # its own place in the queue
        elif key in self._waiting:
            self.coalesced += 1
        # the event's context goes with it: the request id its audit entries and logs carry
        self._waiting[key] = (db, follow_up, contextvars.copy_context())
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="irt-follow-ups", daemon=True)
            self._thread.start()
        self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if not self._waiting:
                    return
                _, (db, follow_up, context) = self._waiting.popitem(last=False)
                self._busy = True
            try:
                context.run(run, db, follow_up)
            finally:
                with self._cond:
                    self._busy = False
                    self.ran += 1
                    self._cond.notify_all()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until nothing is queued or running; False if `timeout` seconds passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._waiting and not self._busy, timeout)

    def close(self, timeout: float = 30.0) -> bool:
        """Run what is queued, then stop the thread (the server's shutdown)."""
        drained = self.drain(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        return drained


_RUNNERS: weakref.WeakKeyDictionary[Database, Background] = weakref.WeakKeyDictionary()


def attach(db: Database, runner: Background | None) -> Database:
    """Run the database's follow-ups on `runner` (None: inline again)."""
    if runner is None:
        _RUNNERS.pop(db, None)
    else:
        _RUNNERS[db] = runner
    return db


def dispatch(db: Database, follow_up: FollowUp, key: Hashable | None) -> None:
    """Run `follow_up` as the database's runner says: queued on its thread, or now."""
    runner = _RUNNERS.get(db)
    if runner is None:
        run(db, follow_up)
    else:
        runner.submit(db, follow_up, key)
