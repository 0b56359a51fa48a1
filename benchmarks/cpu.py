"""How busy the machine's CPUs were during a phase, from /proc/stat (Linux)."""

from __future__ import annotations

from pathlib import Path

STAT = Path("/proc/stat")


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
