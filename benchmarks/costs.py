"""Cost per request on databases side by side: CPU (server process and its PostgreSQL backends)
and p50.

One client sends each request kind one after the other to a one-worker server per database,
the databases interleaved round by round, so the CPU a
phase adds to the server's processes and to the database backends serving them is that kind's
own cost, however busy the rest of the machine is (the wall-clock p50 is not: read it as such).
Kinds: randomize (day 1 four weeks back, with its kits), dispense (week 4 of those subjects),
inventory read (a site's stock, as its pharmacist), report (enrolment, as the sponsor), stock
report (inventory and expiry outlook of every site and depot, as the supply manager)."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

from benchmarks.load import percentile, randomize_body
from benchmarks.server import running_server, worker_pids
from benchmarks.setup import PASSWORD, BenchDatabase

KINDS = ("randomize", "dispense", "inventory", "report", "stock report")
TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")
SETTLE_SECONDS = 0.05
"""Idle means no CPU tick (10 ms) added to the server's processes and backends in this long."""
SETTLE_LIMIT = 100
"""Reads before giving up on idle (5 s): a server busy with something else must not hang the
run; what it spent meanwhile is counted, as before settling existed."""


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def backends(url: str) -> list[int]:
    name = make_url(url).database
    with psycopg.connect(_plain(url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return [int(r[0]) for r in rows]


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def insert_subjects(bench: BenchDatabase, sites: list[str], tag: str) -> list[tuple[int, str]]:
    """Registered subjects, one per entry of `sites`, inserted untimed (as the ceiling does)."""
    run = uuid.uuid4().hex[:6]
    with psycopg.connect(_plain(bench.url)) as conn:
        return [
            (
                int(
                    conn.execute(
                        "INSERT INTO subjects (site_id, screening_number, sex, year_of_birth, "
                        "status, created_at, created_by) VALUES (%s, %s, 'F', 1980, "
                        "'registered', now(), 'bench') RETURNING id",
                        (site, f"{tag}-{run}-{n:05d}"),
                    ).fetchone()[0]  # type: ignore[index]
                ),
                site,
            )
            for n, site in enumerate(sites)
        ]


def login(http: httpx.Client, username: str) -> dict[str, str]:
    response = http.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def settled(read: Callable[[], dict[int, int]]) -> dict[int, int]:
    """`read()` (ticks per process) once nothing it covers adds a tick between two readings."""
    last = read()
    for _ in range(SETTLE_LIMIT):
        time.sleep(SETTLE_SECONDS)
        now = read()
        if now == last:
            break
        last = now
    return last


class Meter:
    """CPU ticks of the server's processes and the database's backends, at start and end."""

    def __init__(self, server_pid: int, url: str) -> None:
        self.server_pid, self.url = server_pid, url

    def read(self) -> dict[int, int]:
        pids = [self.server_pid, *worker_pids(self.server_pid), *backends(self.url)]
        return {pid: _ticks(pid) for pid in pids}

    def settled(self) -> dict[int, int]:
        """`read` once the server and its backends are idle: the resupply checks that run after
        the answers (the server's follow-up thread) are the phase's cost too."""
        return settled(self.read)

    @staticmethod
    def spent_ms(before: dict[int, int], after: dict[int, int]) -> float:
        return sum(t - before.get(pid, 0) for pid, t in after.items()) * TICK_MS


class _Target:
    """One database under measurement: its one-worker server, its client, its users' tokens,
    its subjects, and the request of each kind; CPU and latency summed over rounds."""

    def __init__(self, bench: BenchDatabase, requests: int, log: Path | None) -> None:
        self.bench, self.requests, self.log = bench, requests, log
        self.site = bench.sites[0]
        self.subjects = [s for s, _ in insert_subjects(bench, [self.site] * (requests + 1), "COST")]
        self.rng = random.Random("costs")
        self.weights: dict[int, float] = {}
        self.spent = dict.fromkeys(KINDS, 0.0)
        self.latencies: dict[str, list[float]] = {kind: [] for kind in KINDS}
        self.errors = dict.fromkeys(KINDS, 0)

    def start(self, stack: ExitStack) -> None:
        srv = stack.enter_context(running_server(self.bench.url, workers=1, log=self.log))
        self.http = stack.enter_context(httpx.Client(base_url=srv.base, timeout=120))
        self.coordinator = login(self.http, self.bench.coordinator(self.site))
        self.pharmacist = login(self.http, self.bench.pharmacist(self.site))
        self.sponsor = login(self.http, "sponsor")
        self.supply = login(self.http, "supply")
        self.meter = Meter(srv.pid, self.bench.url)
        self.run = uuid.uuid4().hex[:6]
        for kind in KINDS:  # warm-up, on the one subject no round uses
            self.call(kind, self.requests)

    def call(self, kind: str, i: int) -> httpx.Response:
        http, subject = self.http, self.subjects[i]
        if kind == "randomize":
            body = randomize_body(self.rng, datetime.now(UTC).date() - timedelta(days=28))
            self.weights[subject] = body["weight_kg"]
            headers = {**self.coordinator, "Idempotency-Key": f"{self.run}-r{i}"}
            return http.post(f"/api/v1/subjects/{subject}/randomize", json=body, headers=headers)
        if kind == "dispense":
            body = {
                "visit": "W4",
                "visit_date": datetime.now(UTC).date().isoformat(),
                "weight_kg": self.weights.get(subject, 70.0),
            }
            headers = {**self.pharmacist, "Idempotency-Key": f"{self.run}-d{i}"}
            return http.post(f"/api/v1/subjects/{subject}/dispense", json=body, headers=headers)
        if kind == "inventory":
            return http.get(f"/api/v1/sites/{self.site}/inventory", headers=self.pharmacist)
        if kind == "report":
            return http.get("/api/v1/reports/enrolment", headers=self.sponsor)
        return http.get("/api/v1/reports/inventory", headers=self.supply)

    def phase(self, kind: str, indices: range) -> None:
        before = self.meter.read()
        for i in indices:
            began = time.monotonic()
            response = self.call(kind, i)
            self.latencies[kind].append((time.monotonic() - began) * 1000)
            self.errors[kind] += response.status_code >= 300
        self.spent[kind] += Meter.spent_ms(before, self.meter.settled())

    def result(self) -> dict[str, Any]:
        return {
            kind: {
                "requests": len(self.latencies[kind]),
                "errors": self.errors[kind],
                "p50_ms": percentile(sorted(self.latencies[kind]), 50),
                "cpu_ms_per_request": self.spent[kind] / max(len(self.latencies[kind]), 1),
            }
            for kind in KINDS
        }


def measure(
    benches: list[BenchDatabase], requests: int, logs: list[Path] | None = None, rounds: int = 5
) -> list[dict[str, Any]]:
    """[{kind: {requests, errors, p50_ms, cpu_ms_per_request}}] for each of `benches`, measured
    interleaved: in each of `rounds` rounds, each kind's share of `requests` on every database in
    turn (the order reversed every other round), each on its own server. A virtual machine's
    speed drifts by a factor of two within an hour here; measured one after the other, the
    databases' ratio carried that drift, interleaved they share it."""
    targets = [
        _Target(bench, requests, logs[n] if logs else None) for n, bench in enumerate(benches)
    ]
    share = max(requests // rounds, 1)
    with ExitStack() as stack:
        for target in targets:
            target.start(stack)
        for r in range(rounds):
            order = targets if r % 2 == 0 else targets[::-1]
            indices = range(r * share, min((r + 1) * share, requests))
            for kind in KINDS:
                for target in order:
                    target.phase(kind, indices)
    return [target.result() for target in targets]
