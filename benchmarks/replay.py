"""The service's own statements sent again through the raw driver: how much of the CPU ratio is
the execution layer, and how much is work the bare ceiling does not do.

The ceiling (benchmarks/ceiling.py) does the least database work a randomization or a dose
needs. The service does more by design: the token's user, the Idempotency-Key claimed in its
own transaction and completed, the blinded tier reads, the confirmation and its outbox message,
the resupply check after the answer. The CPU ratio service / ceiling mixes the two. This part
splits it, on three copies of one base database, one client, requests one after the other:

- **capture**: the app in process serves `requests` randomizations, then the week 4 dose of each
  subject; SQLAlchemy's cursor and transaction events record every statement with its
  parameters, on which pooled connection, and every commit and rollback, the resupply check's
  included (drained after each answer);
- **replay**: the recording is sent again through psycopg (sqlite3) alone, one raw connection
  per pooled one, on a copy taken before the capture: every statement finds the rows it found
  the first time, and the copy must end as the captured database did (chain head, entries, kits
  per status, rows written), or the replay is refused as unfaithful;
- **service**: the same requests on a second copy, one-worker server over real HTTP, its CPU
  and its backends' metered as in benchmarks/costs.py;
- **ceiling**: `run_ceiling` with one client on a third copy.

service / replay is what FastAPI, SQLAlchemy and the service's own Python add to the same
statements; replay / ceiling is the database work beyond the ceiling's. Only the pool's
liveness pings (one per checkout) are not replayed: SQLAlchemy sends them below its events.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

from benchmarks.ceiling import _connect, register_subjects, run_ceiling
from benchmarks.costs import TICK_MS, Meter, _plain, backends, login, settled
from benchmarks.cpu import process_ticks
from benchmarks.load import randomize_body
from benchmarks.server import SECRET, running_server
from benchmarks.setup import BenchDatabase, _pg_admin, drop_database

KINDS = ("randomize", "dispense")
FOLLOW_UP_THREAD = "irt-follow-ups"


@dataclass(frozen=True)
class Statement:
    """One statement as SQLAlchemy sent it; `part` the kind of its transaction."""

    connection: int
    sql: str
    params: Any
    many: bool
    part: str = ""


@dataclass(frozen=True)
class End:
    """A commit or a rollback of one connection's transaction."""

    connection: int
    commit: bool


Event = Statement | End


@dataclass
class Recording:
    """What the service sent, in order; `spans[kind]` the events of that kind's timed requests."""

    events: list[Event] = field(default_factory=list)
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)
    requests: int = 1
    fingerprint: list[list[tuple[Any, ...]]] = field(default_factory=list)


@dataclass
class Cost:
    """CPU ms per request of one kind, on one side; `parts` the replay's split per transaction
    kind (client ms, backend ms)."""

    client_ms: float
    backend_ms: float
    statements: float = 0.0
    transactions: float = 0.0
    parts: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def total_ms(self) -> float:
        return self.client_ms + self.backend_ms


@dataclass(frozen=True)
class Script:
    """The requests every side serves: subjects, their answers, the visit date."""

    subjects: list[tuple[int, str]]
    bodies: list[dict[str, Any]]
    today: str
    run: str

    @classmethod
    def make(cls, subjects: list[tuple[int, str]]) -> Script:
        rng = random.Random("replay")
        day_one = datetime.now(UTC).date() - timedelta(days=28)
        bodies = [randomize_body(rng, day_one) for _ in subjects]
        return cls(subjects, bodies, datetime.now(UTC).date().isoformat(), uuid.uuid4().hex[:6])

    def serve(
        self,
        http: Any,
        bench: BenchDatabase,
        mark: Callable[[str, bool], None],
        after: Callable[[], object],
    ) -> None:
        """Every user logs in and the first subject warms up, untimed; `mark(kind, start)`
        brackets the rest."""
        sites = {site for _, site in self.subjects}
        users = [f(site) for site in sorted(sites) for f in (bench.coordinator, bench.pharmacist)]
        tokens = {user: login(http, user) for user in users}  # untimed

        def headers(user: str, key: str) -> dict[str, str]:
            return {**tokens[user], "Idempotency-Key": f"{self.run}-{key}"}

        for kind in KINDS:
            for i, ((subject, site), body) in enumerate(
                zip(self.subjects, self.bodies, strict=True)
            ):
                if kind == "randomize":
                    path, json = "randomize", body
                    user = bench.coordinator(site)
                else:
                    path = "dispense"
                    json = {"visit": "W4", "visit_date": self.today, "weight_kg": body["weight_kg"]}
                    user = bench.pharmacist(site)
                head = headers(user, f"{kind[0]}{i}")
                if i == 1:
                    mark(kind, True)
                answer = http.post(f"/api/v1/subjects/{subject}/{path}", json=json, headers=head)
                if answer.status_code >= 300:
                    raise RuntimeError(f"{kind}: {answer.status_code} {answer.text[:300]}")
                after()
            mark(kind, False)


def clone(url: str, tag: str) -> str:
    """A copy of the database as it stands (PostgreSQL: a template copy; SQLite: a backup)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        target = f"{parsed.database}.{tag}.db"
        with sqlite3.connect(parsed.database or "") as src, sqlite3.connect(target) as dst:
            src.backup(dst)
        return parsed.set(database=target).render_as_string(hide_password=False)
    name = f"{parsed.database}_{tag}"
    with _pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{parsed.database}"')
    return parsed.set(database=name).render_as_string(hide_password=False)


_FINGERPRINT = (
    "SELECT seq, hash FROM audit_head",
    "SELECT count(*), max(seq) FROM audit_log",
    "SELECT status, count(*) FROM kits GROUP BY status ORDER BY status",
    *(
        f"SELECT count(*) FROM {table}"
        for table in (
            "randomizations",
            "dispensings",
            "dispensed_kits",
            "shipments",
            "confirmations",
            "outbox",
            "idempotency_keys",
        )
    ),
)


def fingerprint(url: str) -> list[list[tuple[Any, ...]]]:
    """What the requests leave behind: the chain head, entries, kits per status, rows written.
    A statement the replay left out or sent wrongly changes it."""
    conn = _raw(url)
    try:
        return [[tuple(row) for row in conn.execute(sql).fetchall()] for sql in _FINGERPRINT]
    finally:
        conn.close()


@contextmanager
def _listening() -> Iterator[list[Event]]:
    events: list[Event] = []

    def key(conn: Any) -> int:
        return id(conn.connection.dbapi_connection)

    def statement(conn: Any, _c: Any, sql: str, params: Any, _x: Any, many: bool) -> None:
        follow_up = threading.current_thread().name == FOLLOW_UP_THREAD
        events.append(Statement(key(conn), sql, params, many, "check" if follow_up else ""))

    def commit(conn: Any) -> None:
        events.append(End(key(conn), True))

    def rollback(conn: Any) -> None:
        events.append(End(key(conn), False))

    listeners = (("before_cursor_execute", statement), ("commit", commit), ("rollback", rollback))
    for name, fn in listeners:
        event.listen(Engine, name, fn)
    try:
        yield events
    finally:
        for name, fn in listeners:
            event.remove(Engine, name, fn)


def capture(bench: BenchDatabase, script: Script) -> Recording:
    """Serve the script in process on `bench`, recording every statement."""
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    settings = Settings(
        database_url=bench.url,
        secret_key=SECRET,
        password_hash_profile="fast",
        follow_ups="background",  # as the server runs the resupply check: after the answer
    )
    recording = Recording(requests=len(script.subjects) - 1)
    app = create_app(settings)
    with _listening() as events, TestClient(app) as http:

        def mark(kind: str, start: bool) -> None:
            low, _ = recording.spans.get(kind, (len(events), 0))
            recording.spans[kind] = (len(events), 0) if start else (low, len(events))

        def drain() -> None:
            if app.state.follow_ups is not None:
                app.state.follow_ups.drain(60)

        script.serve(http, bench, mark, drain)
    recording.events = _labelled(events)
    recording.fingerprint = fingerprint(bench.url)
    return recording


def _labelled(events: list[Event]) -> list[Event]:
    """Each statement named for its transaction: token, claim (the Idempotency-Key's own
    transaction), request, check (the resupply check after the answer)."""
    open_: dict[int, list[int]] = {}
    out: list[Event] = list(events)
    for n, ev in enumerate(events):
        if isinstance(ev, Statement):
            open_.setdefault(ev.connection, []).append(n)
            continue
        members = open_.pop(ev.connection, [])
        texts = [events[m].sql.lstrip()[:40] for m in members]  # type: ignore[union-attr]
        texts = [t for t in texts if not t.startswith("BEGIN")]  # SQLite's own BEGIN IMMEDIATE
        part = "request"
        if any(events[m].part == "check" for m in members):  # type: ignore[union-attr]
            part = "check"
        elif texts and all(t.startswith("INSERT INTO idempotency_keys") for t in texts):
            part = "claim"
        elif len(texts) == 1 and texts[0].startswith("SELECT users.username"):
            part = "token"
        for m in members:
            st = events[m]
            assert isinstance(st, Statement)
            out[m] = Statement(st.connection, st.sql, st.params, st.many, part)
    return out


def _raw(url: str) -> Any:
    """SQLite: the ceiling's connection (same pragmas, BEGIN as sent). PostgreSQL: psycopg with
    its own transactions, as under SQLAlchemy (the ceiling's is in autocommit)."""
    if make_url(url).get_backend_name() == "sqlite":
        return _connect(url)[1]
    return psycopg.connect(_plain(url))


class _Replayer:
    """Raw connections, one per pooled connection of the capture, and what each part spent."""

    def __init__(self, url: str, recording: Recording) -> None:
        self.url, self.recording = url, recording
        self.sqlite = make_url(url).get_backend_name() == "sqlite"
        self.conns: dict[int, Any] = {}
        self.open: dict[int, str] = {}  # connection: the part of its open transaction
        self.seen: dict[int, int] = {}  # connection: its backend's ticks at its last end
        self.spent: dict[str, list[float]] = {}  # part: [client seconds, backend ticks]

    def _backend(self, conn: Any) -> int:
        return 0 if self.sqlite else process_ticks(conn.info.backend_pid)

    def _database(self) -> dict[int, int]:
        """Ticks of every backend of the database (autovacuum's too), as the service's meter."""
        return {} if self.sqlite else {p: process_ticks(p) for p in backends(self.url)}

    def send(self, low: int, high: int, timed: bool) -> None:
        for ev in self.recording.events[low:high]:
            if ev.connection not in self.conns:
                self.conns[ev.connection] = _raw(self.url)
            conn = self.conns[ev.connection]
            began = time.process_time()
            if isinstance(ev, Statement):
                self.open[ev.connection] = ev.part
                cursor = conn.cursor()  # as SQLAlchemy does: a cursor a statement, rows fetched
                if ev.many and isinstance(ev.params, list):
                    cursor.executemany(ev.sql, ev.params)
                else:
                    cursor.execute(ev.sql, ev.params)
                if cursor.description is not None:
                    cursor.fetchall()
                cursor.close()
            elif ev.commit:
                conn.commit()
            else:
                conn.rollback()
            used = time.process_time() - began
            part = self.open.get(ev.connection, "request")
            if isinstance(ev, End):
                self.open.pop(ev.connection, None)
            if not timed:
                continue
            spent = self.spent.setdefault(part, [0.0, 0.0])
            spent[0] += used
            if isinstance(ev, End):
                ticks = self._backend(conn)
                spent[1] += ticks - self.seen.get(ev.connection, ticks)
                self.seen[ev.connection] = ticks

    def timed(self, low: int, high: int) -> Cost:
        self.seen = {key: self._backend(conn) for key, conn in self.conns.items()}
        self.spent = {}
        before = self._database()
        self.send(low, high, timed=True)
        after = settled(self._database)
        requests = self.recording.requests
        events = self.recording.events[low:high]
        parts = {
            p: (c * 1000 / requests, b * TICK_MS / requests) for p, (c, b) in self.spent.items()
        }
        database = Meter.spent_ms(before, after) / requests
        own = sum(b for _, b in parts.values())
        if database > own:  # backends other than the replay's: autovacuum, chiefly
            parts["other backends"] = (0.0, database - own)
        return Cost(
            client_ms=sum(c for c, _ in parts.values()),
            backend_ms=max(database, own),
            statements=sum(isinstance(e, Statement) for e in events) / requests,
            transactions=sum(isinstance(e, End) for e in events) / requests,
            parts=parts,
        )

    def close(self) -> None:
        for conn in self.conns.values():
            conn.close()


def replay(url: str, recording: Recording) -> dict[str, Cost]:
    """Send the recording to `url` through the raw driver; each kind's CPU per request. Refused
    (RuntimeError) unless the copy ends as the captured database did (`fingerprint`)."""
    replayer = _Replayer(url, recording)
    out: dict[str, Cost] = {}
    try:
        done = 0
        for kind in KINDS:
            low, high = recording.spans[kind]
            replayer.send(done, low, timed=False)
            out[kind] = replayer.timed(low, high)
            done = high
        replayer.send(done, len(recording.events), timed=False)
    finally:
        replayer.close()
    found = fingerprint(url)
    if found != recording.fingerprint:
        raise RuntimeError(f"unfaithful replay: {found} against {recording.fingerprint}")
    return out


def service(bench: BenchDatabase, script: Script, log: Path | None = None) -> dict[str, Cost]:
    """The script on a one-worker server over real HTTP; server and backend CPU per request."""
    out: dict[str, Cost] = {}
    requests = len(script.subjects) - 1
    with (
        running_server(bench.url, workers=1, log=log) as srv,
        httpx.Client(base_url=srv.base, timeout=120) as http,
    ):
        meter = Meter(srv.pid, bench.url)
        began: dict[str, dict[int, int]] = {}

        def mark(kind: str, start: bool) -> None:
            if start:
                began[kind] = meter.read()
                return
            after = meter.settled()
            ours = set(backends(bench.url))
            server = {p: t for p, t in after.items() if p not in ours}
            database = {p: t for p, t in after.items() if p in ours}
            out[kind] = Cost(
                client_ms=Meter.spent_ms(began[kind], server) / requests,
                backend_ms=Meter.spent_ms(began[kind], database) / requests,
            )

        script.serve(http, bench, mark, lambda: None)
    return out


def ceiling(bench: BenchDatabase, requests: int) -> dict[str, Cost]:
    """`run_ceiling` with one client: its process and backend CPU per request."""
    result = run_ceiling(bench, clients=1, randomizations=requests)
    return {
        kind: Cost(
            client_ms=phase.cpu_ms.get("load", 0.0) / requests,
            backend_ms=phase.cpu_ms.get("database", 0.0) / requests,
        )
        for kind, phase in result.phases.items()
    }


def measure(bench: BenchDatabase, requests: int, workdir: Path) -> dict[str, Any]:
    """The four sides: the capture on `bench` itself, the others on copies of it taken before
    (dropped afterwards)."""
    subjects = register_subjects(bench.url, bench, requests + 1, "RPL")
    script = Script.make(subjects)
    copies = [clone(bench.url, tag) for tag in ("replay", "service", "ceiling")]
    try:
        recording = capture(bench, script)
        sides = {
            "replay": replay(copies[0], recording),
            "service": service(
                BenchDatabase(bench.engine, copies[1], bench.study, bench.sites),
                script,
                workdir / "replay-service.log",
            ),
            "ceiling": ceiling(
                BenchDatabase(bench.engine, copies[2], bench.study, bench.sites), requests
            ),
        }
    finally:
        for url in copies:
            drop_database(url)
    return {
        kind: {
            side: vars(costs[kind]) | {"total_ms": costs[kind].total_ms}
            for side, costs in sides.items()
        }
        for kind in KINDS
    }
