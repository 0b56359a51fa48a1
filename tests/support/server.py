"""A real server for concurrency tests: uvicorn with several worker processes, real HTTP.
The machinery is the benchmarks' own (benchmarks/server.py); this adapts it to the tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from benchmarks.server import free_port, worker_pids
from benchmarks.server import running_server as _running_server

__all__ = ["free_port", "running_server", "worker_pids"]


@contextmanager
def running_server(database_url: str, workers: int = 2) -> Iterator[tuple[str, int]]:
    """Serve the app on a free port with `workers` processes; yield (base URL, supervisor pid)."""
    with _running_server(
        database_url, workers, IRT_SECRET_KEY=os.environ["IRT_SECRET_KEY"]
    ) as server:
        yield server.base, server.pid
