"""Cost per request on one database: CPU (server process and its PostgreSQL backends) and p50.

One client sends each request kind one after the other to a one-worker server, so the CPU a
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


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def _backends(url: str) -> list[int]:
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


class _Meter:
    """CPU ticks of the server's processes and the database's backends, at start and end."""

    def __init__(self, server_pid: int, url: str) -> None:
        self.server_pid, self.url = server_pid, url

    def read(self) -> dict[int, int]:
        pids = [self.server_pid, *worker_pids(self.server_pid), *_backends(self.url)]
        return {pid: _ticks(pid) for pid in pids}

    @staticmethod
    def spent_ms(before: dict[int, int], after: dict[int, int]) -> float:
        return sum(t - before.get(pid, 0) for pid, t in after.items()) * TICK_MS


def measure(bench: BenchDatabase, requests: int, log: Path | None = None) -> dict[str, Any]:
    """{kind: {requests, errors, p50_ms, cpu_ms_per_request}} for `requests` of each kind."""
    site = bench.sites[0]
    subjects = [s for s, _ in insert_subjects(bench, [site] * (requests + 1), "COST")]
    rng = random.Random("costs")
    day_one = datetime.now(UTC).date() - timedelta(days=28)
    weights: dict[int, float] = {}
    out: dict[str, Any] = {}
    with (
        running_server(bench.url, workers=1, log=log) as srv,
        httpx.Client(base_url=srv.base, timeout=120) as http,
    ):
        coordinator = login(http, bench.coordinator(site))
        pharmacist = login(http, bench.pharmacist(site))
        sponsor = login(http, "sponsor")
        supply = login(http, "supply")
        meter = _Meter(srv.pid, bench.url)
        run = uuid.uuid4().hex[:6]

        def randomize(i: int) -> httpx.Response:
            body = randomize_body(rng, day_one)
            weights[subjects[i]] = body["weight_kg"]
            headers = {**coordinator, "Idempotency-Key": f"{run}-r{i}"}
            return http.post(
                f"/api/v1/subjects/{subjects[i]}/randomize", json=body, headers=headers
            )

        def dispense(i: int) -> httpx.Response:
            body = {
                "visit": "W4",
                "visit_date": datetime.now(UTC).date().isoformat(),
                "weight_kg": weights.get(subjects[i], 70.0),
            }
            headers = {**pharmacist, "Idempotency-Key": f"{run}-d{i}"}
            return http.post(f"/api/v1/subjects/{subjects[i]}/dispense", json=body, headers=headers)

        def inventory(i: int) -> httpx.Response:
            return http.get(f"/api/v1/sites/{site}/inventory", headers=pharmacist)

        def report(i: int) -> httpx.Response:
            return http.get("/api/v1/reports/enrolment", headers=sponsor)

        def stock_report(i: int) -> httpx.Response:
            return http.get("/api/v1/reports/inventory", headers=supply)

        calls: dict[str, Callable[[int], httpx.Response]] = {
            "randomize": randomize,
            "dispense": dispense,
            "inventory": inventory,
            "report": report,
            "stock report": stock_report,
        }
        for kind in KINDS:
            calls[kind](requests if kind in ("randomize", "dispense") else 0)  # warm-up
        for kind in KINDS:
            latencies: list[float] = []
            errors = 0
            before = meter.read()
            for i in range(requests):
                began = time.monotonic()
                response = calls[kind](i)
                latencies.append((time.monotonic() - began) * 1000)
                errors += response.status_code >= 300
            spent = _Meter.spent_ms(before, meter.read())
            latencies.sort()
            out[kind] = {
                "requests": requests,
                "errors": errors,
                "p50_ms": percentile(latencies, 50),
                "cpu_ms_per_request": spent / requests,
            }
    return out
