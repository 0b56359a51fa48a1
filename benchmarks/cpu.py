"""CPU during a phase (Linux): the machine's busy share from /proc/stat, and the CPU time of each
side from /proc/PID/stat (utime + stime), so that a request's cost can be split into the
server's processes, the database's backends and the load generator's own process.

The per-process split is what the comparison with the ceiling reads: the machine is shared (the
load generator's HTTP client, other work), and /proc/stat counts all of it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

STAT = Path("/proc/stat")
TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")
SIDES = ("server", "database", "load")


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot; (0, 0) where /proc/stat is missing."""
    try:
        fields = STAT.read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0, 0
    ticks = [int(f) for f in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return sum(ticks) - idle, sum(ticks)


def busy_fraction(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of CPU time that was busy between two readings (0 when none elapsed)."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total > 0 else 0.0


def process_ticks(pid: int) -> int:
    """utime + stime of one live process (all its threads); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def descendants(pid: int) -> list[int]:
    """`pid` and every live process below it (uvicorn's supervisor and its workers)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(child) for child in task.read_text().split()]
            except OSError:
                continue
    return found


def database_backends(database: str) -> list[int]:
    """The PostgreSQL backends connected to `database`, by their process title
    (`postgres: ... <user> <database> <client> ...`); other databases' work is left out."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").split()
        except OSError:
            continue
        if title[:1] == [b"postgres:"] and database.encode() in title:
            pids.append(int(entry.name))
    return pids


@dataclass(frozen=True)
class Reading:
    ticks: dict[str, dict[int, int]]


class ProcessMeter:
    """CPU ticks per side: `server` (a process and its descendants, if given), `database`
    (the backends of a PostgreSQL database, if given) and `load` (this process). A backend that
    starts and ends between two readings is not counted (pools keep theirs for the run)."""

    def __init__(self, server_pid: int | None = None, database: str | None = None) -> None:
        self.server_pid, self.database = server_pid, database

    def read(self) -> Reading:
        pids: dict[str, list[int]] = {
            "server": descendants(self.server_pid) if self.server_pid else [],
            "database": database_backends(self.database) if self.database else [],
            "load": [os.getpid()],
        }
        return Reading({side: {p: process_ticks(p) for p in ps} for side, ps in pids.items()})

    @staticmethod
    def spent_ms(before: Reading, after: Reading) -> dict[str, float]:
        """CPU ms per side between two readings (a process new since `before` counts whole)."""
        return {
            side: TICK_MS
            * sum(t - before.ticks[side].get(pid, 0) for pid, t in after.ticks[side].items())
            for side in SIDES
        }
