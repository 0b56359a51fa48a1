"""The load driver: N sites (one async client each) register, randomize and dose subjects.

Every POST carries an Idempotency-Key and is retried with the same key, as a real site would,
on a transport error, a 5xx or a 409 `idempotency_in_flight`, with backoff, until it gets a
definitive answer. Every acknowledged 201 is kept, so that the invariants can prove it durable.
The run has three phases, each with all clients at once: register every subject, randomize every
subject (day 1, dated four weeks back, with its day 1 kits), then dose every subject at week 4.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from benchmarks.cpu import ProcessMeter, busy_fraction, cpu_ticks
from benchmarks.setup import PASSWORD, BenchDatabase

PHASES = ("register", "randomize", "dispense")
RETRY_CAP_SECONDS = 2.0
GIVE_UP_SECONDS = 300.0


@dataclass
class EndpointStats:
    requests: int = 0
    ok: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    wall_seconds: float = 0.0
    cpu_busy: float = 0.0
    cpu_ms: dict[str, float] = field(default_factory=dict)  # per side (benchmarks/cpu.py)


@dataclass
class LoadResult:
    clients: int
    randomizations: int
    stats: dict[str, EndpointStats]
    acknowledged: list[dict[str, Any]]
    wall_seconds: float
    faults_fired: list[str] = field(default_factory=list)


Fault = Callable[[], Awaitable[None]]


def _today() -> date:
    return datetime.now(UTC).date()


def randomize_body(rng: random.Random, day_one: date) -> dict[str, Any]:
    """A realistic eligible subject: weight 48 to 110 kg, every phase II stratum reached."""
    return {
        "visit_date": day_one.isoformat(),
        "weight_kg": round(rng.uniform(48, 110), 1),
        "eligibility": {
            "sle_diagnosis_date": (day_one - timedelta(days=rng.randint(120, 4000))).isoformat(),
            "screening_date": (day_one - timedelta(days=rng.randint(3, 27))).isoformat(),
            "sledai_2k_score": rng.randint(6, 16),
            "bilag_a_count": rng.choice((1, 1, 2)),
            "bilag_b_count": rng.randint(0, 3),
            "on_soc_medication": True,
            "prednisone_equivalent_mg_per_day": rng.choice((0, 2.5, 5, 7.5, 10, 12.5, 15, 20)),
            "exclusions": {
                "active_or_unstable_neuropsychiatric_sle": False,
                "active_or_unstable_lupus_nephritis": False,
                "other_autoimmune_disease": False,
                "uncontrolled_medical_condition": False,
                "active_severe_infection": False,
                "malignancy_within_5_years": False,
            },
        },
    }


class Site:
    """One site's client: its coordinator and pharmacist, its subjects, its keys."""

    def __init__(
        self,
        index: int,
        http: httpx.AsyncClient,
        bench: BenchDatabase,
        site: str,
        count: int,
        run_id: str,
        result: LoadResult,
    ) -> None:
        self.http = http
        self.bench = bench
        self.site = site
        self.count = count
        self.rng = random.Random(f"{run_id}-{index}")
        self.run_id = run_id
        self.index = index
        self.result = result
        self.tokens: dict[str, str] = {}
        self.subjects: list[dict[str, Any]] = []

    async def login(self, username: str) -> str:
        started = time.monotonic()
        while True:
            try:
                response = await self.http.post(
                    "/api/v1/auth/token", data={"username": username, "password": PASSWORD}
                )
                if response.status_code == 200:
                    token = str(response.json()["access_token"])
                    self.tokens[username] = token
                    return token
                if response.status_code < 500:
                    raise RuntimeError(f"login {username}: {response.status_code} {response.text}")
            except httpx.TransportError:
                pass
            if time.monotonic() - started > GIVE_UP_SECONDS:
                raise RuntimeError(f"login {username}: no answer")
            await asyncio.sleep(0.2)

    async def post(
        self, endpoint: str, username: str, path: str, body: dict[str, Any], key: str
    ) -> httpx.Response | None:
        """POST until a definitive answer; record latency (retries included) and outcome."""
        stats = self.result.stats[endpoint]
        stats.requests += 1
        started = time.monotonic()
        attempt = 0
        while True:
            reason = None
            response = None
            token = self.tokens.get(username) or await self.login(username)
            try:
                response = await self.http.post(
                    path,
                    json=body,
                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
                )
            except httpx.TransportError as exc:
                reason = type(exc).__name__
            if response is not None:
                code = _code(response)
                if response.status_code >= 500:
                    reason = f"{response.status_code} {code}"
                elif response.status_code == 409 and code == "idempotency_in_flight":
                    reason = code
                elif response.status_code == 401:
                    reason = "401"
                    self.tokens.pop(username, None)
                else:
                    break
            assert reason is not None
            stats.retries[reason] += 1
            if time.monotonic() - started > GIVE_UP_SECONDS:
                stats.errors[f"gave up ({reason})"] += 1
                return None
            attempt += 1
            await asyncio.sleep(
                min(RETRY_CAP_SECONDS, 0.05 * 2**attempt) * self.rng.uniform(0.5, 1)
            )
        stats.latencies_ms.append((time.monotonic() - started) * 1000)
        if response.status_code == 201:
            stats.ok += 1
        else:
            stats.errors[f"{response.status_code} {_code(response)}"] += 1
        return response

    async def register_all(self) -> None:
        user = self.bench.coordinator(self.site)
        for n in range(self.count):
            number = f"{self.site}-{self.run_id}-{n:04d}"
            body = {
                "site_id": self.site,
                "screening_number": number,
                "sex": self.rng.choice("FFFFFFFFM"),
                "year_of_birth": self.rng.randint(1950, 2005),
            }
            response = await self.post(
                "register", user, "/api/v1/subjects", body, f"{number}-register"
            )
            if response is not None and response.status_code == 201:
                subject_id = int(response.json()["subject_id"])
                self.subjects.append({"subject_id": subject_id, "number": number})
                self.result.acknowledged.append(
                    {"endpoint": "register", "subject_id": subject_id, "body": response.json()}
                )

    async def randomize_all(self) -> None:
        user = self.bench.coordinator(self.site)
        day_one = _today() - timedelta(days=28)
        for subject in self.subjects:
            body = randomize_body(self.rng, day_one)
            subject["weight_kg"] = body["weight_kg"]
            response = await self.post(
                "randomize",
                user,
                f"/api/v1/subjects/{subject['subject_id']}/randomize",
                body,
                f"{subject['number']}-randomize",
            )
            if response is not None and response.status_code == 201:
                subject["randomized"] = True
                self.result.acknowledged.append(
                    {
                        "endpoint": "randomize",
                        "subject_id": subject["subject_id"],
                        "body": response.json(),
                    }
                )

    async def dispense_all(self) -> None:
        user = self.bench.pharmacist(self.site)
        for subject in self.subjects:
            if not subject.get("randomized"):
                continue
            weight = round(subject["weight_kg"] * self.rng.uniform(0.95, 1.12), 1)
            body = {"visit": "W4", "visit_date": _today().isoformat(), "weight_kg": weight}
            response = await self.post(
                "dispense",
                user,
                f"/api/v1/subjects/{subject['subject_id']}/dispense",
                body,
                f"{subject['number']}-W4",
            )
            if response is not None and response.status_code == 201:
                self.result.acknowledged.append(
                    {
                        "endpoint": "dispense",
                        "subject_id": subject["subject_id"],
                        "body": response.json(),
                    }
                )

    def acknowledged_in(self, endpoint: str) -> int:
        return self.result.stats[endpoint].ok


def _code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("code", ""))
    except ValueError:
        return ""


async def run_load(
    base: str,
    bench: BenchDatabase,
    clients: int = 32,
    randomizations: int = 2000,
    faults: dict[str, tuple[int, Fault]] | None = None,
    run_id: str | None = None,
    meter: ProcessMeter | None = None,
) -> LoadResult:
    """Drive the three phases; `faults[phase] = (after, fault)` starts `fault` once `after`
    requests of that phase were acknowledged (it runs beside the load). With a `meter`, each
    phase's CPU time is split into server, database and load generator."""
    meter = meter or ProcessMeter()
    run_id = run_id or uuid.uuid4().hex[:6]
    result = LoadResult(clients, randomizations, {p: EndpointStats() for p in PHASES}, [], 0.0)
    limits = httpx.Limits(max_connections=clients * 2, max_keepalive_connections=clients * 2)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        per_client = [randomizations // clients] * clients
        for i in range(randomizations % clients):
            per_client[i] += 1
        sites = [
            Site(i, http, bench, bench.sites[i % len(bench.sites)], n, run_id, result)
            for i, n in enumerate(per_client)
        ]
        await asyncio.gather(
            *(
                s.login(u)
                for s in sites
                for u in (bench.coordinator(s.site), bench.pharmacist(s.site))
            )
        )
        for phase in PHASES:
            watcher = None
            done = asyncio.Event()
            if faults and phase in faults:
                after, fault = faults[phase]
                watcher = asyncio.create_task(
                    _fire_after(result.stats[phase], after, fault, done, result.faults_fired)
                )
            phase_started, ticks, reading = time.monotonic(), cpu_ticks(), meter.read()
            await asyncio.gather(*(getattr(s, f"{phase}_all")() for s in sites))
            result.stats[phase].wall_seconds = time.monotonic() - phase_started
            result.stats[phase].cpu_busy = busy_fraction(ticks, cpu_ticks())
            result.stats[phase].cpu_ms = meter.spent_ms(reading, meter.read())
            done.set()
            if watcher is not None:
                await watcher
    result.wall_seconds = time.monotonic() - started
    return result


async def _fire_after(
    stats: EndpointStats, after: int, fault: Fault, done: asyncio.Event, fired: list[str]
) -> None:
    while stats.ok < after:
        if done.is_set():
            return
        await asyncio.sleep(0.005)
    await fault()
    fired.append(getattr(fault, "__name__", "fault"))


def summary(stats: EndpointStats) -> dict[str, Any]:
    latencies = sorted(stats.latencies_ms)
    return {
        "requests": stats.requests,
        "created": stats.ok,
        "throughput_per_s": stats.requests / stats.wall_seconds if stats.wall_seconds else 0.0,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "max_ms": latencies[-1] if latencies else 0.0,
        "errors": dict(stats.errors),
        "retries": dict(stats.retries),
        "wall_seconds": stats.wall_seconds,
        "cpu_busy": stats.cpu_busy,
        "cpu_ms_per_request": {
            side: ms / stats.requests if stats.requests else 0.0
            for side, ms in stats.cpu_ms.items()
        },
    }


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, round(p / 100 * len(sorted_values) + 0.4999))
    return sorted_values[min(rank, len(sorted_values)) - 1]
