"""Several server processes (separate uvicorn instances, separate ports) on one PostgreSQL.

Throughput: closed-loop randomizations by 32 clients (one per site), first against one server,
then round-robin against N; the same database, fresh subjects each time. Then what must hold
across processes: the same Idempotency-Key sent to two processes at once gives one
randomization and the same answer; the phase II cap is exact when the last places are
contended from both; a token logged out on one process is refused on the other."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from benchmarks.costs import _plain, insert_subjects
from benchmarks.load import randomize_body
from benchmarks.server import running_server
from benchmarks.setup import PASSWORD, BenchDatabase

STAGE_COUNT = "SELECT count(*) FROM randomizations WHERE stage = 'phase_ii'"
DAY_ONE = datetime.now(UTC).date() - timedelta(days=28)


async def _tokens(base: str, users: list[str]) -> dict[str, dict[str, str]]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        out = {}
        for user in users:
            answer = await http.post(
                "/api/v1/auth/token", data={"username": user, "password": PASSWORD}
            )
            answer.raise_for_status()
            out[user] = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        return out


async def _randomize_all(
    bases: list[str], bench: BenchDatabase, subjects: list[tuple[int, str]]
) -> tuple[float, int, list[httpx.Response]]:
    """(seconds, 201s, answers): 32 clients, each sending its site's subjects round-robin."""
    tokens = await _tokens(bases[0], [bench.coordinator(s) for s in bench.sites])
    clients = [httpx.AsyncClient(base_url=b, timeout=120) for b in bases]
    answers: list[httpx.Response] = []
    turn = [0]

    async def site_client(site: str) -> None:
        rng = random.Random(site)
        for subject, s in subjects:
            if s != site:
                continue
            turn[0] += 1
            http = clients[turn[0] % len(clients)]
            answers.append(
                await http.post(
                    f"/api/v1/subjects/{subject}/randomize",
                    json=randomize_body(rng, DAY_ONE),
                    headers={
                        **tokens[bench.coordinator(site)],
                        "Idempotency-Key": uuid.uuid4().hex,
                    },
                )
            )

    began = time.monotonic()
    await asyncio.gather(*(site_client(site) for site in bench.sites))
    seconds = time.monotonic() - began
    for http in clients:
        await http.aclose()
    return seconds, sum(a.status_code == 201 for a in answers), answers


async def _idempotency(bases: list[str], bench: BenchDatabase) -> dict[str, Any]:
    site = bench.sites[0]
    ((subject, _),) = insert_subjects(bench, [site], "IDEM")
    user = bench.coordinator(site)
    token = (await _tokens(bases[0], [user]))[user]
    body = randomize_body(random.Random("idem"), DAY_ONE)
    headers = {**token, "Idempotency-Key": f"idem-{uuid.uuid4().hex}"}
    async with httpx.AsyncClient(timeout=60) as http:
        answers = await asyncio.gather(
            *(
                http.post(f"{b}/api/v1/subjects/{subject}/randomize", json=body, headers=headers)
                for b in bases
            )
        )
        again = await http.post(
            f"{bases[-1]}/api/v1/subjects/{subject}/randomize", json=body, headers=headers
        )
    with psycopg.connect(_plain(bench.url)) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM randomizations WHERE subject_id = %s", (subject,)
        ).fetchone()[0]  # type: ignore[index]
    created = [a.json() for a in (*answers, again) if a.status_code == 201]
    return {
        "statuses": [a.status_code for a in (*answers, again)],
        "randomizations": rows,
        "holds": rows == 1 and len({str(c) for c in created}) == 1,
    }


async def _revocation(bases: list[str], bench: BenchDatabase) -> dict[str, Any]:
    user = bench.pharmacist(bench.sites[0])
    token = (await _tokens(bases[0], [user]))[user]
    path = f"/api/v1/sites/{bench.sites[0]}/inventory"
    async with httpx.AsyncClient(timeout=60) as http:
        before = (await http.get(bases[1] + path, headers=token)).status_code
        out = (await http.post(bases[0] + "/api/v1/auth/logout", headers=token)).status_code
        after = (await http.get(bases[1] + path, headers=token)).status_code
    return {
        "before": before,
        "logout": out,
        "after": after,
        "holds": before == 200 and after == 401,
    }


async def _cap(bases: list[str], bench: BenchDatabase, extra: int) -> dict[str, Any]:
    """Fill the phase II cap from every process at once, `extra` attempts over it."""
    with psycopg.connect(_plain(bench.url)) as conn:
        used = conn.execute(STAGE_COUNT).fetchone()[0]  # type: ignore[index]
    total_cap = bench.study.phase_ii.cap
    left = total_cap - used
    sites = [bench.sites[i % len(bench.sites)] for i in range(left + extra)]
    subjects = insert_subjects(bench, sites, "CAP")
    _, created, answers = await _randomize_all(bases, bench, subjects)
    with psycopg.connect(_plain(bench.url)) as conn:
        after = conn.execute(STAGE_COUNT).fetchone()[0]  # type: ignore[index]
    codes: dict[str, int] = {}
    for a in answers:
        if a.status_code != 201:
            code = f"{a.status_code} {a.json().get('code', '')}"
            codes[code] = codes.get(code, 0) + 1
    return {
        "cap": total_cap,
        "places_left": left,
        "attempts": left + extra,
        "created": created,
        "randomizations_after": after,
        "refused": codes,
        "holds": after == total_cap and created == left,
    }


def run(bench: BenchDatabase, processes: int, per_run: int, log_dir: Path) -> dict[str, Any]:
    """Throughput of one process, then of `processes`, then the cross-process checks."""
    out: dict[str, Any] = {"processes": processes, "randomizations": per_run}
    with running_server(bench.url, workers=1, log=log_dir / "mp-1.log") as one:
        subjects = insert_subjects(
            bench, [bench.sites[i % len(bench.sites)] for i in range(per_run)], "MP1"
        )
        seconds, created, _ = asyncio.run(_randomize_all([one.base], bench, subjects))
    out["one"] = {"seconds": seconds, "created": created, "per_s": created / seconds}
    with ExitStack() as stack:
        servers = [
            stack.enter_context(running_server(bench.url, workers=1, log=log_dir / f"mp-{i}.log"))
            for i in range(processes)
        ]
        bases = [s.base for s in servers]
        subjects = insert_subjects(
            bench, [bench.sites[i % len(bench.sites)] for i in range(per_run)], "MPN"
        )
        seconds, created, _ = asyncio.run(_randomize_all(bases, bench, subjects))
        out["many"] = {"seconds": seconds, "created": created, "per_s": created / seconds}
        out["ratio"] = out["many"]["per_s"] / out["one"]["per_s"]
        out["idempotency"] = asyncio.run(_idempotency(bases, bench))
        out["revocation"] = asyncio.run(_revocation(bases, bench))
        out["cap"] = asyncio.run(_cap(bases, bench, extra=20))
    return out
