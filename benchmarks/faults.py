"""Faults injected during a load run: a killed server worker, a restarted PostgreSQL, a process
killed in the middle of a SQLite writing transaction."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.server import worker_pids

PG_VERSION = os.environ.get("IRT_BENCH_PG_VERSION", "15")
PG_CLUSTER = os.environ.get("IRT_BENCH_PG_CLUSTER", "main")


def kill_one_worker(supervisor_pid: int) -> int:
    """SIGKILL one uvicorn worker (the supervisor starts a new one); its pid."""
    pids = worker_pids(supervisor_pid)
    if not pids:
        raise RuntimeError("no worker to kill")
    os.kill(pids[0], signal.SIGKILL)
    return pids[0]


def pg_ready(timeout: float = 60) -> None:
    """Wait until PostgreSQL accepts connections again (pg_isready)."""
    deadline = time.monotonic() + timeout
    while True:
        done = subprocess.run(
            ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"], check=False
        ).returncode
        if done == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("PostgreSQL is not ready again")
        time.sleep(0.2)


def restart_postgres() -> None:
    """pg_ctlcluster restart (fast shutdown: every open connection is cut), then pg_isready."""
    subprocess.run(
        [
            "pg_ctlcluster",
            "--skip-systemctl-redirect",
            PG_VERSION,
            PG_CLUSTER,
            "restart",
            "-m",
            "fast",
        ],
        check=True,
        capture_output=True,
    )
    pg_ready()


def worker_killer(supervisor_pid: int, killed: list[int]):  # type: ignore[no-untyped-def]
    async def kill_worker() -> None:
        killed.append(kill_one_worker(supervisor_pid))

    return kill_worker


async def restart_postgres_fault() -> None:
    await asyncio.to_thread(restart_postgres)


CHILD = """
import os, sys, time
from sqlalchemy import text
from app.db.engine import Database
from app.db.models import Subject
from app.services.transaction import utcnow
db = Database(sys.argv[1])
with db.write() as session:
    session.execute(text("PRAGMA cache_size=2"))  # spill dirty pages to the WAL before commit
    for n in range(200):
        session.add(Subject(site_id=sys.argv[2], screening_number=f"KILLED-{n}", sex="F",
                            year_of_birth=1980, status="registered", created_at=utcnow(),
                            created_by="killed"))
    session.flush()
    session.execute(text("UPDATE kits SET status = 'lost' WHERE site_id = :s"), {"s": sys.argv[2]})
    session.flush()
    print("written", flush=True)
    time.sleep(600)
"""


def kill_mid_sqlite_transaction(database_url: str, site: str, root: Path) -> None:
    """A process begins a writing transaction through app.db.engine.Database, writes (subjects,
    kit updates, flushed to the database file's WAL), and is SIGKILLed before its commit."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, database_url, site],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    if b"written" not in line:
        child.kill()
        raise RuntimeError(f"child did not write: {line!r} {child.stderr.read()!r}")  # type: ignore[union-attr]
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
