"""A real server for benchmarks and fault tests: uvicorn with worker processes, real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SECRET = "benchmark-secret-key-not-for-production-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_pids(parent: int) -> list[int]:
    """The uvicorn supervisor's worker processes (not multiprocessing's resource tracker,
    which is a child too)."""
    children = Path(f"/proc/{parent}/task/{parent}/children")
    pids = [int(p) for p in children.read_text().split()] if children.exists() else []
    workers = []
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            workers.append(pid)
    return workers


@dataclass(frozen=True)
class Server:
    base: str
    pid: int


def wait_healthy(base: str, pid: int, workers: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if (
                httpx.get(f"{base}/health", timeout=2).status_code == 200
                # one worker: uvicorn serves in its own process, with no worker children
                and (workers == 1 or len(worker_pids(pid)) >= workers)
            ):
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server did not become healthy within {timeout} s")
        time.sleep(0.2)


@contextmanager
def running_server(
    database_url: str, workers: int = 2, log: Path | None = None, **env: str
) -> Iterator[Server]:
    """Serve the app on a free port with `workers` processes (extra IRT_* settings in env)."""
    port = free_port()
    environment = {
        **os.environ,
        "IRT_SECRET_KEY": SECRET,
        "IRT_PASSWORD_HASH_PROFILE": "fast",
        # every simulated client logs in from 127.0.0.1 at once: an attempt in flight counts
        # against its keys until it succeeds (docs/decisions.md, "Logins")
        "IRT_LOGIN_SOURCE_FREE_FAILURES": "100000",
        "IRT_LOGIN_ACCOUNT_FREE_FAILURES": "100000",
        "IRT_LOGIN_FREE_FAILURES": "100000",
        **env,
        "IRT_DATABASE_URL": database_url,
    }
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=environment,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        if process.poll() is not None:
            raise RuntimeError("server exited early")
        wait_healthy(base, process.pid, workers)
        yield Server(base, process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log:
            out.close()  # type: ignore[union-attr]
