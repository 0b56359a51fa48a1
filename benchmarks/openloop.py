"""Open-loop latency: Poisson arrivals at a fixed rate, whatever the answers' speed.

A closed loop (benchmarks/load.py) waits for each answer before the next request, so its latency
is set by its own concurrency (Little's law). Here requests arrive as a Poisson process across
32 sites, a third each randomizations (day 1 four weeks back), dosing visits (week 4 of a subject
randomized before) and site inventory reads, and each latency counts from the request's planned
arrival, so a queue shows in it. Rates go up until p99 passes the bound at two rates in a row:
at the low rates a step is a few dozen answers, so its p99 is nearly its slowest answer, and
one slow answer there must not end the run (it happened once at 1 /s). The raw-driver ceiling
(benchmarks/ceiling.py) is driven the same way, with randomizations only (it has no other kind),
one connection per thread and 32 threads taking the arrivals in turn."""

from __future__ import annotations

import asyncio
import queue
import random
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from benchmarks.ceiling import Worker, _connect
from benchmarks.costs import insert_subjects
from benchmarks.load import percentile, randomize_body
from benchmarks.setup import PASSWORD, BenchDatabase

BOUND_MS = 100.0


def _arrivals(rate: float, seconds: float, rng: random.Random) -> list[float]:
    times: list[float] = []
    t = 0.0
    while True:
        t += rng.expovariate(rate)
        if t >= seconds:
            return times
        times.append(t)


WARM_UP_RATE = 5.0
WARM_UP_SECONDS = 6.0


def _problem_code(response: httpx.Response) -> str:
    """The problem+json `code` of a refused answer, else its content type."""
    try:
        body = response.json()
    except ValueError:
        return response.headers.get("content-type", "no body")
    return str(body.get("code")) if isinstance(body, dict) else "no code"


def _summary(
    rate: float, latencies: list[float], errors: Counter[str], planned: int
) -> dict[str, Any]:
    """`errors`: failed requests per cause (a status and problem code, or an exception)."""
    latencies.sort()
    return {
        "rate_per_s": rate,
        "planned": planned,
        "answered": len(latencies),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors.most_common()),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
    }


async def _service_step(
    base: str, bench: BenchDatabase, rate: float, seconds: float, pool: dict[str, Any]
) -> dict[str, Any]:
    rng = random.Random(f"open-{rate}")
    day_one = datetime.now(UTC).date() - timedelta(days=28)
    planned = _arrivals(rate, seconds, rng)
    kinds = [rng.choice(("randomize", "dispense", "inventory")) for _ in planned]
    need = kinds.count("randomize")
    fresh = insert_subjects(bench, [rng.choice(bench.sites) for _ in range(need)], "OPEN")
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        tokens = pool["tokens"]
        start = time.monotonic()

        async def one(at: float, kind: str) -> None:
            await asyncio.sleep(max(0.0, start + at - time.monotonic()))
            run = uuid.uuid4().hex
            if kind == "randomize":
                subject, site = fresh.pop()
                body = randomize_body(rng, day_one)
                call = http.post(
                    f"/api/v1/subjects/{subject}/randomize",
                    json=body,
                    headers={**tokens[bench.coordinator(site)], "Idempotency-Key": run},
                )
                pending = (subject, site, body["weight_kg"])
            elif kind == "dispense" and pool["randomized"]:
                subject, site, weight = pool["randomized"].pop()
                today = datetime.now(UTC).date().isoformat()
                body = {"visit": "W4", "visit_date": today, "weight_kg": weight}
                call = http.post(
                    f"/api/v1/subjects/{subject}/dispense",
                    json=body,
                    headers={**tokens[bench.pharmacist(site)], "Idempotency-Key": run},
                )
                pending = None
            else:
                site = rng.choice(bench.sites)
                call = http.get(
                    f"/api/v1/sites/{site}/inventory", headers=tokens[bench.pharmacist(site)]
                )
                pending = None
            failure = None
            try:
                response = await call
                if response.status_code >= 300:
                    failure = f"{response.status_code} {_problem_code(response)}"
            except httpx.HTTPError as exc:
                failure = type(exc).__name__
            latencies.append((time.monotonic() - start - at) * 1000)
            if failure is not None:
                errors[failure] += 1
            elif pending is not None:
                pool["randomized"].append(pending)

        await asyncio.gather(*(one(at, kind) for at, kind in zip(planned, kinds, strict=True)))
    return _summary(rate, latencies, errors, len(planned))


async def _login_all(base: str, bench: BenchDatabase) -> dict[str, dict[str, str]]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        tokens = {}
        for site in bench.sites:
            for user in (bench.coordinator(site), bench.pharmacist(site)):
                answer = await http.post(
                    "/api/v1/auth/token", data={"username": user, "password": PASSWORD}
                )
                answer.raise_for_status()
                tokens[user] = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        return tokens


def service(
    base: str, bench: BenchDatabase, rates: list[float], seconds: float
) -> list[dict[str, Any]]:
    """One step per rate, in order, stopping after two in a row whose p99 is over the bound.
    A few seconds of traffic first, not counted: each server process's first requests of a kind
    pay its one-off costs (the study definition parsed, statements compiled, connections
    opened), which a steady rate does not."""
    pool: dict[str, Any] = {"tokens": asyncio.run(_login_all(base, bench)), "randomized": []}
    asyncio.run(_service_step(base, bench, WARM_UP_RATE, WARM_UP_SECONDS, pool))
    steps = []
    for rate in rates:
        steps.append(asyncio.run(_service_step(base, bench, rate, seconds, pool)))
        if _over_twice(steps):
            break
    return steps


def _ceiling_step(bench: BenchDatabase, rate: float, seconds: float) -> dict[str, Any]:
    day_one = datetime.now(UTC).date() - timedelta(days=28)
    rng = random.Random(f"ceiling-open-{rate}")
    planned = _arrivals(rate, seconds, rng)
    subjects = insert_subjects(bench, [rng.choice(bench.sites) for _ in planned], "COPEN")
    work: queue.Queue[tuple[float, int, str] | None] = queue.Queue()
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    start = time.monotonic() + 0.5

    def drive(index: int) -> None:
        sqlite, conn = _connect(bench.url)
        worker = Worker(bench, sqlite, conn)
        rng_t = random.Random(f"t{index}-{rate}")
        while (item := work.get()) is not None:
            at, subject, site = item
            try:
                worker.randomize(subject, site, randomize_body(rng_t, day_one), "ceiling")
                with lock:
                    latencies.append((time.monotonic() - start - at) * 1000)
            except Exception as exc:  # counted, as run_ceiling counts its errors, with the cause
                with lock:
                    errors[f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"] += 1
        conn.close()

    threads = [threading.Thread(target=drive, args=(i,)) for i in range(32)]
    for thread in threads:
        thread.start()
    for at, (subject, site) in zip(planned, subjects, strict=True):
        time.sleep(max(0.0, start + at - time.monotonic()))
        work.put((at, subject, site))
    for _ in threads:
        work.put(None)
    for thread in threads:
        thread.join()
    return _summary(rate, latencies, errors, len(planned))


def ceiling(bench: BenchDatabase, rates: list[float], seconds: float) -> list[dict[str, Any]]:
    """The ceiling's randomization, open loop: 32 threads take Poisson arrivals from a queue."""
    steps = []
    for rate in rates:
        steps.append(_ceiling_step(bench, rate, seconds))
        if _over_twice(steps):
            break
    return steps


def _over_twice(steps: list[dict[str, Any]]) -> bool:
    """The last two steps' p99 both at or over the bound: the rates beyond are not tried."""
    return len(steps) >= 2 and all(s["p99_ms"] >= BOUND_MS for s in steps[-2:])


def highest_under_bound(steps: list[dict[str, Any]]) -> float | None:
    ok = [s["rate_per_s"] for s in steps if s["p99_ms"] < BOUND_MS and not s["errors"]]
    return max(ok) if ok else None
